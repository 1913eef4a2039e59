"""The ``thread`` adapter: workers are threads of the calling process, named ``worker-N``.

A thread cannot be killed: a worker that exceeds ``task_timeout`` is abandoned (it is a
daemon thread; whatever it returns later is dropped) and a new worker takes its place.
A ``BaseException`` that escapes ``fn`` (``SystemExit``, ``KeyboardInterrupt``) ends the
worker thread: the item is reported ``crashed`` and the worker replaced.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
from typing import Any

from dspex.model import ErrorInfo
from dspex.workers._core import PoolEventKind, Result, Task, Worker
from dspex.workers.outcome import WorkerInfo, set_thread_worker
from dspex.workers.pool import SupervisedPool

__all__ = ["ThreadPool"]

_STOP = object()


class ThreadWorker(Worker):
    """One daemon thread that runs the initializer, then one task at a time from its inbox."""

    def __init__(self, *args: Any, context: contextvars.Context):
        super().__init__(*args)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._context = context
        self._abandoned = False
        self._stopping = False
        self._thread = threading.Thread(
            target=self._context.run, args=(self._main,), name=f"dspex-{self.name}", daemon=True
        )

    def launch(self) -> None:
        self.pid = os.getpid()
        self._thread.start()

    def send(self, task: Task) -> None:
        self._inbox.put(task)

    def stop(self) -> None:
        self._stopping = True  # finish the item running, not one sent ahead
        self._inbox.put(_STOP)

    def join(self, timeout: float) -> bool:
        if self._thread.ident is None or self._abandoned:
            return True  # never started, or given up on
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def kill(self) -> None:
        # Threads cannot be killed; the pool has already forgotten this one, so anything
        # it posts from now on is ignored. Ask it to leave once its current call returns.
        self._abandoned = True
        self._inbox.put(_STOP)

    def _main(self) -> None:
        set_thread_worker(WorkerInfo(self.name, self.pid))
        if not self._initialize():
            return
        while True:
            task = self._inbox.get()
            if task is _STOP or self._abandoned or (self._stopping and not task.started):
                # given up on, this worker starts nothing more; stopping, it finishes what
                # the pool counts as running, not an item sent ahead (task.started unset)
                return
            task.started = time.monotonic()  # an item sent ahead starts its clock now
            try:
                result = Result(value=task.job.fn(task.item))
            except Exception as exc:  # noqa: BLE001 - the user's function: the item's error
                result = Result.from_exception(exc)
            except BaseException as exc:  # noqa: B036, BLE001 - the worker dies, the pool lives on
                self.post(PoolEventKind.DIED, task.id, f"ended by {_describe(exc)}")
                return
            if self._inbox.empty():  # the pool has more to send, or the run is over
                self.post(PoolEventKind.RESULT, task.id, result)
            else:  # items sent ahead are waiting: the pool need not wake for this one
                self.post_quiet(PoolEventKind.RESULT, task.id, result)

    def _initialize(self) -> bool:
        try:
            if self.init is not None:
                self.init.run()
        except BaseException as exc:  # noqa: B036, BLE001 - reported to the pool as a start-up failure
            self.post(PoolEventKind.INIT_FAILED, None, ErrorInfo.from_exception(exc))
            return False
        self.post(PoolEventKind.READY, None, self.pid)
        return True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}({str(exc)!r})" if str(exc) else type(exc).__name__


class ThreadPool(SupervisedPool):
    """Threads in this process. The initializer runs in each worker thread, so what it puts
    in context variables (``dspy.context(...)``, for instance) is seen by ``fn`` there;
    the context of the thread that calls ``start()`` is copied into every worker.
    """

    adapter = "thread"
    _needs_pickling = False
    _look_ahead = True  # a worker stamps task.started when it takes the item

    def start(self) -> None:
        self._start_context = contextvars.copy_context()
        super().start()

    def _new_worker(self, name: str) -> Worker:
        context = self._start_context.copy()
        return ThreadWorker(name, self._events, self._initializer, context=context)
