"""The parts every adapter shares: a map call's job, one task, worker handles and their events.

An adapter supplies a :class:`Worker` handle; the pool (``pool.py``) drives handles through
one event queue. A handle never blocks the pool: it starts, runs and stops asynchronously
and reports back with :class:`PoolEvent` objects.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import cloudpickle

from dspex.model import ErrorInfo
from dspex.workers.handoff import Handoff

__all__ = ["PoolEvent", "PoolEventKind", "Init", "Job", "Result", "Task", "Worker", "WorkerState"]

_job_ids = itertools.count(1)


class Job:
    """One ``map`` call's function; serialized at most once, and only if an adapter asks."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.id = next(_job_ids)
        self._blob: bytes | None = None
        self._lock = threading.Lock()

    def blob(self) -> bytes:
        with self._lock:
            if self._blob is None:
                self._blob = cloudpickle.dumps(self.fn)
            return self._blob


class Init:
    """The per-worker initializer and its arguments; serialized once, if an adapter asks."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.fn = fn
        self.args = args
        self._blob: bytes | None = None

    def run(self) -> None:
        self.fn(*self.args)

    def blob(self) -> bytes:
        if self._blob is None:
            self._blob = cloudpickle.dumps((self.fn, self.args))
        return self._blob


@dataclass
class Task:
    """One item handed to one worker."""

    id: int
    index: int
    item: Any
    job: Job
    timeout: float | None
    started: float = 0.0

    @property
    def deadline(self) -> float | None:
        return None if self.timeout is None else self.started + self.timeout


@dataclass(frozen=True)
class Result:
    """What ``fn`` did with an item: a value, or an error (with the exception if it travelled)."""

    value: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> Result:
        return cls(error=ErrorInfo.from_exception(exc), exception=exc)


class PoolEventKind(Enum):
    READY = "ready"  # payload: pid
    INIT_FAILED = "init_failed"  # payload: ErrorInfo
    RESULT = "result"  # payload: Result
    DIED = "died"  # payload: str, the cause
    CLOSED = "closed"  # the pool finished shutting down (worker is None)


@dataclass(frozen=True)
class PoolEvent:
    worker: Worker | None
    kind: PoolEventKind
    task_id: int | None = None
    payload: Any = None


class WorkerState(Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    GONE = "gone"


class Worker(ABC):
    """Handle on one worker. Subclasses implement the transport; the pool owns the state.

    ``launch`` begins starting the worker and returns at once; the worker then posts READY
    (or INIT_FAILED / DIED). ``send`` hands over one task; the worker posts RESULT or DIED.
    ``stop`` asks for a graceful exit after the current task, ``join`` waits for it and for
    every event the worker still had to post, ``kill`` ends it now (threads are abandoned).
    """

    def __init__(self, name: str, events: queue.SimpleQueue[PoolEvent], init: Init | None):
        self.name = name
        self.pid = 0
        self.state = WorkerState.STARTING
        self.task: Task | None = None
        # the items sent ahead while ``task`` runs (pools with look_ahead), in order: each
        # starts the moment the one before it ends, without waiting for the pool to hear
        # of that end
        self.ahead: deque[Task] = deque()
        # results posted without waking the pool (see post_quiet); only the pool takes
        # from it
        self.quiet: deque[PoolEvent] = deque()
        # the pool's, set when it launches the worker: a worker that posts quietly gives
        # way to the pool once the pool's time to look at those results has come
        self.handoff: Handoff | None = None
        self.launched = 0.0
        self._events = events
        self.init = init

    def post(self, kind: PoolEventKind, task_id: int | None = None, payload: Any = None) -> None:
        self._events.put(PoolEvent(self, kind, task_id, payload))

    def post_quiet(self, kind: PoolEventKind, task_id: int | None, payload: Any) -> None:
        """Post an event that the pool takes in the next time it wakes, without waking it:
        for a result while the worker still has items sent ahead (the pool has nothing
        to send it). The pool takes these before any event posted after them.

        When the pool's time to look at them has come, the worker waits a moment for it
        (:meth:`Handoff.give_way <dspex.workers.handoff.Handoff.give_way>`): a pool that
        waits for the GIL while this worker runs Python would otherwise be woken at each
        of the worker's short releases of it, at the worker's cost."""
        self.quiet.append(PoolEvent(self, kind, task_id, payload))
        if self.handoff is not None:
            self.handoff.give_way()

    def mark_launched(self) -> None:
        self.launched = time.monotonic()

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid})" if self.pid else self.name

    @abstractmethod
    def launch(self) -> None: ...

    @abstractmethod
    def send(self, task: Task) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def join(self, timeout: float) -> bool: ...

    @abstractmethod
    def kill(self) -> None: ...
