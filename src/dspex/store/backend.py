"""The backend contract: what a ResultStore backend must do, and the registry of backends.

The service (:class:`dspex.store.ResultStore`) validates every argument, computes
checksums and enforces immutability; a backend only stores and finds. A backend is
done when it passes the conformance suite in ``tests/store/test_conformance.py``.

Register a backend with :func:`register_backend`; :func:`backend_for_url` picks one
by URL scheme and lists the valid schemes when none fits.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dspex.errors import StoreUnavailable
from dspex.extras import require
from dspex.model import Experiment, StudyRecord, StudySummary, TraceEvent, Trial
from dspex.redact import redact_url
from dspex.store._events import EventPart, encode_parts
from dspex.store._summaries import stripped
from dspex.store.codec import EncodedRecord, PartTransform
from dspex.store.query import ExperimentSummary, Query

__all__ = [
    "BackendOptions",
    "DamagedRecord",
    "SealOutcome",
    "StoreBackend",
    "backend_for_url",
    "redact_url",
    "register_backend",
    "registered_schemes",
    "store_url",
    "url_hint",
    "study_order",
]


@dataclass(frozen=True)
class SealOutcome:
    """What :meth:`StoreBackend.seal` did: stored the record, or found one already sealed."""

    stored: bool
    existing_checksum: str | None = None


@dataclass(frozen=True)
class BackendOptions:
    """Settings a backend may use; each backend ignores what does not concern it."""

    auto_migrate: bool = True  # sql: apply pending schema migrations in open()
    read_only: bool = False
    """Never create or change anything (no directory, index, lock or journal file, no
    migration); :meth:`StoreBackend.open` raises :class:`dspex.StoreUnavailable` naming
    the URL when there is no store there. The service refuses writes."""


@dataclass(frozen=True)
class DamagedRecord:
    """A damaged record found by :meth:`StoreBackend.verify`."""

    record_id: str
    reason: str


class StoreBackend(ABC):
    """Where experiments live. Constructors are cheap: no I/O until :meth:`open`.

    Thread safety: the service calls a backend from many threads at once; file and
    SQL backends must also be safe across processes.
    """

    url: str
    part_transform: PartTransform | None = None
    """Applied to each trial's JSON while a record is encoded for :meth:`seal` (the
    results are ``record.stored``); the sql backend compresses there."""
    writes_pieces: bool = False
    """Whether :meth:`seal` takes a trial's JSON as :class:`~dspex.store._events.Pieces`
    (a trial sealed from appended parts, not joined); else every trial's is bytes."""

    @abstractmethod
    def open(self) -> None:
        """Connect and prepare (create directories, apply migrations when allowed; in
        read-only mode only connect, and fail naming the URL when no store is there)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and handles; safe to call twice."""

    @abstractmethod
    def write_running(self, experiment: Experiment) -> None:
        """Create or update the header (no trials) of an experiment that is not sealed.

        Raises :class:`dspex.ImmutableRecordError` if the id is already sealed.
        """

    @abstractmethod
    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        """Durably add a finished trial to a running experiment (idempotent per trial id).

        Raises :class:`dspex.ExperimentNotFound` if no running experiment has that id,
        :class:`dspex.ImmutableRecordError` if it is sealed.
        """

    @abstractmethod
    def seal(self, record: EncodedRecord) -> SealOutcome:
        """Atomically store the final record unless the id is already sealed.

        Either the whole record becomes visible or nothing does; the running header
        and trials of that id, if any, are replaced. Returns the existing checksum when
        the id was sealed before (the service decides what that means).
        """

    @abstractmethod
    def load(self, experiment_id: str) -> Experiment | None:
        """The full record (sealed, or running with the trials written so far)."""

    @abstractmethod
    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        """One trial with its events, without loading the rest of the experiment."""

    def append_events(
        self, experiment_id: str, trial_id: str, first_seq: int, events: Sequence[TraceEvent]
    ) -> None:
        """Durably add events ``first_seq`` .. of a trial of a running experiment (the
        trial itself may not be written yet): :meth:`append_parts` of their parts."""
        self.append_parts(experiment_id, trial_id, encode_parts(first_seq, events))

    def append_parts(self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]) -> None:
        """Durably add ``parts`` (contiguous, serialized by
        :func:`dspex.store._events.encode_parts`) to a trial of a running experiment, their
        bytes as they are. Events already stored are skipped (use
        :func:`dspex.store._events.fit_parts`); a gap raises :class:`dspex.ValidationError`.

        Raises :class:`dspex.ExperimentNotFound` if no running experiment has that id,
        :class:`dspex.ImmutableRecordError` if it is sealed.
        """
        raise StoreUnavailable(
            f"the ResultStore at {redact_url(self.url)} ({type(self).__name__}) cannot append "
            "events; record whole trials with record_trial"
        )

    def event_parts(self, experiment_id: str, trial_id: str) -> list[EventPart]:
        """The events appended to a trial of a running experiment, in order ([] when
        none, or when the experiment is sealed): what :meth:`seal` gets in their place
        when the trial is archived without events."""
        return []

    def load_headers(self, experiment_id: str) -> Experiment | None:
        """The experiment with every trial without its events (``events == ()``), with
        its :attr:`~dspex.Trial.event_summary` where the record kept one (the service
        computes the missing ones). Backends that store events apart do not read them."""
        experiment = self.load(experiment_id)
        return None if experiment is None else stripped(experiment)

    def load_trial_header(self, experiment_id: str, trial_id: str) -> Trial | None:
        """One trial without its events (``events == ()``); backends that store events
        apart from the header do not read them."""
        trial = self.load_trial(experiment_id, trial_id)
        return None if trial is None else trial.model_copy(update={"events": ()})

    def load_events(
        self, experiment_id: str, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent] | None:
        """Events ``offset`` .. ``offset + limit - 1`` of a trial in sequence order (all
        from ``offset`` when ``limit`` is None), or None when there is no such trial.
        Backends that store events in parts read only the parts the range needs."""
        trial = self.load_trial(experiment_id, trial_id)
        if trial is None:
            return None
        stop = None if limit is None else offset + limit
        return list(trial.events[offset:stop])

    def count_events(self, experiment_id: str, trial_id: str) -> int | None:
        """How many events a trial has, or None when there is no such trial."""
        trial = self.load_trial(experiment_id, trial_id)
        return None if trial is None else len(trial.events)

    @abstractmethod
    def query(self, query: Query) -> list[ExperimentSummary]:
        """Summaries that match, in the query's order, one page."""

    @abstractmethod
    def count(self, query: Query) -> int:
        """How many experiments match (paging ignored)."""

    @abstractmethod
    def verify(self) -> Iterator[DamagedRecord]:
        """Check every sealed record against its checksum; yield what is damaged."""

    # -- studies: one changing record per study, next to its cells' experiments --------

    @abstractmethod
    def write_study(self, study: StudyRecord, previous_revision: int) -> int | None:
        """Store ``study`` if the stored study of that name has revision
        ``previous_revision`` (0: none is stored); atomically, whole or not at all.

        Returns None when stored, else the revision found (the service raises
        :class:`dspex.errors.StudyConflict`). ``study.revision`` is already the new one.
        """

    @abstractmethod
    def load_study(self, name: str) -> StudyRecord | None:
        """The study of that name; :class:`dspex.CorruptRecordError` when it is damaged."""

    @abstractmethod
    def list_studies(self, limit: int, offset: int) -> list[StudySummary]:
        """Summaries of the stored studies, most recently updated first (ties by name)."""


