"""The write-ahead spool: a running experiment's events on local disk as they happen.

Every experiment with a durable store (file or sql) gets a directory under
``journal.spool_dir`` while it runs::

    <spool_dir>/<experiment id>/
        lock                 held (flock) by the recording process while it lives
        experiment.spool     the experiment's header, then its final record at the end
        <trial id>.spool     one trial: its opening, its events in batches, its end

Each file starts with :data:`MAGIC` and holds records framed as
``<u32 length><u32 crc32><u8 type><body>`` (little-endian; the checksum covers the type
byte and the body). A body is JSON; an event batch is a JSON list, zlib-compressed when
it holds :data:`COMPRESS_MIN` bytes or more (a zlib stream never starts with ``[``).
Events are now spooled as :data:`RecordType.EVENT_PART` records instead: the
events numbered and serialized as the store keeps them (:func:`encode_part`), so that
they go to the store as they are; ``EVENTS`` records (written by earlier releases) are still read. A
record is written by one ``write`` call; a process killed in the middle of one leaves a
torn tail that :func:`read_records` detects (short frame or bad checksum) and drops, so
a reader sees whole records only. A write that fails (disk full, file size limit) is
cut back out of the file, so that later records stay readable.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.spool"
    >>> with SpoolFile(path) as f:
    ...     f.append(RecordType.TRIAL_OPEN, {"id": "x"})
    >>> [(r.type.name, r.body) for r in read_records(path).records]
    [('TRIAL_OPEN', {'id': 'x'})]

The recording side (:class:`dspex.journal.journal.ExperimentJournal`) appends to these
files; :mod:`dspex.journal.recover` reads them back into a store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic_core import from_json, to_json

from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import RawEvent
from dspex.errors import StoreError
from dspex.model.eventsummary import EventSummary
from dspex.store import EventPart

__all__ = [
    "COMPRESS_MIN",
    "PLAIN_SPOOL_BYTES",
    "MAGIC",
    "EventRow",
    "RecordType",
    "SpoolError",
    "SpoolFile",
    "SpoolRead",
    "SpoolRecord",
    "decode_events",
    "decode_part",
    "default_spool_dir",
    "encode_events",
    "encode_part",
    "experiment_dir",
    "hold_lock",
    "read_records",
    "try_lock",
]

MAGIC = b"DSPXSPL1"
"""The first bytes of every spool file (the format's version is its last digit)."""

_FRAME = struct.Struct("<IIB")
_MAX_BODY = 1 << 30  # a length above this is a torn or foreign frame, not a record


class SpoolError(StoreError):
    """The spool could not be written or read (its directory, a full disk)."""


class RecordType(IntEnum):
    HEADER = 1  # experiment.spool: the experiment as started, and the store URL
    FINAL = 2  # experiment.spool: the finished experiment (trials not included)
    TRIAL_OPEN = 3  # <trial>.spool: index, name, parents, variables, metadata, start time
    EVENTS = 4  # <trial>.spool: a batch of events (JSON, zlib-compressed when large)
    TRIAL_END = 5  # <trial>.spool: the trial's record without its events
    EVENT_PART = 6  # <trial>.spool: events numbered and serialized as the store keeps them


_BYTES_BODIES = frozenset((RecordType.EVENTS, RecordType.EVENT_PART))


def default_spool_dir() -> Path:
    """``$XDG_STATE_HOME/dspex/spool``, else ``~/.local/state/dspex/spool``: local to this
    machine and kept across reboots, unlike a temporary directory."""
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state else Path.home() / ".local" / "state"
    return base / "dspex" / "spool"


def experiment_dir(spool_dir: Path, experiment_id: str) -> Path:
    return spool_dir / experiment_id


# -- events ----------------------------------------------------------------------------

EventRow = list[Any]
"""An event in a spool batch: ``[id, time_ns, monotonic_ns, source, kind, payload,
parent_id, pid, worker]`` with the payload as JSON data."""


COMPRESS_MIN = 4096
"""Event batches of fewer JSON bytes are written as they are. Compressing costs about 100
CPU instructions per byte in a small batch (an LM call's prompt appears once there, as
literals; in a large one it repeats and compresses in long matches, at about 30), and the
writer flushes every ``journal.flush_interval``: a program that records slowly (an LM
with latency, a few calls per flush) paid that for every call. Such a program's spool
grows by at most ``COMPRESS_MIN`` bytes per flush uncompressed; a fast one's batches are
larger and compressed (about 11x for LM calls)."""

PLAIN_SPOOL_BYTES = 64 * 1024 * 1024
"""The writer of an experiment's spool (:class:`dspex.journal.writer.ExperimentSpool`)
writes its event parts uncompressed until its files hold this many bytes, compressed
after: compressing cost a program making LM calls back to back about 10% of its time
(its batches compress at about 85 MB/s), and a spool lives only until its experiment is
sealed. An experiment that records more than this (some 20,000 LM calls of a short
prompt) spools the rest at about a tenth of the size."""


def encode_events(events: Sequence[RawEvent]) -> bytes:
    """A batch of captured events as spool bytes (payloads made JSON data here): their
    JSON list, zlib-compressed when it is :data:`COMPRESS_MIN` bytes or more.

        >>> from dspex.capture.recorder import TrialRecorder
        >>> from dspex.model import EventKind
        >>> recorder = TrialRecorder("trl_x")
        >>> _ = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "hi"})
        >>> encode_events(recorder.raw_events())[:1]
        b'['
        >>> _ = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "x" * COMPRESS_MIN})
        >>> encode_events(recorder.raw_events())[:1]  # zlib's header
        b'x'
    """
    rows = [
        [
            e.id,
            e.time_ns,
            e.monotonic_ns,
            e.source,
            e.kind,
            e.payload if e.json_ready else jsonable(e.payload),
            e.parent_id,
            e.pid,
            e.worker,
        ]
        for e in events
    ]
    data = to_json(rows)
    return zlib.compress(data, 1) if len(data) >= COMPRESS_MIN else data


def decode_events(body: bytes) -> list[RawEvent]:
    """The events of a batch written by :func:`encode_events` (compressed or not)."""
    rows: list[EventRow] = from_json(body if body[:1] == b"[" else zlib.decompress(body))
    return [RawEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], True) for r in rows]


