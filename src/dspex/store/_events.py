"""A trial's events as stored: serialized in parts, read back a range at a time.

A trial's JSON is its header (the trial with ``"events":[]``) with its events spliced in
at :attr:`EventIndex.at`. The events are serialized a part (:data:`PART_EVENTS` events)
at a time, so the byte range of every part is known without scanning, and a backend
that keeps the :class:`EventIndex` next to the bytes reads (and checks) only the parts
a page of events needs::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, TraceEvent, new_id
    >>> trial_id = new_id("trl")
    >>> t = Trial(id=trial_id, experiment_id=new_id("exp"), index=0,
    ...           started_at=datetime(2026, 1, 1, tzinfo=UTC),
    ...           events=[TraceEvent(trial_id=trial_id, sequence=i, timestamp=datetime(
    ...               2026, 1, 1, tzinfo=UTC), monotonic_ns=i, source="execution",
    ...               kind="log", pid=1, worker="w") for i in range(3)])
    >>> data, _, index = trial_json(t)
    >>> data == t.to_json_bytes(), index.count
    (True, 3)
    >>> [e.sequence for e in parse_events(index.events_bytes(data, 1, 3), trial_id)]
    [0, 1, 2]
    >>> [e.sequence for e in index.read(data, trial_id, 1, 2)]
    [1, 2]

(:meth:`EventIndex.events_bytes` gives whole parts, here the one part of three events;
:meth:`EventIndex.read` cuts the page out of them.)

Parsing is fast: the bytes were written by dspex and are checked against their SHA-256
before they are parsed, so events are built without pydantic's validation (which costs
more than everything else); anything unexpected falls back to the full validation.
"""

from __future__ import annotations

import gc
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from dspex.errors import ValidationError
from dspex.model import Experiment, TraceEvent, Trial
from dspex.model._base import Record, plain_json, stored_json
from dspex.model.event import KIND_OF_VALUE, SOURCE_OF_VALUE
from dspex.model.eventsummary import EventSummary, summarize_events

__all__ = [
    "PART_EVENTS",
    "EventIndex",
    "EventPart",
    "Pieces",
    "encode_parts",
    "fit_parts",
    "plan_append",
    "resume_gc",
    "read_parts",
    "splice_parts",
    "stored_count",
    "trial_with_parts",
    "join_parts",
    "parse_events",
    "parse_experiment",
    "parse_trial",
    "serialize_events",
    "json_rows",
    "splice_pieces",
    "crc32s",
    "digest_of",
    "digests",
    "trial_json",
]

PART_EVENTS = 500
"""Events per stored part: a page of events reads at most two parts."""

_EMPTY = b'"events":[]'
_AT = len(b'"events":[')


