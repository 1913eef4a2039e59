"""The pool contract, and the supervisor that the thread, process and Ray adapters share.

A pool runs ``fn(item)`` for every item on its workers and yields one
:class:`~dspex.workers.TaskOutcome` per item as items finish::

    with create_pool(size=4) as pool:
        for outcome in pool.map(fn, items):
            print(outcome.index, outcome.ok, outcome.worker)

A worker that dies while it holds an item, or holds it past ``task_timeout``, is replaced;
its item is reported ``crashed`` or ``timeout`` and the run goes on.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dspex.config import get_settings
from dspex.config.schema import WorkersSettings
from dspex.errors import (
    ValidationError,
    WorkerCrashed,
    WorkerError,
    WorkerStartupError,
    WorkerTimeout,
)
from dspex.model import ErrorInfo
from dspex.workers._core import (
    Init,
    Job,
    PoolEvent,
    PoolEventKind,
    Result,
    Task,
    Worker,
    WorkerState,
)
from dspex.workers.handoff import Handoff
from dspex.workers.outcome import Failure, TaskOutcome

__all__ = ["UNSET", "WorkerPool"]

UNSET: Any = object()
"""Default of ``task_timeout``: take ``workers.task_timeout`` from the settings."""

# A replacement worker that fails to start this many times in a row ends the run.
_MAX_REPLACEMENT_FAILURES = 3

# How long the pool sleeps at most while its worker runs items sent ahead and posts their
# results quietly: outcomes reach the caller within this delay (the last one at once).
_QUIET_POLL = 0.05


class WorkerPool(ABC):
    """A pool of ``size`` workers: ``start()``, then ``map()`` any number of times, then
    ``shutdown()`` (or use it as a context manager).

    ``initializer(*initargs)`` runs once in each worker before it takes work, within
    ``workers.worker_init_timeout``. The constructor does no I/O.
    """

    adapter: ClassVar[str]

    def __init__(
        self,
        *,
        size: int,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        settings: WorkersSettings | None = None,
    ):
        if not isinstance(size, int) or size < 1:
            raise ValidationError(f"pool size must be an integer >= 1, got {size!r}")
        self.size = size
        self._initializer = Init(initializer, tuple(initargs)) if initializer else None
        self._settings = settings

    @property
    def settings(self) -> WorkersSettings:
        if self._settings is None:  # resolved late so that the constructor stays free of I/O
            self._settings = get_settings().workers
        return self._settings

    @abstractmethod
    def start(self) -> None:
        """Start every worker; raise WorkerStartupError naming those not ready in time."""

    @abstractmethod
    def map(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, task_timeout: float | None = UNSET
    ) -> Iterator[TaskOutcome]:
        """Run ``fn`` on every item; yield each item's outcome exactly once, as it finishes."""

    @abstractmethod
    def shutdown(self, grace: float | None = None) -> None:
        """Stop the workers gracefully within ``grace`` seconds, then kill them. Safe twice."""

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} size={self.size}>"


@dataclass
class _Run:
    """The bookkeeping of one ``map`` call."""

    job: Job
    items: list[Any]
    timeout: float | None
    pending: deque[int] = field(default_factory=deque)
    outstanding: set[int] = field(default_factory=set)
    task_ids: set[int] = field(default_factory=set)
    replacement_failures: int = 0
    closed: bool = False

    def finish(self, task: Task, outcome: TaskOutcome) -> TaskOutcome | None:
        """The outcome to report, or None when the task is not this run's (or was reported)."""
        if task.id not in self.task_ids or task.index not in self.outstanding:
            return None
        self.outstanding.discard(task.index)
        return outcome


def _fault(task: Task, worker: Worker, failure: Failure, cause: str) -> TaskOutcome:
    error_type = WorkerCrashed if failure == "crashed" else WorkerTimeout
    exc = error_type(cause)
    info = ErrorInfo(type=f"dspex.errors.{error_type.__name__}", message=cause)
    return TaskOutcome(
        index=task.index,
        error=info,
        exception=exc,
        failure=failure,
        worker=worker.name,
        pid=worker.pid,
    )


