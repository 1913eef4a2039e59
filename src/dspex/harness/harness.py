"""The EvaluationHarness: evaluate a program over a dataset with a metric, as one Trial.

    harness = EvaluationHarness(journal)
    trial = harness.evaluate(program, devset, exact_match, name="baseline")
    trial.score          # mean metric value; failed examples count as 0
    trial.score_scope    # which examples (fingerprint), how many, which metric
    harness.close()      # stops the worker pool

Examples run on a pool of ``evaluation.harness_pool_size`` workers (``workers.adapter``:
threads, processes or Ray), started on the first evaluation and kept until
:meth:`close`, so that process and Ray workers start once per experiment, not once per
evaluation. Every event recorded while a program runs on an example is attributed to the
trial, whatever thread or process runs it. :meth:`aevaluate` runs the examples as asyncio
tasks in the caller's event loop instead.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from dspex.capture.dspy_bridge import setting, worker_settings
from dspex.capture.instrument import instrumented
from dspex.capture.program import program_name
from dspex.capture.recorder import TrialRecorder
from dspex.capture.scoring import (
    ExampleRun,
    metric_name,
    record_example,
    record_score,
)
from dspex.config import get_settings
from dspex.errors import ValidationError
from dspex.harness.example import ExampleTask, arun_example
from dspex.harness.remote import (
    EvaluationState,
    EventSink,
    WorkerTask,
    evaluate_in_worker,
    forget,
    prepare_worker,
    prepare_worker_process,
    register,
)
from dspex.journal import ExperimentJournal
from dspex.model import ErrorInfo, EventKind, EventSource, ExampleResult, Trial
from dspex.workers import TaskOutcome, WorkerPool, create_pool

__all__ = ["EvaluationHarness"]

# adapters whose workers run in this process (the evaluation's state is shared, not sent)
_IN_PROCESS = ("thread", "inline")


class EvaluationHarness:
    """Evaluates programs for an :class:`~dspex.journal.ExperimentJournal`."""

    def __init__(self, journal: ExperimentJournal, *, pool_size: int | None = None) -> None:
        self.journal = journal
        self.pool_size = pool_size or get_settings().evaluation.harness_pool_size
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        self.pools_started = 0

    # -- the pool: one per harness, started on first use ------------------------------

    def _running_pool(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                workers = get_settings().workers
                in_process = workers.adapter.value in _IN_PROCESS or not workers.pooling_enabled
                initializer = prepare_worker if in_process else prepare_worker_process
                pool = create_pool(size=self.pool_size, initializer=initializer)
                pool.start()
                self._pool = pool
                self.pools_started += 1
            return self._pool

    def close(self) -> None:
        """Stop the worker pool (safe to call twice; a later evaluation starts a new one)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    # -- evaluating ---------------------------------------------------------------------

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

        ``scope`` names the example set for people (``dev``, ``test``...); whether two
        scores are comparable is decided by the examples themselves (their fingerprint).
        """
        examples = _check(program, devset, metric)
        recorder = self._open(program, examples, name, parents, metadata)
        with instrumented():  # already, inside an experiment: a counter goes up
            results = self._run(recorder, program, examples, metric)
        return self._close(recorder, results, metric, scope)

    async def aevaluate(
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
        """:meth:`evaluate` for async code: examples run as tasks of the running event loop
        (at most ``pool_size`` at once) through ``program.acall``; the same records."""
        examples = _check(program, devset, metric)
        recorder = self._open(program, examples, name, parents, metadata)
        paths = dict(recorder.module_paths)
        limit = asyncio.Semaphore(self.pool_size)

        async def one(index: int, example: Any) -> ExampleResult:
            async with limit:
                task = ExampleTask(recorder.trial_id, index, program, example, metric, paths)
                outcome = await arun_example(task)
            recorder.merge(outcome.events)
            return outcome.result

        with instrumented():
            results = await asyncio.gather(*(one(i, ex) for i, ex in enumerate(examples)))
        return self._close(recorder, list(results), metric, scope)

    def _open(
        self,
        program: Any,
        examples: list[Any],
        name: str,
        parents: Sequence[str],
        metadata: dict[str, Any] | None,
    ) -> TrialRecorder:
        return self.journal.new_trial(
            name=name,
            parents=parents,
            program=program,
            metadata={"role": "evaluation", "examples": len(examples), **(metadata or {})},
        )

    def _close(
        self, recorder: TrialRecorder, results: list[ExampleResult], metric: Any, scope: str
    ) -> Trial:
        results.sort(key=lambda r: r.index)
        score = record_score(recorder, results, metric_name(metric), scope=scope)
        return self.journal.finish_trial(
            recorder, example_results=results, score=score.value, score_scope=score.scope
        )

    def _run(
        self, recorder: TrialRecorder, program: Any, examples: list[Any], metric: Any
    ) -> list[ExampleResult]:
        pool = self._running_pool()
        in_process = pool.adapter in _IN_PROCESS
        settings = worker_settings()
        # the caller's own callbacks run too in this process; in others, only dspex's
        # (each worker process adds its own)
        settings["callbacks"] = list(setting("callbacks") or []) if in_process else []
        sink = EventSink(recorder) if in_process else None
        state = EvaluationState(
            uuid.uuid4().hex,
            recorder.trial_id,
            program,
            metric,
            settings,
            dict(recorder.module_paths),
            self.journal.program_name or program_name(program),
            sink,
        )
        blob = register(state, in_process=in_process)
        tasks = [
            WorkerTask(state.evaluation_id, i, example, blob) for i, example in enumerate(examples)
        ]
        results: list[ExampleResult] = []
        try:
            for outcome in pool.map(evaluate_in_worker, tasks):
                if sink is not None and not outcome.ok:
                    sink.refuse(outcome.index)  # given up on: a late end records nothing
                results.append(_result_of(outcome, tasks, recorder, metric))
        finally:
            if sink is not None:
                sink.close()
            forget(state.evaluation_id)
        return results


def _check(program: Any, devset: Sequence[Any], metric: Any) -> list[Any]:
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
    return examples


def _result_of(
    outcome: TaskOutcome, tasks: list[WorkerTask], recorder: TrialRecorder, metric: Any
) -> ExampleResult:
    """The example's result; a worker that crashed or timed out fails only its example."""
    if outcome.ok:
        recorder.merge(outcome.value.events)
        result: ExampleResult = outcome.value.result
        return result
    error = outcome.error or ErrorInfo(type="dspex.errors.WorkerError", message="worker failed")
    task = tasks[outcome.index]
    recorder.emit(
        EventKind.ERROR,
        {
            "example": outcome.index,
            "type": error.type,
            "message": error.message,
            "traceback": error.traceback,
            "failure": outcome.failure,
            "worker": outcome.worker,
        },
        source=EventSource.EVALUATION,
    )
    run = ExampleRun(outcome.index, task.example, error=error, worker=outcome.worker or None)
    return record_example(recorder, run, metric_name(metric))