@dataclass(frozen=True)
class EventIndex:
    """Where a trial's events sit in its JSON: ``at`` (after ``"events":[``) to ``end``
    (the closing ``]``), ``count`` events, part ``k`` starting at event ``firsts[k]`` and
    byte ``starts[k]`` (offsets within the trial's JSON)."""

    count: int
    at: int
    end: int
    firsts: tuple[int, ...] = ()
    starts: tuple[int, ...] = ()

    def part_bounds(self, k: int) -> tuple[int, int]:
        """The byte range of part ``k`` (without the separating commas)."""
        stop = self.starts[k + 1] - 1 if k + 1 < len(self.starts) else self.end
        return self.starts[k], stop

    def parts_for(self, offset: int, stop: int) -> range:
        """The parts holding events ``offset`` .. ``stop - 1``."""
        if offset >= stop or offset >= self.count:
            return range(0)
        first = _bisect(self.firsts, offset)
        last = _bisect(self.firsts, min(stop, self.count) - 1)
        return range(first, last + 1)

    def events_bytes(self, data: bytes | memoryview, offset: int, stop: int) -> bytes:
        """The JSON array of the parts holding events ``offset`` .. ``stop - 1`` of
        ``data`` (the trial's JSON); its first event is event ``firsts[parts[0]]``."""
        parts = self.parts_for(offset, stop)
        if not parts:
            return b"[]"
        start = self.part_bounds(parts[0])[0]
        end = self.part_bounds(parts[-1])[1]
        return b"".join((b"[", bytes(data[start:end]), b"]"))

    def page(self, offset: int, limit: int | None) -> tuple[int, int, int, int] | None:
        """For events ``offset`` .. ``offset + limit - 1``: the byte range (start, end)
        of the parts that hold them, and which of the parsed events are wanted
        (``events[skip:stop]``); None when the range holds no event."""
        stop = self.count if limit is None else min(self.count, offset + limit)
        parts = self.parts_for(offset, stop)
        if not parts:
            return None
        start = self.part_bounds(parts[0])[0]
        end = self.part_bounds(parts[-1])[1]
        base = self.firsts[parts[0]]
        return start, end, offset - base, stop - base

    def read(
        self, data: bytes | memoryview, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent]:
        """Events ``offset`` .. ``offset + limit - 1`` of the trial whose JSON is ``data``,
        parsing only the parts that hold them."""
        where = self.page(offset, limit)
        if where is None:
            return []
        start, end, skip, stop = where
        events = parse_events(b"".join((b"[", bytes(data[start:end]), b"]")), trial_id)
        if len(events) < stop:
            raise ValidationError(
                f"trial {trial_id}: a stored part holds fewer events than its index says"
            )
        return events[skip:stop]

    def header(self, data: bytes | memoryview) -> bytes:
        """The trial's JSON without its events (``"events":[]``)."""
        return b"".join((bytes(data[: self.at]), bytes(data[self.end :])))

    def shifted(self, by: int) -> EventIndex:
        """This index with every offset moved by ``by`` (a trial inside a record)."""
        return EventIndex(
            self.count,
            self.at + by,
            self.end + by,
            self.firsts,
            tuple(s + by for s in self.starts),
        )

    def to_list(self) -> list[Any]:
        return [self.count, self.at, self.end, list(self.firsts), list(self.starts)]

    @classmethod
    def from_list(cls, value: Any) -> EventIndex | None:
        """The index stored by :meth:`to_list`, or None when ``value`` is not one."""
        if not isinstance(value, list) or len(value) != 5:
            return None
        count, at, end, firsts, starts = value
        if not all(type(v) is int for v in (count, at, end)) or not 0 <= at <= end:
            return None
        if not isinstance(firsts, list) or not isinstance(starts, list):
            return None
        if len(firsts) != len(starts) or not all(type(v) is int for v in (*firsts, *starts)):
            return None
        if (count == 0) != (not firsts) or (firsts and firsts[0] != 0):
            return None
        if sorted(firsts) != firsts or sorted(starts) != starts:
            return None
        if starts and not (at <= starts[0] and starts[-1] <= end):
            return None
        return cls(count, at, end, tuple(firsts), tuple(starts))


def _bisect(firsts: Sequence[int], position: int) -> int:
    low, high = 0, len(firsts) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if firsts[mid] <= position:
            low = mid
        else:
            high = mid - 1
    return low


class _EventList(Record):
    events: tuple[TraceEvent, ...] = ()


_LIST_PREFIX = b'{"events":['
_LIST_SUFFIX = b"]}"


def serialize_events(events: Sequence[TraceEvent]) -> bytes | None:
    """``events`` as the comma-separated JSON they have inside a trial (no brackets), or
    None when something in them has to become text (see ``Record.representable``)."""
    if not events:
        return b""
    data = plain_json(_EventList.model_construct(events=tuple(events)))
    if data is None:
        return None
    return data[len(_LIST_PREFIX) : -len(_LIST_SUFFIX)]


_ROW_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


