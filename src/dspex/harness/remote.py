"""What a worker runs for the harness: one evaluation's state, then one example per task.

A harness keeps one pool for the life of its experiment, so an evaluation's state (the
program, the metric, a snapshot of the caller's DSPy settings) cannot travel with the
pool's initializer. In-process workers (threads, inline) find it in a registry of this
process; for process and Ray workers each task carries it pickled once per evaluation
(bytes, not the objects), and each worker unpickles it once and keeps the last few.

In-process workers also hand an example's events to the trial's recorder themselves, the
moment the example ends (:class:`EventSink`): they reach the journal's spool within its
bound however late the pool reports the example's outcome.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cloudpickle

from dspex.capture import instrument
from dspex.capture.callback import DspexCallback, shared_callback
from dspex.capture.dspy_bridge import settings_scope
from dspex.capture.program import module_paths
from dspex.capture.recorder import RawEvent, TrialRecorder
from dspex.harness.example import ExampleOutcome, ExampleTask, run_example

__all__ = [
    "EvaluationState",
    "EventSink",
    "WorkerTask",
    "evaluate_in_worker",
    "forget",
    "prepare_worker",
    "prepare_worker_process",
    "register",
]

# States unpickled in a worker process: the evaluations in flight are the newest ones.
_KEEP = 8


class EventSink:
    """The trial's recorder, as in-process workers see it: an example's events go in when
    it ends, unless the evaluation has given the example up (timed out) or has ended.

        sink = EventSink(recorder)
        sink(3, events)      # True: merged into the trial
        sink.refuse(4)       # example 4 timed out: whatever its worker records is dropped
        sink.close()         # the evaluation ended: nothing more goes in
    """

    def __init__(self, recorder: TrialRecorder) -> None:
        self._recorder = recorder
        self._lock = threading.Lock()
        self._refused: set[int] = set()
        self._open = True

    def __call__(self, index: int, events: list[RawEvent]) -> bool:
        with self._lock:
            if not self._open or index in self._refused:
                return False
            self._recorder.merge(events)
            return True

    def refuse(self, index: int) -> None:
        with self._lock:
            self._refused.add(index)

    def close(self) -> None:
        with self._lock:
            self._open = False


@dataclass(frozen=True)
class EvaluationState:
    evaluation_id: str
    trial_id: str
    program: Any
    metric: Any
    settings: dict[str, Any]
    module_paths: dict[int, str]
    program_name: str
    sink: EventSink | None = None  # in-process workers only (it is not sent elsewhere)


@dataclass(frozen=True)
class WorkerTask:
    evaluation_id: str
    index: int
    example: Any
    state: bytes | None = None  # the pickled EvaluationState, for workers in other processes


_states: OrderedDict[str, EvaluationState] = OrderedDict()
_states_lock = threading.Lock()


def prepare_worker() -> None:
    """Pool initializer: a worker loads DSPy and dspex's capture (importing this module does)
    and makes its callback before it takes work, within ``workers.worker_init_timeout``, so
    that the first example of an evaluation is not charged seconds of imports against
    ``workers.task_timeout``."""
    shared_callback()


def prepare_worker_process() -> None:
    """:func:`prepare_worker` for a worker in a process of its own (process and Ray
    pools): that process is dspex's, so DSPy stays instrumented there for its life (the
    usage, cost and cache hits of its LM calls; DSPy's threads carrying the example's
    recorder). Done here, within ``workers.worker_init_timeout``, not in the first task."""
    prepare_worker()
    instrument.acquire()
    # What a task's unpickling needs, imported now rather than in the first task: `import
    # dspex` is lazy, so a worker process would otherwise meet these in its first example.
    for module in _TASK_MODULES:
        importlib.import_module(module)


#: modules the tasks of an evaluation use in a worker process (records, the offline LM)
_TASK_MODULES = ("dspex.model", "dspex.offline", "dspex.harness.example", "dspex.workers")


def register(state: EvaluationState, *, in_process: bool) -> bytes | None:
    """Make ``state`` reachable from the workers; the bytes its tasks carry (None in-process)."""
    if in_process:
        with _states_lock:
            _states[state.evaluation_id] = state
        return None
    return bytes(cloudpickle.dumps(state))


def forget(evaluation_id: str) -> None:
    with _states_lock:
        _states.pop(evaluation_id, None)


def _state_of(task: WorkerTask) -> EvaluationState:
    with _states_lock:
        state = _states.get(task.evaluation_id)
    if state is not None:
        return state
    if task.state is None:
        raise RuntimeError(f"evaluation {task.evaluation_id} is unknown to this worker")
    state = cloudpickle.loads(task.state)
    # Module paths were computed for the caller's objects; in another process the
    # program is a copy, so they are recomputed for this copy (once per evaluation).
    state = EvaluationState(
        state.evaluation_id,
        state.trial_id,
        state.program,
        state.metric,
        state.settings,
        module_paths(state.program, state.program_name),
        state.program_name,
    )
    with _states_lock:
        _states[task.evaluation_id] = state
        while len(_states) > _KEEP:
            _states.popitem(last=False)
    return state


def evaluate_in_worker(task: WorkerTask) -> ExampleOutcome:
    """Pool function: evaluate one example with the state its evaluation set up."""
    state = _state_of(task)
    callbacks = list(state.settings.get("callbacks") or [])
    if not any(isinstance(c, DspexCallback) for c in callbacks):
        callbacks.append(shared_callback())
    with settings_scope(**{**state.settings, "callbacks": callbacks}):
        outcome = run_example(
            ExampleTask(
                state.trial_id,
                task.index,
                state.program,
                task.example,
                state.metric,
                state.module_paths,
            )
        )
    if state.sink is not None and state.sink(task.index, outcome.events):
        return ExampleOutcome(outcome.result, [])  # the trial has its events already
    return outcome
