"""The TrialRecorder: a thread-safe, allocation-light buffer of one trial's events.

The hot path (:meth:`TrialRecorder.emit`) appends a tuple and returns an event id;
validated :class:`~dspex.model.TraceEvent` records are built later, off the calling
thread's critical path, by :meth:`TrialRecorder.events`, which is also where payloads
become JSON data (so the hot path may hand over values that are not JSON yet, as long
as nothing changes them afterwards: the LM messages and responses DSPy builds per call).
Events recorded in another process come back as plain dicts and are merged with
:meth:`merge`.

    >>> from dspex.capture.recorder import TrialRecorder
    >>> from dspex.ids import new_id
    >>> rec = TrialRecorder(new_id("trl"))
    >>> start = rec.emit("execution", "module_start", {"module": "qa"})
    >>> _ = rec.emit("execution", "module_end", {"module": "qa"}, parent_id=None)
    >>> [e.kind.value for e in rec.events()]
    ['module_start', 'module_end']
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from dspex.capture.jsonable import jsonable
from dspex.ids import IdSeries
from dspex.model.event import TraceEvent, trusted_event
from dspex.workers.outcome import pool_worker_name

__all__ = ["RawEvent", "TrialRecorder", "current_worker_name"]


class RawEvent(NamedTuple):
    """An event as captured: cheap to make, turned into a TraceEvent later."""

    id: str
    time_ns: int
    monotonic_ns: int
    source: str
    kind: str
    payload: dict[str, Any]
    parent_id: str | None
    pid: int
    worker: str
    json_ready: bool = False  # the payload is JSON data already (no conversion at the end)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def current_worker_name() -> str:
    """The name recorded as ``worker`` on events: the pool worker's (``worker-3``), else the
    thread's (DSPy's own worker threads), else ``main``."""
    worker = pool_worker_name()
    if worker is not None:
        return worker
    try:
        return str(_thread_names.name)
    except AttributeError:
        name = threading.current_thread().name
        _thread_names.name = name = "main" if name == "MainThread" else (name or "thread")
        return name


# A thread's name, looked up once per thread: emit() asks for it on every event.
_thread_names = threading.local()
_new_tuple = tuple.__new__  # a RawEvent made without the namedtuple's Python-level __new__


# One series of event ids per process, shared by every recorder: a recorder per example
# (the harness makes one per example) must not pay for a new random stem each time.
_next_event_id = IdSeries("evt")


def _new_series_in_child() -> None:
    global _next_event_id
    _next_event_id = IdSeries("evt")


os.register_at_fork(after_in_child=_new_series_in_child)  # a forked child draws its own stem


def _utc(time_ns: int) -> datetime:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)


class TrialRecorder:
    """Collects the events of one trial from any number of threads."""

    def __init__(self, trial_id: str, *, module_paths: dict[int, str] | None = None) -> None:
        self.trial_id = trial_id
        # id(module instance) -> its path in the program ("qa.predict"), for module events.
        self.module_paths: dict[int, str] = dict(module_paths or {})
        # programs named by adopt(), kept alive so that their ids stay theirs
        self._adopted: list[Any] = []
        # identity of an adopted program (see dspex.capture.program.root_key) -> its name:
        # an optimizer's copy of the student is named like the student
        self.root_names: dict[Any, str] = {}
        self._raw: list[RawEvent] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def emit(
        self,
        source: str,
        kind: str,
        payload: dict[str, Any],
        *,
        parent_id: str | None = None,
        json_ready: bool = False,
    ) -> str:
        """Record one event now; return its id (to use as a later event's parent).

        Lock-free: ``list.append`` is atomic under the GIL, and this runs for every
        module, adapter and LM call of the program. ``json_ready``: the payload is JSON
        data already (built through ``jsonable``), so the end of the trial takes it as is.
        """
        event_id = _next_event_id()
        self._raw.append(
            _new_tuple(
                RawEvent,
                (
                    event_id,
                    time.time_ns(),
                    time.monotonic_ns(),
                    source,
                    kind,
                    payload,
                    parent_id,
                    self._pid,
                    current_worker_name(),
                    json_ready,
                ),
            )
        )
        return event_id

    def adopt(self, program: Any, paths: dict[int, str], key: Any = None) -> str:
        """Name ``program`` and its sub-modules with ``paths`` (from
        :func:`dspex.capture.program.module_paths`) for this trial's module events; return
        the program's name. The program is kept alive, so that its id stays its own, and
        its name is remembered under ``key`` (:attr:`root_names`), for the copies of it
        that an optimizer makes.
        """
        with self._lock:
            self._adopted.append(program)
            for module_id, path in paths.items():
                self.module_paths.setdefault(module_id, path)
            name = self.module_paths.get(id(program), "")
            if key is not None:
                self.root_names.setdefault(key, name)
        return name

    def merge(self, events: Iterable[RawEvent | dict[str, Any]]) -> None:
        """Add events recorded elsewhere (another process), keeping their time order."""
        incoming = [e if isinstance(e, RawEvent) else RawEvent(**e) for e in events]
        with self._lock:
            self._raw.extend(incoming)

    def raw_events(self) -> list[RawEvent]:
        with self._lock:
            return list(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def events(self) -> tuple[TraceEvent, ...]:
        """Validated TraceEvents in time order, numbered 0..n-1."""
        raw = sorted(self.raw_events(), key=lambda e: (e.time_ns, e.monotonic_ns, e.id))
        return tuple(
            trusted_event(
                id=e.id,
                trial_id=self.trial_id,
                parent_id=e.parent_id,
                sequence=sequence,
                timestamp=_utc(e.time_ns),
                monotonic_ns=e.monotonic_ns,
                source=e.source,
                kind=e.kind,
                pid=e.pid,
                worker=e.worker,
                payload=e.payload if e.json_ready else jsonable(e.payload),
            )
            for sequence, e in enumerate(raw)
        )
