"""The EvaluationHarness: evaluate a program over a dataset with a metric, as one Trial.

    harness = EvaluationHarness(journal)
    trial = harness.evaluate(program, devset, exact_match, name="baseline")
    trial.score          # mean metric value; failed examples count as 0

Examples run on a pool of ``evaluation.harness_pool_size`` workers; every event
recorded while a program runs on an example is attributed to the trial, whatever
thread DSPy runs it on.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dspy.dsp.utils.settings import thread_local_overrides

from dspex.config import get_settings
from dspex.errors import ValidationError
from dspex.harness.example import (
    ExampleOutcome,
    ExampleTask,
    metric_name,
    run_example,
    with_callback,
)
from dspex.model import ExampleResult, Trial

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
    ) -> Trial:
        """Run ``program`` on every example of ``devset``; record and return the Trial."""
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
                "scope": "devset",
            },
        )
        return self.journal.finish_trial(recorder, example_results=results, score=score)

    def _run(
        self, recorder: TrialRecorder, program: Any, examples: list[Any], metric: Any
    ) -> list[ExampleResult]:
        tasks = [
            ExampleTask(recorder.trial_id, i, program, ex, metric, recorder.module_paths)
            for i, ex in enumerate(examples)
        ]
        outcomes: list[ExampleOutcome]
        if self.pool_size <= 1 or not get_settings().workers.pooling_enabled:
            outcomes = [run_example(task) for task in tasks]
        else:
            counter = itertools.count(1)
            # DSPy settings of the caller (dspy.context(lm=...)) must hold in the workers too,
            # as dspy.Parallel does for its own threads.
            overrides = type(thread_local_overrides.get())(
                with_callback(dict(thread_local_overrides.get()))
            )

            def name_worker() -> None:
                threading.current_thread().name = f"worker-{next(counter)}"
                thread_local_overrides.set(overrides)

            with ThreadPoolExecutor(self.pool_size, initializer=name_worker) as pool:
                outcomes = list(pool.map(run_example, tasks))
        for outcome in outcomes:
            recorder.merge(outcome.events)
        return [o.result for o in outcomes]
