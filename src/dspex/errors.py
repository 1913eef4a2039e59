"""The one exception tree of dspex.

Every error dspex raises on purpose is a :class:`DspexError`, so callers can catch
``dspex.DspexError`` and know they caught ours::

    DspexError
    ├── ConfigError                  a setting is unknown, of the wrong type, or out of range
    ├── ValidationError              a record or an argument is malformed (also a ValueError)
    │   └── InvalidIdError           an id is not a dspex id of the expected kind
    ├── StoreError                   the ResultStore could not do what was asked
    │   ├── StoreUnavailable         the backend cannot be reached or opened
    │   ├── ExperimentNotFound       no experiment with that id (also a KeyError)
    │   ├── TrialNotFound            no trial with that id in that experiment (also a KeyError)
    │   ├── ImmutableRecordError     a sealed experiment would be changed
    │   ├── InvalidQueryError        an unknown filter key or a bad filter value
    │   ├── CorruptRecordError       a stored record fails its checksum or does not parse
    │   ├── StudyNotFound            no study of that name (also a KeyError)
    │   └── StudyConflict            another process saved the study since it was read
    ├── AnalysisError                statistics or a table could not be made as asked
    │   └── NotComparableError       two scores are over different examples or metrics
    ├── CaptureError                 instrumentation could not record a run
    │   └── UnsupportedOptimizerVersion  (capture.strict) an optimizer's internals moved or changed
    ├── ExportError                  an experiment could not leave dspex (receiver, file)
    ├── MissingExtraError            a feature needs an optional extra that is not installed
    ├── StudyError                   a study could not run as asked (another runner holds it...)
    │   └── StudySpecError           a study spec has errors (all of them, each with its key)
    └── WorkerError                  a worker pool could not start, run or stop work
        ├── WorkerStartupError       workers were not ready in time (names the ones that were not)
        ├── WorkerCrashed            a worker died while it held work
        └── WorkerTimeout            a worker held one item past workers.task_timeout

Messages name the thing, the value, and what to do. Causes are chained with
``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "CaptureError",
    "ConfigError",
    "CorruptRecordError",
    "DspexError",
    "ExperimentNotFound",
    "ExportError",
    "ImmutableRecordError",
    "InvalidIdError",
    "InvalidQueryError",
    "MissingExtraError",
    "NotComparableError",
    "StoreError",
    "StoreUnavailable",
    "StudyConflict",
    "StudyError",
    "StudyNotFound",
    "StudySpecError",
    "TrialNotFound",
    "UnsupportedOptimizerVersion",
    "ValidationError",
    "WorkerCrashed",
    "WorkerError",
    "WorkerStartupError",
    "WorkerTimeout",
]


class DspexError(Exception):
    """Root of every error dspex raises on purpose."""


class ConfigError(DspexError):
    """A setting is unknown, malformed or out of range.

    ``source`` names where the bad value came from (a file path, an environment
    variable, ``configure()``), ``key`` the dotted setting name.
    """

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        super().__init__(message)
        self.key = key
        self.source = source


class ValidationError(DspexError, ValueError):
    """A record or an argument is malformed."""


class InvalidIdError(ValidationError):
    """An id is not a dspex id of the expected kind."""


class StoreError(DspexError):
    """The ResultStore could not do what was asked."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or opened (the URL is named without its password)."""


class ExperimentNotFound(StoreError, KeyError):
    """No experiment with that id. ``store`` is the URL searched (None: not known here),
    ``found_in`` the other known stores that hold the id."""

    def __init__(
        self, experiment_id: str, *, store: str | None = None, found_in: tuple[str, ...] = ()
    ):
        where = store or "this store"
        message = f"no experiment with id {experiment_id!r} in {where}"
        if found_in:
            message += f"; {' and '.join(found_in)} {'holds' if len(found_in) == 1 else 'hold'}"
            message += f" it: open that store (--store {found_in[0]} on the command line)"
        super().__init__(message)
        self.experiment_id = experiment_id
        self.store = store
        self.found_in = found_in

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class TrialNotFound(StoreError, KeyError):
    """No trial with that id in that experiment."""

    def __init__(self, experiment_id: str, trial_id: str, *, message: str | None = None):
        super().__init__(
            message or f"no trial with id {trial_id!r} in experiment {experiment_id!r}"
        )
        self.experiment_id = experiment_id
        self.trial_id = trial_id

    def __str__(self) -> str:
        return str(self.args[0])


class ImmutableRecordError(StoreError):
    """A sealed experiment would be changed."""


class InvalidQueryError(StoreError, ValueError):
    """An unknown filter key or a bad filter value."""


class CorruptRecordError(StoreError):
    """A stored record fails its checksum or does not parse."""

    def __init__(self, record_id: str, reason: str):
        super().__init__(f"record {record_id!r} is damaged: {reason}")
        self.record_id = record_id
        self.reason = reason


class StudyNotFound(StoreError, KeyError):
    """No study of that name."""

    def __init__(self, name: str):
        super().__init__(f"no study named {name!r} in this store (dspex study ls lists them)")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class StudyConflict(StoreError):
    """A study was saved by another process since this one read it (its revision moved)."""


class AnalysisError(DspexError):
    """Statistics, a comparison or a table could not be made as asked (a missing optional
    dependency says which extra to install)."""


class NotComparableError(AnalysisError, ValueError):
    """Two scores were measured on different example sets, or with different metrics.

    Scores mean something only next to scores over the same examples; the message names
    both sets and what to do (evaluate both programs on one set).
    """


class CaptureError(DspexError):
    """Instrumentation could not record a run."""


class UnsupportedOptimizerVersion(CaptureError):
    """An optimizer's internals are not where capture expects them.

    Raised instead of silently recording less when DSPy moves a function or an
    attribute that an optimizer wrapper relies on.
    """


class ExportError(DspexError):
    """An experiment could not be exported: the receiver refused or could not be reached,
    or the file could not be written."""


class MissingExtraError(DspexError, ImportError):
    """A feature needs an optional part of dspex that is not installed; the message says
    which extra brings it (``pip install 'dspex[sql]'``). Raised by
    :func:`dspex.extras.require`, the one place that asks for an extra."""

    def __init__(self, message: str, *, extra: str, module: str) -> None:
        super().__init__(message, name=module)
        self.extra = extra


class StudyError(DspexError):
    """A study could not run as asked: another runner holds it, its spec changed under its
    name, or its cells cannot reach the store."""


class StudySpecError(StudyError, ValueError):
    """A study spec has errors. ``problems`` lists every one as ``(location, message)``
    (``arms.simba.options.max_step``), all found before anything runs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class WorkerError(DspexError):
    """A worker pool could not start, run or stop work."""


class WorkerStartupError(WorkerError):
    """Workers were not ready within ``workers.pool_startup_timeout``.

    ``workers`` names the workers that were not ready (``("worker-2", "worker-4")``).
    """

    def __init__(self, message: str, *, workers: tuple[str, ...] = ()):
        super().__init__(message)
        self.workers = workers


class WorkerCrashed(WorkerError):
    """A worker died while it held work."""


class WorkerTimeout(WorkerError, TimeoutError):
    """A worker held one item longer than ``workers.task_timeout``; it was replaced."""
