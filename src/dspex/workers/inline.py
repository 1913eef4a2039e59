"""``workers.pooling_enabled = false``: every item runs in the calling thread, one at a time.

There is no isolation: ``task_timeout`` is not enforced (nothing could interrupt the
call), and a ``BaseException`` raised by ``fn`` (``KeyboardInterrupt``) propagates to the
caller instead of being reported. The initializer runs once, in the calling thread, at
``start()``. Outcomes name the worker ``inline``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dspex.errors import WorkerError, WorkerStartupError
from dspex.workers._core import Result
from dspex.workers.outcome import _CURRENT, TaskOutcome, WorkerInfo
from dspex.workers.pool import UNSET, WorkerPool

__all__ = ["InlinePool"]

INLINE = "inline"


class InlinePool(WorkerPool):
    """Runs ``fn`` in the calling thread. ``size`` is kept for reporting only."""

    adapter = "inline"

    def __init__(self, *, size: int = 1, **kwargs: Any):
        super().__init__(size=size, **kwargs)
        self._state = "new"

    def start(self) -> None:
        if self._state != "new":
            raise WorkerError(f"{self!r} was already started; a pool starts once")
        self._state = "running"
        if self._initializer is not None:
            try:
                self._initializer.run()
            except Exception as exc:
                self._state = "closed"
                raise WorkerStartupError(
                    f"the inline worker was not ready: initializer raised "
                    f"{type(exc).__name__}: {exc}",
                    workers=(INLINE,),
                ) from exc

    def map(
        self, fn: Callable[[Any], Any], items: Iterable[Any], *, task_timeout: float | None = UNSET
    ) -> Iterator[TaskOutcome]:
        if self._state != "running":
            raise WorkerError(f"{self!r} is not running; call start() or use `with pool:`")
        return self._run(fn, list(items))

    def _run(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[TaskOutcome]:
        info = WorkerInfo(INLINE, os.getpid())
        for index, item in enumerate(items):
            if self._state != "running":
                raise WorkerError(
                    f"{self!r} was shut down before items {index}..{len(items) - 1} ran"
                )
            token = _CURRENT.set(info)
            try:
                result = Result(value=fn(item))
            except Exception as exc:  # noqa: BLE001 - the user's function: the item's error
                result = Result.from_exception(exc)
            finally:
                _CURRENT.reset(token)
            yield TaskOutcome(
                index=index,
                value=result.value,
                error=result.error,
                exception=result.exception,
                worker=INLINE,
                pid=info.pid,
            )

    def shutdown(self, grace: float | None = None) -> None:
        self._state = "closed"
