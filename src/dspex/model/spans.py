"""A trial's span tree: the one rule for which events are spans and which span encloses which.

The waterfall and the timeline's time shares (:mod:`dspex.view.spans`) and the
OpenTelemetry export (:mod:`dspex.export.mapping`) all read a trial's calls as this tree,
so that a call drawn inside a module in the waterfall is that module's child in the
exported trace too. The rules:

* **Spans.** A module call (a ``module_start``, ended by the ``module_end`` whose
  ``start_id`` names it), a ``module_end`` whose start is not among the trial's events
  (recorded without it), and every call recorded when it ended: ``lm_call``,
  ``adapter_format``, ``adapter_parse``, ``tool_call``, ``retrieval``, ``embedding`` and
  ``example_result`` (:data:`SPAN_KINDS`).
* **Times.** A module call runs from its start to its end (no end: the trial ended inside
  it, ``finish`` is None); a call recorded when it ended runs ``latency_ms`` back from its
  timestamp (no positive latency: an instant).
* **Parents.** A span's parent is the span of its nearest ancestor event by
  ``parent_id`` that opened a span; an optimizer's step
  or a log in between is skipped. No such ancestor: the trial itself (``parent`` None).
  Threads and workers need nothing more: each call records the call it ran in. One
  exception: an evaluated example encloses the program run it scored (the module call
  paired with its ``example_result``, :attr:`SpanTree.scored_runs`), and starts with it.
* Everything else (steps, decisions, candidates, scores, logs, errors) is a point in
  time on :meth:`SpanTree.enclosing` of its parent.

::

    >>> span_tree([]).nodes
    ()
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from dspex.model.event import EventKind, TraceEvent
from dspex.model.payloads import common_of, payload_of

__all__ = ["SPAN_KINDS", "SpanNode", "SpanTree", "call_interval", "call_latency_ms", "span_tree"]

SPAN_KINDS = frozenset(
    {
        EventKind.MODULE_START,
        EventKind.LM_CALL,
        EventKind.ADAPTER_FORMAT,
        EventKind.ADAPTER_PARSE,
        EventKind.TOOL_CALL,
        EventKind.RETRIEVAL,
        EventKind.EMBEDDING,
        EventKind.EXAMPLE_RESULT,
    }
)
"""Event kinds that open a span of their own (and so does a ``module_end`` with no start)."""


@dataclass(frozen=True, slots=True)
class SpanNode:
    """One span of a trial."""

    event: TraceEvent
    """The event that opened it: a module call's start (or its end, recorded without the
    start), the call's own event otherwise."""
    end: TraceEvent | None
    """A module call's ``module_end`` (None for other spans, and for an unfinished call)."""
    parent: str | None
    """The id of the event that opened the enclosing span; None: the trial's own."""
    depth: int
    """How many spans enclose this one (0: directly in the trial)."""
    start: datetime
    finish: datetime | None
    """None: a module call the trial ended inside."""

    @property
    def id(self) -> str:
        """The id of the opening event (what children name as ``parent``)."""
        return self.event.id

    @property
    def kind(self) -> EventKind:
        return self.event.kind

    @property
    def failed(self) -> bool:
        """The call raised (a module call: its end records the error)."""
        closing = self.end if self.end is not None else self.event
        return bool(common_of(closing).get("error"))


def call_latency_ms(event: TraceEvent) -> float:
    """How long a call recorded when it ended took: its ``latency_ms``, 0 when it has none."""
    latency = common_of(event).get("latency_ms")
    if isinstance(latency, int | float) and not isinstance(latency, bool) and latency > 0:
        return float(latency)
    return 0.0


def call_interval(event: TraceEvent) -> tuple[datetime, datetime]:
    """(start, end) of a call recorded when it ended: ``latency_ms`` back from its timestamp
    (to the microsecond; :func:`call_latency_ms` is exact)."""
    end = event.timestamp
    return end - timedelta(milliseconds=call_latency_ms(event)), end


class SpanTree:
    """The spans of one trial's events, in sequence order, with their parents.

    >>> tree = span_tree([])
    >>> tree.node("evt_missing") is None, tree.enclosing("evt_missing")
    (True, None)
    """

    def __init__(self, events: Iterable[TraceEvent]) -> None:
        ordered = sorted(events, key=attrgetter("sequence"))
        self._by_id = {event.id: event for event in ordered}
        ends: dict[str, TraceEvent] = {}
        for event in ordered:
            ended = payload_of(event, EventKind.MODULE_END)
            if ended is not None:
                start_id = ended["start_id"]
                if isinstance(start_id, str) and start_id in self._by_id and start_id != event.id:
                    ends.setdefault(start_id, event)
        closing = {end.id for end in ends.values()}
        opening = [
            event
            for event in ordered
            if event.kind in SPAN_KINDS
            or (event.kind is EventKind.MODULE_END and event.id not in closing)
        ]
        self._opening = {event.id for event in opening}
        parents = {event.id: self.enclosing(event.parent_id) for event in opening}
        self.scored_runs = _scored_runs(opening, parents)
        """Program run -> the example that scored it (ids of their opening events); see
        :func:`_scored_runs`. The example's span encloses its run."""
        run_start: dict[str, datetime] = {}
        for run_id, example_id in self.scored_runs.items():
            parents[run_id] = example_id
            run_start[example_id] = self._by_id[run_id].timestamp
        depths: dict[str, int] = {}
        nodes: dict[str, SpanNode] = {}
        for event in opening:
            end = ends.get(event.id) if event.kind is EventKind.MODULE_START else None
            start: datetime
            finish: datetime | None
            if event.kind is EventKind.MODULE_START:
                start = event.timestamp
                finish = max(end.timestamp, start) if end is not None else None
            else:
                start, finish = call_interval(event)
                if event.id in run_start:  # an example's span starts with its run
                    start = min(start, run_start[event.id])
            parent = parents[event.id]
            nodes[event.id] = SpanNode(
                event, end, parent, _depth(event.id, parents, depths), start, finish
            )
        self._nodes = nodes
        self.nodes: tuple[SpanNode, ...] = tuple(nodes.values())
        """Every span, in the sequence order of the events that opened them."""

    def __iter__(self) -> Iterator[SpanNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, event_id: str) -> SpanNode | None:
        """The span ``event_id`` opened, if it opened one."""
        return self._nodes.get(event_id)

    def enclosing(self, parent_id: str | None) -> str | None:
        """The span that encloses an event whose ``parent_id`` is ``parent_id``: the id of
        the nearest ancestor that opened one, or None (the trial's own span)."""
        seen: set[str] = set()
        while parent_id is not None and parent_id not in seen:
            seen.add(parent_id)
            if parent_id in self._opening:
                return parent_id
            parent = self._by_id.get(parent_id)
            if parent is None:
                return None
            parent_id = parent.parent_id
        return None


