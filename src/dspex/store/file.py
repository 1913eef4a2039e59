"""The file backend: a directory of records plus a rebuildable SQLite index.

``file:///abs/dir`` opens (and creates) this layout::

    <root>/experiments/YYYY/MM/DD/<experiment id>/   (the date the id was made, UTC)
        record.dspex        the sealed record, written atomically (see _filerecord)
        running.json        the header of a running experiment
        trials/<trial>.json each finished trial of a running experiment, one file each
    <root>/studies/<name>.study   each study's record (see _filestudies)
    <root>/index.sqlite     summaries and tags, for queries (``reindex`` rebuilds it)
    <root>/pending/<id>     an index update in progress (replayed after a crash)
    <root>/tmp/             files being written (a dead writer's are removed on open)
    <root>/.lock            the writers' lock (fcntl), shared by threads and processes

Every file is written atomically (temp file, fsync, rename, fsync directory), so a crash
loses at most the write in progress. A record reaches the index only after its file is
durable, so a query never shows an experiment that cannot be read.

Readers never wait for the writers' lock: they use the index as it is. The index is
derived data: one that is missing, incomplete (a rebuild was killed), of another
layout, damaged, or replaced by another process is rebuilt (by a writer, under the
lock) or, in a read-only store, built privately in memory.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from dspex.errors import (
    CorruptRecordError,
    ExperimentNotFound,
    ImmutableRecordError,
    StoreUnavailable,
)
from dspex.errors import ValidationError as DspexValidationError
from dspex.ids import id_timestamp, is_valid_id
from dspex.model import Experiment, StudyRecord, StudySummary, TraceEvent, Trial
from dspex.store import _eventlog as eventlog
from dspex.store._events import (
    EventIndex,
    EventPart,
    fit_parts,
    parse_events,
    parse_experiment,
    parse_trial,
    read_parts,
    trial_json,
    trial_with_parts,
)
from dspex.store._fileindex import FileIndex, is_damage
from dspex.store._filerecord import (
    RecordFile,
    ensure_dir,
    fsync_dir,
    remove_stale_temp_files,
    temp_name,
    write_atomic,
    write_record,
)
from dspex.store._filestudies import StudyFiles
from dspex.store._summaries import parse_headers, stripped
from dspex.store._triallog import LOG_NAME, TrialLog, frame
from dspex.store.backend import (
    BackendOptions,
    DamagedRecord,
    SealOutcome,
    StoreBackend,
    register_backend,
    study_order,
)
from dspex.store.codec import EncodedRecord
from dspex.store.query import ExperimentSummary, Query, summary_of

__all__ = ["LOCK_TIMEOUT", "FileBackend"]

logger = logging.getLogger(__name__)

R = TypeVar("R", Experiment, Trial)
T = TypeVar("T")

LOCK_TIMEOUT = 300.0
"""Seconds a writer waits for another process's lock (a reindex of a large store) before
:class:`dspex.StoreUnavailable`; it says that it waits after a few seconds."""
_LOCK_NOTICE = 3.0
_REMEMBERED = 1024  # experiments whose folder and running header a backend keeps


def path_from_url(url: str) -> Path:
    """The root directory of a ``file:///abs/dir`` URL."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise DspexValidationError(
            f"file store URL {url!r} must name an absolute directory, like file:///data/dspex"
        )
    return Path(path)


