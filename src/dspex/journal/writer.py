"""A background writer: capture hands it finished trials and never waits on storage I/O."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["BackgroundWriter"]

logger = logging.getLogger(__name__)


class BackgroundWriter:
    """Runs store writes in order on one daemon thread; :meth:`flush` waits for them.

    A write that fails is kept with its error; :meth:`flush` returns the errors so the
    caller can retry them synchronously (nothing is dropped).
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._failed: list[tuple[Callable[[], None], BaseException]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def submit(self, write: Callable[[], None]) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.put(write)

    def _run(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is None:
                    return
                try:
                    write()
                except BaseException as exc:  # noqa: BLE001 - kept and reported by flush()
                    logger.warning("dspex: a background store write failed: %s", exc)
                    with self._lock:
                        self._failed.append((write, exc))
            finally:
                self._queue.task_done()

    def flush(self) -> list[tuple[Callable[[], None], BaseException]]:
        """Wait until every submitted write ran; return (and forget) the ones that failed."""
        if self._started:
            self._queue.join()
        with self._lock:
            failed, self._failed = self._failed, []
        return failed

    def close(self) -> None:
        if self._started and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
