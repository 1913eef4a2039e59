"""dspex: the lab notebook and debugger for DSPy programs and optimizers.

Public API (everything else is internal)::

    import dspex
    dspex.configure(store={"backend": "file", "path": "results"})
    exp = dspex.Experiment(name="arith", program=dspex.ProgramInfo(name="qa"))
    dspy.configure(lm=dspex.offline_lm())   # a deterministic LM that needs no network

See ``docs/`` for the user guide.

``import dspex`` is cheap: each name below is imported from its home module on first
use (PEP 562), so that a command that lists experiments never imports DSPy, and
``dspex --help`` imports almost nothing.
"""

import importlib
from typing import TYPE_CHECKING, Any

from dspex._version import __version__

if TYPE_CHECKING:
    from dspex import config, offline
    from dspex.analysis import Comparison, compare, verdict_of
    from dspex.capture import retrieval, retriever
    from dspex.config import Settings, configure, get_settings
    from dspex.errors import (
        AnalysisError,
        CaptureError,
        ConfigError,
        CorruptRecordError,
        DspexError,
        ExperimentNotFound,
        ExportError,
        ImmutableRecordError,
        InvalidIdError,
        InvalidQueryError,
        MissingExtraError,
        NotComparableError,
        StoreError,
        StoreUnavailable,
        StudyConflict,
        StudyError,
        StudyNotFound,
        StudySpecError,
        TrialNotFound,
        UnsupportedOptimizerVersion,
        ValidationError,
        WorkerCrashed,
        WorkerError,
        WorkerStartupError,
        WorkerTimeout,
    )
    from dspex.harness import EvaluationHarness
    from dspex.ids import new_id
    from dspex.journal import ExperimentJournal
    from dspex.model import (
        EnvironmentInfo,
        ErrorInfo,
        EventKind,
        EventSource,
        ExampleResult,
        Experiment,
        ExperimentStatus,
        Hypothesis,
        HypothesisStatus,
        HypothesisType,
        LatencyStats,
        LMSettings,
        MetricKind,
        MetricStats,
        OptimizerInfo,
        PredictorVariables,
        ProgramInfo,
        ScoreScope,
        Statistics,
        TraceEvent,
        Trial,
        TrialStatus,
        Variables,
        Verdict,
        VerdictOutcome,
        utc_now,
    )
    from dspex.offline import OfflineEngine, offline_lm
    from dspex.store import ExperimentSummary, ResultStore
    from dspex.study import Study, StudyResults
    from dspex.tracking.autolog import autolog
    from dspex.tracking.experiment import ExperimentRun, experiment
    from dspex.view import ExperimentView, TraceViewer, TrialView
    from dspex.workers import TaskOutcome, WorkerInfo, WorkerPool, create_pool, current_worker

__all__ = [
    "AnalysisError",
    "CaptureError",
    "Comparison",
    "ConfigError",
    "CorruptRecordError",
    "DspexError",
    "EnvironmentInfo",
    "ErrorInfo",
    "EvaluationHarness",
    "EventKind",
    "EventSource",
    "ExampleResult",
    "Experiment",
    "ExperimentJournal",
    "ExperimentNotFound",
    "ExperimentRun",
    "ExperimentStatus",
    "ExperimentSummary",
    "ExperimentView",
    "ExportError",
    "Hypothesis",
    "HypothesisStatus",
    "HypothesisType",
    "ImmutableRecordError",
    "InvalidIdError",
    "InvalidQueryError",
    "LMSettings",
    "LatencyStats",
    "MetricKind",
    "MetricStats",
    "MissingExtraError",
    "NotComparableError",
    "OfflineEngine",
    "OptimizerInfo",
    "PredictorVariables",
    "ProgramInfo",
    "ResultStore",
    "ScoreScope",
    "Settings",
    "Statistics",
    "StoreError",
    "StoreUnavailable",
    "Study",
    "StudyConflict",
    "StudyError",
    "StudyNotFound",
    "StudyResults",
    "StudySpecError",
    "TaskOutcome",
    "TraceEvent",
    "TraceViewer",
    "Trial",
    "TrialNotFound",
    "TrialStatus",
    "TrialView",
    "UnsupportedOptimizerVersion",
    "ValidationError",
    "Variables",
    "Verdict",
    "VerdictOutcome",
    "WorkerCrashed",
    "WorkerError",
    "WorkerInfo",
    "WorkerPool",
    "WorkerStartupError",
    "WorkerTimeout",
    "__version__",
    "autolog",
    "compare",
    "config",
    "configure",
    "create_pool",
    "current_worker",
    "experiment",
    "get_settings",
    "new_id",
    "offline",
    "offline_lm",
    "retrieval",
    "retriever",
    "utc_now",
    "verdict_of",
]

