"""The order in which a timeline lists events: by ``sequence``, each call tree kept whole.

Parallel workers record their events interleaved. Listed by ``sequence`` alone, one
worker's LM call lands right after another worker's module start and reads as nested
under it. :func:`tree_order` keeps sequence order but emits each call tree (a module
call, everything under it by ``parent_id``, and its ``module_end``) in one piece, and
puts an example's result right after the program run it scored (the next parentless
evaluation event on the same worker, or else the latest unscored run on the same
inputs)::

    >>> from dspex.view.ordering import tree_order
    >>> tree_order([])
    []

Returns ``(event, group)`` pairs; ``group`` is the id of the tree's top event, which
lets renderers fold one example's run into one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from dspex.model import EventKind, EventSource, TraceEvent
from dspex.model.payloads import payload_of

__all__ = ["tree_order"]


def tree_order(events: Iterable[TraceEvent]) -> list[tuple[TraceEvent, str]]:
    """``events`` (any order) as ``(event, group id)`` in tree-preserving sequence order."""
    ordered = sorted(events, key=lambda e: e.sequence)
    by_id = {e.id: e for e in ordered}
    children: dict[str, list[TraceEvent]] = {}
    roots: list[TraceEvent] = []
    open_root: dict[str, str] = {}  # worker -> its latest top-level module call
    by_inputs: dict[str, list[str]] = {}  # top-level calls not yet scored, by their inputs
    orchestration = EventSource.ORCHESTRATION
    for event in ordered:
        parent = _parent_of(event, by_id)
        call = payload_of(event, EventKind.MODULE_START)
        scored = payload_of(event, EventKind.EXAMPLE_RESULT)
        if parent is None and event.source is not orchestration and call is None:
            # An example's result (or a log) right after the run on this worker: keep them
            # together, so that a run and its score read as one.
            parent = open_root.get(event.worker)
            if parent is None and scored is not None:
                parent = _scored_run(scored["inputs"], by_inputs)
        if parent is None:
            roots.append(event)
        else:
            children.setdefault(parent, []).append(event)
        if event.source is orchestration:
            open_root.pop(event.worker, None)
        elif call is not None and _parent_of(event, by_id) is None:
            open_root[event.worker] = event.id
            by_inputs.setdefault(_key(call["inputs"]), []).append(event.id)
        elif scored is not None:
            open_root.pop(event.worker, None)
            if parent is not None:
                runs = by_inputs.get(_key(scored["inputs"]), [])
                if parent in runs:
                    runs.remove(parent)
    result: list[tuple[TraceEvent, str]] = []
    seen: set[str] = set()
    for start in [*roots, *ordered]:  # then anything a parent cycle hid from the roots
        if start.id not in seen:
            _walk(start, children, seen, result)
    return result


def _key(inputs: object) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


def _scored_run(inputs: object, by_inputs: dict[str, list[str]]) -> str | None:
    """The latest unscored top-level call on ``inputs`` (an example result's): where a
    recorder put the results on another worker than the runs (one scoring thread)."""
    runs = by_inputs.get(_key(inputs))
    return runs[-1] if runs else None


def _parent_of(event: TraceEvent, by_id: dict[str, TraceEvent]) -> str | None:
    """The call this event is listed under: for a module end its start, else its
    ``parent_id`` when that is a call (an optimizer's step is a heading, not a call: the
    events under it keep their sequence order)."""
    end = payload_of(event, EventKind.MODULE_END)
    if end is not None:
        start = end["start_id"]
        if isinstance(start, str) and start in by_id and start != event.id:
            return start
    parent = by_id.get(event.parent_id) if event.parent_id is not None else None
    if parent is None or parent.id == event.id or parent.source is not EventSource.EXECUTION:
        return None
    return parent.id


def _walk(
    start: TraceEvent,
    children: dict[str, list[TraceEvent]],
    seen: set[str],
    result: list[tuple[TraceEvent, str]],
) -> None:
    stack = [start]
    while stack:
        event = stack.pop()
        if event.id in seen:
            continue
        seen.add(event.id)
        result.append((event, start.id))
        stack.extend(reversed(children.get(event.id, ())))
