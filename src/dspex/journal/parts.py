"""Captured events as the parts a store keeps, written straight from the recorder's tuples.

The spool's writer turns each batch of a running trial's events into
:class:`~dspex.store.EventPart` s: numbered in time order, serialized as the store keeps
them, summarized. For a trial whose events nobody reads back while it runs (a trial of
direct calls), :func:`raw_parts` does that without building a
:class:`~dspex.model.TraceEvent` per event: each event's fields go to orjson as a dict in
the model's field order, and the bytes are those ``TraceEvent.to_json_bytes`` gives (the
tests compare them). It returns None for a batch orjson would not write the way pydantic
does (see :func:`dspex.store.json_rows`); the caller then takes the general path
(:func:`~dspex.capture.recorder.trace_events` and :func:`built_parts`). Payloads are
JSON data as the recorder's contract has it (``json_ready``, or made so by
:func:`~dspex.capture.jsonable.jsonable` here).

    >>> from dspex.capture.recorder import TrialRecorder
    >>> from dspex.model import EventKind
    >>> recorder = TrialRecorder("trl_x")
    >>> _ = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "hi"})
    >>> [(p.first, p.count, p.summary.events) for p in raw_parts("trl_x", recorder.raw_events(), 7)]
    [(7, 1, 1)]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TIME_ORDER, RawEvent
from dspex.model import TraceEvent
from dspex.model.event import EventKind, EventSource
from dspex.model.eventsummary import summarize_fields
from dspex.model.payloads import SOURCE_OF
from dspex.store import PART_EVENTS, EventPart, encode_parts, json_rows

__all__ = ["built_parts", "raw_parts", "utc_text"]

# Each kind and source, given as a member or as its value, by its value as plain text:
# orjson reads an enum's value through Python (two calls per field, per event). A
# KeyError names a value that is no kind (source), as trusted_event's check does.
_KIND_TEXT: dict[str, str] = {str(k.value): str(k.value) for k in EventKind}
_SOURCE_TEXT: dict[str, str] = {str(s.value): str(s.value) for s in EventSource}
_SOURCE_TEXT_OF_KIND: dict[str, str] = {str(k): str(s.value) for k, s in SOURCE_OF.items()}

_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def utc_text(time_ns: int) -> str:
    """``time_ns`` (nanoseconds since the epoch) as orjson writes the event's timestamp,
    ``utc_time(time_ns)`` with ``OPT_UTC_Z``: to the microsecond below, the fraction
    left out when it is zero. The text of a second is made once (events come many a
    second), not a datetime per event.

        >>> utc_text(1_780_000_000_123_456_789), utc_text(1_780_000_000_000_000_999)
        ('2026-05-28T20:26:40.123456Z', '2026-05-28T20:26:40Z')
    """
    global _second
    seconds, micro = divmod(time_ns // 1000, 1_000_000)
    last, text = _second
    if seconds != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)
    return f"{text}.{micro:06d}Z" if micro else text + "Z"


def raw_parts(trial_id: str, raw: Sequence[RawEvent], first: int) -> list[EventPart] | None:
    """Events ``raw`` of ``trial_id``, numbered from ``first`` in time order, as parts of at
    most ``PART_EVENTS`` events; None when orjson refuses one of them."""
    ordered = sorted(raw, key=TIME_ORDER)
    rows = [
        {
            "id": e.id,
            "trial_id": trial_id,
            "parent_id": e.parent_id,
            "sequence": sequence,
            "timestamp": utc_text(e.time_ns),
            "monotonic_ns": e.monotonic_ns,
            # checked as trusted_event checks them: a KeyError names a bad one
            "source": _SOURCE_TEXT[e.source] if e.source else _SOURCE_TEXT_OF_KIND[e.kind],
            "kind": _KIND_TEXT[e.kind],
            "pid": e.pid,
            "worker": e.worker,
            "payload": e.payload if e.json_ready else jsonable(e.payload),
        }
        for sequence, e in enumerate(ordered, first)
    ]
    return _parts(first, rows)


def built_parts(first: int, events: Sequence[TraceEvent]) -> list[EventPart]:
    """Events built by :func:`~dspex.capture.recorder.trace_events` (numbered from
    ``first``) as parts: :func:`~dspex.store.encode_parts`, with the JSON written by orjson
    from each event's fields where it can be."""
    parts = _parts(first, [event.__dict__ for event in events])
    return parts if parts is not None else encode_parts(first, events)


def _parts(first: int, rows: list[dict[str, Any]]) -> list[EventPart] | None:
    parts = []
    for start in range(0, len(rows), PART_EVENTS):
        chunk = rows[start : start + PART_EVENTS]
        data = json_rows(chunk)
        if data is None:
            return None
        summary = summarize_fields(
            (row["kind"] for row in chunk),
            (row["id"] for row in chunk),
            (row["payload"] for row in chunk),
        )
        parts.append(EventPart(first + start, len(chunk), data, summary))
    return parts
