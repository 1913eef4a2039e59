"""dspex: the lab notebook and debugger for DSPy programs and optimizers.

Public API (everything else is internal)::

    import dspex
    dspex.configure(store={"backend": "file", "path": "results"})
    exp = dspex.Experiment(name="arith", program=dspex.ProgramInfo(name="qa"))
    dspy.configure(lm=dspex.offline_lm())   # a deterministic LM that needs no network

See ``docs/`` for the user guide.
"""

from dspex import config, offline
from dspex.analysis import Comparison, compare, verdict_of
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
from dspex.tracking import ExperimentRun, autolog, experiment
from dspex.view import ExperimentView, TraceViewer, TrialView
from dspex.workers import TaskOutcome, WorkerInfo, WorkerPool, create_pool, current_worker

__version__ = "0.1.0"

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
    "StudyConflict",
    "StudyError",
    "StudyNotFound",
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
    "utc_now",
    "verdict_of",
]
