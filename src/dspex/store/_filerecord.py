"""Files of the file backend: atomic writes, and the sealed record format.

A sealed record is one file, written atomically (temp file, fsync, rename, fsync of the
directory), laid out as::

    <body: the experiment's exact JSON> <footer JSON> <trailer line>

The footer holds the checksum, the summary and where each trial sits in the body, so a
summary, one trial or a page of its events is read without reading the rest, and checked.
A trial whose events are indexed is checked by the SHA-256 of its JSON without its events
and a CRC-32 of each part of its events (records written before 2026-12-06: a SHA-256 of
each part, and of the whole trial); any other trial by the SHA-256 of its JSON. The
record's checksum (SHA-256 of the whole body) is what ``dspex store verify`` checks. The
fixed-length trailer names the footer's length and SHA-256; a truncated or damaged file
fails these checks and raises :class:`dspex.CorruptRecordError` naming the record.

Why a CRC-32 for parts: these digests catch damage (a flipped bit, a torn write), as the
event log's and the spool's frames do; none of them is keyed, so none stops a deliberate
change that rewrites the footer too. Hashing each event's bytes three times with SHA-256
(record, trial, part) cost a recorded call more than all of its JSON writing did.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex.errors import CorruptRecordError, ValidationError
from dspex.store._events import EventIndex, Pieces, crc32s, digest_of, digests
from dspex.store.codec import EncodedRecord, sha256
from dspex.store.query import ExperimentSummary

__all__ = [
    "RecordFile",
    "ensure_dir",
    "fsync_dir",
    "remove_stale_temp_files",
    "temp_name",
    "write_atomic",
    "write_record",
]

_TRAILER = b"\ndspex-record v1 %020d %020d %s\n"
_TRAILER_LEN = len(_TRAILER % (0, 0, b"0" * 64))
_TRAILER_RE = re.compile(rb"\ndspex-record v1 ([0-9]{20}) ([0-9]{20}) ([0-9a-f]{64})\n")
_CHUNK = 1 << 20
_TEMP_SUFFIXES = (".tmp", ".staged", ".trash")

_fast_loads: Callable[[bytes], Any] | None
try:  # a dependency of DSPy
    import orjson

    _fast_loads = orjson.loads
except ModuleNotFoundError:  # pragma: no cover - DSPy brings orjson
    _fast_loads = None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each made durable in its parent."""
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)


def temp_name(name: str, suffix: str = ".tmp") -> str:
    """A temp file name that says which process writes it: ``.<name>.<pid>.<thread>.tmp``.

    It starts with '.' so that readers and reindex never take it for a record; the pid
    lets :func:`remove_stale_temp_files` tell a dead writer's leftovers from live work.
    """
    return f".{name}.{os.getpid()}.{threading.get_ident()}{suffix}"


def _writer_alive(name: str) -> bool:
    parts = name.rsplit(".", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files in ``folder`` whose writer is dead (SIGKILL leaves them behind);
    return how many were removed."""
    removed = 0
    try:
        names = [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith(".") and name.endswith(_TEMP_SUFFIXES) and not _writer_alive(name):
            path = folder / name
            if path.is_dir():  # a sealed experiment's running files, set aside
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def write_atomic(
    path: Path, chunks: Iterable[bytes | memoryview], *, temp_dir: Path | None = None
) -> None:
    """Write ``path`` so that it holds either its old content or all of ``chunks``.

    The data goes to a temp file first (in ``temp_dir``, on the same file system, else
    beside ``path``), fsynced, then renamed over ``path``.
    """
    tmp = (temp_dir or path.parent) / temp_name(path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_record(path: Path, record: EncodedRecord, *, temp_dir: Path | None = None) -> None:
    """Write a sealed record atomically (see the module docstring for the layout).

    The footer's digests of a large record (each trial's, each part of its events) are
    computed on worker threads while its body is written (SHA-256 and writes release
    the GIL), so a long trial's seal takes about as long as the longer of the two."""
    body_length = sum(len(chunk) for chunk in record.chunks())
    if body_length < _PARALLEL_BYTES:
        footer = _footer(record, body_length, _trial_digests(record), _event_entries(record))
        write_atomic(path, [*record.chunks(), footer, _trailer(body_length, footer)],
                     temp_dir=temp_dir)  # fmt: skip
        return
    with ThreadPoolExecutor(2, thread_name_prefix="dspex-digest") as pool:
        trials = pool.submit(_trial_digests, record)
        events = pool.submit(_event_entries, record)

        def chunks() -> Iterator[bytes]:
            yield from record.chunks()
            footer = _footer(record, body_length, trials.result(), events.result())
            yield footer
            yield _trailer(body_length, footer)

        write_atomic(path, chunks(), temp_dir=temp_dir)


