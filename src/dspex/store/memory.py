"""The in-memory backend: the library default and the official test double.

Records are kept as JSON bytes, not live objects, so nothing a caller holds can
change what the store returns. Stores opened with the same ``memory://name`` URL in
one process share their records; ``memory://`` alone is private to its store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dspex.errors import ExperimentNotFound, ImmutableRecordError
from dspex.model import Experiment, StudyRecord, StudySummary, TraceEvent, Trial
from dspex.store._catalog import Catalog
from dspex.store._events import (
    EventIndex,
    EventPart,
    fit_parts,
    parse_experiment,
    parse_trial,
    read_parts,
    splice_parts,
    stored_count,
    trial_json,
)
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
    trials: dict[str, tuple[bytes, EventIndex | None]] = field(default_factory=dict)
    checksum: str | None = None  # set once sealed
    # where each sealed trial sits in header, and its events in its JSON
    spans: dict[str, tuple[int, int, EventIndex | None]] = field(default_factory=dict)
    summary: ExperimentSummary | None = None  # a running one's, without its trial count
    parts: dict[str, list[EventPart]] = field(default_factory=dict)  # appended events


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
            entry.summary = summary_of(header, sealed=False, checksum=None)
            self._put_running_summary(entry)

    def _put_running_summary(self, entry: _Entry) -> None:
        # As the file and sql backends: the header's summary with the count of trials
        # written, in constant time (not every trial parsed again on each write).
        assert entry.summary is not None
        count = len(entry.trials)
        summary = entry.summary
        if summary.trial_count != count:
            summary = summary.model_copy(update={"trial_count": count})
        self._s.catalog.put(summary)

    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        data, _, index = trial_json(trial)
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            if entry is None:
                raise ExperimentNotFound(experiment_id)
            if entry.checksum is not None:
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            entry.trials[trial.id] = (data, index)
            self._put_running_summary(entry)

    def _running(self, experiment_id: str) -> _Entry:
        entry = self._s.entries.get(experiment_id)
        if entry is None:
            raise ExperimentNotFound(experiment_id)
        if entry.checksum is not None:
            raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
        return entry

    def append_parts(self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]) -> None:
        with self._s.lock:
            stored = self._running(experiment_id).parts.setdefault(trial_id, [])
            where = f"trial {trial_id} of experiment {experiment_id}"
            stored.extend(fit_parts(stored_count(stored), parts, trial_id, where))

    def event_parts(self, experiment_id: str, trial_id: str) -> list[EventPart]:
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            if entry is None or entry.checksum is not None:
                return []
            return list(entry.parts.get(trial_id, ()))

    def seal(self, record: EncodedRecord) -> SealOutcome:
        with self._s.lock:
            entry = self._s.entries.get(record.id)
            if entry is not None and entry.checksum is not None:
                return SealOutcome(stored=False, existing_checksum=entry.checksum)
            indexes = record.events or (None,) * len(record.trials)
            spans = {
                tid: (start, end, index)
                for (tid, start, end), index in zip(record.spans, indexes, strict=True)
            }
            self._s.entries[record.id] = _Entry(
                header=record.body, checksum=record.checksum, spans=spans
            )
            self._s.catalog.put(record.summary)
            return SealOutcome(stored=True)

    def _assemble(self, entry: _Entry) -> Experiment:
        if entry.checksum is not None and entry.spans:
            body = memoryview(entry.header)
            spans = list(entry.spans.values())
            header = bytes(body[: spans[0][0]]) + bytes(body[spans[-1][1] :])
            return parse_experiment(header, [(body[a:b], index) for a, b, index in spans])
        experiment = Experiment.from_json(entry.header)
        if entry.checksum is not None or not entry.trials:
            return experiment
        trials = []
        for trial_id, (data, index) in entry.trials.items():
            parts = entry.parts.get(trial_id)
            if parts and index is not None and not index.count:
                data, index = splice_parts(data, index.at, parts)
            trials.append(parse_trial(data, index))
        return experiment.replace(trials=tuple(sorted(trials, key=lambda t: t.index)))

    def load(self, experiment_id: str) -> Experiment | None:
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            return None if entry is None else self._assemble(entry)

    def _trial_bytes(
        self, experiment_id: str, trial_id: str
    ) -> tuple[bytes | memoryview, EventIndex | None] | list[EventPart] | None:
        """A trial's JSON and where its events are; for a running trial only appended
        to so far, its parts; None when there is no such trial."""
        with self._s.lock:
            entry = self._s.entries.get(experiment_id)
            if entry is None:
                return None
            if entry.checksum is not None:  # sealed: just that trial's bytes
                span = entry.spans.get(trial_id)
                if span is None:
                    return None
                start, end, index = span
                return memoryview(entry.header)[start:end], index
            stored = entry.trials.get(trial_id)
            parts = entry.parts.get(trial_id)
            if not parts:
                return stored
            if stored is None:
                return list(parts)
            data, index = stored
            if index is None or index.count:  # recorded with its own events: those
                return stored
            return splice_parts(data, index.at, parts)

    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        found = self._trial_bytes(experiment_id, trial_id)
        if found is None or isinstance(found, list):
            return None
        return parse_trial(found[0], found[1])

    def load_trial_header(self, experiment_id: str, trial_id: str) -> Trial | None:
        found = self._trial_bytes(experiment_id, trial_id)
        if found is None or isinstance(found, list):
            return None
        return parse_trial(found[0], found[1], events=False)

    def load_events(
        self, experiment_id: str, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent] | None:
        found = self._trial_bytes(experiment_id, trial_id)
        if found is None:
            return None
        if isinstance(found, list):
            spans = [(p.first, p.count) for p in found]
            return read_parts(spans, lambda k: found[k].data, trial_id, offset, limit)
        data, index = found
        if index is None:
            return super().load_events(experiment_id, trial_id, offset, limit)
        return index.read(data, trial_id, offset, limit)

    def count_events(self, experiment_id: str, trial_id: str) -> int | None:
        found = self._trial_bytes(experiment_id, trial_id)
        if found is None:
            return None
        if isinstance(found, list):
            return stored_count(found)
        if found[1] is None:
            return super().count_events(experiment_id, trial_id)
        return found[1].count

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