def json_rows(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Captured events' fields (``rows``, each in TraceEvent's field order) as
    comma-separated JSON, written by orjson to the bytes :func:`serialize_events` gives in
    about a third of its time; None when orjson refuses a value (a lone surrogate, an
    integer past 64 bits, a subclass of a JSON type, a dataclass): the caller then takes
    :func:`serialize_events`.

    Only for payloads that hold JSON data as :func:`dspex.capture.jsonable.jsonable` makes
    it, as dspex's recorder keeps them: orjson writes a non-finite float as ``null``, where
    pydantic writes ``NaN``, and jsonable has made such floats text already.

        >>> json_rows([{"id": "evt_1", "payload": {"n": 1.5}}, {"id": "evt_2"}])
        b'{"id":"evt_1","payload":{"n":1.5}},{"id":"evt_2"}'
    """
    try:
        data = orjson.dumps(rows, option=_ROW_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a value it does not write as pydantic does
        return None
    return data[1:-1]


def trial_json(trial: Trial) -> tuple[bytes, Trial, EventIndex | None]:
    """``trial``'s stored JSON (as :func:`dspex.model._base.stored_json`), the trial it
    reads back as, and where its events are (None when they cannot be located exactly:
    text that had to change, or a header that holds ``"events":[]`` elsewhere too)."""
    events = trial.events
    head = plain_json(trial.model_copy(update={"events": ()}))
    if head is None or head.count(_EMPTY) != 1:
        data, clean = stored_json(trial)
        return data, clean, None
    at = head.index(_EMPTY) + _AT
    if not events:
        return head, trial, EventIndex(0, at, at)
    pieces: list[bytes] = [head[:at]]
    firsts: list[int] = []
    starts: list[int] = []
    offset = at
    for first in range(0, len(events), PART_EVENTS):
        piece = serialize_events(events[first : first + PART_EVENTS])
        if piece is None:
            data, clean = stored_json(trial)
            return data, clean, None
        if first:
            pieces.append(b",")
            offset += 1
        firsts.append(first)
        starts.append(offset)
        offset += len(piece)
        pieces.append(piece)
    pieces.append(head[at:])
    return (
        b"".join(pieces),  # joined once: a long trial's JSON is not copied twice
        trial,
        EventIndex(len(events), at, offset, tuple(firsts), tuple(starts)),
    )


def join_parts(header: bytes, index_at: int, parts: Sequence[bytes]) -> bytes:
    """A trial's JSON from its header (``"events":[]`` at ``index_at``) and event parts."""
    return b"".join((header[:index_at], b",".join(p for p in parts if p), header[index_at:]))


# -- parsing ------------------------------------------------------------------------------

_loads: Callable[[bytes | memoryview], Any] = orjson.loads


_FIELDS = frozenset(TraceEvent.model_fields)
_new_event = TraceEvent.__new__
_ADAPTER: TypeAdapter[list[TraceEvent]] = TypeAdapter(list[TraceEvent])


_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_set_attr = object.__setattr__
_from_iso = datetime.fromisoformat


def _event(d: dict[str, Any], trial_id: str) -> TraceEvent:
    # Called once per stored event (200,000 times for a long trial): the checks of
    # TraceEvent's validation that bytes written by dspex could fail, and the instance
    # built as pydantic builds it, through the slots' own setters.
    if d.keys() != _FIELDS or d["trial_id"] != trial_id:
        raise ValueError("not an event of this trial")
    stamp = _from_iso(d["timestamp"])
    if stamp.tzinfo is not UTC:
        if stamp.utcoffset() is None:
            raise ValueError("not a stored event")
        stamp = stamp.astimezone(UTC)
    if type(d["sequence"]) is not int or type(d["payload"]) is not dict:
        raise ValueError("not a stored event")
    d["timestamp"] = stamp
    d["source"] = SOURCE_OF_VALUE[d["source"]]
    d["kind"] = KIND_OF_VALUE[d["kind"]]
    event = _new_event(TraceEvent)
    _set_attr(event, "__dict__", d)
    _set_fields_set(event, _FIELDS)
    _set_extra(event, None)
    _set_private(event, None)
    return event


def parse_events(data: bytes | memoryview, trial_id: str) -> list[TraceEvent]:
    """The events of a JSON array of stored events of ``trial_id``.

    Raises :class:`dspex.ValidationError` when ``data`` is not that. Garbage collection
    waits while a large array is parsed: it would otherwise walk the growing heap over
    and over (half the time of a 200,000-event trial), for objects that are all kept.
    """
    with _no_gc(len(data)):
        return _parse_events(data, trial_id)


_NO_GC_BYTES = 1 << 20


@contextmanager
def _no_gc(size: int) -> Iterator[None]:
    """Garbage collection off while ``size`` bytes of JSON become records (see
    :func:`parse_events`), when it is on and the JSON is large."""
    if size < _NO_GC_BYTES or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        resume_gc(size)


def resume_gc(size: int) -> None:
    """Turn garbage collection back on after a large parse, without the collection
    that the next allocation would then start: the objects just built are all kept, and
    that collection only walked them (0.2 s of CPU for a 200,000-event trial) to move
    them to an older generation. ``gc.freeze()`` and ``gc.unfreeze()`` move every
    tracked object to the oldest generation at once instead, and reset the count that
    starts a collection. Only after ``size`` bytes of JSON or more (a young object of
    the process that becomes garbage meanwhile waits for a full collection), and not
    when the process keeps frozen objects of its own (a server that froze them before
    forking): unfreezing would release those too."""
    if size < _NO_GC_BYTES or gc.get_freeze_count():
        gc.enable()
        return
    gc.freeze()
    gc.enable()
    gc.unfreeze()


