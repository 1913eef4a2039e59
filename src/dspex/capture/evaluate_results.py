"""Turn what ``dspy.Evaluate`` returned into ExampleResults and a trial score.

``dspy.Evaluate(...)(program)`` returns an ``EvaluationResult`` whose ``results`` is a
list of ``(example, prediction, score)`` in devset order; an example whose program or
metric raised gets an empty ``dspy.Prediction()`` and the evaluator's failure score.
Worker, latency, tokens and cost of each example come from the trial's events: the
top-level module call made with the example's inputs, and the LM calls within it.

    results = record_example_results(recorder, evaluation_result, metric)
    score = record_score(recorder, results, metric)   # mean metric value, 0..1 for 0/1 metrics
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import RawEvent, TrialRecorder
from dspex.harness.example import metric_name, metric_value
from dspex.harness.harness import score_of
from dspex.model import ErrorInfo, ExampleResult

__all__ = ["NO_PREDICTION", "record_example_results", "record_score"]

NO_PREDICTION = ErrorInfo(
    type="dspex.NoPrediction",
    message="dspy.Evaluate recorded no prediction for this example: the program or the "
    "metric raised (see the error events of this trial's timeline)",
)


def _inputs_labels(example: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return dict(example.inputs()), dict(example.labels())
    except Exception:  # noqa: BLE001 - an example without declared inputs
        data = jsonable(example)
        return (data if isinstance(data, dict) else {"example": data}), {}


class _Calls:
    """The top-level module calls of a trial, by inputs, with what happened inside them."""

    def __init__(self, events: list[RawEvent]) -> None:
        self._children: dict[str, list[RawEvent]] = {}
        self._ends: dict[str, RawEvent] = {}
        self._roots: dict[str, list[RawEvent]] = {}
        for e in sorted(events, key=lambda e: (e.time_ns, e.monotonic_ns)):
            if e.parent_id is not None:
                self._children.setdefault(e.parent_id, []).append(e)
            elif e.kind == "module_start":
                self._roots.setdefault(_key(e.payload.get("inputs")), []).append(e)
            if e.kind == "module_end":
                self._ends[e.payload.get("start_id") or ""] = e

    def take(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Worker, latency, tokens and cost of the next call made with ``inputs``."""
        roots = self._roots.get(_key(jsonable(inputs)))
        if not roots:
            return {}
        root = roots.pop(0)
        end = self._ends.get(root.id)
        tokens, cost = 0, 0.0
        stack = [root.id]
        while stack:
            for e in self._children.get(stack.pop(), ()):
                stack.append(e.id)
                if e.kind == "lm_call":
                    tokens += int((e.payload.get("usage") or {}).get("total_tokens") or 0)
                    cost += float(e.payload.get("cost") or 0.0)
        return {
            "worker": root.worker,
            "latency_ms": end.payload.get("latency_ms") if end is not None else None,
            "tokens": tokens,
            "cost": cost or None,
        }


def _key(inputs: Any) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


def _result(
    index: int, example: Any, prediction: Any, raw_score: Any, name: str, calls: _Calls
) -> ExampleResult:
    inputs, labels = _inputs_labels(example)
    predicted = jsonable(prediction) if prediction is not None else None
    error = NO_PREDICTION if not predicted else None
    try:
        value = metric_value(raw_score)
    except TypeError as exc:
        value, error = 0.0, error or ErrorInfo.from_exception(exc)
    return ExampleResult(
        index=index,
        inputs=jsonable(inputs),
        labels=jsonable(labels),
        prediction=predicted if isinstance(predicted, dict) and predicted else None,
        metrics={name: value},
        error=error,
        **calls.take(inputs),
    )


def record_example_results(
    recorder: TrialRecorder, evaluation: Any, metric: Any
) -> list[ExampleResult]:
    """One ExampleResult (and one ``example_result`` event) per example Evaluate scored."""
    name = metric_name(metric)
    calls = _Calls(recorder.raw_events())
    results = [
        _result(index, example, prediction, score, name, calls)
        for index, (example, prediction, score) in enumerate(
            getattr(evaluation, "results", None) or []
        )
    ]
    for r in results:
        recorder.emit(
            "evaluation",
            "example_result",
            {
                "example": r.index,
                "inputs": r.inputs,
                "labels": r.labels,
                "prediction": r.prediction,
                "metric": name,
                "value": r.metrics[name],
                "passed": r.error is None and r.metrics[name] > 0,
                "latency_ms": r.latency_ms,
                "error": r.error.to_dict() if r.error else None,
            },
        )
    return results


def record_score(
    recorder: TrialRecorder, results: Sequence[ExampleResult], metric: Any
) -> float | None:
    """The mean metric value over ``results`` (failures count as 0), as a ``trial_score``."""
    name = metric_name(metric)
    score = score_of(results, name)
    if results:
        recorder.emit(
            "evaluation",
            "trial_score",
            {
                "score": score,
                "metric": name,
                "n": len(results),
                "failures": sum(1 for r in results if r.error),
                "scope": "devset",
            },
        )
    return score
