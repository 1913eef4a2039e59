"""The one place that scores: one example's run -> an ExampleResult and its ``example_result``
event; a trial's results -> its score, its scope and its ``trial_score`` event.

The harness (``exp.evaluate``), ``dspy.Evaluate`` under dspex, and every optimizer hook
build their records here, so that a fix lands once::

    result = record_example(recorder, ExampleRun(index=0, example=ex, prediction=pred,
                                                 value=True, latency_ms=12.0), "exact_match")
    score = record_score(recorder, [result], "exact_match", scope="dev")
    score.value, score.scope.n          # (1.0, 1)

Rules: a failed example (program or metric raised) scores 0 and counts in ``failures``;
a metric's value is a number, a bool, or an object with a numeric ``score``; an example
is split into inputs and labels by ``dspy.Example.inputs()/labels()`` when it declares its
inputs, else every field is an input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import RawEvent, TrialRecorder
from dspex.model import (
    ErrorInfo,
    EventKind,
    ExampleResult,
    ScoreScope,
)
from dspex.model.payloads import (
    CandidateScoredPayload,
    CandidateScores,
    ExampleResultExtra,
    ExampleResultPayload,
    TrialScorePayload,
    payload_of,
)
from dspex.model.trial import trusted_example_result

__all__ = [
    "NO_PREDICTION",
    "CandidateScoredPayload",
    "ExampleResultPayload",
    "ExampleRun",
    "Score",
    "TrialScorePayload",
    "example_fields",
    "example_inputs",
    "metric_name",
    "metric_value",
    "prediction_dict",
    "record_candidate_scored",
    "record_example",
    "record_score",
    "score_of",
    "usage_of",
]


#: The error of an example an evaluator (``dspy.Evaluate``, an optimizer's) returned without
#: a prediction and without saying why.
NO_PREDICTION = ErrorInfo(
    type="dspex.NoPrediction",
    message="the evaluator returned no prediction for this example and reported no "
    "exception for it: the program or the metric raised inside it, or it was cancelled",
)


def metric_name(metric: Any) -> str:
    return getattr(metric, "__name__", None) or type(metric).__name__


def metric_value(value: Any) -> float:
    """A metric's return value as a number: bools and numbers, or an object with ``score``."""
    if isinstance(value, bool | int | float):
        return float(value)
    score = getattr(value, "score", None)
    if isinstance(score, bool | int | float):
        return float(score)
    raise TypeError(
        f"the metric returned {type(value).__name__} {value!r}; return a number, a bool, "
        "or an object with a numeric .score"
    )


def example_inputs(example: Any) -> dict[str, Any]:
    """The keyword arguments to call a program with on ``example`` (values as they are)."""
    inputs_of = getattr(example, "inputs", None)
    if callable(inputs_of):
        try:
            return dict(inputs_of())
        except ValueError:  # a dspy.Example that never declared its inputs
            pass
    if isinstance(example, Mapping):
        return dict(example)
    store = getattr(example, "toDict", None)
    if callable(store):
        return dict(store())
    raise TypeError(
        f"cannot call a program on a {type(example).__name__}: pass dspy.Example objects "
        "(with .with_inputs(...)) or dicts of the program's input fields"
    )