def _parse_events(data: bytes | memoryview, trial_id: str) -> list[TraceEvent]:
    try:
        raw = _loads(data)
    except ValueError:  # NaN, Infinity, integers beyond 64 bits: the full parser reads them
        data = bytes(data)
        try:
            raw = json.loads(data)
        except ValueError:
            raw = None
    try:
        if isinstance(raw, list):
            return [_event(d, trial_id) for d in raw]
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    try:
        events = _ADAPTER.validate_json(bytes(data))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ValidationError(f"stored events do not parse: {exc}") from exc
    for event in events:
        if event.trial_id != trial_id:
            raise ValidationError(f"event {event.id} belongs to trial {event.trial_id}")
    return events


def parse_trial(
    data: bytes | memoryview, index: EventIndex | None, *, events: bool = True
) -> Trial:
    """A trial from its stored JSON; quickly when ``index`` says where its events are.

    ``events=False``: the trial without its events (they are not parsed).
    Raises :class:`dspex.ValidationError` when ``data`` is not a trial.
    """
    if index is None:
        trial = Trial.from_json(bytes(data))
        return trial if events else trial.model_copy(update={"events": ()})
    header = Trial.from_json(index.header(data))
    if not events or not index.count:
        return header
    array = _array(data, index)
    with _no_gc(len(array)):  # the tuple and the copy of the header too
        parsed = tuple(_parse_events(array, header.id))
        return header.model_copy(update={"events": parsed})


def _array(data: bytes | memoryview, index: EventIndex) -> bytes | memoryview:
    """The JSON array of a trial's events, as it sits in ``data`` (no copy)."""
    view = memoryview(data)
    at, end = index.at, index.end
    if 0 < at <= end < len(view) and view[at - 1] == _OPEN and view[end] == _CLOSE:
        return view[at - 1 : end + 1]
    return b"".join((b"[", view[at:end], b"]"))


_OPEN, _CLOSE = ord("["), ord("]")


# -- events appended while a trial runs ---------------------------------------------------


@dataclass(frozen=True)
class EventPart:
    """Events ``first`` .. ``first + count - 1`` of a trial, as their comma-separated JSON;
    ``summary``, when known, their :class:`~dspex.model.eventsummary.EventSummary` (the
    store then need not parse them to summarize the trial at its seal)."""

    first: int
    count: int
    data: bytes
    summary: EventSummary | None = field(default=None, compare=False)

    @property
    def stop(self) -> int:
        return self.first + self.count

    def events(self, trial_id: str) -> list[TraceEvent]:
        """The part's events, parsed (events of trial ``trial_id``)."""
        return parse_events(b"".join((b"[", self.data, b"]")), trial_id)


def plan_append(
    stored: int, first_seq: int, events: Sequence[TraceEvent], where: str
) -> list[EventPart]:
    """The parts to store when events ``first_seq`` .. of a trial arrive and ``stored``
    events (0 .. stored - 1) are stored already: what is new, in parts of
    :data:`PART_EVENTS`. Events already stored are skipped (a replay, or an overlapping
    one); a gap is refused, naming ``where`` (events must arrive in order)."""
    if first_seq > stored:
        raise ValidationError(
            f"{where}: events from {first_seq} cannot be appended, only {stored} are stored "
            f"(events {stored}..{first_seq - 1} are missing); append them in order"
        )
    new = events[stored - first_seq :]
    parts = []
    for start in range(0, len(new), PART_EVENTS):
        chunk = new[start : start + PART_EVENTS]
        parts.append(EventPart(stored + start, len(chunk), _part_json(chunk)))
    return parts


def encode_parts(first_seq: int, events: Sequence[TraceEvent]) -> list[EventPart]:
    """Events ``first_seq`` .. of a trial as the parts a store keeps (at most
    :data:`PART_EVENTS` events each), serialized once: what
    :meth:`dspex.ResultStore.append_event_parts` takes, and what a backend writes as it
    is. A caller that keeps these bytes (the journal's spool) never serializes the
    events again."""
    return [
        EventPart(first_seq + start, len(chunk), _part_json(chunk), summarize_events(chunk))
        for start in range(0, len(events), PART_EVENTS)
        for chunk in (events[start : start + PART_EVENTS],)
    ]


