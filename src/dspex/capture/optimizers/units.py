"""Shared pieces of the optimizer hooks: evaluation units and variable diffs.

An :class:`EvaluationUnit` is one open trial that an optimizer evaluates example by
example, from any thread. Each run records into its own short-lived recorder (as
:func:`dspex.harness.example.run_example` does) and is merged into the trial when
it ends, so that per-example token counts are exact and no event can land on
another candidate's trial. When the expected number of runs has arrived, the unit
closes its trial (score, ``trial_score``, ``candidate_scored``).

    unit = EvaluationUnit(journal, recorder, expected=8, scope="minibatch",
                          metric="exact_match", candidate=recorder.trial_id)
    fn = unit.runner(wrapped_program, index_of=lambda ex: trainset_index[id(ex)])
    fn(example)   # runs under recording(...), records an example_result
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dspex.capture.context import recording
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TrialRecorder, current_worker_name
from dspex.model import ErrorInfo, ExampleResult, Trial, Variables

if TYPE_CHECKING:
    from dspex.journal import ExperimentJournal

__all__ = ["EvaluationUnit", "changes_between", "example_split", "prediction_dict"]


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
        self.scores: list[float] = []
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
            return sum(self.scores) / len(self.scores) if self.scores else None

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
        inputs, labels = example_split(example)
        # wrap_program swallows the program's exception (a warning): find it in the run
        error = next(
            (
                e.payload["error"]
                for e in run_recorder.raw_events()
                if e.kind == "module_end" and e.parent_id is None and e.payload.get("error")
            ),
            None,
        )
        raw_score = output.get("score", 0.0)
        score = float(raw_score) if isinstance(raw_score, int | float) else 0.0
        prediction = prediction_dict(output.get("prediction"))
        run_recorder.emit(
            "evaluation",
            "example_result",
            {
                "example": index,
                "inputs": inputs,
                "labels": labels,
                "prediction": prediction,
                "metric": self.metric,
                "value": score,
                "passed": error is None and score > 0,
                "latency_ms": latency_ms,
                "error": error,
                **(extra or {}),
            },
        )
        raw = run_recorder.raw_events()
        tokens = sum(
            int((e.payload.get("usage") or {}).get("total_tokens") or 0)
            for e in raw
            if e.kind == "lm_call"
        )
        result = ExampleResult(
            index=index,
            inputs=inputs,
            labels=labels,
            prediction=prediction,
            metrics={self.metric: score},
            latency_ms=latency_ms,
            tokens=tokens,
            error=ErrorInfo(**error) if error else None,
            worker=current_worker_name(),
        )
        self.recorder.merge(raw)
        with self._lock:
            self.results.append(result)
            self.scores.append(score)
            done = len(self.results) >= self.expected
        if done:
            self.close()

    def close(self, error: BaseException | None = None) -> Trial | None:
        """Score and finish the trial (once); ``error`` marks it failed."""
        with self._lock:
            if self._closing:
                return self.trial
            self._closing = True
            results, scores = list(self.results), list(self.scores)
        score = sum(scores) / len(scores) if scores else None
        if self.on_closing is not None:
            self.on_closing(self)
        if results:
            self.recorder.emit(
                "evaluation",
                "trial_score",
                {
                    "score": score,
                    "metric": self.metric,
                    "n": len(results),
                    "failures": 0,
                    "scope": self.scope,
                },
            )
        if self.candidate is not None and error is None:
            self.recorder.emit(
                "orchestration",
                "candidate_scored",
                {
                    "candidate": self.candidate,
                    "score": score,
                    "scope": self.scope,
                    "n": len(results),
                },
            )
        trial = self.journal.finish_trial(
            self.recorder,
            example_results=results,
            score=score if self.score_trial else None,
            error=error,
        )
        with self._lock:
            self.trial = trial
        return trial
