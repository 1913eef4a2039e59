"""Turn what ``dspy.Evaluate`` returned into ExampleResults (through :mod:`~dspex.capture.scoring`).

``dspy.Evaluate(...)(program)`` returns an ``EvaluationResult`` whose ``results`` is a
list of ``(example, prediction, score)`` in devset order; an example whose program or
metric raised gets an empty ``dspy.Prediction()`` and the evaluator's failure score, and
DSPy keeps only a log line of the exception. While dspex records the call, DSPy's
executor hands those exceptions over (``errors``: example index -> exception), so each
failed example carries its type, message and traceback. Worker, latency, tokens and cost
of each example come from the trial's events: the top-level module call made with the
example's inputs, and the LM calls within it.

    results = evaluation_results(recorder, evaluation_result, "exact_match", errors)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import RawEvent, TrialRecorder
from dspex.capture.scoring import (
    NO_PREDICTION,
    ExampleRun,
    example_fields,
    record_example,
    usage_of,
)
from dspex.model import ErrorInfo, EventKind, ExampleResult
from dspex.model.payloads import payload_of

__all__ = ["NO_PREDICTION", "evaluation_results"]


class _Calls:
    """The top-level module calls of a trial, by inputs, with what happened inside them."""

    def __init__(self, events: list[RawEvent]) -> None:
        self._children: dict[str, list[RawEvent]] = {}
        self._ends: dict[str, RawEvent] = {}
        self._roots: dict[str, list[RawEvent]] = {}
        for e in sorted(events, key=lambda e: (e.time_ns, e.monotonic_ns)):
            start = payload_of(e, EventKind.MODULE_START)
            if e.parent_id is not None:
                self._children.setdefault(e.parent_id, []).append(e)
            elif start is not None:
                self._roots.setdefault(_key(start["inputs"]), []).append(e)
            end = payload_of(e, EventKind.MODULE_END)
            if end is not None:
                self._ends[end["start_id"] or ""] = e

    def take(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Worker, latency, tokens and cost of the next call made with ``inputs``."""
        roots = self._roots.get(_key(inputs))
        if not roots:
            return {}
        root = roots.pop(0)
        end = self._ends.get(root.id)
        finished = payload_of(end, EventKind.MODULE_END) if end is not None else None
        inside: list[RawEvent] = []
        stack = [root.id]
        while stack:
            for e in self._children.get(stack.pop(), ()):
                stack.append(e.id)
                inside.append(e)
        tokens, cost = usage_of(inside)
        return {
            "worker": root.worker,
            "latency_ms": finished["latency_ms"] if finished is not None else None,
            "tokens": tokens,
            "cost": cost,
        }


def _key(inputs: Any) -> str:
    return json.dumps(jsonable(inputs), sort_keys=True, default=str)


def evaluation_results(
    recorder: TrialRecorder,
    evaluation: Any,
    metric: str,
    errors: Mapping[int, BaseException] | None = None,
    *,
    index_of: Callable[[Any], int] | None = None,
) -> list[ExampleResult]:
    """One ExampleResult (and one ``example_result`` event) per example Evaluate scored.

    ``index_of(example)`` numbers the examples (an optimizer's trainset position);
    by default, their position in the evaluation.
    """
    errors = errors or {}
    calls = _Calls(recorder.raw_events())
    results = []
    for index, (example, prediction, value) in enumerate(
        getattr(evaluation, "results", None) or []
    ):
        error: ErrorInfo | None = None
        if index in errors:
            error = ErrorInfo.from_exception(errors[index])
        elif not jsonable(prediction):
            error = NO_PREDICTION
        inputs, _ = example_fields(example)
        predicted = prediction if error is None else None
        number = index_of(example) if index_of is not None else index
        run = ExampleRun(number, example, predicted, value, error, **calls.take(inputs))
        results.append(record_example(recorder, run, metric))
    return results
