"""A trial's spans as a waterfall: one lane per worker, one bar per call, nested.

Phoenix and Langfuse draw traces this way: each row is a call (an example run, a module
call, an LM or tool call, a retrieval or embedding call) with a bar from its start to its
end on a shared time axis, indented under the call it happened in; optimizer events are
ticks. Rows keep the timeline's order (:mod:`dspex.view.ordering`), so a worker's calls
stay together, and nest as the trial's span tree does (:mod:`dspex.model.spans`: the
parents the OTLP export gives the same calls); an example's row comes right before the
run it scored::

    >>> from dspex.view.waterfall import waterfall
    >>> waterfall(()).rows
    ()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dspex.model import EventKind
from dspex.model.payloads import payload_of
from dspex.view.retrievals import embedding_label, retrieval_label
from dspex.view.spans import Span
from dspex.view.timeline import Entry, Timeline

__all__ = ["MAX_ROWS", "Waterfall", "WaterfallRow", "timeline_waterfall", "waterfall"]

MAX_ROWS = 400
"""More rows than this are left out (the count is shown); the timeline has them all."""

_ROW_KINDS = frozenset(
    {
        EventKind.EXAMPLE_RESULT,
        EventKind.MODULE_START,
        EventKind.MODULE_END,  # recorded without its start
        EventKind.LM_CALL,
        EventKind.TOOL_CALL,
        EventKind.RETRIEVAL,
        EventKind.EMBEDDING,
    }
)


@dataclass(frozen=True)
class WaterfallRow:
    span: Span
    label: str
    depth: int
    left: float
    """Where the bar starts, in percent of the axis."""
    width: float
    lane_start: bool = False
    """The first row of its worker's lane (renderers put the lane's name above it)."""

    @property
    def event_id(self) -> str:
        return self.span.event.id

    @property
    def parent_id(self) -> str | None:
        """The event id of the enclosing span's row (None: directly in the trial)."""
        return self.span.parent


@dataclass(frozen=True)
class Waterfall:
    rows: tuple[WaterfallRow, ...]
    total_ms: float
    left_out: int = 0
    ticks: tuple[tuple[float, str], ...] = ()
    """(percent, label) marks along the axis."""


def _label(span: Span) -> str:
    event = span.event
    if (result := payload_of(event, EventKind.EXAMPLE_RESULT)) is not None:
        return f"Example {'?' if result['example'] is None else result['example']}"
    if (call := payload_of(event, EventKind.LM_CALL)) is not None:
        label = f"LM {call['model'] or ''}".strip()
        return f"{label} (cache hit)" if call["cache_hit"] else label
    if (tool := payload_of(event, EventKind.TOOL_CALL)) is not None:
        return f"tool {tool['tool'] or '?'}"
    if (retrieval := payload_of(event, EventKind.RETRIEVAL)) is not None:
        return retrieval_label(retrieval)
    if (embedding := payload_of(event, EventKind.EMBEDDING)) is not None:
        return embedding_label(embedding)
    if (module := payload_of(event, EventKind.MODULE_START)) is not None:
        return str(module["module"] or module["class"] or "module")
    if (ended := payload_of(event, EventKind.MODULE_END)) is not None:
        return str(ended["module"] or ended["class"] or "module")
    return "module"


def waterfall(spans: Sequence[Span], entries: Sequence[Entry] = ()) -> Waterfall:
    """The rows of a waterfall over ``spans``, in the order and nesting of ``entries``."""
    timed = {s.event.id: s for s in spans if s.kind in _ROW_KINDS}
    if not timed:
        return Waterfall((), 0.0)
    origin = min(s.start_ms for s in timed.values())
    end = max(s.end_ms for s in timed.values())
    total = max(end - origin, 1e-6)
    ordered = _in_lane_order(timed, entries)
    rows: list[WaterfallRow] = []
    last_worker = None
    for span, depth in ordered[:MAX_ROWS]:
        left = (span.start_ms - origin) / total * 100
        width = max(span.ms / total * 100, 0.15)
        rows.append(
            WaterfallRow(
                span,
                _label(span),
                depth,
                round(left, 3),
                round(min(width, 100 - left), 3),
                lane_start=span.worker != last_worker,
            )
        )
        last_worker = span.worker
    ticks = tuple((i * 25.0, _ms_label(total * i / 4)) for i in range(5))
    return Waterfall(tuple(rows), total, max(len(ordered) - MAX_ROWS, 0), ticks)


def _ms_label(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _in_lane_order(timed: dict[str, Span], entries: Sequence[Entry]) -> list[tuple[Span, int]]:
    """Spans grouped into worker lanes (first worker first), each lane in timeline order
    with an example's row first in its group; depth is the span's in the span tree."""
    by_group: dict[str, list[Entry]] = {}
    for entry in entries:
        by_group.setdefault(entry.group, []).append(entry)
    lanes: dict[str, list[tuple[Span, int]]] = {}
    for members in by_group.values():
        example = next((e for e in members if e.event.kind is EventKind.EXAMPLE_RESULT), None)
        ordered = [example] if example is not None else []
        ordered += [entry for entry in members if entry is not example]
        spans = [timed[e.event.id] for e in ordered if e.event.id in timed]
        for span in spans:
            lanes.setdefault(span.worker, []).append((span, span.depth))
    if not entries:  # no timeline: spans in their own order
        for span in timed.values():
            lanes.setdefault(span.worker, []).append((span, span.depth))
    return [row for lane in lanes.values() for row in lane]


def timeline_waterfall(timeline: Timeline) -> Waterfall:
    """The waterfall of the events a timeline shows (a filtered one shows fewer rows)."""
    return waterfall(timeline.spans, timeline.entries)
