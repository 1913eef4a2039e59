"""Evaluate a program on one example: the unit of work every worker pool runs.

:func:`run_example` records into a fresh per-example recorder and returns its raw
events with the result, so that the same function works in a thread (the caller
merges the events into the trial) and in another process (the events travel back
with the result). Programs that define only ``aforward`` run through ``acall``;
:func:`arun_example` is the same for the caller's own event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from dspex.capture.context import recording
from dspex.capture.recorder import RawEvent, TrialRecorder, current_worker_name
from dspex.capture.scoring import (
    ExampleRun,
    example_inputs,
    metric_name,
    record_example,
    usage_of,
)
from dspex.model import ErrorInfo, ExampleResult

__all__ = [
    "ExampleOutcome",
    "ExampleTask",
    "arun_example",
    "is_async_only",
    "run_example",
]


@dataclass(frozen=True)
class ExampleTask:
    """Everything a worker needs to evaluate one example (picklable with cloudpickle)."""

    trial_id: str
    index: int
    program: Any
    example: Any
    metric: Any
    module_paths: dict[int, str] | None = None


@dataclass(frozen=True)
class ExampleOutcome:
    result: ExampleResult
    events: list[RawEvent]


def is_async_only(program: Any) -> bool:
    """A module that defines ``aforward`` and no ``forward``: it can only run through ``acall``.

    Asked of the class: reading ``program.forward`` makes DSPy log "Calling
    module.forward(...) directly is discouraged" (it checks who reads the attribute).
    """
    cls = type(program)
    return not callable(getattr(cls, "forward", None)) and callable(getattr(cls, "aforward", None))


def run_example(task: ExampleTask) -> ExampleOutcome:
    """Run ``task.program`` on ``task.example`` and score it with ``task.metric``."""
    recorder = _recorder(task)
    prediction, error, inputs, started = None, None, None, time.perf_counter()
    with recording(recorder):
        try:
            inputs = example_inputs(task.example)
            if is_async_only(task.program):
                prediction = _run_coroutine(task.program.acall(**inputs))
            else:
                prediction = task.program(**inputs)
        except Exception as exc:  # noqa: BLE001 - recorded on the example, the run goes on
            error = ErrorInfo.from_exception(exc)
    return _score(task, recorder, prediction, error, started, inputs)


async def arun_example(task: ExampleTask) -> ExampleOutcome:
    """:func:`run_example` in the caller's event loop (``acall`` for every program)."""
    recorder = _recorder(task)
    prediction, error, inputs, started = None, None, None, time.perf_counter()
    with recording(recorder):
        try:
            inputs = example_inputs(task.example)
            prediction = await task.program.acall(**inputs)
        except Exception as exc:  # noqa: BLE001 - recorded on the example, the run goes on
            error = ErrorInfo.from_exception(exc)
    return _score(task, recorder, prediction, error, started, inputs)


def _recorder(task: ExampleTask) -> TrialRecorder:
    recorder = TrialRecorder(task.trial_id)
    if task.module_paths:
        recorder.module_paths.update(task.module_paths)
    return recorder


def _score(
    task: ExampleTask,
    recorder: TrialRecorder,
    prediction: Any,
    error: ErrorInfo | None,
    started: float,
    inputs: dict[str, Any] | None,
) -> ExampleOutcome:
    latency_ms = (time.perf_counter() - started) * 1000
    value = None
    if error is None:
        try:
            value = task.metric(task.example, prediction)
        except Exception as exc:  # noqa: BLE001
            error = ErrorInfo.from_exception(exc)
    tokens, cost = usage_of(recorder.raw_events())
    run = ExampleRun(
        task.index,
        task.example,
        prediction,
        value,
        error,
        latency_ms=latency_ms,
        tokens=tokens,
        cost=cost,
        worker=current_worker_name(),
        inputs=inputs,
    )
    result = record_example(recorder, run, metric_name(task.metric))
    return ExampleOutcome(result, recorder.raw_events())


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` to completion from synchronous code, in this thread's context.

    A thread with a running event loop (a notebook's) cannot block on a new one, so there
    the coroutine runs on a helper thread, with this thread's context (the recorder).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, coroutine)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = exc

    helper = threading.Thread(target=run, name=f"{threading.current_thread().name}-async")
    helper.start()
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
