"""The file backend: a directory of records plus a rebuildable SQLite index.

``file:///abs/dir`` opens (and creates) this layout::

    <root>/experiments/YYYY/MM/DD/<experiment id>/   (the date the id was made, UTC)
        record.dspex        the sealed record, written atomically (see _filerecord)
        running.json        the header of a running experiment
        trials/<trial>.json each finished trial of a running experiment, one file each
    <root>/index.sqlite     summaries and tags, for queries (``reindex`` rebuilds it)
    <root>/pending/<id>     an index update in progress (replayed after a crash)
    <root>/.lock            the writers' lock (fcntl), shared by threads and processes

Every file is written atomically (temp file, fsync, rename, fsync directory), so a crash
loses at most the write in progress. A record reaches the index only after its file is
durable, so a query never shows an experiment that cannot be read.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from dspex.errors import CorruptRecordError, ExperimentNotFound, ImmutableRecordError
from dspex.errors import ValidationError as DspexValidationError
from dspex.ids import id_timestamp, is_valid_id
from dspex.model import Experiment, Trial
from dspex.store._fileindex import FileIndex
from dspex.store._filerecord import RecordFile, ensure_dir, fsync_dir, write_atomic, write_record
from dspex.store.backend import (
    BackendOptions,
    Problem,
    SealOutcome,
    StoreBackend,
    register_backend,
)
from dspex.store.codec import EncodedRecord
from dspex.store.query import ExperimentSummary, Query, summary_of

__all__ = ["FileBackend"]

R = TypeVar("R", Experiment, Trial)


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

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        self.url = url
        self.root = path_from_url(url)
        self._index = FileIndex(self.root / "index.sqlite")
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        ensure_dir(self.root / "experiments")
        ensure_dir(self.root / "pending")
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        with self._locked():
            if self._index.open():
                self._reindex_locked()
            for marker in (self.root / "pending").iterdir():
                if is_valid_id(marker.name, "exp"):
                    self._resync(marker.name)
                marker.unlink(missing_ok=True)

    def close(self) -> None:
        self._index.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            assert self._lock_fd is not None, "the file store is not open"
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _changing(self, experiment_id: str) -> Iterator[None]:
        """Hold the lock and mark ``experiment_id`` pending until its index row is updated."""
        with self._locked():
            marker = self.root / "pending" / experiment_id
            marker.touch()
            try:
                yield
            finally:  # if this fails too, the marker stays and the next open() replays it
                self._resync(experiment_id)
                marker.unlink()

    # -- paths --------------------------------------------------------------------------

    def _dir(self, experiment_id: str) -> Path:
        day = id_timestamp(experiment_id).strftime("%Y/%m/%d")
        return self.root / "experiments" / day / experiment_id

    def _record(self, experiment_id: str) -> RecordFile:
        return RecordFile(self._dir(experiment_id) / "record.dspex", experiment_id)

    # -- writing ------------------------------------------------------------------------

    def write_running(self, experiment: Experiment) -> None:
        folder = self._dir(experiment.id)
        with self._changing(experiment.id):
            if self._record(experiment.id).path.exists():
                raise ImmutableRecordError(f"experiment {experiment.id!r} is sealed")
            ensure_dir(folder / "trials")
            write_atomic(folder / "running.json", [experiment.to_json_bytes()])

    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        folder = self._dir(experiment_id)
        with self._changing(experiment_id):
            if self._record(experiment_id).path.exists():
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            if not (folder / "running.json").exists():
                raise ExperimentNotFound(experiment_id)
            write_atomic(folder / "trials" / f"{trial.id}.json", [trial.to_json_bytes()])

    def seal(self, record: EncodedRecord) -> SealOutcome:
        folder = self._dir(record.id)
        target = self._record(record.id)
        existing = self._sealed_checksum(target)
        if existing is not None:
            return SealOutcome(stored=False, existing_checksum=existing)
        ensure_dir(folder)
        # Written outside the lock (it may be large); only the rename below publishes it.
        staged = folder / f".record.{os.getpid()}.{threading.get_ident()}.staged"
        write_record(staged, record)
        try:
            with self._changing(record.id):
                existing = self._sealed_checksum(target)
                if existing is not None:
                    return SealOutcome(stored=False, existing_checksum=existing)
                os.replace(staged, target.path)
                fsync_dir(folder)
                _remove_running(folder)
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
            return _parse(record, Experiment, record.body())
        folder = self._dir(experiment_id)
        try:
            header = (folder / "running.json").read_bytes()
        except FileNotFoundError:  # none, or sealed (and tidied) since the check above
            return _parse(record, Experiment, record.body()) if record.path.exists() else None
        experiment = _parse(record, Experiment, header)
        trials = sorted(self._running_trials(folder, record), key=lambda t: t.index)
        return experiment.replace(trials=tuple(trials)) if trials else experiment

    def _running_trials(self, folder: Path, record: RecordFile) -> Iterator[Trial]:
        for path in (folder / "trials").glob("trl_*.json"):
            try:
                yield _parse(record, Trial, path.read_bytes())
            except FileNotFoundError:  # sealed meanwhile; the caller's view is still whole
                continue

    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        record = self._record(experiment_id)
        if not record.path.exists():
            path = self._dir(experiment_id) / "trials" / f"{trial_id}.json"
            try:
                return _parse(record, Trial, path.read_bytes())
            except FileNotFoundError:  # not recorded, or sealed meanwhile
                if not record.path.exists():
                    return None
        data = record.trial(trial_id)
        return None if data is None else _parse(record, Trial, data)

    def query(self, query: Query) -> list[ExperimentSummary]:
        return self._index.query(query)

    def count(self, query: Query) -> int:
        return self._index.count(query)

    # -- index maintenance --------------------------------------------------------------

    def _summary(self, experiment_id: str) -> ExperimentSummary | None:
        record = self._record(experiment_id)
        if record.path.exists():
            return record.summary()
        folder = self._dir(experiment_id)
        try:
            header = Experiment.from_json((folder / "running.json").read_bytes())
        except FileNotFoundError:
            return None
        count = sum(1 for _ in (folder / "trials").glob("trl_*.json"))
        summary = summary_of(header, sealed=False, checksum=None)
        return summary.model_copy(update={"trial_count": count})

    def _resync(self, experiment_id: str) -> None:
        try:
            summary = self._summary(experiment_id)
        except (CorruptRecordError, DspexValidationError):
            summary = None  # damaged: left out of the index; verify reports it
        with self._index.writing() as conn:
            if summary is None:
                self._index.remove(conn, experiment_id)
            else:
                self._index.put(conn, summary)

    def reindex(self) -> list[Problem]:
        """Rebuild the index from the files; return the records that could not be read."""
        with self._locked():
            return self._reindex_locked()

    def _reindex_locked(self) -> list[Problem]:
        problems: list[Problem] = []
        batch: list[ExperimentSummary] = []
        # One transaction, so readers see the old index until the new one is complete;
        # summaries go in batches so memory stays flat however many records there are.
        with self._index.writing() as conn:
            self._index.clear(conn)
            for experiment_id in self._experiment_ids():
                try:
                    summary = self._summary(experiment_id)
                except (CorruptRecordError, DspexValidationError) as exc:
                    problems.append(Problem(experiment_id, str(exc)))
                    continue
                if summary is not None:
                    batch.append(summary)
                if len(batch) >= 1000:
                    self._index.put_many(conn, batch)
                    batch.clear()
            self._index.put_many(conn, batch)
        for marker in (self.root / "pending").iterdir():
            marker.unlink(missing_ok=True)
        return problems

    def _experiment_ids(self) -> Iterator[str]:
        for day in sorted((self.root / "experiments").glob("*/*/*")):
            for folder in sorted(day.glob("exp_*")):
                if is_valid_id(folder.name, "exp"):
                    yield folder.name

    def verify(self) -> Iterator[Problem]:
        for experiment_id in self._experiment_ids():
            record = self._record(experiment_id)
            if record.path.exists():
                for reason in record.check():
                    yield Problem(experiment_id, reason)


def _parse(record: RecordFile, kind: type[R], data: bytes) -> R:
    try:
        return kind.from_json(data)
    except DspexValidationError as exc:
        raise CorruptRecordError(record.record_id, f"does not parse: {exc}") from exc


def _remove_running(folder: Path) -> None:
    # After the seal is durable; a crash here leaves files that readers ignore.
    (folder / "running.json").unlink(missing_ok=True)
    trials = folder / "trials"
    if trials.is_dir():
        for path in trials.iterdir():
            path.unlink(missing_ok=True)
        trials.rmdir()


register_backend("file", FileBackend)
