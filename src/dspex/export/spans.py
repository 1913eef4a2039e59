"""Spans as plain data: what :mod:`dspex.export.mapping` makes of a trial, before OpenTelemetry.

A :class:`SpanRecord` holds exactly what an OTLP span carries (ids, parent, name, times
in nanoseconds since the epoch, attributes, events, links, status), so the mapping can
be read and tested without the OpenTelemetry SDK; :mod:`dspex.export.otlp` turns the
records into the SDK's spans.

Ids are derived from dspex ids, so exporting the same trial twice gives the same trace
and span ids (receivers that key spans by id, as Phoenix does, keep one copy)::

    >>> f"{trace_id_of('trl_01KAZ2Y2V3NQ6C9J0H3J8P4WQX'):032x}"
    '34b6c050e40a11ca28a2a9b05bc2ba54'
    >>> span_id_of("evt_01KAZ2Y2V3NQ6C9J0H3J8P4WQX") > 0
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "AttributeValue",
    "Attributes",
    "SpanEventRecord",
    "SpanLinkRecord",
    "SpanRecord",
    "span_id_of",
    "time_ns",
    "trace_id_of",
]

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]
Attributes = dict[str, AttributeValue]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")
    return value or 1  # an all-zero id is invalid in OpenTelemetry


def trace_id_of(trial_id: str) -> int:
    """The 128-bit trace id of a trial's trace."""
    return _digest(trial_id, 16)


def span_id_of(record_id: str) -> int:
    """The 64-bit span id of the span made from a trial (its root span) or an event."""
    return _digest(record_id, 8)


def time_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a timezone-aware datetime (exact to the microsecond)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class SpanEventRecord:
    """A point in time on a span: a decision, a score, an exception."""

    name: str
    time_ns: int
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class SpanLinkRecord:
    """A link to another trace's span: a trial's parent candidates."""

    trace_id: int
    span_id: int
    attributes: Attributes


@dataclass(slots=True)
class SpanRecord:
    """One span. ``kind`` is the OpenTelemetry span kind (``internal`` or ``client``);
    the OpenInference kind is the attribute ``openinference.span.kind``."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    kind: str = "internal"
    events: list[SpanEventRecord] = field(default_factory=list)
    links: list[SpanLinkRecord] = field(default_factory=list)
    error: str | None = None  # the status description when the span failed

    def fail(self, description: str) -> None:
        """Mark the span failed (status ERROR); the first description is kept."""
        if self.error is None:
            self.error = description or "error"
