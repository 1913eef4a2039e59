"""Where a study's cells run: the engine contract, and the ``local`` engine.

An engine takes cells (:class:`~dspex.study.cell.CellTask`) and reports what became of
each as :class:`CellEvent`: started, done (with its report), failed (the cell raised),
crashed (its worker died), timeout, or interrupted (the study was stopped). The runner
decides what to retry; an engine never retries by itself.

The ``local`` engine runs each cell in a worker process of this machine, one dspex
:class:`~dspex.workers.process.ProcessPool` of one worker per concurrent cell, so that a
cell that crashes its process (a segfault, the OOM killer, ``kill -9``) takes nothing
else down: the pool replaces the worker and reports the cell ``crashed`` with the cause
(``was killed by signal SIGKILL``). The ``inline`` engine runs cells one at a time in
the calling process (for a debugger or a notebook: nothing is isolated). See
:mod:`dspex.study.ray_engine` for ``ray``.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from dspex.config import get_settings
from dspex.config.schema import WorkerAdapterName
from dspex.errors import StudyError, WorkerError
from dspex.study.cell import CellReport, CellTask, run_cell
from dspex.workers import TaskOutcome, create_pool

__all__ = ["CellEvent", "Engine", "EventKind", "InlineEngine", "LocalEngine", "cause_of"]

EventKind = Literal["started", "done", "failed", "crashed", "timeout", "interrupted"]
_STARTUP_SECONDS = 60.0  # at least: several workers importing DSPy at once on a busy machine


@dataclass(frozen=True)
class CellEvent:
    kind: EventKind
    key: tuple[str, int]
    attempt: int
    report: CellReport | None = None
    cause: str = ""
    worker: str = ""
    host: str = ""
    pid: int | None = None


class Engine(ABC):
    """Runs cells; at most :attr:`capacity` at once."""

    name: str
    capacity: int

    @abstractmethod
    def start(self) -> None:
        """Get workers ready (or connect); :class:`dspex.StudyError` when it cannot."""

    @abstractmethod
    def submit(self, task: CellTask) -> None:
        """Start ``task`` (the caller keeps at most :attr:`capacity` in flight)."""

    @abstractmethod
    def poll(self, timeout: float) -> list[CellEvent]:
        """What happened since the last poll, waiting up to ``timeout`` seconds for it."""

    @abstractmethod
    def stop(self) -> list[CellEvent]:
        """Stop every cell in flight now (each reported ``interrupted``); safe twice."""

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Cells submitted and not reported finished."""


def warm_up() -> None:
    """Import DSPy and dspex's recording in a new worker, before it takes a cell, so that
    the first cell's time is its own."""
    import dspy  # noqa: F401

    import dspex.study.cell  # noqa: F401


def cause_of(error: Any) -> str:
    """``Type: message`` of an :class:`~dspex.model.ErrorInfo` or an exception, one line."""
    kind = getattr(error, "type", None) or type(error).__name__
    message = getattr(error, "message", None)
    if message is None:
        message = str(error)
    first = str(message).strip().splitlines()[0] if str(message).strip() else ""
    short = str(kind).rsplit(".", 1)[-1]
    return f"{short}: {first}"[:500] if first else short


