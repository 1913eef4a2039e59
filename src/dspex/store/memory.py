"""The in-memory backend: the library default and the official test double.

Records are kept as JSON bytes, not live objects, so nothing a caller holds can
change what the store returns. Stores opened with the same ``memory://name`` URL in
one process share their records; ``memory://`` alone is private to its store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from dspex.errors import ExperimentNotFound, ImmutableRecordError
from dspex.model import Experiment, StudyRecord, StudySummary, Trial
from dspex.store._catalog import Catalog
from dspex.store.backend import (
    BackendOptions,
    DamagedRecord,
    SealOutcome,
    StoreBackend,
    register_backend,
    study_order,
)
from dspex.store.codec import EncodedRecord, sha256
from dspex.store.query import ExperimentSummary, Query, summary_of

__all__ = ["MemoryBackend"]


@dataclass
class _Entry:
    header: bytes  # the experiment without trials (running) or the whole record (sealed)
    trials: dict[str, bytes] = field(default_factory=dict)
    checksum: str | None = None  # set once sealed
    spans: tuple[tuple[str, int, int], ...] = ()  # where each sealed trial sits in header


@dataclass
class _Space:
    lock: threading.RLock = field(default_factory=threading.RLock)
    entries: dict[str, _Entry] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=Catalog)  # the summaries, in query order
    studies: dict[str, tuple[bytes, StudySummary]] = field(default_factory=dict)


_NAMED: dict[str, _Space] = {}
_NAMED_LOCK = threading.Lock()


class MemoryBackend(StoreBackend):
    """Experiments in a dict, guarded by one lock."""

    def __init__(self, url: str = "memory://", options: BackendOptions | None = None) -> None:
        self.url = url
        self.read_only = (options or BackendOptions()).read_only
        self._name = url.removeprefix("memory://").strip("/")
        self._space: _Space | None = None

    def open(self) -> None:
        if self._space is not None:
            return
        if not self._name:
            self._space = _Space()
            return
        with _NAMED_LOCK:
            if self.read_only and self._name not in _NAMED:
                self._space = _Space()  # empty; reading registers no store of that name
                return
            self._space = _NAMED.setdefault(self._name, _Space())

    def close(self) -> None:
        """Nothing to release; records stay until the process ends."""

    @property
    def _s(self) -> _Space:
        if self._space is None:
            self.open()
        assert self._space is not None
        return self._space

    def write_running(self, experiment: Experiment) -> None:
        header = experiment.replace(trials=())
        with self._s.lock:
            entry = self._s.entries.get(experiment.id)
            if entry is not None and entry.checksum is not None:
                raise ImmutableRecordError(f"experiment {experiment.id!r} is sealed")
            if entry is None:
                entry = self._s.entries[experiment.id] = _Entry(header.to_json_bytes())
            entry.header = header.to_json_bytes()
            self._s.catalog.put(summary_of(self._assemble(entry), sealed=False, checksum=None))

    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            if entry is None:
                raise ExperimentNotFound(experiment_id)
            if entry.checksum is not None:
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            entry.trials[trial.id] = trial.to_json_bytes()
            self._s.catalog.put(summary_of(self._assemble(entry), sealed=False, checksum=None))

    def seal(self, record: EncodedRecord) -> SealOutcome:
        with self._s.lock:
            entry = self._s.entries.get(record.id)
            if entry is not None and entry.checksum is not None:
                return SealOutcome(stored=False, existing_checksum=entry.checksum)
            self._s.entries[record.id] = _Entry(
                header=record.body, checksum=record.checksum, spans=tuple(record.spans)
            )
            self._s.catalog.put(record.summary)
            return SealOutcome(stored=True)

    def _assemble(self, entry: _Entry) -> Experiment:
        experiment = Experiment.from_json(entry.header)
        if entry.checksum is not None or not entry.trials:
            return experiment
        trials = sorted((Trial.from_json(t) for t in entry.trials.values()), key=lambda t: t.index)
        return experiment.replace(trials=tuple(trials))

    def load(self, experiment_id: str) -> Experiment | None:
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            return None if entry is None else self._assemble(entry)

    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            if entry is None:
                return None
            if entry.checksum is not None:  # sealed: parse just that trial's bytes
                for tid, start, end in entry.spans:
                    if tid == trial_id:
                        return Trial.from_json(entry.header[start:end])
                return None
            data = entry.trials.get(trial_id)
        return None if data is None else Trial.from_json(data)

    def query(self, query: Query) -> list[ExperimentSummary]:
        with self._s.lock:
            return self._s.catalog.query(query)

    def count(self, query: Query) -> int:
        with self._s.lock:
            return self._s.catalog.count(query)

    def bulk_load(self, summaries: list[ExperimentSummary]) -> None:
        """Sealed summaries without records, for query benchmarks."""
        with self._s.lock:
            for summary in summaries:
                self._s.entries[summary.id] = _Entry(header=b"{}", checksum=summary.checksum)
                self._s.catalog.put(summary)

    def verify(self) -> Iterator[DamagedRecord]:
        with self._s.lock:
            sealed = [(i, e) for i, e in self._s.entries.items() if e.checksum is not None]
        for experiment_id, entry in sealed:
            if sha256(entry.header) != entry.checksum:
                yield DamagedRecord(experiment_id, "content does not match its checksum")

    def write_study(self, study: StudyRecord, previous_revision: int) -> int | None:
        data = study.to_json_bytes()
        with self._s.lock:
            stored = self._s.studies.get(study.name)
            found = stored[1].revision if stored else 0
            if found != previous_revision:
                return found
            self._s.studies[study.name] = (data, study.summary())
            return None

    def load_study(self, name: str) -> StudyRecord | None:
        with self._s.lock:
            stored = self._s.studies.get(name)
        return None if stored is None else StudyRecord.from_json(stored[0])

    def list_studies(self, limit: int, offset: int) -> list[StudySummary]:
        with self._s.lock:
            summaries = sorted(
                (summary for _, summary in self._s.studies.values()), key=study_order
            )
        return summaries[offset : offset + limit]


register_backend("memory", MemoryBackend)