def fit_parts(
    stored: int, parts: Sequence[EventPart], trial_id: str, where: str
) -> list[EventPart]:
    """What to store of ``parts`` (contiguous, in order) when ``stored`` events (0 ..
    stored - 1) of trial ``trial_id`` are stored already: parts stored already are
    skipped (a replay), a part stored in part is cut to its new events; a gap, or parts
    that do not follow each other, raise :class:`dspex.ValidationError` naming
    ``where``."""
    new: list[EventPart] = []
    expected: int | None = None
    for part in parts:
        if expected is not None and part.first != expected:
            raise ValidationError(
                f"{where}: a part of events {part.first}..{part.stop - 1} follows one that "
                f"ended at {expected - 1}; give the parts in order, without gaps"
            )
        expected = part.stop
        if part.stop <= stored:
            continue
        if part.first > stored:
            raise ValidationError(
                f"{where}: events from {part.first} cannot be appended, only {stored} are "
                f"stored (events {stored}..{part.first - 1} are missing); append them in order"
            )
        if part.first < stored:  # overlaps what is stored: keep the rest
            events = part.events(trial_id)
            if len(events) != part.count:
                raise ValidationError(
                    f"{where}: a part says it holds {part.count} events, its JSON {len(events)}"
                )
            rest = events[stored - part.first :]
            part = EventPart(stored, len(rest), _part_json(rest), summarize_events(rest))
        new.append(part)
        stored = part.stop
    return new


def _part_json(events: Sequence[TraceEvent]) -> bytes:
    data = serialize_events(events)
    if data is None:  # text that JSON cannot carry: each event as stored
        data = b",".join(stored_json(event)[0] for event in events)
    return data


def stored_count(parts: Sequence[EventPart] | Sequence[tuple[int, int]]) -> int:
    """How many events a trial's parts hold (they are contiguous from 0)."""
    if not parts:
        return 0
    last = parts[-1]
    return last.stop if isinstance(last, EventPart) else last[0] + last[1]


def read_parts(
    spans: Sequence[tuple[int, int]],
    fetch: Callable[[int], bytes],
    trial_id: str,
    offset: int,
    limit: int | None,
) -> list[TraceEvent]:
    """Events ``offset`` .. ``offset + limit - 1`` of a trial whose events are the parts
    ``spans`` (first, count), fetching (``fetch(k)``) and parsing only those needed."""
    total = stored_count(spans)
    stop = total if limit is None else min(total, offset + limit)
    wanted = [
        k for k, (first, count) in enumerate(spans) if first < stop and first + count > offset
    ]
    if not wanted:
        return []
    data = b",".join(fetch(k) for k in wanted)
    events = parse_events(b"".join((b"[", data, b"]")), trial_id)
    base = spans[wanted[0]][0]
    if len(events) < stop - base:
        raise ValidationError(f"trial {trial_id}: a stored part holds fewer events than it says")
    return events[offset - base : stop - base]


@dataclass(frozen=True)
class Pieces:
    """A trial's JSON as the pieces it is made of, not joined (``bytes(pieces)`` joins
    them): a long trial sealed from its appended parts is then in memory once, as its
    parts, and a backend that writes pieces (the file store) never copies it whole."""

    pieces: tuple[bytes, ...]
    length: int

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)


def trial_with_parts(
    trial: Trial, parts: Sequence[EventPart], *, joined: bool = True
) -> tuple[bytes | Pieces, Trial, EventIndex | None]:
    """The stored JSON of ``trial`` (whose ``events`` are empty) with the appended
    ``parts`` as its events, as :func:`trial_json` gives it, without parsing them; small
    parts are joined into parts of about :data:`PART_EVENTS`. ``joined=False``: the
    JSON as :class:`Pieces` (where the events could be located)."""
    head = plain_json(trial)
    if head is None or head.count(_EMPTY) != 1:  # rare: parse them, serialize the whole
        events = parse_events(b"[" + b",".join(p.data for p in parts) + b"]", trial.id)
        return trial_json(trial.model_copy(update={"events": tuple(events)}))
    pieces, index = splice_pieces(head, head.index(_EMPTY) + _AT, parts)
    return (bytes(pieces) if joined else pieces), trial, index


