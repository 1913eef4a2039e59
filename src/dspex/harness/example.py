"""Evaluate a program on one example: the unit of work every worker pool runs.

:func:`run_example` records into a fresh per-example recorder and returns its raw
events with the result, so that the same function works in a thread (the caller
merges the events into the trial) and in another process (the events travel back
with the result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dspex.capture.callback import DspexCallback
from dspex.capture.context import recording
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import RawEvent, TrialRecorder, current_worker_name
from dspex.model import ErrorInfo, ExampleResult

__all__ = ["ExampleOutcome", "ExampleTask", "metric_name", "metric_value", "run_example"]


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


def _split(example: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(example.inputs()) if hasattr(example, "inputs") else dict(example)
    labels = dict(example.labels()) if hasattr(example, "labels") else {}
    return inputs, labels


def run_example(task: ExampleTask) -> ExampleOutcome:
    """Run ``task.program`` on ``task.example`` and score it with ``task.metric``."""
    recorder = TrialRecorder(task.trial_id)
    if task.module_paths:
        recorder.module_paths.update(task.module_paths)
    inputs, labels = _split(task.example)
    name = metric_name(task.metric)
    prediction = None
    error: ErrorInfo | None = None
    value = 0.0
    started = time.perf_counter()
    with recording(recorder):
        try:
            prediction = task.program(**inputs)
        except Exception as exc:  # noqa: BLE001 - recorded on the example, the run goes on
            error = ErrorInfo.from_exception(exc)
    latency_ms = (time.perf_counter() - started) * 1000
    if error is None:
        try:
            value = metric_value(task.metric(task.example, prediction))
        except Exception as exc:  # noqa: BLE001
            error = ErrorInfo.from_exception(exc)
    tokens = sum(
        int((e.payload.get("usage") or {}).get("total_tokens") or 0)
        for e in recorder.raw_events()
        if e.kind == "lm_call"
    )
    cost = sum(
        float(e.payload.get("cost") or 0.0) for e in recorder.raw_events() if e.kind == "lm_call"
    )
    predicted = jsonable(prediction) if prediction is not None else None
    recorder.emit(
        "evaluation",
        "example_result",
        {
            "example": task.index,
            "inputs": jsonable(inputs),
            "labels": jsonable(labels),
            "prediction": predicted,
            "metric": name,
            "value": value,
            "passed": error is None and value > 0,
            "latency_ms": latency_ms,
            "error": error.to_dict() if error else None,
        },
    )
    result = ExampleResult(
        index=task.index,
        inputs=jsonable(inputs),
        labels=jsonable(labels),
        prediction=predicted
        if isinstance(predicted, dict)
        else (None if predicted is None else {"value": predicted}),
        metrics={name: value},
        latency_ms=latency_ms,
        tokens=tokens,
        cost=cost or None,
        error=error,
        worker=current_worker_name(),
    )
    return ExampleOutcome(result, recorder.raw_events())


_shared_callback: DspexCallback | None = None


def shared_callback() -> DspexCallback:
    """The one DspexCallback of this process."""
    global _shared_callback
    if _shared_callback is None:
        _shared_callback = DspexCallback()
    return _shared_callback


def with_callback(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` (DSPy thread-local settings) with the DspexCallback among its callbacks.

    ``dspy.context`` snapshots the callbacks in effect when it is entered, so adding ours
    to the global configuration is not enough: it must be in the thread's overrides too.
    """
    import dspy

    callbacks = list(overrides.get("callbacks", dspy.settings.get("callbacks", [])) or [])
    if not any(isinstance(c, DspexCallback) for c in callbacks):
        callbacks.append(shared_callback())
    return {**overrides, "callbacks": callbacks}


def ensure_callback_installed() -> DspexCallback:
    """Make the DspexCallback active in this thread's DSPy settings (and globally, if allowed)."""
    import dspy
    from dspy.dsp.utils.settings import thread_local_overrides

    callback = shared_callback()
    overrides = thread_local_overrides.get()
    if overrides:
        thread_local_overrides.set(type(overrides)(with_callback(dict(overrides))))
    globals_ = list(dspy.settings.get("callbacks", []) or [])
    if not any(isinstance(c, DspexCallback) for c in globals_):
        try:
            dspy.settings.configure(callbacks=[*globals_, callback])
        except RuntimeError:  # configure() is reserved to the thread that first called it
            pass
    return callback