_PARALLEL_BYTES = 8 << 20


def _trial_digests(record: EncodedRecord) -> list[str]:
    """Each trial's SHA-256, or ``""`` for a trial whose events are indexed (checked by
    its header's digest and its parts')."""
    indexed = record.events or (None,) * len(record.trials)
    return [
        "" if index is not None else digests(data, [(0, len(data))])[0].hex()
        for (_, data), index in zip(record.trials, indexed, strict=True)
    ]


def _event_entries(record: EncodedRecord) -> list[Any] | None:
    if not record.events:
        return None
    return [
        None if index is None else _event_entry(data, index, start)
        for (_, start, _), (_, data), index in zip(
            record.spans, record.trials, record.events, strict=True
        )
    ]


def _footer(
    record: EncodedRecord, body_length: int, trials: list[str], events: list[Any] | None
) -> bytes:
    content: dict[str, Any] = {
        "id": record.id,
        "checksum": record.checksum,
        "body_length": body_length,
        "trials": [
            [tid, start, end, digest]
            for (tid, start, end), digest in zip(record.spans, trials, strict=True)
        ],
        "summary": record.summary.to_dict(),
    }
    if record.summaries and record.at is not None:  # derived: for reading trials alone
        content["head"] = hashlib.sha256(record.header).hexdigest()  # JSON without trials
        content["summaries"] = [s.to_dict() for s in record.summaries]
    if events is not None:
        content["events"] = events
    return json.dumps(content, separators=(",", ":")).encode()


def _trailer(body_length: int, footer: bytes) -> bytes:
    return _TRAILER % (body_length, len(footer), hashlib.sha256(footer).hexdigest().encode())


def _event_entry(data: bytes | Pieces, index: EventIndex, start: int) -> list[Any]:
    """A trial's events in the footer: its :class:`EventIndex` (offsets in the body), the
    CRC-32 of each part and the SHA-256 of the trial without its events, so that a page
    of events, or the trial's header, is read and checked alone (hashed where the JSON
    is, pieces included: never joined)."""
    bounds = [index.part_bounds(k) for k in range(len(index.starts))]
    parts = [f"{crc:08x}" for crc in crc32s(data, bounds)]
    header = digest_of(data, [(0, index.at), (index.end, len(data))]).hex()
    return [*index.shifted(start).to_list(), parts, header]


@dataclass(frozen=True)
class TrialEvents:
    """Where a sealed trial's events are in a record file, with their digests."""

    index: EventIndex  # offsets within the record's body
    digests: tuple[str, ...]  # of each part: CRC-32 (8 hex digits) or SHA-256 (64)
    header_digest: str  # of the trial's JSON without its events

    def part_matches(self, k: int, data: bytes | memoryview) -> bool:
        """Whether ``data`` is part ``k`` as written."""
        digest = self.digests[k]
        if len(digest) == 8:
            return f"{zlib.crc32(data):08x}" == digest
        return hashlib.sha256(data).hexdigest() == digest

    def matches(self, data: bytes, start: int) -> bool:
        """Whether ``data`` (the trial's JSON, at ``start`` in the body) is as written."""
        index = self.index.shifted(-start)
        header = b"".join((data[: index.at], data[index.end :]))
        if hashlib.sha256(header).hexdigest() != self.header_digest:
            return False
        view = memoryview(data)
        for k in range(len(index.starts)):
            a, b = index.part_bounds(k)
            if not self.part_matches(k, view[a:b]):
                return False
        return True