_PART_HEAD = struct.Struct("<QII")


def encode_part(part: EventPart, *, compress: bool = True) -> bytes:
    """An :data:`RecordType.EVENT_PART` body: the part's first sequence number, its count
    and the length of its summary's JSON (0: none), that JSON, then the part's JSON
    (events as the store keeps them), zlib-compressed when ``compress`` and it is
    :data:`COMPRESS_MIN` bytes or more (a part's JSON starts with ``{``, zlib's with
    ``x``). The store is later given the same JSON and summary, neither made again.

        >>> part = EventPart(7, 1, b'{"id":"evt_1"}')
        >>> decode_part(encode_part(part)) == part
        True
    """
    data = part.data
    if compress and len(data) >= COMPRESS_MIN:
        data = zlib.compress(data, 1)
    summary = b"" if part.summary is None else part.summary.to_json_bytes()
    return b"".join((_PART_HEAD.pack(part.first, part.count, len(summary)), summary, data))


def decode_part(body: bytes) -> EventPart:
    """The part of an :data:`RecordType.EVENT_PART` body (see :func:`encode_part`)."""
    first, count, size = _PART_HEAD.unpack_from(body)
    at = _PART_HEAD.size + size
    summary = EventSummary.from_json(body[_PART_HEAD.size : at]) if size else None
    data = body[at:]
    if data[:1] != b"{":
        data = zlib.decompress(data)
    return EventPart(first, count, data, summary)


# -- writing ---------------------------------------------------------------------------


