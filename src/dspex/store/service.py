"""The ResultStore service: one API over every backend.

    >>> import dspex
    >>> store = dspex.ResultStore.open("memory://")
    >>> exp = dspex.Experiment(name="demo", program=dspex.ProgramInfo(name="qa"),
    ...                        status="completed")
    >>> checksum = store.archive_experiment(exp)
    >>> store.get_experiment(exp.id) == exp
    True
    >>> [s.name for s in store.query_experiments({"program": "qa"})]
    ['demo']

Validation, checksums and immutability live here, once; backends only store and
find (see :mod:`dspex.store.backend`).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from dspex.config.schema import StoreSettings
from dspex.errors import (
    DspexError,
    ExperimentNotFound,
    ImmutableRecordError,
    InvalidQueryError,
    StoreError,
    StoreUnavailable,
    StudyConflict,
    StudyNotFound,
    TrialNotFound,
    ValidationError,
)
from dspex.ids import validate_id
from dspex.model import (
    Experiment,
    ExperimentStatus,
    StudyRecord,
    StudySummary,
    TraceEvent,
    Trial,
    scope_of,
    utc_now,
)
from dspex.model.eventsummary import EventSummary, summarize_events
from dspex.model.study import validate_study_name
from dspex.redact import redact_text
from dspex.store._events import EventPart
from dspex.store._summaries import event_summaries, with_summary
from dspex.store.backend import (
    BackendOptions,
    DamagedRecord,
    StoreBackend,
    backend_for_url,
    redact_url,
    store_url,
    url_hint,
)
from dspex.store.codec import encode
from dspex.store.query import MAX_LIMIT, MAX_OFFSET, ExperimentSummary, Query

__all__ = ["Page", "ResultStore", "url_from_settings"]


_F = TypeVar("_F", bound=Callable[..., Any])
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _store_failures(method: _F) -> _F:
    """Make a failure of the system under a backend (a full disk, an I/O error, SQLite
    below the file store's index) a :class:`dspex.StoreUnavailable` naming the store:
    every store failure is a :class:`dspex.StoreError`."""

    @functools.wraps(method)
    def wrapper(self: ResultStore, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise StoreUnavailable(_os_failure(self.url, exc)) from exc
        except sqlite3.Error as exc:  # the file store's index
            cause = redact_text(str(exc))
            advice = ""
            if "full" in cause or "i/o" in cause.lower():
                advice = (
                    " (the disk is full, or a size limit was reached); free space and retry: "
                    "what was written before is kept"
                )
            raise StoreUnavailable(
                f"the ResultStore at {self.url} failed: {cause}{advice}"
            ) from exc

    return cast(_F, wrapper)


def _os_failure(url: str, exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _FULL:
        return (
            f"the ResultStore at {url} cannot write: the disk is full or a size limit was "
            f"reached ({exc.strerror}{where}); free space and retry: what was written "
            "before is kept"
        )
    return f"the ResultStore at {url} failed: {exc.strerror or exc}{where}"


class Page(list[ExperimentSummary]):
    """A page of query results; ``next_cursor`` continues it (None on the last page)."""

    next_cursor: str | None = None


def url_from_settings(store: StoreSettings | None = None) -> str:
    """The store URL that the effective configuration (or ``store``) describes.

    >>> from dspex.config.schema import StoreSettings
    >>> url_from_settings(StoreSettings(backend="memory"))
    'memory://default'
    >>> url_from_settings(StoreSettings(backend="sql", url="sqlite:////tmp/runs.db"))
    'sqlite:////tmp/runs.db'
    """
    from dspex.config import get_settings

    store = store or get_settings().store
    if store.backend == "memory":
        return "memory://default"
    if store.backend == "file":
        return "file://" + str(Path(store.path).expanduser().resolve())
    assert store.url is not None  # the settings validator guarantees it
    return store.url


class ResultStore:
    """A durable, queryable record of experiments. Safe to share between threads.

    Open one with :meth:`open` (a URL, or the configured store) or use the
    process-wide :meth:`default`. Construction does no I/O; the backend opens on
    first use or on :meth:`connect`.
    """

    _default: ResultStore | None = None
    _default_lock = threading.Lock()
    _known: weakref.WeakSet[ResultStore] = weakref.WeakSet()  # for "not found" hints

    def __init__(self, backend: StoreBackend, *, read_only: bool = False) -> None:
        self._backend = backend
        self.read_only = read_only
        self._opened = False
        self._lock = threading.Lock()
        # The summary of the events appended to each running trial through this store,
        # and how many events (from the first) it covers: the seal then does not read
        # and parse them again to summarize them.
        self._appended: dict[tuple[str, str], tuple[int, EventSummary]] = {}
        self._appended_lock = threading.Lock()
        ResultStore._known.add(self)

    # -- construction -------------------------------------------------------------

    @classmethod
    def open(
        cls, url: str | None = None, *, auto_migrate: bool | None = None, read_only: bool = False
    ) -> ResultStore:
        """A store for ``url`` (``memory://``, ``file:///dir``, ``sqlite:///x.db``,
        ``postgresql://...``), or for the configured store when ``url`` is None.

        ``auto_migrate`` (default: the ``store.auto_migrate`` setting) lets the sql
        backend apply pending schema migrations when it first connects.

        ``read_only=True`` opens an existing store for reading: nothing is created or
        changed (no directory, index, lock, ``-wal``/``-shm`` file or migration), a
        missing store raises :class:`dspex.StoreUnavailable` naming the URL when it is
        first used, and writing raises :class:`dspex.StoreError`::

            >>> ResultStore.open("file:///no/such/store", read_only=True).connect()
            Traceback (most recent call last):
            ...
            dspex.errors.StoreUnavailable: no ResultStore at file:///no/such/store: ...
        """
        if auto_migrate is None:
            from dspex.config import get_settings

            auto_migrate = get_settings().store.auto_migrate
        options = BackendOptions(auto_migrate=auto_migrate and not read_only, read_only=read_only)
        location = store_url(url) if url else url_from_settings()
        return cls(backend_for_url(location, options), read_only=read_only)

    @classmethod
    def default(cls) -> ResultStore:
        """The configured store, one shared instance per process."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls.open()
            return cls._default

    @classmethod
    def reset_default(cls) -> None:
        """Close and forget the shared instance (after configure(), and in tests)."""
        with cls._default_lock:
            if cls._default is not None:
                cls._default.close()
            cls._default = None

    @property
    def url(self) -> str:
        """The backend URL, without any password."""
        return redact_url(self._backend.url)

    def connect(self) -> ResultStore:
        """Open the backend now (otherwise it opens on first use)."""
        if self._opened:
            return self
        with self._lock:
            if not self._opened:
                try:
                    self._backend.open()
                except StoreUnavailable as exc:
                    hint = url_hint(self.url)
                    if hint and hint not in str(exc):
                        raise StoreUnavailable(f"{exc}{hint}") from exc
                    raise
                except DspexError:
                    raise
                except Exception as exc:
                    raise StoreUnavailable(
                        f"cannot open the ResultStore at {self.url}: {redact_text(str(exc))}"
                        + url_hint(self.url)
                    ) from exc
                self._opened = True
        return self

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self._backend.close()
                self._opened = False

    def __enter__(self) -> ResultStore:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({self.url!r}{', read_only=True' if self.read_only else ''})"

    @property
    def backend(self) -> StoreBackend:
        return self.connect()._backend

    # -- writing ------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"the ResultStore at {self.url} was opened read-only; open it without "
                "read_only=True to write"
            )

    @_store_failures
    def start_experiment(self, experiment: Experiment) -> None:
        """Record a running experiment's header so that its trials can be written."""
        self._writable()
        _require(experiment, Experiment, "experiment")
        if experiment.status.is_final:
            raise ValidationError(
                f"experiment {experiment.id} has status {experiment.status.value!r}; "
                "start_experiment takes a designed or running experiment, "
                "archive_experiment a finished one"
            )
        self.backend.write_running(experiment.replace(trials=()))

    @_store_failures
    def record_trial(self, experiment_id: str, trial: Trial) -> None:
        """Durably add a finished trial to a running experiment."""
        self._writable()
        validate_id(experiment_id, "exp")
        _require(trial, Trial, "trial")
        if trial.experiment_id != experiment_id:
            raise ValidationError(
                f"trial {trial.id} belongs to experiment {trial.experiment_id}, not {experiment_id}"
            )
        self.backend.write_trial(experiment_id, trial)

    @_store_failures
    def archive_experiment(self, experiment: Experiment) -> str:
        """Seal a finished experiment; return its content checksum.

        Archiving identical content again changes nothing; archiving different
        content under a sealed id raises :class:`dspex.ImmutableRecordError`.
        """
        self._writable()
        _require(experiment, Experiment, "experiment")
        if not experiment.status.is_final:
            raise ValidationError(
                f"experiment {experiment.id} has status {experiment.status.value!r}; only "
                "completed, failed or interrupted experiments can be archived "
                "(use start_experiment and record_trial while it runs)"
            )
        appended = {
            trial.id: parts
            for trial in experiment.trials
            if not trial.events and (parts := self.backend.event_parts(experiment.id, trial.id))
        }
        record = encode(
            experiment,
            self.backend.part_transform,
            appended,
            joined=not self.backend.writes_pieces,
        )
        # Kept beside the record (derived data): what views need from each trial's events.
        summaries = event_summaries(experiment, appended, self._appended_summaries(experiment))
        record = dataclasses.replace(record, summaries=summaries)
        checksum = record.checksum
        outcome = self.backend.seal(record)
        if outcome.stored or outcome.existing_checksum == checksum:
            return checksum
        if not appended and any(not trial.events for trial in experiment.trials):
            # Sealed before, from trials whose events were appended: compare with those.
            checksum = encode(self._with_stored_events(experiment)).checksum
            if outcome.existing_checksum == checksum:
                return checksum
        raise ImmutableRecordError(
            f"experiment {experiment.id} is already archived with different content "
            f"({outcome.existing_checksum}, new {checksum}); archived experiments never "
            "change: archive the new content under a new id"
        )

    def _appended_summaries(self, experiment: Experiment) -> dict[str, tuple[int, EventSummary]]:
        """The summaries of the events appended through this store to ``experiment``'s
        trials (forgotten: the experiment is being sealed), with how many events each
        covers."""
        with self._appended_lock:
            return {
                trial.id: found
                for trial in experiment.trials
                if (found := self._appended.pop((experiment.id, trial.id), None)) is not None
            }

    def _note_appended(
        self, experiment_id: str, trial_id: str, first_seq: int, events: Sequence[TraceEvent]
    ) -> None:
        """Summarize the events just appended that the running summary of the trial does
        not cover yet (a replay covers none); a chunk past what this store appended
        (another process appended the rest) makes the summary unknown: the seal then
        reads the stored events."""
        key = (experiment_id, trial_id)
        with self._appended_lock:
            covered, summary = self._appended.get(key, (0, _NO_EVENTS))
            if first_seq > covered:
                self._appended.pop(key, None)
                return
            new = events[covered - first_seq :]
            if new:
                self._appended[key] = (covered + len(new), summary.then(summarize_events(new)))

    def _note_appended_parts(
        self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]
    ) -> None:
        """:meth:`_note_appended` for parts, from the summaries they carry (a part that
        overlaps what the running summary covers, or carries none, is parsed for it); a
        part past what it covers makes it unknown (the seal then reads the stored
        events)."""
        key = (experiment_id, trial_id)
        with self._appended_lock:
            covered, summary = self._appended.get(key, (0, _NO_EVENTS))
            for part in parts:
                if part.stop <= covered:
                    continue  # a replay
                if part.first > covered:
                    self._appended.pop(key, None)
                    return
                new = part.summary
                if part.first < covered or new is None:
                    events = part.events(trial_id)
                    new = summarize_events(events[covered - part.first :])
                covered, summary = part.stop, summary.then(new)
            self._appended[key] = (covered, summary)

    def _with_stored_events(self, experiment: Experiment) -> Experiment:
        trials = []
        for trial in experiment.trials:
            if not trial.events:
                events = self.backend.load_events(experiment.id, trial.id, 0, None) or []
                trial = trial.model_copy(update={"events": tuple(events)})
            trials.append(trial)
        return experiment.model_copy(update={"trials": tuple(trials)})

    @_store_failures
    def append_events(
        self, experiment_id: str, trial_id: str, first_seq: int, events: Sequence[TraceEvent]
    ) -> None:
        """Durably add events ``first_seq`` .. ``first_seq + len(events) - 1`` of a trial
        of a running experiment, before the trial itself is recorded.

        Idempotent per event: replaying a chunk, or one that overlaps what is stored,
        never duplicates (what is stored already is skipped); a chunk that starts past
        the events stored (a gap) raises :class:`dspex.ValidationError`. Record the trial
        later with ``events == ()`` (:meth:`record_trial`, :meth:`archive_experiment`):
        it then has these events, which are never needed in memory again::

            >>> from datetime import UTC, datetime
            >>> from dspex import Experiment, ProgramInfo, TraceEvent, Trial
            >>> store = ResultStore.open("memory://")
            >>> exp = Experiment(name="e", program=ProgramInfo(name="qa"), status="running")
            >>> store.start_experiment(exp)
            >>> t = datetime(2026, 1, 1, tzinfo=UTC)
            >>> trial = Trial(experiment_id=exp.id, index=0, started_at=t)
            >>> events = [TraceEvent(trial_id=trial.id, sequence=i, timestamp=t,
            ...     monotonic_ns=i, source="execution", kind="log", pid=1, worker="w")
            ...     for i in range(4)]
            >>> store.append_events(exp.id, trial.id, 0, events[:3])
            >>> store.append_events(exp.id, trial.id, 2, events[2:])  # overlaps: kept once
            >>> store.count_events(exp.id, trial.id)
            4
            >>> store.record_trial(exp.id, trial)  # events == (): the appended ones
            >>> store.get_trial(exp.id, trial.id).events == tuple(events)
            True
        """
        self._writable()
        validate_id(experiment_id, "exp")
        validate_id(trial_id, "trl")
        if isinstance(first_seq, bool) or not isinstance(first_seq, int) or first_seq < 0:
            raise ValidationError(f"first_seq must be an integer of 0 or more, not {first_seq!r}")
        events = tuple(events)
        for event in events:
            _require(event, TraceEvent, "each event")
            if event.trial_id != trial_id:
                raise ValidationError(
                    f"event {event.id} belongs to trial {event.trial_id}, not {trial_id}"
                )
        if events:
            self.backend.append_events(experiment_id, trial_id, first_seq, events)
            self._note_appended(experiment_id, trial_id, first_seq, events)

    @_store_failures
    def append_event_parts(
        self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]
    ) -> None:
        """:meth:`append_events` of events serialized already, as
        :func:`dspex.store.encode_parts` gives them: the store writes their bytes as they
        are (the journal serializes each event once, for its spool and the store alike).
        Parts must follow each other; the same idempotence as :meth:`append_events`::

            >>> from datetime import UTC, datetime
            >>> from dspex import Experiment, ProgramInfo, TraceEvent, Trial
            >>> from dspex.store import encode_parts
            >>> store = ResultStore.open("memory://")
            >>> exp = Experiment(name="e", program=ProgramInfo(name="qa"), status="running")
            >>> store.start_experiment(exp)
            >>> t = datetime(2026, 1, 1, tzinfo=UTC)
            >>> trial = Trial(experiment_id=exp.id, index=0, started_at=t)
            >>> events = [TraceEvent(trial_id=trial.id, sequence=i, timestamp=t,
            ...     monotonic_ns=i, source="execution", kind="log", pid=1, worker="w")
            ...     for i in range(3)]
            >>> store.append_event_parts(exp.id, trial.id, encode_parts(0, events))
            >>> store.read_events(exp.id, trial.id) == events
            True
        """
        self._writable()
        validate_id(experiment_id, "exp")
        validate_id(trial_id, "trl")
        parts = tuple(parts)
        for part in parts:
            if not isinstance(part, EventPart):
                raise ValidationError(
                    f"each part must be a dspex.store.EventPart, not {type(part).__name__}"
                )
            if part.first < 0 or part.count < 1 or not isinstance(part.data, bytes):
                raise ValidationError(
                    f"part of events {part.first}..{part.stop - 1} of trial {trial_id} is not "
                    "a stored part; make parts with dspex.store.encode_parts"
                )
        if parts:
            self.backend.append_parts(experiment_id, trial_id, parts)
            self._note_appended_parts(experiment_id, trial_id, parts)

    # -- reading ------------------------------------------------------------------

    @_store_failures
    def get_experiment(self, experiment_id: str, *, events: bool = True) -> Experiment:
        """The full record; raises :class:`dspex.ExperimentNotFound`.

        ``events=False``: every trial without its events (``events == ()``), which are
        not read, and with its :attr:`~dspex.Trial.event_summary` (what views need from
        them; computed from the stored events for records written before it was kept).
        An experiment page of 2,000 trials reads this way in a fraction of the time.
        """
        validate_id(experiment_id, "exp")
        if events:
            experiment = self.backend.load(experiment_id)
        else:
            experiment = self.backend.load_headers(experiment_id)
        if experiment is None:
            raise self._not_found(experiment_id)
        return experiment if events else self._summarized(experiment)

    def _summarized(self, experiment: Experiment) -> Experiment:
        """Trials read without events: those whose record kept no summary get the one of
        their stored events."""
        if all(t.event_summary is not None for t in experiment.trials):
            return experiment
        trials = []
        for trial in experiment.trials:
            if trial.event_summary is None:
                stored = self.backend.load_events(experiment.id, trial.id, 0, None) or []
                trial = with_summary(trial.model_copy(update={"events": tuple(stored)}))
                trial = trial.model_copy(update={"events": ()})
            trials.append(trial)
        return experiment.model_copy(update={"trials": tuple(trials)})

    def _not_found(self, experiment_id: str) -> ExperimentNotFound:
        return ExperimentNotFound(
            experiment_id, store=self.url, found_in=tuple(_stores_holding(experiment_id, self))
        )

    @_store_failures
    def get_trial(self, experiment_id: str, trial_id: str, *, events: bool = True) -> Trial:
        """One trial; raises ExperimentNotFound or TrialNotFound.

        ``events=False`` gives the trial without its events (``events == ()``), cheaply:
        they are not read. Page through them with :meth:`read_events`.
        """
        validate_id(experiment_id, "exp")
        validate_id(trial_id, "trl")
        if events:
            trial = self.backend.load_trial(experiment_id, trial_id)
        else:
            trial = self.backend.load_trial_header(experiment_id, trial_id)
        if trial is not None:
            return trial
        raise self._trial_not_found(experiment_id, trial_id)

    def _trial_not_found(self, experiment_id: str, trial_id: str) -> StoreError:
        if self.backend.load(experiment_id) is None:
            return self._not_found(experiment_id)
        return TrialNotFound(experiment_id, trial_id)

    @_store_failures
    def read_events(
        self, experiment_id: str, trial_id: str, offset: int = 0, limit: int | None = None
    ) -> list[TraceEvent]:
        """Events ``offset`` .. ``offset + limit - 1`` of a trial (sealed or running), in
        sequence order; all from ``offset`` on when ``limit`` is None. A page reads only
        the stored parts that hold it, not the whole trial::

            >>> from datetime import UTC, datetime
            >>> from dspex import Experiment, ProgramInfo, TraceEvent, Trial
            >>> store = ResultStore.open("memory://")
            >>> exp = Experiment(name="e", program=ProgramInfo(name="qa"), status="completed")
            >>> t = datetime(2026, 1, 1, tzinfo=UTC)
            >>> trial = Trial(experiment_id=exp.id, index=0, started_at=t)
            >>> trial = trial.replace(events=[TraceEvent(trial_id=trial.id, sequence=i,
            ...     timestamp=t, monotonic_ns=i, source="execution", kind="log", pid=1,
            ...     worker="w") for i in range(5)])
            >>> _ = store.archive_experiment(exp.replace(trials=[trial]))
            >>> [e.sequence for e in store.read_events(exp.id, trial.id, offset=1, limit=2)]
            [1, 2]
            >>> store.count_events(exp.id, trial.id)
            5

        Raises ExperimentNotFound or TrialNotFound; a negative offset or limit raises
        :class:`dspex.InvalidQueryError`.
        """
        validate_id(experiment_id, "exp")
        validate_id(trial_id, "trl")
        _check_count("offset", offset)
        if limit is not None:
            _check_count("limit", limit)
        events = self.backend.load_events(experiment_id, trial_id, offset, limit)
        if events is None:
            raise self._trial_not_found(experiment_id, trial_id)
        return events

    @_store_failures
    def count_events(self, experiment_id: str, trial_id: str) -> int:
        """How many events a trial (sealed or running) has, without reading them."""
        validate_id(experiment_id, "exp")
        validate_id(trial_id, "trl")
        count = self.backend.count_events(experiment_id, trial_id)
        if count is None:
            raise self._trial_not_found(experiment_id, trial_id)
        return count

    @_store_failures
    def query_experiments(self, filters: Mapping[str, Any] | None = None, **kw: Any) -> Page:
        """Summaries matching ``filters`` (see :data:`dspex.store.query.FILTERS`), newest first."""
        query = self._resolved(Query.parse({**(filters or {}), **kw}))
        page = Page(self.backend.query(query))
        if len(page) == query.limit:
            page.next_cursor = query.next_cursor(page[-1])
        return page

    @_store_failures
    def count_experiments(self, filters: Mapping[str, Any] | None = None, **kw: Any) -> int:
        """How many experiments match ``filters`` (limit and offset ignored)."""
        return self.backend.count(self._resolved(Query.parse({**(filters or {}), **kw})))

    def _resolved(self, query: Query) -> Query:
        """``query`` with ``scope=<experiment id>`` replaced by that experiment's score scope."""
        if query.scope_experiment is None:
            return query
        try:
            experiment = self.get_experiment(query.scope_experiment)
        except ExperimentNotFound as exc:
            raise InvalidQueryError(f"filter 'scope' names {exc}") from exc
        best = experiment.best_trial
        scope = scope_of(best) if best is not None else None
        if scope is None:
            raise InvalidQueryError(
                f"filter 'scope' names experiment {experiment.id}, which has no best score "
                "over recorded examples to compare with"
            )
        return dataclasses.replace(query, scope=scope.key, scope_experiment=None)

    @_store_failures
    def verify(self) -> list[DamagedRecord]:
        """Every sealed record checked against its checksum; the damaged ones, by id."""
        return list(self.backend.verify())

    # -- studies ------------------------------------------------------------------------

    @_store_failures
    def save_study(self, study: StudyRecord) -> StudyRecord:
        """Store ``study`` as its next revision and return what was stored.

        ``study.revision`` must be the revision it was read at (0 for a new study): when
        another process saved the study meanwhile, nothing is written and
        :class:`dspex.errors.StudyConflict` says so::

            >>> store = ResultStore.open("memory://")
            >>> first = store.save_study(StudyRecord(name="s1"))
            >>> first.revision, store.get_study("s1") == first
            (1, True)
            >>> store.save_study(StudyRecord(name="s1"))
            Traceback (most recent call last):
            ...
            dspex.errors.StudyConflict: study 's1' was saved by another process ...
        """
        self._writable()
        _require(study, StudyRecord, "study")
        previous = study.revision
        stored = study.replace(revision=previous + 1, updated_at=utc_now())
        found = self.backend.write_study(stored, previous)
        if found is None:
            return stored
        raise StudyConflict(
            f"study {study.name!r} was saved by another process since it was read "
            f"(revision {found}, read at {previous}); read it again (get_study) and retry"
        )

    @_store_failures
    def get_study(self, name: str) -> StudyRecord:
        """The study of that name; raises :class:`dspex.errors.StudyNotFound`."""
        validate_study_name(name)
        study = self.backend.load_study(name)
        if study is None:
            raise StudyNotFound(name)
        return study

    @_store_failures
    def query_studies(self, *, limit: int = 50, offset: int = 0) -> list[StudySummary]:
        """Study summaries, most recently updated first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidQueryError(
                f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}"
            )
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise InvalidQueryError(
                f"offset must be an integer from 0 to {MAX_OFFSET}, not {offset!r}"
            )
        return self.backend.list_studies(limit, offset)


_NO_EVENTS = EventSummary()


def _stores_holding(experiment_id: str, searched: ResultStore) -> list[str]:
    """Other stores this process knows of that hold ``experiment_id``: the stores it has
    opened, the configured one and ``./dspex_results``. Only stores already connected or
    on this machine are asked (a database elsewhere is never dialled for a hint)."""
    candidates: dict[str, ResultStore | None] = {
        s.url: s for s in list(ResultStore._known) if s._opened and s is not searched
    }
    for url in (_configured_url(), "file://" + str(Path(DEFAULT_PATH).resolve())):
        if url and url not in candidates and url.startswith(("file:", "sqlite:")):
            candidates[url] = None
    found = []
    for url, store in candidates.items():
        if url == searched.url or (store is None and not _exists(url)):
            continue
        try:
            other = store or ResultStore.open(url, read_only=True)
            try:
                if other.backend.load(experiment_id) is not None:
                    found.append(url)
            finally:
                if store is None:
                    other.close()
        except DspexError:
            continue
    return found


DEFAULT_PATH = "dspex_results"


def _configured_url() -> str | None:
    try:
        return url_from_settings()
    except DspexError:
        return None


def _exists(url: str) -> bool:
    from dspex.store.file import path_from_url

    if url.startswith("file:"):
        return (path_from_url(url) / "experiments").is_dir()
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0]).is_file()


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidQueryError(f"{name} must be an integer of 0 or more, not {value!r}")


def _require(value: object, kind: type, name: str) -> None:
    if not isinstance(value, kind):
        raise ValidationError(f"{name} must be a dspex.{kind.__name__}, not {type(value).__name__}")


# Status values that archive_experiment accepts, for documentation and the CLI.
FINAL_STATUSES = tuple(s for s in ExperimentStatus if s.is_final)