@dataclass
class RecordFile:
    """A sealed record on disk; every read checks what it reads."""

    path: Path
    record_id: str

    def _fail(self, reason: str) -> CorruptRecordError:
        return CorruptRecordError(self.record_id, f"{reason} ({self.path})")

    def footer(self) -> dict[str, Any]:
        """The footer, checked against the trailer's length and SHA-256."""
        return self._footer()[0]

    def _footer(self) -> tuple[dict[str, Any], list[TrialEvents | None]]:
        """The footer, and where each trial's events are (parsed once: it was checked)."""
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < _TRAILER_LEN:
                    raise self._fail(f"file is truncated ({size} bytes)")
                f.seek(size - _TRAILER_LEN)
                trailer = _TRAILER_RE.fullmatch(f.read(_TRAILER_LEN))
                if trailer is None:
                    raise self._fail("file is truncated or not a dspex record (bad trailer)")
                body_len, footer_len = int(trailer[1]), int(trailer[2])
                if body_len + footer_len + _TRAILER_LEN != size:
                    raise self._fail("file length does not match its trailer")
                f.seek(body_len)
                footer = f.read(footer_len)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc}") from exc
        if hashlib.sha256(footer).hexdigest().encode() != trailer[3]:
            raise self._fail("footer does not match its checksum")
        parsed = _parse_footer(footer, body_len)
        if parsed is None:
            raise self._fail("footer is not a dspex record footer")
        if parsed[0]["id"] != self.record_id:
            raise self._fail(f"file holds record {parsed[0]['id']!r}")
        return parsed

    def summary(self) -> ExperimentSummary:
        try:
            return ExperimentSummary.from_dict(self.footer()["summary"])
        except ValidationError as exc:
            raise self._fail(f"summary does not parse: {exc}") from exc

    def body(self) -> bytes:
        return self.parts()[0]

    def parts(self) -> tuple[bytes, bytes, list[tuple[memoryview, EventIndex | None]]]:
        """The body (checked), its header (the JSON with ``"trials":[]``) and each trial's
        JSON with where its events are (None in records written before that was kept)."""
        footer = self.footer()
        with open(self.path, "rb") as f:
            body = f.read(footer["body_length"])
        if sha256(body) != footer["checksum"]:
            raise self._fail("content does not match its checksum")
        spans = footer["trials"]
        if not spans:
            return body, body, []
        view = memoryview(body)
        header = body[: spans[0][1]] + body[spans[-1][2] :]
        entries = footer.get("events") or [None] * len(spans)
        trials = []
        for (_, start, end, _), entry in zip(spans, entries, strict=True):
            events = _trial_events(entry)
            trials.append(
                (view[start:end], None if events is None else events.index.shifted(-start))
            )
        return body, header, trials

    def headers(self) -> tuple[bytes, list[bytes], dict[str, Any]] | None:
        """The experiment's JSON without its trials, each trial's JSON without its events
        (whole where its events are not indexed), checked, and the summaries of their
        events, and nothing else of the file; None for records written before the footer
        kept the header's SHA-256 and the summaries."""
        footer, located = self._footer()
        head, spans, summaries = footer.get("head"), footer["trials"], footer.get("summaries")
        if not isinstance(head, str) or not spans:
            return None
        if not isinstance(summaries, list) or len(summaries) != len(spans):
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                read = _reader(fd)
                header = read(0, spans[0][1]) + read(spans[-1][2], footer["body_length"])
                if hashlib.sha256(header).hexdigest() != head:
                    raise self._fail("content does not match its checksum")
                trials = []
                for (trial_id, start, end, digest), events in zip(spans, located, strict=True):
                    if events is None:
                        data, expected = read(start, end), digest
                    else:
                        index, expected = events.index, events.header_digest
                        data = read(start, index.at) + read(index.end, end)
                    if hashlib.sha256(data).hexdigest() != expected:
                        raise self._fail(f"trial {trial_id} does not match its checksum")
                    trials.append(data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc}") from exc
        return header, trials, {span[0]: s for span, s in zip(spans, summaries, strict=True)}

    def trial(self, trial_id: str) -> tuple[bytes, EventIndex | None] | None:
        """A trial's JSON, checked, and where its events are in it (None for records
        written before events were indexed)."""
        found = self.trial_entry(trial_id)
        if found is None:
            return None
        start, end, digest, events = found
        data = self._read(start, end)
        if digest or events is None:
            sound = hashlib.sha256(data).hexdigest() == digest
        else:  # checked by its header's digest and its parts'
            sound = events.matches(data, start)
        if not sound:
            raise self._fail(f"trial {trial_id} does not match its checksum")
        return data, None if events is None else events.index.shifted(-start)

    def trial_entry(self, trial_id: str) -> tuple[int, int, str, TrialEvents | None] | None:
        """(start, end, SHA-256, events) of a trial in the body, or None."""
        footer = self.footer()
        for position, (tid, start, end, digest) in enumerate(footer["trials"]):
            if tid == trial_id:
                entries = footer.get("events")
                entry = None if entries is None else entries[position]
                return start, end, digest, _trial_events(entry)
        return None

    def _read(self, start: int, end: int) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                data = f.read(end - start)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc}") from exc
        if len(data) != end - start:
            raise self._fail("file is truncated")
        return data

    def trial_header(self, trial_id: str, start: int, end: int, events: TrialEvents) -> bytes:
        """A sealed trial's JSON without its events, checked."""
        index = events.index
        data = self._read(start, index.at) + self._read(index.end, end)
        if hashlib.sha256(data).hexdigest() != events.header_digest:
            raise self._fail(f"trial {trial_id} does not match its checksum")
        return data

    def events(
        self, trial_id: str, events: TrialEvents, offset: int, limit: int | None
    ) -> bytes | None:
        """The checked JSON array of the parts holding a page of events, and nothing
        else of the file; None when the page is empty. See :meth:`EventIndex.page`."""
        where = events.index.page(offset, limit)
        if where is None:
            return None
        start, end, _, _ = where
        data = self._read(start, end)
        view = memoryview(data)
        for k in events.index.parts_for(*_span(events.index, offset, limit)):
            a, b = events.index.part_bounds(k)
            if not events.part_matches(k, view[a - start : b - start]):
                raise self._fail(f"trial {trial_id} does not match its checksum")
        return b"".join((b"[", data, b"]"))

    def check(self) -> Iterator[str]:
        """Reasons this record is damaged (none when it is sound); streams the body."""
        try:
            footer = self.footer()
        except CorruptRecordError as exc:
            yield exc.reason
            return
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            remaining = footer["body_length"]
            while remaining:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
        if "sha256:" + digest.hexdigest() != footer["checksum"]:
            yield f"content does not match its checksum ({self.path})"