class SpoolFile:
    """One spool file opened for appending records (see the module docs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = os.fstat(self._fd).st_size
            if self._size == 0:
                self._write(MAGIC)
        except OSError as exc:
            raise SpoolError(f"cannot write the spool file {path}: {exc}") from exc
        self.bytes_written = self._size

    def append(self, kind: RecordType, body: Any, *, raw: bool = False) -> None:
        """Write one record; ``body`` is JSON data, or bytes when ``raw``.

        Raises :class:`SpoolError` when the write fails; the file is then as it was.
        """
        self.append_many(kind, [body if raw else to_json(body)])

    def append_many(self, kind: RecordType, bodies: Sequence[bytes]) -> list[int]:
        """Write one record of type ``kind`` per body (bytes), all with one ``write``;
        return the file offset just after each record (:attr:`SpoolRecord.end`).

        Raises :class:`SpoolError` when the write fails; the file is then as it was.
        """
        head = bytes([kind])
        frames = b"".join(
            _FRAME.pack(len(data), zlib.crc32(data, zlib.crc32(head)), kind) + data
            for data in bodies
        )
        start = self._size
        try:
            self._write(frames)
        except OSError as exc:
            raise SpoolError(f"cannot write the spool file {self.path}: {exc}") from exc
        self.bytes_written = self._size
        ends = []
        for data in bodies:
            start += _FRAME.size + len(data)
            ends.append(start)
        return ends

    def _write(self, data: bytes) -> None:
        start = self._size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            with contextlib.suppress(OSError):  # a partial record would hide later ones
                os.ftruncate(self._fd, start)
            raise
        self._size = start + len(data)

    def sync(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolRecord:
    type: RecordType
    body: Any  # JSON data; for EVENTS and EVENT_PART the bytes as written (decode_*)
    end: int = 0  # the file offset just after this record


@dataclass
class SpoolRead:
    """What a spool file holds: its whole records, and whether a torn tail was dropped."""

    records: list[SpoolRecord] = field(default_factory=list)
    torn: bool = False
    dropped_bytes: int = 0


def iter_records(
    path: Path, start: int = 0, stop: int | None = None
) -> Iterator[SpoolRecord | int]:
    """The whole records of ``path`` one by one, then (if the tail is torn) the number of
    bytes dropped. Reads in bounded memory: one record at a time. ``start``: the ``end``
    of a record read before (a file still being written is read on from there); ``stop``:
    the ``end`` of the last record to read (the rest is not read)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SpoolError(f"cannot read the spool file {path}: {exc}") from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if stop is not None:
            size = min(size, stop)
        if handle.read(len(MAGIC)) != MAGIC:
            if size:
                yield size
            return
        offset = max(start, len(MAGIC))
        handle.seek(offset)
        while offset < size:
            head = handle.read(_FRAME.size)
            if len(head) < _FRAME.size:
                break
            length, crc, kind = _FRAME.unpack(head)
            if length > _MAX_BODY or offset + _FRAME.size + length > size:
                break
            data = handle.read(length)
            if len(data) < length or zlib.crc32(bytes([kind]) + data) != crc:
                break
            try:
                rtype = RecordType(kind)
            except ValueError:
                break
            offset += _FRAME.size + length
            body = data if rtype in _BYTES_BODIES else from_json(data)
            yield SpoolRecord(rtype, body, offset)
        if offset < size:
            yield size - offset


def read_records(path: Path) -> SpoolRead:
    result = SpoolRead()
    for item in iter_records(path):
        if isinstance(item, int):
            result.torn, result.dropped_bytes = True, item
        else:
            result.records.append(item)
    return result


# -- the lock of a live recording ------------------------------------------------------


def hold_lock(directory: Path) -> int:
    """Take the directory's lock for this process's lifetime (released by the kernel
    when the process ends, killed or not); return the descriptor to close at the end."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def try_lock(directory: Path) -> int | None:
    """The directory's lock if no live process holds it, else None."""
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