def splice_parts(head: bytes, at: int, parts: Sequence[EventPart]) -> tuple[bytes, EventIndex]:
    """A trial's JSON from its JSON without events (``"events":[]``, ``[`` ending at
    ``at``) and its parts; small parts are joined into parts of about PART_EVENTS.

    The JSON is joined once, from the parts as they are: a long trial's events are then
    in memory twice at most (its parts, and the trial's JSON)."""
    pieces, index = splice_pieces(head, at, parts)
    return bytes(pieces), index


def splice_pieces(head: bytes, at: int, parts: Sequence[EventPart]) -> tuple[Pieces, EventIndex]:
    """What :func:`splice_parts` joins: the trial's JSON as pieces, and its index."""
    pieces: list[bytes] = [head[:at]]
    firsts: list[int] = []
    starts: list[int] = []
    offset, size, count = at, 0, 0
    for part in parts:
        if not part.count:
            continue
        if count:
            pieces.append(b",")
            offset += 1
        if not firsts or size + part.count > PART_EVENTS:  # a part of the index begins
            firsts.append(part.first)
            starts.append(offset)
            size = 0
        size += part.count
        pieces.append(part.data)
        offset += len(part.data)
        count = part.stop
    pieces.append(head[at:])
    index = EventIndex(count, at, offset, tuple(firsts), tuple(starts))
    return Pieces(tuple(pieces), offset + len(head) - at), index


def digests(data: bytes | Pieces, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The SHA-256 of each byte range of ``data`` (ranges in order, not overlapping),
    read in place: a range of :class:`Pieces` is hashed piece by piece, never joined."""
    found = []
    for views in _views(data, ranges):
        digest = hashlib.sha256()
        for view in views:
            digest.update(view)
        found.append(digest.digest())
    return found


def crc32s(data: bytes | Pieces, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """The CRC-32 of each byte range of ``data`` (ranges in order, not overlapping), read
    in place as :func:`digests` reads them.

        >>> crc32s(b"abcdef", [(0, 3), (3, 6)]) == [zlib.crc32(b"abc"), zlib.crc32(b"def")]
        True
    """
    found = []
    for views in _views(data, ranges):
        crc = 0
        for view in views:
            crc = zlib.crc32(view, crc)
        found.append(crc)
    return found


def digest_of(data: bytes | Pieces, ranges: Sequence[tuple[int, int]]) -> bytes:
    """The SHA-256 of the byte ranges of ``data`` one after the other, read in place."""
    digest = hashlib.sha256()
    for views in _views(data, ranges):
        for view in views:
            digest.update(view)
    return digest.digest()


def _views(data: bytes | Pieces, ranges: Sequence[tuple[int, int]]) -> Iterator[list[memoryview]]:
    """For each range (in order, not overlapping), the views of ``data`` that make it."""
    if isinstance(data, bytes):
        whole = memoryview(data)
        for a, b in ranges:
            yield [whole[a:b]]
        return
    pieces = iter(data.pieces)
    piece, base = memoryview(b""), 0  # the current piece and where it starts
    for a, b in ranges:
        views = []
        while True:
            end = base + len(piece)
            if end > a and b > base:
                views.append(piece[max(a - base, 0) : min(b, end) - base])
            if end >= b:
                break
            base, piece = end, memoryview(next(pieces))
        yield views


def parse_experiment(
    header: bytes, trials: Sequence[tuple[bytes | memoryview, EventIndex | None]]
) -> Experiment:
    """A sealed experiment from its header (its JSON with ``"trials":[]``) and its
    trials' JSON, each parsed as :func:`parse_trial` does: quickly where the events are
    indexed. The experiment's own checks run as for :meth:`Experiment.from_json`.

    Raises :class:`dspex.ValidationError` when the parts are not an experiment.
    """
    enabled = gc.isenabled()
    gc.disable()  # everything parsed is kept: see parse_events
    try:
        parsed = [parse_trial(bytes(data), index) for data, index in trials]
        try:
            fields = json.loads(header)
        except ValueError as exc:
            raise ValidationError(f"the record's header does not parse: {exc}") from exc
        if not isinstance(fields, dict):
            raise ValidationError("the record's header is not an object")
        return Experiment.from_dict({**fields, "trials": parsed})
    finally:
        if enabled:
            resume_gc(len(header) + sum(len(data) for data, _ in trials))
