"""The EvaluationHarness: evaluate a program over a dataset with a metric, as one Trial.

    harness = EvaluationHarness(journal)
    trial = harness.evaluate(program, devset, exact_match, name="baseline")
    trial.score          # mean metric value; failed examples count as 0
    trial.score_scope    # over which examples: ScoreScope(name="dev", n=..., fingerprint=...)

Examples run on a pool of ``evaluation.harness_pool_size`` workers; every event
recorded while a program runs on an example is attributed to the trial, whatever
thread DSPy runs it on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dspy.dsp.utils.settings import thread_local_overrides

from dspex.capture.jsonable import jsonable
from dspex.capture.program import program_name
from dspex.config import get_settings
from dspex.errors import ValidationError
from dspex.harness.example import (
    metric_name,
    with_callback,
)
from dspex.harness.remote import (
    EvaluationState,
    WorkerTask,
    evaluate_in_worker,
    forget,
    init_worker,
    settings_snapshot,
)
from dspex.model import ErrorInfo, ExampleResult, ScoreScope, Trial
from dspex.workers import TaskOutcome, create_pool

if TYPE_CHECKING:
    from dspex.capture.recorder import TrialRecorder
    from dspex.journal import ExperimentJournal

__all__ = ["EvaluationHarness", "score_of"]


def score_of(results: Sequence[ExampleResult], metric: str) -> float | None:
    """Mean of ``metric`` over ``results``; an example that failed counts as 0."""
    if not results:
        return None
    return sum(0.0 if r.error else r.metrics.get(metric, 0.0) for r in results) / len(results)


class EvaluationHarness:
    """Evaluates programs for an :class:`~dspex.journal.ExperimentJournal`."""

    def __init__(self, journal: ExperimentJournal, *, pool_size: int | None = None) -> None:
        self.journal = journal
        self.pool_size = pool_size or get_settings().evaluation.harness_pool_size

    def evaluate(
        self,
        program: Any,
        devset: Sequence[Any],
        metric: Any,
        *,
        name: str = "evaluation",
        parents: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        scope: str = "dev",
    ) -> Trial:
        """Run ``program`` on every example of ``devset``; record and return the Trial.

        ``scope`` names the example set for people (``dev``, ``test``); whether two
        scores are comparable is decided by the examples themselves (their fingerprint).
        """
        if not callable(program):
            raise ValidationError(
                f"program must be a callable DSPy module, not {type(program).__name__}"
            )
        if not callable(metric):
            raise ValidationError(
                f"metric must be callable as metric(example, prediction), not {metric!r}"
            )
        examples = list(devset)
        if not examples:
            raise ValidationError("devset is empty: evaluate needs at least one example")
        recorder = self.journal.new_trial(
            name=name,
            parents=parents,
            program=program,
            metadata={"role": "evaluation", "examples": len(examples), **(metadata or {})},
        )
        import dspy

        callbacks = with_callback(dict(thread_local_overrides.get()))["callbacks"]
        with dspy.context(callbacks=callbacks):
            results = self._run(recorder, program, examples, metric)
        key = metric_name(metric)
        score = score_of(results, key)
        recorder.emit(
            "evaluation",
            "trial_score",
            {
                "score": score,
                "metric": key,
                "n": len(results),
                "failures": sum(1 for r in results if r.error),
                "scope": scope,
            },
        )
        return self.journal.finish_trial(
            recorder,
            example_results=results,
            score=score,
            score_scope=ScoreScope.of_results(results, name=scope, metric=key),
        )

    def _run(
        self, recorder: TrialRecorder, program: Any, examples: list[Any], metric: Any
    ) -> list[ExampleResult]:
        evaluation_id = uuid.uuid4().hex  # key of this evaluation's state in the workers
        state = EvaluationState(
            evaluation_id,
            recorder.trial_id,
            program,
            metric,
            settings_snapshot(),
            dict(recorder.module_paths),
            self.journal.program_name or program_name(program),
        )
        tasks = [WorkerTask(evaluation_id, i, example) for i, example in enumerate(examples)]
        results: list[ExampleResult] = []
        pool = create_pool(size=self.pool_size, initializer=init_worker, initargs=(state,))
        try:
            with pool:
                for outcome in pool.map(evaluate_in_worker, tasks):
                    results.append(self._result_of(outcome, tasks, recorder))
        finally:
            forget(evaluation_id)
        return results

    @staticmethod
    def _result_of(
        outcome: TaskOutcome, tasks: list[WorkerTask], recorder: TrialRecorder
    ) -> ExampleResult:
        """The example's result; a worker that crashed or timed out fails only its example."""
        if outcome.ok:
            recorder.merge(outcome.value.events)
            return outcome.value.result
        error = outcome.error or ErrorInfo(type="dspex.errors.WorkerError", message="worker failed")
        task = tasks[outcome.index]
        inputs = dict(task.example.inputs()) if hasattr(task.example, "inputs") else {}
        labels = dict(task.example.labels()) if hasattr(task.example, "labels") else {}
        recorder.emit(
            "evaluation",
            "error",
            {
                "example": outcome.index,
                "type": error.type,
                "message": error.message,
                "traceback": error.traceback,
                "failure": outcome.failure,
                "worker": outcome.worker,
            },
        )
        return ExampleResult(
            index=outcome.index,
            inputs=jsonable(inputs),
            labels=jsonable(labels),
            error=error,
            worker=outcome.worker or None,
        )