def _scored_runs(opening: list[TraceEvent], parents: dict[str, str | None]) -> dict[str, str]:
    """Program run -> the evaluated example that scored it.

    The run of an ``example_result`` is a module call in the same enclosing span: the last
    one its worker made before the result that no other example claimed, else the first
    unclaimed one whose inputs are the example's (DSPy's ``Evaluate`` records results on
    another thread than the calls). The timeline pairs a run with its score the same way;
    an example without such a call has no run.

    >>> from datetime import UTC, datetime
    >>> from dspex.model.event import trusted_event
    >>> def event(id, kind, source, worker, payload):
    ...     return trusted_event(id=id, trial_id="t", parent_id=None, sequence=0,
    ...         timestamp=datetime.now(UTC), monotonic_ns=0, pid=1, source=source,
    ...         kind=kind, worker=worker, payload=payload)
    >>> def start(id, worker, inputs):
    ...     payload = {"module": "qa", "class": "Predict", "inputs": inputs}
    ...     return event(id, "module_start", "execution", worker, payload)
    >>> def result(id, worker, inputs):
    ...     payload = {"index": 0, "inputs": inputs, "score": 1.0}
    ...     return event(id, "example_result", "evaluation", worker, payload)
    >>> events = [start("a", "w1", {"q": 1}), start("b", "w1", {"q": 2}),
    ...           result("r2", "w2", {"q": 2}), result("r1", "w2", {"q": 1})]
    >>> _scored_runs(events, {e.id: None for e in events})
    {'b': 'r2', 'a': 'r1'}
    """
    last_run: dict[tuple[str, str | None], str] = {}  # (worker, enclosing span) -> its call
    unscored: dict[str, TraceEvent] = {}
    by_inputs = _RunsByInputs(unscored, parents)
    pairs: dict[str, str] = {}
    for event in opening:
        if event.kind is EventKind.MODULE_START:
            last_run[(event.worker, parents[event.id])] = event.id
            unscored[event.id] = event
            by_inputs.add(event.id)
            continue
        scored = payload_of(event, EventKind.EXAMPLE_RESULT)
        if scored is None:
            continue
        parent = parents[event.id]
        run = last_run.pop((event.worker, parent), None)
        if run is None or run not in unscored:
            run = by_inputs.first(parent, scored["inputs"])
        if run is not None:
            del unscored[run]
            pairs[run] = event.id
    return pairs


class _RunsByInputs:
    """The unclaimed module calls of :func:`_scored_runs` by (enclosing span, inputs), in
    the order they were made: finding the first whose inputs are an example's is a lookup,
    not a scan of every call so far (a trial of 50,000 events took a minute to show).
    Calls are indexed only when a lookup needs them, and claimed ones are dropped then."""

    def __init__(self, unscored: dict[str, TraceEvent], parents: dict[str, str | None]):
        self._unscored = unscored
        self._parents = parents
        self._pending: list[str] = []
        self._buckets: dict[tuple[str | None, str], deque[str]] = {}

    def add(self, run_id: str) -> None:
        self._pending.append(run_id)

    def first(self, parent: str | None, inputs: object) -> str | None:
        for run_id in self._pending:
            if run_id in self._unscored:
                key = (self._parents[run_id], _inputs_key(_inputs(self._unscored[run_id])))
                self._buckets.setdefault(key, deque()).append(run_id)
        self._pending.clear()
        bucket = self._buckets.get((parent, _inputs_key(inputs)))
        while bucket and bucket[0] not in self._unscored:
            bucket.popleft()  # claimed since
        for run_id in bucket or ():
            if run_id in self._unscored and _inputs(self._unscored[run_id]) == inputs:
                return run_id
        return None


def _inputs_key(inputs: object) -> str:
    return json.dumps(inputs, sort_keys=True, default=repr)


def _inputs(event: TraceEvent) -> object:
    start = payload_of(event, EventKind.MODULE_START)
    return start["inputs"] if start is not None else None


def _depth(event_id: str, parents: dict[str, str | None], depths: dict[str, int]) -> int:
    chain: list[str] = []
    current: str | None = event_id
    while current is not None and current not in depths and current not in chain:
        chain.append(current)
        current = parents.get(current)
    depth = depths.get(current, -1) if current is not None else -1
    for node in reversed(chain):
        depth += 1
        depths[node] = depth
    return depths[event_id]


def span_tree(events: Iterable[TraceEvent]) -> SpanTree:
    """The span tree of one trial's ``events`` (any order)."""
    return SpanTree(events)
