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
from dataclasses import dataclass
from pathlib import Path

from dspex.errors import CorruptRecordError
from dspex.store._events import EventPart

__all__ = ["Span", "append", "read", "spans"]

_MAGIC = b"DXE1"
_HEAD = struct.Struct(">4sQQI32s")


@dataclass(frozen=True)
class Span:
    first: int
    count: int
    offset: int  # of the data
    length: int
    digest: bytes


def spans(path: Path, record_id: str) -> tuple[list[Span], int]:
    """The whole frames of a trial's events log, and where they end ([] and 0 when
    there is no log)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return [], 0
    try:
        size = os.fstat(fd).st_size
        found: list[Span] = []
        at = 0
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
        return found, at
    finally:
        os.close(fd)


def read(path: Path, span: Span, record_id: str) -> bytes:
    """One frame's events JSON, checked."""
    with open(path, "rb") as f:
        f.seek(span.offset)
        data = f.read(span.length)
    if len(data) != span.length or hashlib.sha256(data).digest() != span.digest:
        raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
    return data


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