#: where each public name lives; ``config`` and ``offline`` are subpackages
_HOMES: dict[str, str] = {
    "AnalysisError": "dspex.errors",
    "autolog": "dspex.tracking",
    "retrieval": "dspex.capture",
    "retriever": "dspex.capture",
    "CaptureError": "dspex.errors",
    "compare": "dspex.analysis",
    "Comparison": "dspex.analysis",
    "config": "dspex.config",
    "ConfigError": "dspex.errors",
    "configure": "dspex.config",
    "CorruptRecordError": "dspex.errors",
    "create_pool": "dspex.workers",
    "current_worker": "dspex.workers",
    "DspexError": "dspex.errors",
    "EnvironmentInfo": "dspex.model",
    "ErrorInfo": "dspex.model",
    "EvaluationHarness": "dspex.harness",
    "EventKind": "dspex.model",
    "EventSource": "dspex.model",
    "ExampleResult": "dspex.model",
    "Experiment": "dspex.model",
    "experiment": "dspex.tracking",
    "ExperimentJournal": "dspex.journal",
    "ExperimentNotFound": "dspex.errors",
    "ExperimentRun": "dspex.tracking",
    "ExperimentStatus": "dspex.model",
    "ExperimentSummary": "dspex.store",
    "ExperimentView": "dspex.view",
    "ExportError": "dspex.errors",
    "get_settings": "dspex.config",
    "Hypothesis": "dspex.model",
    "HypothesisStatus": "dspex.model",
    "HypothesisType": "dspex.model",
    "ImmutableRecordError": "dspex.errors",
    "InvalidIdError": "dspex.errors",
    "InvalidQueryError": "dspex.errors",
    "LatencyStats": "dspex.model",
    "LMSettings": "dspex.model",
    "MetricKind": "dspex.model",
    "MetricStats": "dspex.model",
    "MissingExtraError": "dspex.errors",
    "new_id": "dspex.ids",
    "NotComparableError": "dspex.errors",
    "offline": "dspex.offline",
    "offline_lm": "dspex.offline",
    "OfflineEngine": "dspex.offline",
    "OptimizerInfo": "dspex.model",
    "PredictorVariables": "dspex.model",
    "ProgramInfo": "dspex.model",
    "ResultStore": "dspex.store",
    "ScoreScope": "dspex.model",
    "Settings": "dspex.config",
    "Statistics": "dspex.model",
    "StoreError": "dspex.errors",
    "StoreUnavailable": "dspex.errors",
    "Study": "dspex.study",
    "StudyConflict": "dspex.errors",
    "StudyError": "dspex.errors",
    "StudyNotFound": "dspex.errors",
    "StudyResults": "dspex.study",
    "StudySpecError": "dspex.errors",
    "TaskOutcome": "dspex.workers",
    "TraceEvent": "dspex.model",
    "TraceViewer": "dspex.view",
    "Trial": "dspex.model",
    "TrialNotFound": "dspex.errors",
    "TrialStatus": "dspex.model",
    "TrialView": "dspex.view",
    "UnsupportedOptimizerVersion": "dspex.errors",
    "utc_now": "dspex.model",
    "ValidationError": "dspex.errors",
    "Variables": "dspex.model",
    "Verdict": "dspex.model",
    "verdict_of": "dspex.analysis",
    "VerdictOutcome": "dspex.model",
    "WorkerCrashed": "dspex.errors",
    "WorkerError": "dspex.errors",
    "WorkerInfo": "dspex.workers",
    "WorkerPool": "dspex.workers",
    "WorkerStartupError": "dspex.errors",
    "WorkerTimeout": "dspex.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dspex' has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if home == f"dspex.{name}" else getattr(module, name)
    globals()[name] = value  # the next access is a plain attribute read
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
