"""Shared pieces of the optimizer hooks: example results, scores, evaluation units, diffs.

Every hook records "one example ran" and "a candidate was scored" through this module,
so that the payloads are the same whatever the optimizer:

* :func:`example_result`: one run as an ``ExampleResult`` and its ``example_result`` event;
* :func:`record_runs`: runs another component executed (``dspy.Evaluate`` inside MIPROv2,
  COPRO, random search, GEPA's adapter), given as ``(index, example, prediction, value)``;
* :func:`record_score`: ``trial_score`` and ``candidate_scored`` with the
  :class:`~dspex.model.ScoreScope` (which examples the score was measured on);
  :func:`finish_scored` also finishes the trial with them;
* :class:`EvaluationUnit`: one open trial that an optimizer evaluates run by run, from
  any thread (SIMBA's ``wrap_program`` runs). Each run records into its own short-lived
  recorder (as :func:`dspex.harness.example.run_example` does) and is merged into the
  trial when it ends, so that per-example token counts are exact and no event can land
  on another candidate's trial. When the expected number of runs has arrived, the unit
  closes its trial.

    unit = EvaluationUnit(journal, recorder, expected=8, scope="minibatch",
                          metric="exact_match", candidate=recorder.trial_id)
    fn = unit.runner(wrapped_program, index_of=lambda ex: trainset_index[id(ex)])
    fn(example)   # runs under recording(...), records an example_result
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dspex.capture.context import recording
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TrialRecorder, current_worker_name
from dspex.harness.example import metric_value
from dspex.model import (
    ErrorInfo,
    ExampleResult,
    ScoreScope,
    Trial,
    Variables,
    example_key,
    examples_fingerprint,
)

if TYPE_CHECKING:
    from dspex.journal import ExperimentJournal

__all__ = [
    "NO_PREDICTION",
    "EvaluationUnit",
    "changes_between",
    "example_result",
    "example_split",
    "finish_scored",
    "mean_score",
    "prediction_dict",
    "record_runs",
    "record_score",
    "score_scope",
]

#: The error of an example the optimizer's evaluator ran without a prediction to show.
NO_PREDICTION = ErrorInfo(
    type="dspex.NoPrediction",
    message="the optimizer's evaluator returned no prediction for this example: the program "
    "or the metric raised (see the error events of this trial's timeline)",
)


def example_split(example: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(example.inputs()) if hasattr(example, "inputs") else {}
    labels = dict(example.labels()) if hasattr(example, "labels") else {}
    return jsonable(inputs), jsonable(labels)


def prediction_dict(prediction: Any) -> dict[str, Any] | None:
    if prediction is None:
        return None
    value = jsonable(prediction)
    return value if isinstance(value, dict) else {"value": value}


def changes_between(before: Variables, after: Variables) -> list[dict[str, Any]]:
    """Per predictor, the instructions and demos that differ (``candidate_created`` changes)."""
    changes: list[dict[str, Any]] = []
    for name, new in after.predictors.items():
        old = before.predictors.get(name)
        if old is None or old.instructions != new.instructions:
            changes.append(
                {
                    "predictor": name,
                    "field": "instructions",
                    "before": old.instructions if old else None,
                    "after": new.instructions,
                }
            )
        if old is None or old.demos != new.demos:
            changes.append(
                {
                    "predictor": name,
                    "field": "demos",
                    "before": list(old.demos) if old else None,
                    "after": list(new.demos),
                }
            )
    return changes


# -- one example ----------------------------------------------------------------------


def example_result(
    index: int,
    example: Any,
    prediction: Any,
    value: Any,
    metric: str,
    *,
    error: ErrorInfo | None = None,
    latency_ms: float | None = None,
    tokens: int = 0,
    worker: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[ExampleResult, dict[str, Any]]:
    """One run as an ExampleResult, and the payload of its ``example_result`` event.

    ``value`` is what the metric returned (a number, a bool, or an object with a
    numeric ``score`` such as GEPA's ``dspy.Prediction(score=..., feedback=...)``);
    anything else scores 0 and is recorded as the example's error.
    """
    inputs, labels = example_split(example)
    predicted = prediction_dict(prediction)
    try:
        score = metric_value(value)
    except TypeError as exc:
        score, error = 0.0, error or ErrorInfo.from_exception(exc)
    feedback = getattr(value, "feedback", None)
    result = ExampleResult(
        index=index,
        inputs=inputs,
        labels=labels,
        prediction=predicted,
        metrics={metric: score},
        latency_ms=latency_ms,
        tokens=tokens,
        error=error,
        worker=worker,
    )
    payload = {
        "example": index,
        "inputs": inputs,
        "labels": labels,
        "prediction": predicted,
        "metric": metric,
        "value": score,
        "passed": error is None and score > 0,
        "latency_ms": latency_ms,
        "error": error.to_dict() if error else None,
        **({"feedback": str(feedback)} if isinstance(feedback, str) else {}),
        **(extra or {}),
    }
    return result, payload


def record_runs(
    recorder: TrialRecorder,
    runs: Iterable[tuple[int, Any, Any, Any]],
    metric: str,
    *,
    extra: dict[str, Any] | None = None,
) -> list[ExampleResult]:
    """ExampleResults (and ``example_result`` events) of runs another component executed.

    ``runs`` are ``(index, example, prediction, metric value)``; a missing or empty
    prediction is the evaluator's sign that the program or metric raised.
    """
    results = []
    for index, example, prediction, value in runs:
        empty = prediction is None or not prediction_dict(prediction)
        result, payload = example_result(
            index,
            example,
            None if empty else prediction,
            value,
            metric,
            error=NO_PREDICTION if empty else None,
            extra=extra,
        )
        recorder.emit("evaluation", "example_result", payload)
        results.append(result)
    return results


# -- scores ---------------------------------------------------------------------------


def score_scope(name: str, results: Sequence[ExampleResult], metric: str) -> ScoreScope:
    """The scope of a score over ``results``: its name and the fingerprint of the examples."""
    keys = dict.fromkeys(example_key(r.inputs, r.labels) for r in results)
    return ScoreScope(name=name, fingerprint=examples_fingerprint(keys), n=len(keys), metric=metric)


def mean_score(results: Sequence[ExampleResult], metric: str) -> float | None:
    values = [r.metrics.get(metric, 0.0) for r in results]
    return sum(values) / len(values) if values else None


def record_score(
    recorder: TrialRecorder,
    results: Sequence[ExampleResult],
    *,
    metric: str,
    scope: str,
    candidate: str | None,
    scored_extra: dict[str, Any] | None = None,
) -> tuple[float | None, ScoreScope | None]:
    """Emit the score of ``results`` (``trial_score``, and ``candidate_scored`` for
    ``candidate``); return it with its scope, for the trial's record."""
    score = mean_score(results, metric)
    where = score_scope(scope, results, metric) if results else None
    if results:
        recorder.emit(
            "evaluation",
            "trial_score",
            {
                "score": score,
                "metric": metric,
                "n": len(results),
                "failures": sum(1 for r in results if r.error is not None),
                "scope": scope,
                "fingerprint": where.fingerprint if where else None,
            },
        )
    if candidate is not None:
        recorder.emit(
            "orchestration",
            "candidate_scored",
            {
                "candidate": candidate,
                "score": score,
                "scope": scope,
                "n": len(results),
                "fingerprint": where.fingerprint if where else None,
                **(scored_extra or {}),
            },
        )
    return score, where


def finish_scored(
    journal: ExperimentJournal,
    recorder: TrialRecorder,
    results: Sequence[ExampleResult],
    *,
    metric: str,
    scope: str,
    candidate: str | None,
    score_trial: bool = True,
    error: BaseException | None = None,
    scored_extra: dict[str, Any] | None = None,
) -> Trial:
    """:func:`record_score`, then finish the trial with the score and its scope.

    ``score_trial=False`` keeps the score off the trial (runs of several candidates);
    a failed trial (``error``) gets no ``candidate_scored``.
    """
    score, where = record_score(
        recorder,
        results,
        metric=metric,
        scope=scope,
        candidate=candidate if error is None else None,
        scored_extra=scored_extra,
    )
    return journal.finish_trial(
        recorder,
        example_results=results,
        score=score if score_trial else None,
        score_scope=where if score_trial else None,
        error=error,
    )


# -- a trial evaluated run by run -----------------------------------------------------


class EvaluationUnit:
    """One trial evaluated run by run (from any thread) until ``expected`` runs are in."""

    def __init__(
        self,
        journal: ExperimentJournal,
        recorder: TrialRecorder,
        *,
        expected: int,
        scope: str,
        metric: str,
        candidate: str | None,
        score_trial: bool = True,
        on_closing: Callable[[EvaluationUnit], None] | None = None,
    ) -> None:
        self.journal = journal
        self.recorder = recorder
        self.expected = expected
        self.scope = scope
        self.metric = metric
        self.candidate = candidate
        self.score_trial = score_trial
        self.on_closing = on_closing  # last chance to add events before the score
        self.results: list[ExampleResult] = []
        self.trial: Trial | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._programs: list[Any] = []  # keeps copies alive so their ids stay theirs

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def score(self) -> float | None:
        with self._lock:
            return mean_score(self.results, self.metric)

    def adopt(self, program: Any, paths: dict[int, str]) -> None:
        """Attribute module events of ``program`` (a copy of the candidate) to this trial."""
        with self._lock:
            self._programs.append(program)
            self.recorder.module_paths.update(paths)

    def runner(
        self,
        wrapped: Callable[[Any], dict[str, Any]],
        index_of: Callable[[Any], int],
        extra: dict[str, Any] | None = None,
    ) -> Callable[[Any], dict[str, Any]]:
        """``wrapped`` (example -> DSPy output dict) running under this unit's trial."""

        def run(example: Any) -> dict[str, Any]:
            run_recorder = TrialRecorder(self.recorder.trial_id)
            run_recorder.module_paths.update(self.recorder.module_paths)
            started = time.perf_counter()
            with recording(run_recorder):
                output = wrapped(example)
            latency_ms = (time.perf_counter() - started) * 1000
            self._record(run_recorder, output, example, index_of(example), latency_ms, extra)
            return output

        run.__wrapped__ = wrapped  # type: ignore[attr-defined]
        return run

    def _record(
        self,
        run_recorder: TrialRecorder,
        output: dict[str, Any],
        example: Any,
        index: int,
        latency_ms: float,
        extra: dict[str, Any] | None,
    ) -> None:
        raw = run_recorder.raw_events()
        # wrap_program swallows the program's exception (a warning): find it in the run
        error = next(
            (
                e.payload["error"]
                for e in raw
                if e.kind == "module_end" and e.parent_id is None and e.payload.get("error")
            ),
            None,
        )
        raw_score = output.get("score", 0.0)
        result, payload = example_result(
            index,
            example,
            output.get("prediction"),
            raw_score if isinstance(raw_score, int | float) else 0.0,
            self.metric,
            error=ErrorInfo(**error) if error else None,
            latency_ms=latency_ms,
            tokens=sum(
                int((e.payload.get("usage") or {}).get("total_tokens") or 0)
                for e in raw
                if e.kind == "lm_call"
            ),
            worker=current_worker_name(),
            extra=extra,
        )
        run_recorder.emit("evaluation", "example_result", payload)
        self.recorder.merge(run_recorder.raw_events())
        with self._lock:
            self.results.append(result)
            done = len(self.results) >= self.expected
        if done:
            self.close()

    def close(self, error: BaseException | None = None) -> Trial | None:
        """Score and finish the trial (once); ``error`` marks it failed."""
        with self._lock:
            if self._closing:
                return self.trial
            self._closing = True
            results = list(self.results)
        if self.on_closing is not None:
            self.on_closing(self)
        trial = finish_scored(
            self.journal,
            self.recorder,
            results,
            metric=self.metric,
            scope=self.scope,
            candidate=self.candidate,
            score_trial=self.score_trial,
            error=error,
        )
        with self._lock:
            self.trial = trial
        return trial
