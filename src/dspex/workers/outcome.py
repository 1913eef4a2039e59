"""What a pool hands back for each item, and which worker is running the current code.

>>> outcome = TaskOutcome(index=0, value=42, worker="worker-1", pid=1234)
>>> outcome.ok
True
>>> current_worker().name          # outside any pool
'main'
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from dspex.model import ErrorInfo

__all__ = ["Failure", "TaskOutcome", "WorkerInfo", "current_worker"]

Failure = Literal["crashed", "timeout"]


@dataclass(frozen=True)
class WorkerInfo:
    """The name (``worker-3``) and process id of a worker."""

    name: str
    pid: int


@dataclass(frozen=True)
class TaskOutcome:
    """How one item went: its value, the exception ``fn`` raised, or a worker-level fault.

    ``error`` is set whenever the outcome is not ok: for an exception raised by ``fn`` it
    carries the remote traceback (and ``exception`` the exception itself when it could be
    transferred); for ``failure`` ``"crashed"`` or ``"timeout"`` it describes the cause
    (exit code or signal, or the time limit) with type ``dspex.errors.WorkerCrashed`` or
    ``dspex.errors.WorkerTimeout``.
    """

    index: int
    value: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = None
    failure: Failure | None = None
    worker: str = ""
    pid: int = 0

    @property
    def ok(self) -> bool:
        """True when ``fn`` returned normally."""
        return self.error is None and self.failure is None


_CURRENT: ContextVar[WorkerInfo | None] = ContextVar("dspex_current_worker", default=None)
# Set once in a worker process (process and Ray adapters), where every thread is the worker's.
_process_worker: WorkerInfo | None = None


def current_worker() -> WorkerInfo:
    """The worker running the calling code: ``worker-N`` in a pool, ``main`` outside one."""
    info = _CURRENT.get()
    if info is not None:
        return info
    if _process_worker is not None:
        return _process_worker
    return WorkerInfo("main", os.getpid())


def pool_worker_name() -> str | None:
    """The pool worker's name for the calling code, or None outside pools (cheap: no pid)."""
    info = _CURRENT.get() or _process_worker
    return info.name if info is not None else None


def set_process_worker(info: WorkerInfo) -> None:
    """Mark this whole process as the worker ``info`` (called in worker processes only)."""
    global _process_worker
    _process_worker = info


def set_thread_worker(info: WorkerInfo | None) -> None:
    """Mark the current context (a worker thread's) as running on ``info``."""
    _CURRENT.set(info)
