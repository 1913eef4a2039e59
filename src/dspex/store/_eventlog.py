"""Events appended to a running trial in the file store: one append-only log per trial.

``append_events`` appends one frame per part (up to 500 events) to
``trials/<trial id>.events`` and flushes it (``fdatasync``) before returning, so a long
trial is one file however many times it was appended to, and the seal reads it in one go.
A frame is ``b"DXE2"``, the first event's position and the count (8 bytes each), the
length of the data (4), its CRC-32 (4), then the events' JSON (comma-separated). A torn
last frame (a crash mid-append, never acknowledged) is ignored by readers and cut off by
the next append. Frames written by earlier releases (``b"DXE1"``, a SHA-256 of 32 bytes
in place of the CRC-32) are read and checked as before, in the same log too.

The log is a running trial's scratch copy, read back once at the seal: the check finds a
torn or damaged frame, which a CRC-32 does at a fraction of a SHA-256's cost (hashing
each event's bytes at every append was the largest single item of a recorded call's
instructions). The sealed record that the seal writes from it has its SHA-256 checksums.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from dspex.errors import CorruptRecordError
from dspex.store._events import EventPart

__all__ = ["Span", "append", "read", "read_all", "spans"]

_MAGIC = b"DXE2"
_HEAD = struct.Struct(">4sQQII")  # magic, first, count, length, CRC-32 of the data
_MAGIC_SHA = b"DXE1"  # earlier releases: the data's SHA-256 in place of its CRC-32
_HEAD_SHA = struct.Struct(">4sQQI32s")
_HEADS = {_MAGIC: _HEAD, _MAGIC_SHA: _HEAD_SHA}
_LONGEST_HEAD = max(head.size for head in _HEADS.values())


def _digest_bytes(crc: int) -> bytes:
    return crc.to_bytes(4, "big")


def _checks(data: bytes, digest: bytes) -> bool:
    """Whether ``data`` matches a frame's ``digest`` (its CRC-32, or a SHA-256)."""
    if len(digest) == 4:
        return _digest_bytes(zlib.crc32(data)) == digest
    return hashlib.sha256(data).digest() == digest


def _head_of(span: Span) -> bytes:
    """The frame header of ``span``, as written."""
    if len(span.digest) == 4:
        crc = int.from_bytes(span.digest, "big")
        return _HEAD.pack(_MAGIC, span.first, span.count, span.length, crc)
    return _HEAD_SHA.pack(_MAGIC_SHA, span.first, span.count, span.length, span.digest)


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
            raw = os.pread(fd, _LONGEST_HEAD, at)
            head = _HEADS.get(raw[:4])
            if head is None:
                raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
            if at + head.size > size:
                break  # torn
            _, first, count, length, check = head.unpack_from(raw)
            if at + head.size + length > size:
                break  # torn
            expected = found[-1].first + found[-1].count if found else 0
            if first != expected:
                raise CorruptRecordError(record_id, f"the events log {path.name} is damaged")
            digest = _digest_bytes(check) if head is _HEAD else check
            found.append(Span(first, count, at + head.size, length, digest))
            at += head.size + length
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
    expected = _head_of(last)
    if os.pread(fd, len(expected), last.offset - len(expected)) != expected:
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
            if len(data) != span.length or not _checks(data, span.digest):
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
            _HEAD.pack(_MAGIC, p.first, p.count, len(p.data), zlib.crc32(p.data)) + p.data
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
