"""Events appended to a running trial in the file store: one append-only log per trial.

``append_events`` appends one frame per part (up to 500 events) to
``trials/<trial id>.events`` and flushes it (``fdatasync``) before returning, so a long
trial is one file however many times it was appended to, and the seal reads it in one go.
A frame is ``b"DXE1"``, the first event's position and the count (8 bytes each), the
length of the data (4), its SHA-256 (32), then the events' JSON (comma-separated). A torn
last frame (a crash mid-append, never acknowledged) is ignored by readers and cut off by
the next append.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from dspex.errors import CorruptRecordError
from dspex.store._events import EventPart

__all__ = ["Span", "append", "read", "read_all", "spans"]

_MAGIC = b"DXE1"
_HEAD = struct.Struct(">4sQQI32s")


@dataclass(frozen=True)
class Span:
    first: int
    count: int
    offset: int  # of the data
    length: int
    digest: bytes


_KEEP = 64
"""Logs whose frames are remembered (the running trials a process appends to)."""
_known: OrderedDict[str, tuple[tuple[int, int], int, tuple[Span, ...]]] = OrderedDict()
_known_lock = threading.Lock()


def spans(path: Path, record_id: str) -> tuple[list[Span], int]:
    """The whole frames of a trial's events log, and where they end ([] and 0 when
    there is no log).

    The frames found are remembered, so that the next call reads only the frames
    appended since (the journal appends every second: reading every frame header of a
    long trial on each append made its appends quadratic). What is remembered is used
    only while the file is the same one (device and inode) and its last remembered frame
    header is still where it was; otherwise the log is read from the start.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return [], 0
    try:
        stat = os.fstat(fd)
        size, identity = stat.st_size, (stat.st_dev, stat.st_ino)
        found, at = _remembered(fd, str(path), identity, size)
        while at + _HEAD.size <= size:
            magic, first, count, length, digest = _HEAD.unpack(os.pread(fd, _HEAD.size, at))
            if magic != _MAGIC:
                raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
            if at + _HEAD.size + length > size:
                break  # torn
            expected = found[-1].first + found[-1].count if found else 0
            if first != expected:
                raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
            found.append(Span(first, count, at + _HEAD.size, length, digest))
            at += _HEAD.size + length
        with _known_lock:
            _known[str(path)] = (identity, at, tuple(found))
            _known.move_to_end(str(path))
            while len(_known) > _KEEP:
                _known.popitem(last=False)
        return found, at
    finally:
        os.close(fd)


def _remembered(fd: int, key: str, identity: tuple[int, int], size: int) -> tuple[list[Span], int]:
    """The frames remembered for the log open as ``fd`` and where they end, if they
    still describe it; else ``([], 0)``."""
    with _known_lock:
        known = _known.get(key)
    if known is None or known[0] != identity or known[1] > size or not known[2]:
        return [], 0
    _, end, frames = known
    last = frames[-1]
    head = os.pread(fd, _HEAD.size, last.offset - _HEAD.size)
    if head != _HEAD.pack(_MAGIC, last.first, last.count, last.length, last.digest):
        return [], 0  # replaced or rewritten since: read it all again
    return list(frames), end


def read(path: Path, span: Span, record_id: str) -> bytes:
    """One frame's events JSON, checked."""
    return read_all(path, [span], record_id)[0]


def read_all(path: Path, spans: list[Span], record_id: str) -> list[bytes]:
    """The events JSON of each of ``spans`` (frames of the log), checked; the file is
    opened once (a long trial's seal reads thousands of frames)."""
    found = []
    with open(path, "rb") as f:
        for span in spans:
            f.seek(span.offset)
            data = f.read(span.length)
            if len(data) != span.length or hashlib.sha256(data).digest() != span.digest:
                raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
            found.append(data)
    return found


def append(path: Path, parts: list[EventPart], end: int) -> None:
    """Append ``parts`` after the whole frames (ending at ``end``) and flush them."""
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size != end:
            os.ftruncate(fd, end)  # what a crash left half-written
        blob = b"".join(
            _HEAD.pack(_MAGIC, p.first, p.count, len(p.data), hashlib.sha256(p.data).digest())
            + p.data
            for p in parts
        )
        view = memoryview(blob)
        at = end
        while view:
            written = os.pwrite(fd, view, at)
            view, at = view[written:], at + written
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if new:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
