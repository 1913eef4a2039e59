"""The file store's per-trial events log: frames remembered between appends."""

from __future__ import annotations

import os

import pytest

from dspex.errors import CorruptRecordError
from dspex.store import _eventlog as eventlog
from dspex.store._events import EventPart


def _append(path, first: int, count: int = 2) -> None:
    data = b",".join(b'{"n":%d}' % n for n in range(first, first + count))
    _, end = eventlog.spans(path, "exp_x")
    eventlog.append(path, [EventPart(first, count, data)], end)


def _fresh(path):
    eventlog._known.clear()
    return eventlog.spans(path, "exp_x")


def test_an_append_reads_only_the_frames_added_since_the_last(tmp_path, monkeypatch):
    path = tmp_path / "t.events"
    for k in range(50):
        _append(path, 2 * k)
    reads = []
    real = os.pread
    monkeypatch.setattr(eventlog.os, "pread", lambda fd, n, at: reads.append(at) or real(fd, n, at))
    remembered = eventlog.spans(path, "exp_x")
    # the last remembered header, checked in place, and the frame appended since (the
    # last append's own read came before it): 2, where reading them all takes 51
    assert len(reads) == 2
    assert remembered == _fresh(path) and len(remembered[0]) == 50


def test_a_log_replaced_by_another_is_read_again(tmp_path):
    path = tmp_path / "t.events"
    for k in range(3):
        _append(path, 2 * k)
    eventlog.spans(path, "exp_x")
    path.unlink()  # the same inode may come back: the remembered header is checked
    for k in range(5):
        _append(path, 3 * k, count=3)
    assert eventlog.spans(path, "exp_x") == _fresh(path)
    assert [s.first for s in eventlog.spans(path, "exp_x")[0]] == [0, 3, 6, 9, 12]


def test_a_damaged_frame_after_the_remembered_ones_is_refused(tmp_path):
    path = tmp_path / "t.events"
    _append(path, 0)
    _, end = eventlog.spans(path, "exp_x")
    with open(path, "ab") as f:
        f.write(b"XXXX" + bytes(60))
    with pytest.raises(CorruptRecordError, match="damaged"):
        eventlog.spans(path, "exp_x")


def _sha_frame(first: int, count: int) -> bytes:
    """A frame as earlier releases wrote it (b"DXE1", the data's SHA-256)."""
    import hashlib
    import struct

    data = b",".join(b'{"n":%d}' % n for n in range(first, first + count))
    head = struct.pack(">4sQQI32s", b"DXE1", first, count, len(data), hashlib.sha256(data).digest())
    return head + data


def test_frames_of_earlier_releases_are_read_and_appended_to(tmp_path):
    """A trial's log started by an earlier release (SHA-256 frames) is read, checked and
    appended to (CRC-32 frames after them), and its events read back whole."""
    path = tmp_path / "t.events"
    path.write_bytes(_sha_frame(0, 2) + _sha_frame(2, 3))
    spans, end = _fresh(path)
    assert [(s.first, s.count, len(s.digest)) for s in spans] == [(0, 2, 32), (2, 3, 32)]
    assert end == path.stat().st_size
    _append(path, 5, count=4)
    spans, _ = _fresh(path)
    assert [(s.first, len(s.digest)) for s in spans] == [(0, 32), (2, 32), (5, 4)]
    data = b",".join(eventlog.read_all(path, spans, "exp_x"))
    assert data == b",".join(b'{"n":%d}' % n for n in range(9))


@pytest.mark.parametrize("frame", [0, 1], ids=["earlier release's frame", "crc frame"])
def test_a_damaged_byte_in_a_frame_is_found_when_it_is_read(tmp_path, frame):
    path = tmp_path / "t.events"
    path.write_bytes(_sha_frame(0, 2))
    _append(path, 2, count=3)
    spans, _ = _fresh(path)
    raw = bytearray(path.read_bytes())
    raw[spans[frame].offset + 3] ^= 0x01  # a byte of the frame's events JSON
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecordError, match="damaged"):
        eventlog.read_all(path, spans, "exp_x")
    assert eventlog.read_all(path, [spans[1 - frame]], "exp_x")  # the other one is fine