class FileBackend(StoreBackend):
    """Records as files under one root directory; see the module docstring."""

    writes_pieces = True  # a long trial sealed from its parts is written, never joined

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        self.url = url
        self.root = path_from_url(url)
        self.read_only = (options or BackendOptions()).read_only
        self._index = FileIndex(self.root / "index.sqlite", read_only=self.read_only)
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self._rejected: tuple[int, int] | None = None  # an index file a reader could not use
        self._studies = StudyFiles(self.root)
        self._log = TrialLog()
        self._legacy: dict[Path, tuple[tuple[int, int], frozenset[str]]] = {}
        self._dirs: dict[str, Path] = {}
        self._headers: dict[Path, tuple[tuple[int, ...], ExperimentSummary]] = {}
        # Trials this backend appended to each running experiment, and how many of them
        # the index row counted when it was last written: concurrent writers update the
        # index once for all the trials appended before the update began.
        self._appended: dict[str, int] = {}
        self._indexed: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        if self.read_only:
            self._open_reader()
            return
        for folder in ("experiments", "pending", "tmp"):
            ensure_dir(self.root / folder)
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        # Replaying and tidying can wait for a moment when nobody writes; a reader only
        # waits when there is no usable index at all.
        with self._thread_lock:
            if not self._try_lock():
                if self._index_usable():
                    return
                self._lock()
            try:
                remove_stale_temp_files(self.root / "tmp")
                self._ensure_index()
                for marker in (self.root / "pending").iterdir():
                    if is_valid_id(marker.name, "exp"):
                        self._resync(marker.name)
                    marker.unlink(missing_ok=True)
            finally:
                self._unlock()

    def _open_reader(self) -> None:
        if not (self.root / "experiments").is_dir():
            raise StoreUnavailable(
                f"no ResultStore at {self.url}: {self.root} holds no dspex store (no "
                "experiments directory); check the URL, or record something there first"
            )
        self._switch_reader_index()

    def close(self) -> None:
        self._index.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the writers' lock ----------------------------------------------------------------

    def _try_lock(self) -> bool:
        assert self._lock_fd is not None, "the file store is not open"
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(self) -> None:
        """Wait for the lock, saying so after a few seconds, up to :data:`LOCK_TIMEOUT`."""
        started = time.monotonic()
        noticed = False
        while not self._try_lock():
            waited = time.monotonic() - started
            if waited > LOCK_TIMEOUT:
                raise StoreUnavailable(
                    f"the ResultStore at {self.url} stayed locked by another process for "
                    f"{waited:.0f} s ({self.root / '.lock'}); wait for it to finish (a "
                    "reindex of a large store takes a while) or stop it"
                )
            if not noticed and waited > _LOCK_NOTICE:
                logger.warning(
                    "dspex: waiting for another process that holds %s", self.root / ".lock"
                )
                noticed = True
            time.sleep(0.02)

    def _unlock(self) -> None:
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self._lock()
            try:
                self._ensure_index()  # another process may have replaced or removed it
                yield
            finally:
                self._unlock()

    @contextmanager
    def _changing(self, experiment_id: str) -> Iterator[None]:
        """Hold the lock and mark ``experiment_id`` pending until its index row is updated."""
        with self._locked():
            marker = self.root / "pending" / experiment_id
            marker.touch()
            try:
                yield
            finally:  # if this fails too, the marker stays and the next open() replays it
                if self._resync_or_defer(experiment_id):
                    marker.unlink()

    def _resync_or_defer(self, experiment_id: str) -> bool:
        """Update the index row of ``experiment_id``; False when the index cannot be
        written now (a full disk): the files are durable, the index is derived data, and
        its pending marker makes the next write of that experiment, or the next open,
        update it."""
        try:
            self._resync(experiment_id)
        except sqlite3.OperationalError as exc:
            logger.warning(
                "dspex: cannot update the index of %s now (%s); it is updated on the next "
                "write of %s or when the store is next opened",
                self.url,
                exc,
                experiment_id,
            )
            return False
        return True

    # -- paths --------------------------------------------------------------------------

    def _dir(self, experiment_id: str) -> Path:
        folder = self._dirs.get(experiment_id)
        if folder is None:
            day = id_timestamp(experiment_id).strftime("%Y/%m/%d")
            folder = self.root / "experiments" / day / experiment_id
            if len(self._dirs) >= _REMEMBERED:
                self._dirs.clear()
            self._dirs[experiment_id] = folder
        return folder

    def _record(self, experiment_id: str) -> RecordFile:
        return RecordFile(self._dir(experiment_id) / "record.dspex", experiment_id)

    # -- writing ------------------------------------------------------------------------

    def write_running(self, experiment: Experiment) -> None:
        folder = self._dir(experiment.id)
        with self._changing(experiment.id):
            if self._record(experiment.id).path.exists():
                raise ImmutableRecordError(f"experiment {experiment.id!r} is sealed")
            ensure_dir(folder / "trials")
            write_atomic(
                folder / "running.json", [experiment.to_json_bytes()], temp_dir=self.root / "tmp"
            )

    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        data, _, index = trial_json(trial)
        blob = frame(trial.id, data, index)
        folder = self._dir(experiment_id)
        log = folder / LOG_NAME
        marker = self.root / "pending" / experiment_id
        with self._locked():
            if self._record(experiment_id).path.exists():
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            if not (folder / "running.json").exists():
                raise ExperimentNotFound(experiment_id)
            marker.touch()
            fd, end = self._log.append(log, experiment_id, blob)
            ticket = self._appended[experiment_id] = self._appended.get(experiment_id, 0) + 1
        # Durable outside the lock, so that writers of other threads append meanwhile and
        # one flush makes all their trials durable (group commit).
        self._log.commit(log, fd, end)
        with self._locked():
            if self._indexed.get(experiment_id, 0) >= ticket:
                return  # an index update that began after this append counted it
            covered = self._appended[experiment_id]
            if self._resync_or_defer(experiment_id):
                marker.unlink(missing_ok=True)
                self._indexed[experiment_id] = covered

    def _events_log(self, experiment_id: str, trial_id: str) -> Path:
        return self._dir(experiment_id) / "trials" / f"{trial_id}.events"

    def _part_spans(self, experiment_id: str, trial_id: str) -> list[eventlog.Span]:
        """The parts appended to a running trial, in order."""
        return eventlog.spans(self._events_log(experiment_id, trial_id), experiment_id)[0]

    def append_parts(self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]) -> None:
        folder = self._dir(experiment_id)
        log = self._events_log(experiment_id, trial_id)
        with self._locked():
            if self._record(experiment_id).path.exists():
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            if not (folder / "running.json").exists():
                raise ExperimentNotFound(experiment_id)
            spans, end = eventlog.spans(log, experiment_id)
            stored = spans[-1].first + spans[-1].count if spans else 0
            where = f"trial {trial_id} of experiment {experiment_id}"
            new = fit_parts(stored, parts, trial_id, where)
            if new:
                ensure_dir(log.parent)
                eventlog.append(log, new, end)

    def event_parts(self, experiment_id: str, trial_id: str) -> list[EventPart]:
        if self._record(experiment_id).path.exists():
            return []
        log = self._events_log(experiment_id, trial_id)
        try:
            spans = self._part_spans(experiment_id, trial_id)
            read = eventlog.read_all(log, spans, experiment_id) if spans else []
            return [
                EventPart(span.first, span.count, data)
                for span, data in zip(spans, read, strict=True)
            ]
        except FileNotFoundError:  # sealed meanwhile
            return []

    def seal(self, record: EncodedRecord) -> SealOutcome:
        folder = self._dir(record.id)
        target = self._record(record.id)
        existing = self._sealed_checksum(target)
        if existing is not None:
            return SealOutcome(stored=False, existing_checksum=existing)
        ensure_dir(folder)
        # Written outside the lock (it may be large); only the rename below publishes it.
        staged = self.root / "tmp" / temp_name(record.id, ".staged")
        try:
            write_record(staged, record, temp_dir=self.root / "tmp")
            with self._changing(record.id):
                existing = self._sealed_checksum(target)
                if existing is not None:
                    return SealOutcome(stored=False, existing_checksum=existing)
                os.replace(staged, target.path)
                fsync_dir(folder)
                _remove_running(folder, self.root / "tmp")
                self._log.forget(folder / LOG_NAME)
                self._legacy.pop(folder / "trials", None)
                self._headers.pop(folder / "running.json", None)
                self._appended.pop(record.id, None)
                self._indexed.pop(record.id, None)
        finally:
            staged.unlink(missing_ok=True)
        return SealOutcome(stored=True)

    def _sealed_checksum(self, target: RecordFile) -> str | None:
        if not target.path.exists():
            return None
        try:
            return str(target.footer()["checksum"])
        except CorruptRecordError:
            return "(damaged record)"

    # -- reading ------------------------------------------------------------------------

    def load(self, experiment_id: str) -> Experiment | None:
        record = self._record(experiment_id)
        if record.path.exists():
            return _parse_sealed(record)
        folder = self._dir(experiment_id)
        try:
            header = (folder / "running.json").read_bytes()
        except FileNotFoundError:  # none, or sealed (and tidied) since the check above
            return _parse_sealed(record) if record.path.exists() else None
        experiment = _parse(record, Experiment, header)
        trials = sorted(self._running_trials(folder, record), key=lambda t: t.index)
        if record.path.exists():
            # Sealed while we read: the files read may be only part of it; the record is whole.
            return _parse_sealed(record)
        return experiment.replace(trials=tuple(trials)) if trials else experiment

    def _running_trials(self, folder: Path, record: RecordFile) -> Iterator[Trial]:
        for trial_id in self._running_trial_ids(folder, record.record_id):
            found = self._running_trial(record.record_id, trial_id)
            if found is None:  # sealed meanwhile; load() then reads the record
                continue
            trial = _parse_trial(record, found[0], found[1], trial_id)
            yield self._with_parts(record, trial)

    def _with_parts(self, record: RecordFile, trial: Trial) -> Trial:
        """A running trial recorded without events, with the events appended to it."""
        if trial.events:
            return trial
        parts = self.event_parts(record.record_id, trial.id)
        if not parts:
            return trial
        data, _, index = trial_with_parts(trial, parts)
        return _parse_trial(record, bytes(data), index, trial.id)

    def _running_trial(
        self, experiment_id: str, trial_id: str
    ) -> tuple[bytes, EventIndex | None] | None:
        """A running trial's JSON and where its events are, or None when it is not
        recorded or has been sealed (its trial log, else a file of older versions)."""
        folder = self._dir(experiment_id)
        found = self._log.read(folder / LOG_NAME, experiment_id, trial_id)
        if found is not None:
            return found
        try:
            return (folder / "trials" / f"{trial_id}.json").read_bytes(), None
        except FileNotFoundError:
            return None

    def _running_trial_ids(self, folder: Path, experiment_id: str) -> list[str]:
        ids = self._log.trial_ids(folder / LOG_NAME, experiment_id)
        legacy = self._legacy_trial_ids(folder)
        return [*ids, *sorted(legacy.difference(ids))] if legacy else ids

    def _legacy_trial_ids(self, folder: Path) -> frozenset[str]:
        """The trials that versions before the trial log wrote as ``trials/<id>.json``.

        Listed once per trials folder: this version never writes such files, and the
        folder holds one events log per trial, so listing it on every write of a long
        run was quadratic (20,000 trials: 18 s of the 59 s)."""
        trials = folder / "trials"
        identity = _identity(trials)
        if identity is None:
            return frozenset()
        with self._thread_lock:
            cached = self._legacy.get(trials)
            if cached is not None and cached[0] == identity:
                return cached[1]
        found = frozenset(p.stem for p in trials.glob("trl_*.json"))
        with self._thread_lock:
            self._legacy[trials] = (identity, found)
        return found

    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        record = self._record(experiment_id)
        if not record.path.exists():
            found = self._running_trial(experiment_id, trial_id)
            if found is not None:
                trial = _parse_trial(record, found[0], found[1], trial_id)
                return self._with_parts(record, trial)
            if not record.path.exists():  # not recorded, or sealed meanwhile
                return None
        found = record.trial(trial_id)
        if found is None:
            return None
        return _parse_trial(record, found[0], found[1], trial_id)

    def load_headers(self, experiment_id: str) -> Experiment | None:
        record = self._record(experiment_id)
        if record.path.exists():
            found = record.headers()
            if found is not None:
                header, trials, summaries = found
                try:
                    parsed = parse_headers(header, trials, summaries)
                except DspexValidationError as exc:
                    raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
                if parsed.id != experiment_id:
                    raise CorruptRecordError(
                        experiment_id, f"a file in its folder holds experiment {parsed.id!r}"
                    )
                return stripped(parsed)  # trials whose events were not indexed hold them
        return super().load_headers(experiment_id)

    def load_trial_header(self, experiment_id: str, trial_id: str) -> Trial | None:
        record = self._record(experiment_id)
        if record.path.exists():
            entry = record.trial_entry(trial_id)
            if entry is None:
                return None
            start, end, _, events = entry
            if events is not None:
                data = record.trial_header(trial_id, start, end, events)
                return _parse(record, Trial, data, trial_id=trial_id)
        return super().load_trial_header(experiment_id, trial_id)

    def load_events(
        self, experiment_id: str, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent] | None:
        record = self._record(experiment_id)
        if record.path.exists():
            entry = record.trial_entry(trial_id)
            if entry is None:
                return None
            events = entry[3]
            if events is not None:
                where = events.index.page(offset, limit)
                data = record.events(trial_id, events, offset, limit)
                if where is None or data is None:
                    return []
                parsed = _parse_events(record, data, trial_id)
                _, _, skip, stop = where
                if len(parsed) < stop:
                    raise CorruptRecordError(
                        experiment_id, f"trial {trial_id} holds fewer events than its index"
                    )
                return parsed[skip:stop]
        elif self._appended_only(experiment_id, trial_id):
            spans = self._part_spans(experiment_id, trial_id)
            if spans or self._running_trial(experiment_id, trial_id) is not None:
                log = self._events_log(experiment_id, trial_id)
                try:
                    return read_parts(
                        [(span.first, span.count) for span in spans],
                        lambda k: eventlog.read(log, spans[k], experiment_id),
                        trial_id,
                        offset,
                        limit,
                    )
                except FileNotFoundError:  # sealed meanwhile
                    return self.load_events(experiment_id, trial_id, offset, limit)
                except DspexValidationError as exc:
                    raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
        return super().load_events(experiment_id, trial_id, offset, limit)

    def _appended_only(self, experiment_id: str, trial_id: str) -> bool:
        """Whether a running trial's events are its appended ones (it has some, and it is
        not recorded, or recorded without events)."""
        if not self._part_spans(experiment_id, trial_id):
            return False
        found = self._running_trial(experiment_id, trial_id)
        if found is None:
            return True
        if found[1] is not None:
            return not found[1].count
        record = self._record(experiment_id)
        return not _parse(record, Trial, found[0], trial_id=trial_id).events

    def count_events(self, experiment_id: str, trial_id: str) -> int | None:
        record = self._record(experiment_id)
        if record.path.exists():
            entry = record.trial_entry(trial_id)
            if entry is None:
                return None
            if entry[3] is not None:
                return entry[3].index.count
        elif self._appended_only(experiment_id, trial_id):
            spans = self._part_spans(experiment_id, trial_id)
            if spans:
                return spans[-1].first + spans[-1].count
        return super().count_events(experiment_id, trial_id)

    def query(self, query: Query) -> list[ExperimentSummary]:
        return self._with_index(lambda index: index.query(query))

    def count(self, query: Query) -> int:
        return self._with_index(lambda index: index.count(query))

    def _with_index(self, action: Callable[[FileIndex], T]) -> T:
        """Run ``action`` on a usable index: reopened when another process replaced it,
        rebuilt when it is damaged."""
        if self._index.replaced() or not self._index.is_open or self._reader_may_switch():
            self._refresh_index()
        try:
            return action(self._index)
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise StoreUnavailable(
                    f"cannot read the index of the ResultStore at {self.url}: {exc}"
                ) from exc
            logger.warning("dspex: the index of %s is damaged (%s); rebuilding", self.url, exc)
            if self.read_only:
                self._switch_reader_index(damaged=True)
            else:
                with self._locked():
                    self._rebuild_damaged()
            return action(self._index)

    def _reader_may_switch(self) -> bool:
        """Whether a read-only store indexed in memory should try the index file again
        (it appeared, or changed since it was found unusable)."""
        if not self.read_only or self._index.path is not None:
            return False
        return _identity(self.root / "index.sqlite") not in (None, self._rejected)

    def _refresh_index(self) -> None:
        with self._thread_lock:
            if self.read_only:
                self._switch_reader_index()
            elif not self._index_usable():
                self._index.close()
                with self._locked():  # its _ensure_index() opens and rebuilds it
                    pass

    # -- the index ------------------------------------------------------------------------

    def _index_usable(self) -> bool:
        """Whether the index file exists, opens and is valid (no lock taken, nothing built)."""
        if not self._index.path or not self._index.path.exists():
            return False
        try:
            if not self._index.is_open or self._index.replaced():
                self._index.open()
            return self._index.valid
        except sqlite3.Error:
            self._index.close()
            return False

    def _open_index_file(self) -> None:
        """Under the lock: (re)open the index file, creating it when it is missing."""
        if self._index.is_open and not self._index.replaced():
            return
        if self._index.path and not self._index.path.exists():
            self._index.discard()  # a deleted index's -wal must not join the new file
        self._index.open()

    def _ensure_index(self) -> None:
        """Under the lock: open the index, rebuilding it when it is missing, incomplete, of
        another layout or damaged."""
        if self._index.is_open and not self._index.replaced():
            return
        try:
            self._open_index_file()
            if not self._index.valid:
                self._index.reset()
                self._rebuild()
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise
            logger.warning("dspex: the index of %s is damaged (%s); rebuilding", self.url, exc)
            self._rebuild_damaged()

    def _rebuild_damaged(self) -> list[DamagedRecord]:
        self._index.discard()
        self._index.open()
        self._index.reset()
        return self._rebuild()

    def _rebuild(self) -> list[DamagedRecord]:
        problems: list[DamagedRecord] = []
        with self._index.writing() as conn:
            self._index.rebuild(conn, self._summaries(problems))
        if not self.read_only:
            for marker in (self.root / "pending").iterdir():
                marker.unlink(missing_ok=True)
        return problems

    def _switch_reader_index(self, *, damaged: bool = False) -> None:
        """A read-only store's index: the file when it is usable, else one built in memory
        (the file changes nothing of the store: it is only read)."""
        path = self.root / "index.sqlite"
        on_disk = FileIndex(path, read_only=True)
        if not damaged and path.exists():
            try:
                on_disk.open()
                if on_disk.valid:
                    self._index.close()
                    self._index = on_disk
                    return
            except sqlite3.Error as exc:
                logger.warning("dspex: cannot use the index of %s (%s)", self.url, exc)
            on_disk.close()
        self._rejected = _identity(path)
        if self._index.path is None and self._index.is_open and not damaged:
            return  # already built in memory
        self._index.close()
        self._index = FileIndex(None)
        self._index.open()
        self._index.reset()
        self._rebuild()

    def _summary(self, experiment_id: str) -> ExperimentSummary | None:
        record = self._record(experiment_id)
        if record.path.exists():
            return record.summary()
        folder = self._dir(experiment_id)
        summary = self._running_summary(record, folder / "running.json")
        if summary is None:
            return None
        count = self._log.count(folder / LOG_NAME, experiment_id, self._legacy_trial_ids(folder))
        return summary.model_copy(update={"trial_count": count})

    def _running_summary(self, record: RecordFile, path: Path) -> ExperimentSummary | None:
        """The summary of a running experiment's header (None when there is none),
        parsed again only when the file changed: the index row of a running experiment
        is written again on every recorded trial."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            key = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._headers.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            with open(fd, "rb", closefd=False) as f:
                data = f.read()
        finally:
            os.close(fd)
        summary = summary_of(_parse(record, Experiment, data), sealed=False, checksum=None)
        if len(self._headers) >= _REMEMBERED:
            self._headers.clear()
        self._headers[path] = (key, summary)
        return summary

    def _summaries(self, problems: list[DamagedRecord]) -> Iterator[ExperimentSummary]:
        for experiment_id in self._experiment_ids():
            try:
                summary = self._summary(experiment_id)
            except (CorruptRecordError, DspexValidationError) as exc:
                problems.append(DamagedRecord(experiment_id, str(exc)))
                continue
            if summary is not None:
                yield summary

    def _resync(self, experiment_id: str) -> None:
        try:
            summary = self._summary(experiment_id)
        except (CorruptRecordError, DspexValidationError):
            summary = None  # damaged: left out of the index; verify reports it
        try:
            with self._index.writing() as conn:
                if summary is None:
                    self._index.remove(conn, experiment_id)
                else:
                    self._index.put(conn, summary)
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise
            logger.warning("dspex: the index of %s is damaged (%s); rebuilding", self.url, exc)
            self._rebuild_damaged()

    def reindex(self) -> list[DamagedRecord]:
        """Rebuild the index from the files, whatever state it is in (missing, damaged,
        incomplete); remove what dead writers left behind; return the records that could
        not be read."""
        with self._thread_lock:
            self._lock()
            try:
                try:
                    self._open_index_file()
                    if not self._index.valid:
                        self._index.reset()
                    problems = self._rebuild()
                except sqlite3.Error as exc:
                    if not is_damage(exc):
                        raise
                    problems = self._rebuild_damaged()
                self._remove_stale_files()
                return problems
            finally:
                self._unlock()

    def _remove_stale_files(self) -> None:
        remove_stale_temp_files(self.root / "tmp")
        for experiment_id in self._experiment_ids():  # left by versions that staged there
            folder = self._dir(experiment_id)
            remove_stale_temp_files(folder)
            remove_stale_temp_files(folder / "trials")

    def _experiment_ids(self) -> Iterator[str]:
        for day in sorted((self.root / "experiments").glob("*/*/*")):
            for folder in sorted(day.glob("exp_*")):
                if is_valid_id(folder.name, "exp"):
                    yield folder.name

    def verify(self) -> Iterator[DamagedRecord]:
        for experiment_id in self._experiment_ids():
            record = self._record(experiment_id)
            if record.path.exists():
                for reason in record.check():
                    yield DamagedRecord(experiment_id, reason)

    # -- studies --------------------------------------------------------------------------

    def write_study(self, study: StudyRecord, previous_revision: int) -> int | None:
        with self._locked():
            found = self._studies.revision(study.name)
            if found != previous_revision:
                return found
            self._studies.write(study)
            return None

    def load_study(self, name: str) -> StudyRecord | None:
        return self._studies.load(name)

    def list_studies(self, limit: int, offset: int) -> list[StudySummary]:
        return sorted(self._studies.summaries(), key=study_order)[offset : offset + limit]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def _parse(record: RecordFile, kind: type[R], data: bytes, *, trial_id: str | None = None) -> R:
    """Parse a record's JSON, and check that it is the record asked for (a file copied
    into another experiment's folder is damage, not that experiment)."""
    try:
        parsed = kind.from_json(data)
    except DspexValidationError as exc:
        raise CorruptRecordError(record.record_id, f"does not parse: {exc}") from exc
    owner = parsed.id if isinstance(parsed, Experiment) else parsed.experiment_id
    if owner != record.record_id:
        raise CorruptRecordError(
            record.record_id, f"a file in its folder holds experiment {owner!r}"
        )
    if trial_id is not None and isinstance(parsed, Trial) and parsed.id != trial_id:
        raise CorruptRecordError(
            record.record_id, f"the file of trial {trial_id!r} holds trial {parsed.id!r}"
        )
    return parsed


