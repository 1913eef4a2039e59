"""The finished trials of a running experiment in the file store: one append-only log.

``record_trial`` appends one frame to ``<experiment>/trials.log`` and returns once it is
durable. Writers of one process commit together: a writer appends, then waits for an
``fdatasync`` that began after its append, so one flush makes many trials durable (group
commit) while each ``record_trial`` still returns only when its trial is on disk. A
frame is::

    b"DXT1"  trial id (32 bytes, space-padded)  index length (4)  data length (8)
    SHA-256 of index + data (32)  index (the EventIndex as JSON, or b"null")  data (JSON)

A trial recorded again appends a new frame; the last one counts. A crash can leave only
a torn last frame, which was never acknowledged: readers stop before it and the next
writer cuts it off. Readers keep, per log, where each trial's last frame is, and read
only what was appended since.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dspex.errors import CorruptRecordError
from dspex.store._events import EventIndex

__all__ = ["LOG_NAME", "TrialLog", "frame"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


LOG_NAME = "trials.log"
_MAGIC = b"DXT1"
_HEAD = struct.Struct(">4s32sIQ32s")


def frame(trial_id: str, data: bytes, index: EventIndex | None) -> bytes:
    """One log frame holding a trial's JSON and where its events are."""
    index_json = b"null" if index is None else json.dumps(index.to_list()).encode()
    digest = hashlib.sha256(index_json + data).digest()
    head = _HEAD.pack(_MAGIC, trial_id.encode().ljust(32), len(index_json), len(data), digest)
    return b"".join((head, index_json, data))


@dataclass
class _Scan:
    identity: tuple[int, int]
    end: int = 0  # frames read up to here
    trials: dict[str, tuple[int, int, int, bytes]] = field(default_factory=dict)
    torn: bool = False  # a frame that is not whole ends the log


@dataclass
class _Sync:
    identity: tuple[int, int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    synced: int = 0


class TrialLog:
    """Reads and appends the trial logs of one file store (one instance per backend)."""

    def __init__(self) -> None:
        self._scans: dict[Path, _Scan] = {}
        self._syncs: dict[Path, _Sync] = {}
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def _scan(self, path: Path, record_id: str) -> _Scan | None:
        """Where each trial's last frame is (None when there is no log)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            with self._lock:
                self._scans.pop(path, None)
            return None
        try:
            stat = os.fstat(fd)
            identity = (stat.st_dev, stat.st_ino)
            with self._lock:
                scan = self._scans.get(path)
                if scan is None or scan.identity != identity or stat.st_size < scan.end:
                    scan = self._scans[path] = _Scan(identity)
                self._read_frames(fd, scan, stat.st_size, record_id)
                return scan
        finally:
            os.close(fd)

    def _read_frames(self, fd: int, scan: _Scan, size: int, record_id: str) -> None:
        scan.torn = False
        while scan.end + _HEAD.size <= size:
            head = os.pread(fd, _HEAD.size, scan.end)
            magic, raw_id, index_len, data_len, digest = _HEAD.unpack(head)
            end = scan.end + _HEAD.size + index_len + data_len
            if magic != _MAGIC:
                raise CorruptRecordError(record_id, f"its trial log is damaged at {scan.end}")
            if end > size:
                scan.torn = True  # a torn last frame: never acknowledged
                return
            trial_id = raw_id.decode("ascii", "replace").strip()
            scan.trials[trial_id] = (scan.end + _HEAD.size, index_len, data_len, digest)
            scan.end = end
        scan.torn = scan.end != size

    def trial_ids(self, path: Path, record_id: str) -> list[str]:
        scan = self._scan(path, record_id)
        if scan is None:
            return []
        with self._lock:
            return list(scan.trials)

    def count(self, path: Path, record_id: str, others: frozenset[str]) -> int:
        """How many trials the log and ``others`` hold together, without listing the
        log's (the index counts the trials of a running experiment on every write)."""
        scan = self._scan(path, record_id)
        if scan is None:
            return len(others)
        with self._lock:
            return len(scan.trials) + sum(1 for other in others if other not in scan.trials)

    def read(
        self, path: Path, record_id: str, trial_id: str
    ) -> tuple[bytes, EventIndex | None] | None:
        """A trial's JSON (checked) and where its events are, or None."""
        scan = self._scan(path, record_id)
        if scan is None or trial_id not in scan.trials:
            return None
        start, index_len, data_len, digest = scan.trials[trial_id]
        try:
            with open(path, "rb") as f:
                f.seek(start)
                body = f.read(index_len + data_len)
        except FileNotFoundError:
            return None
        if len(body) != index_len + data_len or hashlib.sha256(body).digest() != digest:
            raise CorruptRecordError(record_id, f"trial {trial_id} in its trial log is damaged")
        try:
            listed = json.loads(body[:index_len])
        except ValueError:
            listed = None
        index = EventIndex.from_list(listed) if listed is not None else None
        return body[index_len:], index

    # -- writing --------------------------------------------------------------------------

    def append(self, path: Path, record_id: str, data: bytes) -> tuple[int, int]:
        """Append ``data`` (a frame; under the writers' lock); returns (fd, end) for
        :meth:`commit`, which the caller must then call (outside the lock)."""
        scan = self._scan(path, record_id)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if scan is None:  # a new log: its name durable in the folder
                _fsync_dir(path.parent)
            elif scan.torn:  # cut off what a crash left half-written
                os.ftruncate(fd, scan.end)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            end = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return fd, end

    def commit(self, path: Path, fd: int, end: int) -> None:
        """Return once the log is durable up to ``end``: one ``fdatasync`` serves every
        writer that appended before it began (group commit). Closes ``fd``."""
        try:
            stat = os.fstat(fd)
            identity = (stat.st_dev, stat.st_ino)
            with self._lock:
                sync = self._syncs.get(path)
                if sync is None or sync.identity != identity:
                    sync = self._syncs[path] = _Sync(identity)
            with sync.lock:
                if sync.synced >= end:
                    return
                target = os.fstat(fd).st_size
                os.fdatasync(fd)
                sync.synced = max(sync.synced, target)
        finally:
            os.close(fd)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._scans.pop(path, None)
            self._syncs.pop(path, None)