def example_fields(
    example: Any, inputs: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(inputs, labels)`` of an example, as JSON data (see the module docs for the rule).

    ``inputs``: the ones :func:`example_inputs` already gave (the program ran with them);
    the labels are then the example's other fields, without asking DSPy again.
    """
    items = getattr(example, "items", None)
    if inputs is not None and callable(items):
        labels = {k: v for k, v in items() if k not in inputs}
        return jsonable(dict(inputs)), jsonable(labels)
    inputs_of = getattr(example, "inputs", None)
    if callable(inputs_of):
        try:
            return jsonable(dict(inputs_of())), jsonable(dict(example.labels()))
        except ValueError:  # a dspy.Example that never declared its inputs
            pass
    data = jsonable(example)
    return (data if isinstance(data, dict) else {"example": data}), {}


def prediction_dict(prediction: Any) -> dict[str, Any] | None:
    if prediction is None:
        return None
    value = jsonable(prediction)
    return value if isinstance(value, dict) else {"value": value}


# Read once: an Enum member looked up on its class costs ~0.1 us (Python 3.11), and these
# run per example.
_EXAMPLE_RESULT: Final = EventKind.EXAMPLE_RESULT
_LM_CALL: Final = EventKind.LM_CALL
_EMBEDDING: Final = EventKind.EMBEDDING


def usage_of(events: Iterable[RawEvent]) -> tuple[int, float | None]:
    """The LM calls' total tokens among ``events``, and the cost of the LM and embedding
    calls (an example's cost is what it spent, a hosted embedder's requests included)."""
    tokens, cost = 0, 0.0
    for event in events:
        call = payload_of(event, _LM_CALL)
        if call is not None:
            tokens += int((call["usage"] or {}).get("total_tokens") or 0)
            cost += float(call["cost"] or 0.0)
            continue
        embedding = payload_of(event, _EMBEDDING)
        if embedding is not None and isinstance(embedding["cost"], int | float):
            cost += float(embedding["cost"])
    return tokens, (cost or None)


@dataclass
class ExampleRun:
    """What happened when a program ran on one example and the metric judged it.

    ``value`` is the metric's raw return value (ignored when ``error`` is set): a number,
    a bool, or an object with a numeric ``score`` (and, as GEPA's metrics return, a text
    ``feedback``, kept on the ``example_result`` event).
    """

    index: int
    example: Any
    prediction: Any = None
    value: Any = None
    error: ErrorInfo | None = None
    latency_ms: float | None = None
    tokens: int = 0
    cost: float | None = None
    worker: str | None = None
    extra: ExampleResultExtra = field(default_factory=lambda: ExampleResultExtra())
    inputs: Mapping[str, Any] | None = None  # what the program was called with, if known


def record_example(recorder: TrialRecorder, run: ExampleRun, metric: str) -> ExampleResult:
    """The example's result, after emitting its ``example_result`` event into ``recorder``."""
    inputs, labels = example_fields(run.example, run.inputs)
    error = run.error
    value = 0.0
    if error is None:
        try:
            value = metric_value(run.value)
        except TypeError as exc:
            error = ErrorInfo.from_exception(exc)
    prediction = prediction_dict(run.prediction)
    extra: ExampleResultExtra = jsonable(run.extra) if run.extra else {}
    feedback = getattr(run.value, "feedback", None)  # GEPA's dspy.Prediction(score, feedback)
    if isinstance(feedback, str):
        extra["feedback"] = feedback
    payload: ExampleResultPayload = {
        "example": run.index,
        "inputs": inputs,
        "labels": labels,
        "prediction": prediction,
        "metric": metric,
        "value": jsonable(value),  # a non-finite value is recorded as text, as everywhere
        "passed": error is None and value > 0,
        "latency_ms": jsonable(run.latency_ms),
        "error": error.to_dict() if error is not None else None,
        **extra,
    }
    recorder.emit(_EXAMPLE_RESULT, payload, json_ready=True)
    return trusted_example_result(  # inputs, labels and prediction came through jsonable
        index=run.index,
        inputs=inputs,
        labels=labels,
        prediction=prediction,
        metrics={metric: value},
        latency_ms=run.latency_ms,
        tokens=run.tokens,
        cost=run.cost,
        error=error,
        worker=run.worker,
    )


def score_of(results: Sequence[ExampleResult], metric: str) -> float | None:
    """Mean of ``metric`` over ``results``; an example that failed counts as 0."""
    if not results:
        return None
    return sum(0.0 if r.error else r.metrics.get(metric, 0.0) for r in results) / len(results)


@dataclass(frozen=True)
class Score:
    """A trial's score and what it was measured on (``value`` None: nothing was scored)."""

    value: float | None
    scope: ScoreScope | None
    failures: int = 0


def record_score(
    recorder: TrialRecorder, results: Sequence[ExampleResult], metric: str, *, scope: str
) -> Score:
    """Score ``results`` and emit the ``trial_score`` event (none when there are no results)."""
    score = Score(
        score_of(results, metric),
        ScoreScope.of_results(results, name=scope, metric=metric) if results else None,
        sum(1 for r in results if r.error is not None),
    )
    if results:
        payload: TrialScorePayload = {
            "score": score.value,
            "metric": metric,
            "n": len(results),
            "failures": score.failures,
            "scope": scope,
            "fingerprint": score.scope.fingerprint if score.scope else None,
        }
        recorder.emit(EventKind.TRIAL_SCORE, payload)
    return score


def record_candidate_scored(
    recorder: TrialRecorder,
    candidate: str,
    score: Score,
    *,
    scope: str,
    extra: CandidateScores | None = None,
) -> None:
    """Emit an optimizer's ``candidate_scored`` event for ``candidate`` (a trial id)."""
    own: CandidateScores = extra or {}
    payload: CandidateScoredPayload = {
        "candidate": candidate,
        "score": score.value,
        "scope": scope,
        "n": score.scope.n if score.scope else 0,
        "fingerprint": score.scope.fingerprint if score.scope else None,
        **own,
    }
    recorder.emit(EventKind.CANDIDATE_SCORED, payload)
