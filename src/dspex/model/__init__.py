"""The dspex data model: experiments, trials and trace events, as immutable records.

Records are frozen pydantic models that round-trip through JSON with no loss and
carry a ``schema_version`` (on :class:`Experiment`). See ``docs/data-model.md``.
"""

from dspex.model._base import SCHEMA_VERSION, Record, utc_now
from dspex.model.event import EventKind, EventSource, TraceEvent
from dspex.model.experiment import (
    EnvironmentInfo,
    Experiment,
    ExperimentStatus,
    OptimizerInfo,
    ProgramInfo,
    best_trial_of,
    summarize,
)
from dspex.model.hypothesis import (
    Hypothesis,
    HypothesisStatus,
    HypothesisType,
    Verdict,
    VerdictOutcome,
)
from dspex.model.scopes import reference_scope, scope_of
from dspex.model.stats import LatencyStats, MetricStats, Statistics
from dspex.model.study import (
    StudyRecord,
    StudyStatus,
    StudySummary,
)
from dspex.model.trial import (
    ErrorInfo,
    ExampleResult,
    LMSettings,
    MetricKind,
    PredictorVariables,
    ScoreScope,
    Trial,
    TrialStatus,
    Variables,
    example_key,
    examples_fingerprint,
)

__all__ = [
    "SCHEMA_VERSION",
    "EnvironmentInfo",
    "ErrorInfo",
    "EventKind",
    "EventSource",
    "ExampleResult",
    "Experiment",
    "ExperimentStatus",
    "Hypothesis",
    "HypothesisStatus",
    "HypothesisType",
    "LMSettings",
    "LatencyStats",
    "MetricKind",
    "MetricStats",
    "OptimizerInfo",
    "PredictorVariables",
    "ProgramInfo",
    "Record",
    "ScoreScope",
    "Statistics",
    "StudyRecord",
    "StudyStatus",
    "StudySummary",
    "TraceEvent",
    "Trial",
    "TrialStatus",
    "Variables",
    "Verdict",
    "VerdictOutcome",
    "best_trial_of",
    "example_key",
    "examples_fingerprint",
    "reference_scope",
    "scope_of",
    "summarize",
    "utc_now",
]