def _parse_sealed(record: RecordFile) -> Experiment:
    """A sealed record, its trials' events parsed quickly where they are indexed."""
    body, header, trials = record.parts()
    if not trials:
        return _parse(record, Experiment, body)
    try:
        parsed = parse_experiment(header, trials)
    except DspexValidationError as exc:
        raise CorruptRecordError(record.record_id, f"does not parse: {exc}") from exc
    if parsed.id != record.record_id:
        raise CorruptRecordError(
            record.record_id, f"a file in its folder holds experiment {parsed.id!r}"
        )
    return parsed


def _parse_trial(record: RecordFile, data: bytes, index: EventIndex | None, trial_id: str) -> Trial:
    """A sealed trial's JSON parsed (quickly when its events are indexed), and checked."""
    try:
        trial = parse_trial(data, index)
    except DspexValidationError as exc:
        raise CorruptRecordError(record.record_id, f"does not parse: {exc}") from exc
    if trial.experiment_id != record.record_id:
        raise CorruptRecordError(
            record.record_id, f"a file in its folder holds experiment {trial.experiment_id!r}"
        )
    if trial.id != trial_id:
        raise CorruptRecordError(
            record.record_id, f"the file of trial {trial_id!r} holds trial {trial.id!r}"
        )
    return trial


def _parse_events(record: RecordFile, data: bytes, trial_id: str) -> list[TraceEvent]:
    try:
        return parse_events(data, trial_id)
    except DspexValidationError as exc:
        raise CorruptRecordError(record.record_id, f"does not parse: {exc}") from exc


def _remove_running(folder: Path, tmp: Path) -> None:
    """Remove a sealed experiment's running files (after the seal is durable; a crash
    here leaves files that readers ignore). Its trials and appended events are moved
    aside in one rename and deleted by a background thread: deleting thousands of part
    files would otherwise lengthen the seal (what a crash leaves aside, reindex and the
    next open remove)."""
    (folder / "running.json").unlink(missing_ok=True)
    (folder / LOG_NAME).unlink(missing_ok=True)
    trials = folder / "trials"
    if not trials.is_dir():
        return
    aside = tmp / temp_name(folder.name, ".trash")
    try:
        os.replace(trials, aside)
    except OSError:  # another file system, or gone: delete it here
        shutil.rmtree(trials, ignore_errors=True)
        return
    threading.Thread(
        target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True}, daemon=True
    ).start()


register_backend("file", FileBackend)