def _result(task: Task, worker: Worker, result: Result) -> TaskOutcome:
    return TaskOutcome(
        index=task.index,
        value=result.value,
        error=result.error,
        exception=result.exception,
        worker=worker.name,
        pid=worker.pid,
    )


class SupervisedPool(WorkerPool):
    """A pool whose workers are :class:`~dspex.workers._core.Worker` handles it supervises.

    Adapters implement :meth:`_new_worker`. Everything else (start-up deadlines, dispatch,
    task timeouts, replacing dead workers, graceful shutdown) lives here, once.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # SimpleQueue is implemented in C: no Python-level lock and condition per event,
        # which a pool of one thread paid twice per example
        self._events: queue.SimpleQueue[PoolEvent] = queue.SimpleQueue()
        self._handoff = Handoff()
        self._workers: dict[str, Worker] = {}
        self._lock = threading.RLock()
        self._state = "new"  # new -> running -> closing -> closed
        self._names = itertools.count(1)
        self._task_ids = itertools.count(1)
        self._mapping = False

    @abstractmethod
    def _new_worker(self, name: str) -> Worker:
        """A handle for a new worker called ``name`` (not launched yet)."""

    # -- start -------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Work to do in the caller's thread before any worker starts (serialization)."""
        if self._initializer is None or not self._needs_pickling:
            return
        try:
            self._initializer.blob()
        except Exception as exc:
            raise WorkerError(
                f"the initializer {self._initializer.fn!r} or its arguments cannot be "
                f"serialized for {self.adapter} workers: {exc}"
            ) from exc

    _needs_pickling: ClassVar[bool] = True
    #: A pool of one worker sends it every item of the run ahead, so that it goes on
    #: without waiting for the pool to take in each result; a worker that posts its
    #: results quietly while it has items left (``Worker.post_quiet``) then wakes the pool
    #: once per run instead of once per item: the thread switches of each item cost a
    #: pool of one thread more than 10% of a 1 ms item. Only adapters whose workers
    #: stamp ``task.started`` when they really start an item may say so.
    _look_ahead: ClassVar[bool] = False

    def start(self) -> None:
        with self._lock:
            if self._state != "new":
                raise WorkerError(f"{self!r} was already started; a pool starts once")
            self._prepare()
            self._state = "running"
            for _ in range(self.size):
                self._launch()
        failed = self._await_ready(time.monotonic() + self.settings.pool_startup_timeout)
        if failed:
            self.shutdown(grace=0)
            names = tuple(failed)
            details = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
            raise WorkerStartupError(
                f"{len(names)} of {self.size} {self.adapter} workers were not ready "
                f"({details}). Raise workers.pool_startup_timeout or "
                "workers.worker_init_timeout, or fix the initializer.",
                workers=names,
            )

    def _await_ready(self, deadline: float) -> dict[str, str]:
        """Wait until every worker is ready; return {name: reason} for those that are not."""
        failed: dict[str, str] = {}
        while not failed:
            starting = [w for w in self._workers.values() if w.state is WorkerState.STARTING]
            if not starting:
                return failed
            now = time.monotonic()
            if now >= deadline:
                limit = self.settings.pool_startup_timeout
                for w in starting:
                    failed[w.name] = f"not ready after {limit:g} s (workers.pool_startup_timeout)"
                return failed
            wake = min(deadline, *(self._init_deadline(w) for w in starting))
            event = self._next_event(wake)
            if event is not None:
                self._on_start_event(event, failed)
            failed.update(self._expired_starts())
        for w in self._workers.values():
            if w.state is WorkerState.STARTING and w.name not in failed:
                failed[w.name] = "still starting when another worker failed"
        return failed

    def _on_start_event(self, event: PoolEvent, failed: dict[str, str]) -> None:
        worker = event.worker
        if worker is None or worker.state is not WorkerState.STARTING:
            return
        if event.kind is PoolEventKind.READY:
            worker.pid = event.payload or worker.pid
            worker.state = WorkerState.IDLE
        elif event.kind is PoolEventKind.INIT_FAILED:
            failed[worker.name] = f"initializer raised {_short(event.payload)}"
        elif event.kind is PoolEventKind.DIED:
            failed[worker.name] = f"died while starting: {event.payload}"

    def _init_deadline(self, worker: Worker) -> float:
        return worker.launched + self.settings.worker_init_timeout

    def _init_too_long(self) -> str:
        limit = self.settings.worker_init_timeout
        return f"initializer still running after {limit:g} s (workers.worker_init_timeout)"

    def _expired_starts(self) -> dict[str, str]:
        now = time.monotonic()
        return {
            w.name: self._init_too_long()
            for w in self._workers.values()
            if w.state is WorkerState.STARTING and self._init_deadline(w) <= now
        }

    def _launch(self) -> Worker | None:
        with self._lock:
            if self._state != "running":
                return None
            worker = self._new_worker(f"worker-{next(self._names)}")
            worker.handoff = self._handoff
            self._workers[worker.name] = worker
            worker.mark_launched()
        worker.launch()
        return worker

    def _retire(self, worker: Worker, *, kill: bool) -> None:
        with self._lock:
            worker.state = WorkerState.GONE
            self._workers.pop(worker.name, None)
        if kill:
            worker.kill()

    def _next_event(self, wake: float | None) -> PoolEvent | None:
        # a worker posting quietly gives way to the pool once ``wake`` has come, until the
        # pool sleeps here again (see Worker.post_quiet); time.monotonic() and
        # monotonic_ns() read the same clock
        self._handoff.sleep_until(None if wake is None else int(wake * 1e9))
        try:
            if wake is None:
                return self._events.get()
            return self._events.get(timeout=max(0.0, wake - time.monotonic()))
        except queue.Empty:
            return None

    # -- map ---------------------------------------------------------------------------

    def map(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, task_timeout: float | None = UNSET
    ) -> Iterator[TaskOutcome]:
        if self._state == "new":
            raise WorkerError(f"{self!r} is not started; call start() or use `with pool:`")
        if self._state != "running":
            raise WorkerError(f"{self!r} was shut down; create a new pool")
        timeout = self.settings.task_timeout if task_timeout is UNSET else task_timeout
        items = list(items)
        run = _Run(Job(fn), items, timeout, deque(range(len(items))), set(range(len(items))))
        return self._run(run)

    def _run(self, run: _Run) -> Iterator[TaskOutcome]:
        with self._lock:
            if self._mapping:
                raise WorkerError(f"{self!r} is already running a map; one map at a time")
            self._mapping = True
        try:
            while run.outstanding and not run.closed:
                # Take in what already happened first, so that no item goes to a worker
                # whose death is waiting in the queue.
                yield from self._drain(run)
                if run.closed:
                    break
                yield from self._dispatch(run)
                if not run.outstanding:
                    break
                event = self._next_event(self._wake_time())
                yield from self._take_quiet(run)  # posted before the event, so first
                if event is None:
                    yield from self._expire(run)
                else:
                    yield from self._handle(event, run)
            if run.outstanding:
                missing = sorted(run.outstanding)
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                raise WorkerError(
                    f"{self!r} was shut down before {len(missing)} of {len(run.items)} items "
                    f"finished (items {shown}); they were not reported"
                )
        finally:
            with self._lock:
                self._mapping = False

    def _take_quiet(self, run: _Run) -> Iterator[TaskOutcome]:
        """The results workers posted quietly, in the order each posted them."""
        for worker in list(self._workers.values()):
            while not run.closed:
                with self._lock:  # shutdown moves what is left to the queue, in order
                    if not worker.quiet:
                        break
                    event = worker.quiet.popleft()
                yield from self._handle(event, run)

    def _drain(self, run: _Run) -> Iterator[TaskOutcome]:
        yield from self._take_quiet(run)
        # asked before taking: an empty queue, the common case, costs no raised and caught
        # queue.Empty per item
        while not run.closed and not self._events.empty():
            try:
                event = self._events.get_nowait()
            except queue.Empty:  # taken meanwhile by another reader (a shutdown)
                return
            yield from self._handle(event, run)

    def _handle(self, event: PoolEvent, run: _Run) -> Iterator[TaskOutcome]:
        if event.kind is PoolEventKind.CLOSED:
            run.closed = True
        else:
            yield from self._on_event(event, run)

    def _dispatch(self, run: _Run) -> Iterator[TaskOutcome]:
        unsendable: list[TaskOutcome] = []
        with self._lock:
            idle = [w for w in self._workers.values() if w.state is WorkerState.IDLE]
            while self._state == "running" and run.pending and idle:
                worker = idle.pop()
                task = self._send(worker, run, unsendable)
                if task is None:
                    idle.append(worker)
                    continue
                worker.state = WorkerState.BUSY
                worker.task = task
            if self._look_ahead and self.size == 1:
                for worker in self._workers.values():
                    while (
                        self._state == "running"
                        and run.pending
                        and worker.state is WorkerState.BUSY
                    ):
                        task = self._send(worker, run, unsendable, ahead=True)
                        if task is not None:
                            worker.ahead.append(task)
        yield from unsendable

    def _send(
        self, worker: Worker, run: _Run, unsendable: list[TaskOutcome], *, ahead: bool = False
    ) -> Task | None:
        """Send ``worker`` the run's next pending item; None when it could not be sent (its
        outcome is then in ``unsendable``). An item sent ``ahead`` has not started yet:
        its clock starts when the worker takes it (or when the pool hears that the item
        before it ended, whichever it learns first)."""
        index = run.pending.popleft()
        task = Task(next(self._task_ids), index, run.items[index], run.job, run.timeout)
        task.started = 0.0 if ahead else time.monotonic()
        run.task_ids.add(task.id)
        try:
            worker.send(task)
        except Exception as exc:  # noqa: BLE001 - the item or fn could not be serialized
            run.outstanding.discard(index)
            unsendable.append(_result(task, worker, Result.from_exception(exc)))
            return None
        return task

    @staticmethod
    def _take_back(worker: Worker, run: _Run) -> None:
        """The items sent ahead to a worker that is gone go back to the front of the
        queue, in order (its worker never started them: it stops before taking a queued
        item once given up on)."""
        while worker.ahead:
            task = worker.ahead.pop()
            if task.index in run.outstanding:
                run.pending.appendleft(task.index)

    def _wake_time(self) -> float | None:
        deadlines = []
        for w in list(self._workers.values()):
            if w.state is WorkerState.STARTING:
                deadlines.append(self._init_deadline(w))
            elif w.state is WorkerState.BUSY:
                if w.task and w.task.deadline is not None:
                    deadlines.append(w.task.deadline)
                if w.ahead:  # its results may come quietly: look at them now and then
                    deadlines.append(time.monotonic() + _QUIET_POLL)
        return min(deadlines, default=None)

    def _on_event(self, event: PoolEvent, run: _Run) -> Iterator[TaskOutcome]:
        worker = event.worker
        if worker is None or worker.state is WorkerState.GONE:
            return  # a late word from a worker that was already replaced
        if worker.state is WorkerState.STARTING:
            self._on_replacement_event(event, run)
        elif event.kind is PoolEventKind.RESULT:
            task = worker.task
            if task is None or task.id != event.task_id:
                return
            worker.task = worker.ahead.popleft() if worker.ahead else None
            with self._lock:
                if worker.task is not None:  # the item sent ahead runs now
                    if not worker.task.started:
                        worker.task.started = time.monotonic()
                elif worker.state is WorkerState.BUSY:
                    worker.state = WorkerState.IDLE
            outcome = run.finish(task, _result(task, worker, event.payload))
            if outcome is not None:
                yield outcome
        elif event.kind is PoolEventKind.DIED:
            yield from self._on_death(worker, str(event.payload), run)

    def _on_death(self, worker: Worker, cause: str, run: _Run) -> Iterator[TaskOutcome]:
        task = worker.task
        stopping = worker.state is WorkerState.STOPPING
        self._take_back(worker, run)
        self._retire(worker, kill=False)
        if stopping:
            return  # killed by shutdown after its grace period: not reported
        self._launch()
        if task is not None:
            message = f"{worker.describe()} {cause} while running item {task.index}"
            outcome = run.finish(task, _fault(task, worker, "crashed", message))
            if outcome is not None:
                yield outcome

    def _on_replacement_event(self, event: PoolEvent, run: _Run) -> None:
        worker = event.worker
        assert worker is not None
        if event.kind is PoolEventKind.READY:
            with self._lock:
                worker.pid = event.payload or worker.pid
                worker.state = WorkerState.IDLE
            run.replacement_failures = 0
            return
        if event.kind is PoolEventKind.INIT_FAILED:
            reason = f"initializer raised {_short(event.payload)}"
        else:
            reason = f"died while starting: {event.payload}"
        self._replacement_failed(worker, reason, run)

    def _replacement_failed(self, worker: Worker, reason: str, run: _Run) -> None:
        self._retire(worker, kill=True)
        run.replacement_failures += 1
        if run.replacement_failures >= _MAX_REPLACEMENT_FAILURES:
            raise WorkerError(
                f"{self!r} could not replace a worker {run.replacement_failures} times in a "
                f"row; last, {worker.name}: {reason}"
            )
        self._launch()

    def _expire(self, run: _Run) -> Iterator[TaskOutcome]:
        now = time.monotonic()
        for worker in list(self._workers.values()):
            if worker.state is WorkerState.STARTING and self._init_deadline(worker) <= now:
                self._replacement_failed(worker, self._init_too_long(), run)
                continue
            task = worker.task
            deadline = task.deadline if task else None
            if worker.state is WorkerState.BUSY and deadline is not None and deadline <= now:
                assert task is not None
                self._take_back(worker, run)
                self._retire(worker, kill=True)
                self._launch()
                message = (
                    f"{worker.describe()} ran item {task.index} for more than "
                    f"{task.timeout:g} s (task_timeout); the worker was replaced"
                )
                outcome = run.finish(task, _fault(task, worker, "timeout", message))
                if outcome is not None:
                    yield outcome

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self, grace: float | None = None) -> None:
        with self._lock:
            if self._state in ("closing", "closed"):
                return
            self._state = "closing"
            workers = list(self._workers.values())
            for worker in workers:
                worker.state = WorkerState.STOPPING
        if grace is None:
            grace = self.settings.worker_shutdown_grace_period
        for worker in workers:
            worker.stop()
        deadline = time.monotonic() + grace
        for worker in workers:
            if not worker.join(max(0.0, deadline - time.monotonic())):
                worker.kill()
                worker.join(1.0)
        with self._lock:
            # Workers stay STOPPING, not GONE: results they posted during the grace period
            # are still in the queue (those posted quietly are put there now, after what
            # the running map took), and it reports them before CLOSED.
            for worker in workers:
                while worker.quiet:
                    self._events.put(worker.quiet.popleft())
            self._workers.clear()
            self._state = "closed"
        self._events.put(PoolEvent(None, PoolEventKind.CLOSED))

    def workers(self) -> list[tuple[str, int]]:
        """(name, pid) of the live workers, for display and tests."""
        with self._lock:
            return [(w.name, w.pid) for w in self._workers.values()]


def _short(error: Any) -> str:
    if isinstance(error, ErrorInfo):
        return f"{error.type.rsplit('.', 1)[-1]}: {error.message}"
    return str(error)
