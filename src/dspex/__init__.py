"""dspex: the lab notebook and debugger for DSPy programs and optimizers.

Public API (everything else is internal)::

    import dspex
    dspex.configure(store={"backend": "file", "path": "results"})
    exp = dspex.Experiment(name="arith", program=dspex.ProgramInfo(name="qa"))

See ``docs/`` for the user guide.
"""

from dspex import config
from dspex.capture.api import ExperimentRun, experiment
from dspex.capture.autolog import autolog
from dspex.config import Settings, configure, get_settings
from dspex.errors import (
    CaptureError,
    ConfigError,
    CorruptRecordError,
    DspexError,
    ExperimentNotFound,
    ImmutableRecordError,
    InvalidIdError,
    InvalidQueryError,
    StoreError,
    StoreUnavailable,
    TrialNotFound,
    UnsupportedOptimizerVersion,
    ValidationError,
    WorkerCrashed,
    WorkerError,
    WorkerStartupError,
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
    MetricStats,
    OptimizerInfo,
    PredictorVariables,
    ProgramInfo,
    Statistics,
    TraceEvent,
    Trial,
    TrialStatus,
    Variables,
    utc_now,
)
from dspex.store import ExperimentSummary, ResultStore

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
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
    "Hypothesis",
    "HypothesisStatus",
    "HypothesisType",
    "ImmutableRecordError",
    "InvalidIdError",
    "InvalidQueryError",
    "LMSettings",
    "LatencyStats",
    "MetricStats",
    "OptimizerInfo",
    "PredictorVariables",
    "ProgramInfo",
    "ResultStore",
    "Settings",
    "Statistics",
    "StoreError",
    "StoreUnavailable",
    "TraceEvent",
    "Trial",
    "TrialNotFound",
    "TrialStatus",
    "UnsupportedOptimizerVersion",
    "ValidationError",
    "Variables",
    "WorkerCrashed",
    "WorkerError",
    "WorkerStartupError",
    "__version__",
    "autolog",
    "config",
    "configure",
    "experiment",
    "get_settings",
    "new_id",
    "utc_now",
]
