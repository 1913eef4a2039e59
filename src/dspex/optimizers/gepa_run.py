"""The state dspex keeps while a GEPA run is recorded: candidates, iterations, batches of runs.

:class:`Batch` collects the runs of one call to GEPA's adapter ``evaluate`` (or several,
when GEPA splits an evaluation) for one trial, turning each into an ``example_result``
through :func:`~dspex.optimizers.units.record_runs`.

>>> acceptance_rule("strict_improvement")
"GEPA's rule: the new minibatch score sum must be strictly greater than the parent's"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from dspex.capture.recorder import TrialRecorder
from dspex.model import ExampleResult, ScoreScope, Variables
from dspex.model.payloads import ExampleResultExtra
from dspex.optimizers.units import mean_score, record_runs

__all__ = [
    "Batch",
    "Candidate",
    "Iteration",
    "acceptance_rule",
    "feedback_lines",
    "leads",
    "number",
    "score_text",
]

_RULES = {
    "strict_improvement": "GEPA's rule: the new minibatch score sum must be strictly greater "
    "than the parent's",
    "improvement_or_equal": "GEPA's rule: the new minibatch score sum must be at least the "
    "parent's",
}


def acceptance_rule(rule: str) -> str:
    """How GEPA's acceptance criterion ``rule`` (a name, or a custom class's name) decides."""
    return _RULES.get(rule, f"GEPA's acceptance criterion {rule}")


@dataclass
class Candidate:
    """A program in GEPA's pool: its index, trial, texts per component and valset scores."""

    index: int
    trial_id: str
    name: str
    variables: Variables
    texts: dict[str, str] = field(default_factory=dict)
    valset_scores: dict[str, float] = field(default_factory=dict)
    score: float | None = None


class Batch:
    """The runs of one evaluation GEPA asked its adapter for, recorded into one trial."""

    def __init__(
        self,
        recorder: TrialRecorder,
        examples: list[Any],
        metric: str,
        *,
        phase: str,
        extra: ExampleResultExtra | None = None,
    ) -> None:
        self.recorder = recorder
        self.metric = metric
        self.phase = phase
        self.extra: ExampleResultExtra = {"phase": phase, **(extra or {})}
        self._index = {id(example): i for i, example in enumerate(examples)}
        self._lock = threading.Lock()
        self.results: list[ExampleResult] = []

    def add(self, examples: list[Any], evaluation: Any) -> None:
        """Record what one ``adapter.evaluate(examples, ...)`` returned (an EvaluationBatch)."""
        outputs = list(getattr(evaluation, "outputs", None) or [])
        scores = list(getattr(evaluation, "scores", None) or [])
        values: list[Any] = list(scores)
        # with traces, the metric's own value (with its feedback) is in the trajectory
        for trajectory in getattr(evaluation, "trajectories", None) or []:
            position = trajectory.get("example_ind") if isinstance(trajectory, dict) else None
            if isinstance(position, int) and 0 <= position < len(values):
                values[position] = trajectory.get("score", values[position])
        runs = [
            (
                self._index.get(id(example), position),
                example,
                outputs[position] if position < len(outputs) else None,
                values[position] if position < len(values) else 0.0,
            )
            for position, example in enumerate(examples)
        ]
        results = record_runs(self.recorder, runs, self.metric, extra=self.extra)
        with self._lock:
            self.results.extend(results)

    @property
    def scores(self) -> list[float]:
        with self._lock:
            return [r.metrics.get(self.metric, 0.0) for r in self.results]

    @property
    def sum(self) -> float:
        return sum(self.scores)

    @property
    def score(self) -> float | None:
        with self._lock:
            return mean_score(self.results, self.metric)


@dataclass
class Iteration:
    """One GEPA iteration that may create a candidate: a reflective proposal or a merge."""

    number: int
    recorder: TrialRecorder
    parents: list[Candidate]
    minibatch: list[int]
    merge: bool = False
    merge_accepted: bool = False
    step_event: str | None = None
    before: Batch | None = None
    after: Batch | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    texts: dict[str, str] | None = None
    variables: Variables | None = None
    #: the proposal's own minibatch score and its scope, once its runs are in
    score: tuple[float | None, ScoreScope | None] = (None, None)


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def score_text(scores: list[Any]) -> str:
    numbers = [float(s) for s in scores if isinstance(s, int | float)]
    return f"{sum(numbers):g} of {len(scores)}" if scores else "-"


def leads(candidates: dict[int, Candidate]) -> dict[int, int]:
    """Per candidate, on how many valset examples it has the best score (ties count)."""
    best: dict[str, float] = {}
    for candidate in candidates.values():
        for key, score in candidate.valset_scores.items():
            best[key] = max(best.get(key, score), score)
    return {
        c.index: sum(1 for k, s in c.valset_scores.items() if s >= best[k])
        for c in candidates.values()
    }


def feedback_lines(dataset: dict[str, Any]) -> str:
    lines = []
    for component, items in dataset.items():
        for item in items or []:
            if not isinstance(item, dict):
                continue
            inputs = item.get("Inputs")
            question = next(iter(inputs.values()), "") if isinstance(inputs, dict) else inputs
            outputs = item.get("Generated Outputs")
            answer = outputs.get("answer", outputs) if isinstance(outputs, dict) else outputs
            lines.append(f"- [{component}] {question!s} -> {answer!s}: {item.get('Feedback')}")
    return "\n".join(lines) or "(no examples)"