def study_order(summary: StudySummary) -> tuple[float, str]:
    """The order of :meth:`StoreBackend.list_studies`: most recently updated first, then
    by name."""
    return (-summary.updated_at.timestamp(), summary.name)


BackendFactory = Callable[[str, BackendOptions], StoreBackend]
_REGISTRY: dict[str, BackendFactory] = {}

#: the built-in backends: scheme -> (module that registers it, extra that module needs).
#: A module is imported when its scheme is first used, so that opening a file store
#: never imports SQLAlchemy, and a missing extra is named only to whoever needs it.
_BUILTIN: dict[str, tuple[str, str | None]] = {
    "memory": ("dspex.store.memory", None),
    "file": ("dspex.store.file", None),
    "sqlite": ("dspex.store.sql", "sql"),
    "postgresql": ("dspex.store.sql", "postgres"),
    "postgres": ("dspex.store.sql", "postgres"),
}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make ``scheme://`` URLs open with ``factory(url, options)``."""
    _REGISTRY[scheme] = factory


def registered_schemes() -> list[str]:
    return sorted({*_REGISTRY, *_BUILTIN})


def _factory(scheme: str) -> BackendFactory | None:
    if scheme not in _REGISTRY and scheme in _BUILTIN:
        module, extra = _BUILTIN[scheme]
        if extra is None:
            importlib.import_module(module)
        else:
            require("sqlalchemy", extra, f"a {scheme}:// ResultStore")
            importlib.import_module(module)
    return _REGISTRY.get(scheme)


def store_url(location: str) -> str:
    """``location`` as a store URL: a URL as it is, a plain directory path (``results``,
    ``~/runs``, ``/data/dspex``) as the file store there.

    >>> store_url("memory://x")
    'memory://x'
    >>> store_url("/data/dspex")
    'file:///data/dspex'
    """
    if "://" in location or location.startswith(("memory:", "sqlite:", "postgres")):
        return location
    return Path(location).expanduser().resolve().as_uri()


def url_hint(url: str) -> str:
    """What a store URL that failed to open probably meant, or ``""``.

    >>> print(url_hint("sqlite:///tmp/x.db"))  # doctest: +ELLIPSIS
    ; sqlite:///tmp/x.db is the path tmp/x.db relative to ...: for /tmp/x.db write
    sqlite:////tmp/x.db (four slashes)
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return ""
    relative = url[len(prefix) :].split("?", 1)[0]
    if not relative or not Path("/", relative).parent.is_dir():
        return ""
    return (
        f"; {url} is the path {relative} relative to {Path.cwd()}: for /{relative} write "
        f"sqlite:////{relative} (four slashes)"
    )


def backend_for_url(url: str, options: BackendOptions | None = None) -> StoreBackend:
    """The backend for ``url`` (``memory://``, ``file:///path``, ``sqlite:///x.db``, ...)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0] if ":" in url else ""
    factory = _factory(scheme)
    if factory is None:
        raise StoreUnavailable(
            f"no ResultStore backend for URL {redact_url(url)!r}; valid schemes: "
            + ", ".join(f"{s}://" for s in registered_schemes())
        )
    return factory(url, options or BackendOptions())