class LocalEngine(Engine):
    """Cells in worker processes of this machine (see the module docs)."""

    name = "local"

    def __init__(self, capacity: int, *, timeout: float | None = None) -> None:
        if capacity < 1:
            raise StudyError(f"max_concurrent must be at least 1, not {capacity}")
        self.capacity = capacity
        self.timeout = timeout
        self._host = socket.gethostname()
        self._tasks: queue.Queue[CellTask | None] = queue.Queue()
        self._events: queue.Queue[CellEvent] = queue.Queue()
        self._pools: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._busy: dict[int, CellTask] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._submitted = 0
        self._reported = 0
        self._lost = 0

    def start(self) -> None:
        settings = get_settings().workers
        settings = settings.model_copy(
            update={
                "adapter": WorkerAdapterName.PROCESS,
                "pool_size": 1,
                "task_timeout": self.timeout,
                "worker_shutdown_grace_period": 0.0,
                "pool_startup_timeout": max(settings.pool_startup_timeout, _STARTUP_SECONDS),
                "worker_init_timeout": max(settings.worker_init_timeout, _STARTUP_SECONDS),
            }
        )
        self._pools = [
            create_pool(settings, size=1, initializer=warm_up) for _ in range(self.capacity)
        ]
        errors: list[BaseException] = []

        def start_one(pool: Any) -> None:
            try:
                pool.start()
            except WorkerError as exc:
                errors.append(exc)

        starters = [threading.Thread(target=start_one, args=(p,)) for p in self._pools]
        for thread in starters:
            thread.start()
        for thread in starters:
            thread.join()
        if errors:
            self.stop()
            raise StudyError(f"the local engine could not start its workers: {errors[0]}")
        for index, pool in enumerate(self._pools):
            thread = threading.Thread(
                target=self._slot, args=(index, pool), name=f"dspex-study-slot-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, task: CellTask) -> None:
        with self._lock:
            self._submitted += 1
        self._tasks.put(task)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._submitted - self._reported

    def poll(self, timeout: float) -> list[CellEvent]:
        events = []
        try:
            events.append(self._events.get(timeout=timeout))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            self._reported += sum(1 for e in events if e.kind != "started")
        return events

    def stop(self) -> list[CellEvent]:
        with self._lock:
            if self._stopping:
                return []
            self._stopping = True
        for _ in self._threads:
            self._tasks.put(None)
        for pool in self._pools:
            pool.shutdown(grace=0)
        for thread in self._threads:
            thread.join(10.0)
        events = self.poll(0)
        unreported = []
        while True:  # submitted, never picked up by a slot
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                unreported.append(CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED))
        with self._lock:
            self._reported += len(unreported)
        return events + unreported

    def _slot(self, index: int, pool: Any) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            if self._stopping:
                self._events.put(CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED))
                continue
            workers = pool.workers()
            pid = workers[0][1] if workers else None
            worker = f"local-{index + 1}"
            self._events.put(
                CellEvent(
                    "started", task.key, task.attempt, worker=worker, host=self._host, pid=pid
                )
            )
            try:
                for outcome in pool.map(run_cell, [task], task_timeout=self.timeout):
                    self._events.put(self._event(task, outcome, worker))
            except WorkerError as exc:
                kind: EventKind = "interrupted" if self._stopping else "crashed"
                cause = _STOPPED if self._stopping else cause_of(exc)
                self._events.put(
                    CellEvent(kind, task.key, task.attempt, cause=cause, worker=worker)
                )
                if not self._stopping:  # the pool could not replace its worker: slot is done
                    self._slot_lost(cause)
                    return

    def _slot_lost(self, cause: str) -> None:
        """A slot is gone; when it was the last one, nothing will take the queued cells."""
        with self._lock:
            self._lost += 1
            last = self._lost == len(self._pools)
        while last:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            if task is not None:
                message = f"no local worker is left to run it (the last one: {cause})"
                self._events.put(CellEvent("crashed", task.key, task.attempt, cause=message))

    def _event(self, task: CellTask, outcome: TaskOutcome, worker: str) -> CellEvent:
        kind: EventKind
        if outcome.ok:
            kind = "done"
        elif outcome.failure == "crashed":
            kind = "interrupted" if self._stopping else "crashed"
        elif outcome.failure == "timeout":
            kind = "timeout"
        else:
            kind = "failed"
        cause = "" if outcome.ok else cause_of(outcome.error) if outcome.error else "unknown"
        return CellEvent(
            kind,
            task.key,
            task.attempt,
            report=outcome.value if outcome.ok else None,
            cause=_STOPPED if kind == "interrupted" else cause,
            worker=worker,
            host=self._host,
            pid=outcome.pid or None,
        )


_STOPPED = "the study was stopped (Ctrl-C) while the cell ran"


class InlineEngine(Engine):
    """Cells one at a time, in this process, when polled."""

    name = "inline"
    capacity = 1

    def __init__(self) -> None:
        self._queue: list[CellTask] = []
        self._host = socket.gethostname()

    def start(self) -> None:
        pass

    def submit(self, task: CellTask) -> None:
        self._queue.append(task)

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def poll(self, timeout: float) -> list[CellEvent]:
        if not self._queue:
            return []
        task = self._queue.pop(0)
        try:
            report = run_cell(task)
        except Exception as exc:  # noqa: BLE001 - the cell raised: reported like any engine's failure
            return [self._event("failed", task, cause=cause_of(exc))]
        return [self._event("done", task, report=report)]

    def _event(
        self, kind: EventKind, task: CellTask, *, cause: str = "", report: CellReport | None = None
    ) -> CellEvent:
        return CellEvent(
            kind,
            task.key,
            task.attempt,
            report=report,
            cause=cause,
            worker="inline",
            host=self._host,
            pid=os.getpid(),
        )

    def stop(self) -> list[CellEvent]:
        events = [
            CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED) for task in self._queue
        ]
        self._queue.clear()
        return events
