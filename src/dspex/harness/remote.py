"""What a worker runs for the harness: one evaluation's state, set up once per worker.

The pool's initializer (:func:`init_worker`) receives the program, the metric and a
snapshot of the caller's DSPy settings (the LM, the adapter) once per worker;
each task then carries only an example. In a thread pool the state stays in this
process; in process and Ray workers it arrives by cloudpickle.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from dspex.harness.example import ExampleOutcome, ExampleTask, run_example, shared_callback

__all__ = [
    "EvaluationState",
    "WorkerTask",
    "evaluate_in_worker",
    "init_worker",
    "settings_snapshot",
]

# DSPy settings that decide what a program does; everything else stays behind.
_SETTING_KEYS = ("lm", "adapter", "rm", "trace", "max_errors", "track_usage")


@dataclass(frozen=True)
class EvaluationState:
    evaluation_id: str
    trial_id: str
    program: Any
    metric: Any
    settings: dict[str, Any]
    module_paths: dict[int, str]
    program_name: str


@dataclass(frozen=True)
class WorkerTask:
    evaluation_id: str
    index: int
    example: Any


_states: dict[str, EvaluationState] = {}
_states_lock = threading.Lock()


def settings_snapshot() -> dict[str, Any]:
    """The caller's DSPy settings that a worker needs to run the program the same way."""
    import dspy

    return {
        key: dspy.settings.get(key) for key in _SETTING_KEYS if dspy.settings.get(key) is not None
    }


def init_worker(state: EvaluationState) -> None:
    """Pool initializer: remember the evaluation's state in this worker's process."""
    with _states_lock:
        _states[state.evaluation_id] = state


def forget(evaluation_id: str) -> None:
    with _states_lock:
        _states.pop(evaluation_id, None)


def evaluate_in_worker(task: WorkerTask) -> ExampleOutcome:
    """Pool function: evaluate one example with the state its evaluation set up."""
    import dspy

    state = _states[task.evaluation_id]
    # Module paths were computed for the caller's objects; in another process the
    # program is a copy, so recompute them for this copy.
    paths = state.module_paths
    if id(state.program) not in paths:
        from dspex.capture.program import module_paths

        paths = module_paths(state.program, state.program_name)
    with dspy.context(**state.settings, callbacks=[shared_callback()]):
        return run_example(
            ExampleTask(
                state.trial_id, task.index, state.program, task.example, state.metric, paths
            )
        )
