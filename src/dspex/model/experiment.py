"""Experiments: a program, optionally an optimizer, and the trials they produced."""

from __future__ import annotations

import functools
import importlib.metadata
import math
import platform
from enum import StrEnum
from typing import Any

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
from dspex.model.rows import data_frame, example_rows, trial_rows
from dspex.model.scopes import comparable, kind_of, reference_scope, scope_of, values_of
from dspex.model.stats import LatencyStats, MetricStats, Statistics
from dspex.model.trial import MetricKind, ScoreScope, Trial
from dspex.model.trialref import find_trial

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
        return cls(
            dspex_version=_package_version("dspex"),
            dspy_version=_package_version("dspy"),
            config=config or {},
        )


@functools.lru_cache(maxsize=8)
def _package_version(package: str) -> str:
    """An installed package's version ("" if absent). Read once per process: parsing the
    package metadata costs milliseconds, once per experiment otherwise."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


class Experiment(Record):
    """One experiment: immutable once archived, JSON round-trippable.

    ``warnings`` says what the recording could not capture (calls from threads that could
    not be attributed, calls still running when the experiment ended): a gap is never
    silent.

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
    warnings: tuple[str, ...] = ()
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

    def trial(self, ref: str | int) -> Trial:
        """The trial ``ref`` names, as every view and command numbers them: its row number
        (``0``, ``"12"``, ``"#12"``: the ``#`` column), its candidate number (``"c8"``,
        ``"candidate 8"``) or its id; raises :class:`dspex.TrialNotFound` saying what is
        valid."""
        return find_trial(self, ref)

    @property
    def best_trial(self) -> Trial | None:
        return self.trial(self.best_trial_id) if self.best_trial_id else None

    @property
    def best_score(self) -> float | None:
        best = self.best_trial
        return best.score if best else None

    def trials_frame(self) -> Any:
        """One row per trial as a pandas DataFrame (``pip install 'dspex[analysis]'``).

        Columns: see :func:`dspex.model.rows.trial_rows` (score, its scope and n, tokens...).
        """
        return data_frame(trial_rows(self))

    def examples_frame(self) -> Any:
        """One row per example result of every trial as a pandas DataFrame.

        Columns: see :func:`dspex.model.rows.example_rows` (value, inputs, labels...).
        """
        return data_frame(example_rows(self))


def best_trial_of(
    trials: tuple[Trial, ...] | list[Trial], scope: ScoreScope | None = None
) -> Trial | None:
    """The highest-scoring successful trial among those scored on one example set.

    The set is ``scope``, by default the experiment's reference set (see
    :func:`dspex.model.scopes.reference_scope`); scores over other sets are not ranked
    against it. A non-finite score (NaN, +inf, -inf) is recorded as given but never makes
    a trial the best: it is no measurement to rank. The earliest trial wins a tie; None
    when no trial is comparable.
    """
    candidates = [
        t
        for t in comparable(trials, scope or reference_scope(trials))
        if t.score is not None and math.isfinite(t.score)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.score, -t.index))


def summarize(trials: tuple[Trial, ...] | list[Trial], reported: Trial | None = None) -> Statistics:
    """Summary statistics over ``trials``; per-metric spread over ``reported``'s examples.

    ``reported`` defaults to the best trial. Its score's metric counts failed examples
    as 0, as the score does; ``trial_scores`` covers the trials scored on its example set.
    """
    reported = reported or best_trial_of(trials)
    scope = scope_of(reported) if reported is not None else None
    scores = [t.score for t in comparable(trials, scope) if t.score is not None]
    latencies = [
        r.latency_ms for t in trials for r in t.example_results if r.latency_ms is not None
    ]
    return Statistics(
        metrics=_metric_stats(reported, scope),
        trial_scores=MetricStats.of_any(scores),
        scope=scope,
        latency_ms=_latency(latencies),
        total_tokens=sum(r.tokens for t in trials for r in t.example_results),
        total_cost=sum(r.cost or 0.0 for t in trials for r in t.example_results),
        trial_count=len(trials),
        example_count=sum(len(t.example_results) for t in trials),
        error_count=sum(1 for t in trials for r in t.example_results if r.error is not None),
    )


def _metric_stats(reported: Trial | None, scope: ScoreScope | None) -> dict[str, MetricStats]:
    if reported is None:
        return {}
    metrics: dict[str, list[float]] = {}
    for result in reported.example_results:
        for name, value in result.metrics.items():
            metrics.setdefault(name, []).append(value)
    kinds: dict[str, MetricKind | None] = {}
    if scope is not None and reported.example_results:
        metrics[scope.metric] = values_of(reported, scope.metric)
        kinds[scope.metric] = kind_of(scope, metrics[scope.metric])
    found = {name: MetricStats.of_any(data, kinds.get(name)) for name, data in metrics.items()}
    return {name: stats for name, stats in found.items() if stats is not None}


def _latency(values: list[float]) -> LatencyStats | None:
    return LatencyStats.of(values) if any(math.isfinite(v) for v in values) else None
