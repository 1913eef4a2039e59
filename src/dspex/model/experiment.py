"""Experiments: a program, optionally an optimizer, and the trials they produced."""

from __future__ import annotations

import math
import platform
from enum import StrEnum

from pydantic import Field, model_validator

from dspex.ids import new_id
from dspex.model._base import (
    SCHEMA_VERSION,
    ExperimentId,
    JsonDict,
    Record,
    TrialId,
    UtcDatetime,
    utc_now,
)
from dspex.model.hypothesis import Hypothesis
from dspex.model.stats import LatencyStats, MetricStats, Statistics
from dspex.model.trial import Trial, TrialStatus

__all__ = [
    "EnvironmentInfo",
    "Experiment",
    "ExperimentStatus",
    "OptimizerInfo",
    "ProgramInfo",
    "summarize",
]


class ExperimentStatus(StrEnum):
    DESIGNED = "designed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self in (self.COMPLETED, self.FAILED, self.INTERRUPTED)


class ProgramInfo(Record):
    """The DSPy program under study: a name and its class path (``myapp.qa.QA``)."""

    name: str = Field(min_length=1)
    class_path: str = ""


class OptimizerInfo(Record):
    """The optimizer that produced the trials, and its settings."""

    name: str = Field(min_length=1)
    settings: JsonDict = Field(default_factory=dict)


class EnvironmentInfo(Record):
    """Versions and the effective dspex configuration when the experiment ran."""

    dspex_version: str = ""
    dspy_version: str = ""
    python_version: str = Field(default_factory=platform.python_version)
    platform: str = Field(default_factory=platform.platform)
    config: JsonDict = Field(default_factory=dict)

    @classmethod
    def current(cls, config: JsonDict | None = None) -> EnvironmentInfo:
        """The environment of this process (reads installed package versions only)."""
        from importlib.metadata import PackageNotFoundError, version

        def _version(package: str) -> str:
            try:
                return version(package)
            except PackageNotFoundError:
                return ""

        return cls(
            dspex_version=_version("dspex"),
            dspy_version=_version("dspy"),
            config=config or {},
        )


class Experiment(Record):
    """One experiment: immutable once archived, JSON round-trippable.

    >>> from dspex import Experiment, ProgramInfo
    >>> exp = Experiment(name="arith", program=ProgramInfo(name="qa"))
    >>> exp.status
    <ExperimentStatus.DESIGNED: 'designed'>
    """

    schema_version: int = SCHEMA_VERSION
    id: ExperimentId = Field(default_factory=lambda: new_id("exp"))
    name: str = Field(min_length=1)
    hypothesis: Hypothesis | None = None
    program: ProgramInfo
    optimizer: OptimizerInfo | None = None
    status: ExperimentStatus = ExperimentStatus.DESIGNED
    created_at: UtcDatetime = Field(default_factory=utc_now)
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    environment: EnvironmentInfo = Field(default_factory=EnvironmentInfo)
    tags: tuple[str, ...] = ()
    trials: tuple[Trial, ...] = ()
    summary: Statistics | None = None
    best_trial_id: TrialId | None = None
    metadata: JsonDict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is newer than this dspex "
                f"understands ({SCHEMA_VERSION}); upgrade dspex"
            )
        ids = set()
        for trial in self.trials:
            if trial.experiment_id != self.id:
                raise ValueError(
                    f"trial {trial.id} belongs to experiment {trial.experiment_id}, not {self.id}"
                )
            if trial.id in ids:
                raise ValueError(f"trial {trial.id} appears twice")
            ids.add(trial.id)
        if self.best_trial_id is not None and self.best_trial_id not in ids:
            raise ValueError(f"best_trial_id {self.best_trial_id} is not one of the trials")
        return self

    def trial(self, trial_id: str) -> Trial:
        """The trial with ``trial_id``; raises :class:`dspex.TrialNotFound`."""
        from dspex.errors import TrialNotFound

        for trial in self.trials:
            if trial.id == trial_id:
                return trial
        raise TrialNotFound(self.id, trial_id)

    @property
    def best_trial(self) -> Trial | None:
        return self.trial(self.best_trial_id) if self.best_trial_id else None

    @property
    def best_score(self) -> float | None:
        best = self.best_trial
        return best.score if best else None


def best_trial_of(trials: tuple[Trial, ...] | list[Trial]) -> Trial | None:
    """The scored, successful trial with the highest score (earliest wins a tie).

    A non-finite score (NaN, +inf, -inf) is recorded as given but never makes a trial
    the best: it is no measurement to rank.
    """
    scored = [
        t
        for t in trials
        if t.score is not None and math.isfinite(t.score) and t.status is TrialStatus.OK
    ]
    if not scored:
        return None
    return max(scored, key=lambda t: (t.score, -t.index))


def summarize(trials: tuple[Trial, ...] | list[Trial], reported: Trial | None = None) -> Statistics:
    """Summary statistics over ``trials``; per-metric spread over ``reported``'s examples.

    ``reported`` defaults to the best trial.
    """
    reported = reported or best_trial_of(trials)
    metrics: dict[str, list[float]] = {}
    if reported is not None:
        for result in reported.example_results:
            for name, value in result.metrics.items():
                metrics.setdefault(name, []).append(value)
    scores = [t.score for t in trials if t.score is not None]
    latencies = [
        r.latency_ms for t in trials for r in t.example_results if r.latency_ms is not None
    ]
    per_metric = {name: MetricStats.of_any(values) for name, values in metrics.items()}
    return Statistics(
        metrics={name: stats for name, stats in per_metric.items() if stats is not None},
        trial_scores=MetricStats.of_any(scores),
        latency_ms=_latency(latencies),
        total_tokens=sum(r.tokens for t in trials for r in t.example_results),
        total_cost=sum(r.cost or 0.0 for t in trials for r in t.example_results),
        trial_count=len(trials),
        example_count=sum(len(t.example_results) for t in trials),
        error_count=sum(1 for t in trials for r in t.example_results if r.error is not None),
    )


def _latency(values: list[float]) -> LatencyStats | None:
    return LatencyStats.of(values) if any(math.isfinite(v) for v in values) else None
