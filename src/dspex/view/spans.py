"""Where a trial's time went: spans with a start and a duration, and busy time per source.

Events are points in time; some carry a duration (``latency_ms``) or come in pairs
(``module_start`` and its ``module_end``). :func:`trial_spans` turns them into
:class:`Span` records (start and end in milliseconds from the trial's first event,
worker, nesting depth) for the waterfall, and :func:`busy_time` adds up time per
source counting only what a span covers:

* execution: module calls, LM calls, adapter and tool calls, retrievals and embedding
  calls;
* evaluation: example runs, outside the execution inside them (the metric, mostly);
* orchestration: the optimizer's own work between two of its events on one worker,
  outside any execution and outside the time other trials of the experiment were
  running (an optimizer that waits for its candidates to be evaluated is not busy);
* waiting: the rest, the time between events that nothing recorded accounts for.

Clocks: event timestamps (UTC, microseconds), which compare across processes.

    >>> from dspex.view.spans import merge
    >>> merge([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)])
    [(0.0, 3.0), (5.0, 6.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dspex.model import EventKind, EventSource, Experiment, TraceEvent, Trial
from dspex.model.payloads import common_of, payload_of
from dspex.model.spans import SpanTree, span_tree

__all__ = ["WAITING", "Span", "busy_time", "merge", "module_self_time", "trial_spans"]

WAITING = "waiting"
"""The label of time no recorded span accounts for."""

Interval = tuple[float, float]


@dataclass(frozen=True)
class Span:
    """Something that took time (or, with ``start_ms == end_ms``, an instant)."""

    event: TraceEvent
    """The event that opened the span (a module call's start; the event itself otherwise)."""
    source: str
    kind: EventKind
    worker: str
    start_ms: float
    end_ms: float
    module: str | None = None
    failed: bool = False
    parent: str | None = None
    """The id of the event that opened the enclosing span (None: the trial's own), by the
    rule the OTLP export uses too: :mod:`dspex.model.spans`."""
    depth: int = 0
    """How many spans enclose this one."""

    @property
    def ms(self) -> float:
        return self.end_ms - self.start_ms


def _ms(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds() * 1000


def trial_spans(events: Sequence[TraceEvent]) -> list[Span]:
    """Every span of one trial's events, in the order of ``events``; times from the first.

    The calls, their times and their parents are the trial's span tree
    (:func:`dspex.model.spans.span_tree`, which the OTLP export reads too); a module call
    the trial ended inside is drawn as an instant at its start. Orchestration events and
    errors are instants, inside the span that encloses them.
    """
    if not events:
        return []
    origin = min(e.timestamp for e in events)
    tree = span_tree(events)
    spans = []
    for event in events:
        span = _span_of(event, tree, origin)
        if span is not None:
            spans.append(span)
    return spans


def _span_of(event: TraceEvent, tree: SpanTree, origin: datetime) -> Span | None:
    node = tree.node(event.id)
    if node is not None:
        named = common_of(event).get("module")
        module = named if isinstance(named, str) else None
        failed = node.failed
        result = payload_of(event, EventKind.EXAMPLE_RESULT)
        if result is not None:
            failed = failed or result["passed"] is False
        start = _ms(node.start, origin)
        end = _ms(node.finish, origin) if node.finish is not None else start
        return Span(
            event, event.source.value, event.kind, event.worker, start, end, module, failed,
            node.parent, node.depth,
        )  # fmt: skip
    if event.source is EventSource.ORCHESTRATION or event.kind is EventKind.ERROR:
        at = _ms(event.timestamp, origin)
        failed = bool(common_of(event).get("error"))
        parent = tree.enclosing(event.parent_id)
        enclosing = tree.node(parent) if parent is not None else None
        depth = enclosing.depth + 1 if enclosing is not None else 0
        return Span(
            event, event.source.value, event.kind, event.worker, at, at, None, failed,
            parent, depth,
        )  # fmt: skip
    return None


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint intervals."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _minus(keep: list[Interval], cut: list[Interval]) -> list[Interval]:
    """``keep`` without ``cut`` (both sorted and disjoint)."""
    result: list[Interval] = []
    j = 0
    for start, end in keep:
        while j < len(cut) and cut[j][1] <= start:
            j += 1
        k, cursor = j, start
        while k < len(cut) and cut[k][0] < end:
            if cut[k][0] > cursor:
                result.append((cursor, cut[k][0]))
            cursor = max(cursor, cut[k][1])
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def _length(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def busy_time(
    trial: Trial, spans: Sequence[Span], experiment: Experiment | None = None
) -> dict[str, float]:
    """Milliseconds per source (and :data:`WAITING`) over the trial's first to last event.

    The values add up to that whole span of time; see the module docstring for what
    each source counts.
    """
    if not spans and not trial.events:
        return {}
    events = trial.events
    first = min(e.timestamp for e in events)
    whole = _ms(max(e.timestamp for e in events), first)
    window = [(0.0, whole)]
    execution = merge((s.start_ms, s.end_ms) for s in spans if s.source == "execution")
    evaluation = _minus(
        merge((s.start_ms, s.end_ms) for s in spans if s.kind is EventKind.EXAMPLE_RESULT),
        execution,
    )
    elsewhere = merge(_other_trials(trial, experiment, first))
    busy = merge([*execution, *evaluation, *elsewhere])
    orchestration = _minus(merge(_optimizer_work(spans)), busy)
    totals = {
        "execution": _length(_clip(execution, window)),
        "evaluation": _length(_clip(evaluation, window)),
        "orchestration": _length(_clip(orchestration, window)),
    }
    totals = {k: v for k, v in totals.items() if v > 0}
    waiting = whole - sum(totals.values())
    if waiting > 1e-9:
        totals[WAITING] = waiting
    return totals


def _clip(intervals: list[Interval], window: list[Interval]) -> list[Interval]:
    (low, high) = window[0]
    return [(max(s, low), min(e, high)) for s, e in intervals if e > low and s < high]


def _optimizer_work(spans: Sequence[Span]) -> Iterable[Interval]:
    """Between two consecutive orchestration events of one worker: the optimizer at work."""
    last: dict[str, float] = {}
    for span in spans:
        if span.source != "orchestration":
            continue
        if span.worker in last:
            yield (last[span.worker], span.start_ms)
        last[span.worker] = span.start_ms


def _other_trials(trial: Trial, experiment: Experiment | None, origin: datetime) -> list[Interval]:
    """When other trials of the experiment were recording, unless they enclose this one
    (a compile trial spans all its candidates; it does not make them wait)."""
    if experiment is None or not trial.events:
        return []
    own = (min(e.timestamp for e in trial.events), max(e.timestamp for e in trial.events))
    found = []
    for other in experiment.trials:
        if other.id == trial.id or not other.events:
            continue
        # Records keep events in sequence order: the first and last are enough here.
        start, end = other.events[0].timestamp, other.events[-1].timestamp
        if start <= own[0] and end >= own[1]:
            continue
        found.append((_ms(start, origin), _ms(end, origin)))
    return found


def module_self_time(spans: Sequence[Span]) -> dict[str, float]:
    """Milliseconds per module path, each call's time minus that of the calls inside it."""
    modules = [s for s in spans if s.kind is EventKind.MODULE_START]
    inner: dict[str, float] = {}
    for span in modules:
        parent = span.event.parent_id
        if parent is not None:
            inner[parent] = inner.get(parent, 0.0) + span.ms
    totals: dict[str, float] = {}
    for span in modules:
        label = span.module or "?"
        own = max(span.ms - inner.get(span.event.id, 0.0), 0.0)
        totals[label] = totals.get(label, 0.0) + own
    return totals