def _reader(fd: int) -> Callable[[int, int], bytes]:
    """``read(start, end)``: those bytes of the open file ``fd``, one ``pread`` each (a
    buffered file read 8 KB for each of the few hundred bytes a trial's header is)."""

    def read(start: int, end: int) -> bytes:
        data = os.pread(fd, end - start, start)
        if len(data) != end - start:
            raise OSError(f"file is truncated ({start}..{end})")
        return data

    return read


def _span(index: EventIndex, offset: int, limit: int | None) -> tuple[int, int]:
    return offset, index.count if limit is None else min(index.count, offset + limit)


def _trial_events(entry: Any) -> TrialEvents | None:
    if not isinstance(entry, list) or len(entry) != 7:
        return None
    index = EventIndex.from_list(entry[:5])
    digests, header = entry[5], entry[6]
    if index is None or not isinstance(digests, list) or not isinstance(header, str):
        return None
    if len(digests) != len(index.starts) or not all(isinstance(d, str) for d in digests):
        return None
    return TrialEvents(index, tuple(digests), header)


def _parse_footer(
    footer: bytes, body_length: int
) -> tuple[dict[str, Any], list[TrialEvents | None]] | None:
    """The footer as data and where each trial's events are, or None when it is not a
    footer this module wrote."""
    try:
        data = _loads(footer)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("body_length") != body_length:
        return None
    if not (isinstance(data.get("id"), str) and isinstance(data.get("checksum"), str)):
        return None
    if not isinstance(data.get("summary"), dict) or not isinstance(data.get("trials"), list):
        return None
    for entry in data["trials"]:
        if not _trial_entry(entry, body_length):
            return None
    located = _located(data["trials"], data.get("events"))
    return None if located is None else (data, located)


def _located(trials: list[Any], events: Any) -> list[TrialEvents | None] | None:
    """Where each trial's events are (None: not indexed), or None when the footer's
    ``events`` do not fit its ``trials``."""
    located: list[TrialEvents | None] = [None] * len(trials)
    if events is not None:
        if not isinstance(events, list) or len(events) != len(trials):
            return None
        for k, (event_entry, (_, start, end, _)) in enumerate(zip(events, trials, strict=True)):
            found = _trial_events(event_entry)
            if event_entry is not None and (
                found is None or not start <= found.index.at <= found.index.end <= end
            ):
                return None
            located[k] = found
    for (_, _, _, digest), found in zip(trials, located, strict=True):
        if not digest and found is None:  # checked by parts it does not list
            return None
    return located


def _loads(data: bytes) -> Any:
    """JSON ``data`` parsed: orjson when it is there (a footer of 2,000 trials in a third
    of the time), the standard parser for what orjson refuses (NaN, large integers)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:
            pass
    return json.loads(data)


def _trial_entry(entry: Any, body_length: int) -> bool:
    if not isinstance(entry, list) or len(entry) != 4:
        return False
    tid, start, end, digest = entry
    return (
        isinstance(tid, str)
        and isinstance(digest, str)
        and type(start) is int
        and type(end) is int
        and 0 <= start <= end <= body_length
    )
