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
    >>> from dspex.model import EventKind
    >>> rec = TrialRecorder(new_id("trl"))
    >>> start = rec.emit(EventKind.LOG, {"level": "INFO", "message": "hello"})
    >>> [(e.source.value, e.kind.value) for e in rec.events()]
    [('execution', 'log')]

Each kind has one payload type (:mod:`dspex.model.payloads`); :meth:`TrialRecorder.emit`'s
overloads let mypy check every producer's payload against it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, Literal, NamedTuple, TypedDict, Unpack, overload

from dspex.capture.jsonable import jsonable
from dspex.ids import IdSeries
from dspex.model.event import EventKind, EventSource, TraceEvent, trusted_event
from dspex.model.payloads import (
    SOURCE_OF,
    AdapterPayload,
    CandidateCreatedPayload,
    CandidateScoredPayload,
    DecisionPayload,
    EmbeddingPayload,
    ErrorEventPayload,
    ExampleResultPayload,
    LmCallPayload,
    LogPayload,
    MetricPayload,
    ModuleEndPayload,
    ModuleStartPayload,
    OptimizerEndPayload,
    OptimizerStartPayload,
    RetrievalPayload,
    StepPayload,
    ToolCallPayload,
    TrialScorePayload,
)
from dspex.workers.outcome import pool_worker_name

__all__ = [
    "EmitOptions",
    "TIME_ORDER",
    "RawEvent",
    "TrialRecorder",
    "current_worker_name",
    "new_event_id",
    "trace_events",
    "utc_time",
]


class RawEvent(NamedTuple):
    """An event as captured: cheap to make, turned into a TraceEvent later."""

    id: str
    time_ns: int
    monotonic_ns: int
    source: str | None  # None: the kind's own source (SOURCE_OF), set when sealed
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


def new_event_id() -> str:
    """A fresh event id, for an event emitted later (``emit(..., event_id=...)``): a call
    recorded when it ends, whose inner calls are recorded before it, under it."""
    return _next_event_id()


def _new_series_in_child() -> None:
    global _next_event_id
    _next_event_id = IdSeries("evt")


os.register_at_fork(after_in_child=_new_series_in_child)  # a forked child draws its own stem


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEVER = 1 << 62  # a monotonic time no run reaches: no flush due
_RETRY_NS = 1_000_000_000  # a flush that failed is tried again this much later
logger = logging.getLogger(__name__)


def utc_time(time_ns: int) -> datetime:
    """The UTC time of ``time_ns`` (nanoseconds since the epoch), to the microsecond below.

    One addition to the epoch: ``datetime.fromtimestamp(..., tz=UTC).replace(...)`` made
    the same value at twice the cost, for every event of every trial sealed.

        >>> utc_time(1_780_000_000_123_456_789).isoformat()
        '2026-05-28T20:26:40.123456+00:00'
    """
    return _EPOCH + timedelta(microseconds=time_ns // 1000)


# The order of a trial's events: time, then the monotonic clock, then the id (a tie
# breaker); picked out of the RawEvent tuple in C, not by a Python key function per event.
TIME_ORDER = itemgetter(1, 2, 0)
assert RawEvent._fields[:3] == ("id", "time_ns", "monotonic_ns")


class EmitOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`TrialRecorder.emit`."""

    parent_id: str | None
    json_ready: bool
    source: EventSource | None
    event_id: str | None


K = EventKind


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
        self._released = 0  # events handed to the journal's spool and dropped from _raw
        self._lock = threading.Lock()
        # notified by release(); made by bound_backlog(), the only one to wait on it (the
        # harness makes a recorder per example: most never need one)
        self._drained: threading.Condition | None = None
        self._backlog_limit: int | None = None  # see bound_backlog()
        # see flush_when_due(): called by the thread that records once _due_ns has passed
        self._on_due: Callable[[], None] | None = None
        self._due_ns = _NEVER
        self._flush_events = _NEVER  # see flush_when_due()
        self._flush_len = _NEVER  # len(self._raw) at which a flush is due
        self._flush_failed = False  # warned once; later failures are logged at debug level
        self._pid = os.getpid()

    # One overload per kind: the payload must be that kind's type (dspex.model.payloads).
    # fmt: off
    @overload
    def emit(self, kind: Literal[K.OPTIMIZER_START], payload: OptimizerStartPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.OPTIMIZER_END], payload: OptimizerEndPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.STEP], payload: StepPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.DECISION], payload: DecisionPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.CANDIDATE_CREATED], payload: CandidateCreatedPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.CANDIDATE_SCORED], payload: CandidateScoredPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.MODULE_START], payload: ModuleStartPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.MODULE_END], payload: ModuleEndPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.LM_CALL], payload: LmCallPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.ADAPTER_FORMAT, K.ADAPTER_PARSE], payload: AdapterPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.TOOL_CALL], payload: ToolCallPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.RETRIEVAL], payload: RetrievalPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.EMBEDDING], payload: EmbeddingPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.LOG], payload: LogPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.EXAMPLE_RESULT], payload: ExampleResultPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.METRIC], payload: MetricPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.TRIAL_SCORE], payload: TrialScorePayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    @overload
    def emit(self, kind: Literal[K.ERROR], payload: ErrorEventPayload, **options: Unpack[EmitOptions]) -> str: ...  # noqa: E501
    # fmt: on
    def emit(
        self,
        kind: EventKind,
        payload: Any,
        *,
        parent_id: str | None = None,
        json_ready: bool = False,
        source: EventSource | None = None,
        event_id: str | None = None,
    ) -> str:
        """Record one event of ``kind`` now; return its id (to use as a later event's parent).

        ``source`` defaults to the kind's own (``SOURCE_OF``), resolved when the trial is
        sealed, not here. Lock-free: ``list.append`` is atomic under the GIL, and this
        runs for every module, adapter and LM call of the program. ``json_ready``: the
        payload is JSON data already (built through ``jsonable``), so the end of the trial
        takes it as is. ``event_id``: an id drawn earlier with :func:`new_event_id`, for a
        call recorded when it ends whose inner calls, recorded first, name it as parent.
        """
        if event_id is None:
            event_id = _next_event_id()
        now = time.monotonic_ns()
        self._raw.append(
            _new_tuple(
                RawEvent,
                (
                    event_id,
                    time.time_ns(),
                    now,
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
        if now >= self._due_ns or len(self._raw) >= self._flush_len:
            self._due_ns = 0  # due now: flush() then sets the next time
            self._flush_due()
        if self._backlog_limit is not None and len(self._raw) > self._backlog_limit:
            self._over_backlog()
        return event_id

    def flush_when_due(
        self, flush: Callable[[], None] | None, due_ns: int = _NEVER, *, events: int | None = None
    ) -> None:
        """Have the thread that records call ``flush()`` with each event recorded (or
        merged) once ``time.monotonic_ns()`` reaches ``due_ns``, until ``flush`` sets the
        next time with :meth:`flush_due_at` (so a flush under way makes the others wait
        for it, see :meth:`ExperimentSpool.flush_trial`). ``None`` stops it.

        The journal's spool has a flusher thread, but a thread that waits for the GIL
        while another runs Python and lets the GIL go for a moment, again and again (DSPy
        draws a ``uuid4`` from ``os.urandom`` several times a call), may wait for seconds:
        each short release restarts its wait. A program that records as fast as it can
        would then keep its events in memory far longer than the spool's bound.

        ``events``: a flush is also due once that many events were recorded since the
        last one (for :data:`dspex.journal.writer.FLUSH_EVENTS`).
        """
        self._on_due = flush
        self._due_ns = due_ns if flush is not None else _NEVER
        self._flush_events = events if flush is not None and events else _NEVER
        self._flush_len = len(self._raw) + self._flush_events

    @property
    def flush_due_ns(self) -> int:
        """When the next flush is due (``time.monotonic_ns()``; far ahead when none is)."""
        return self._due_ns

    def flush_due_at(self, due_ns: int) -> None:
        """The next time (``time.monotonic_ns()``) at which recording calls the flush."""
        if self._on_due is not None:
            self._due_ns = due_ns
            self._flush_len = len(self._raw) + self._flush_events

    def _flush_due(self) -> None:
        # The time stays passed while a flush is under way: another thread that records
        # meanwhile calls flush() too, which waits for it (and so lets the flushing thread
        # have the GIL); flush() sets the next time.
        flush = self._on_due
        if flush is None:
            return
        try:
            flush()
        except Exception:  # noqa: BLE001 - recording never fails the program; retried in 1 s
            self._due_ns = time.monotonic_ns() + _RETRY_NS
            self._flush_len = len(self._raw) + self._flush_events
            log = logger.debug if self._flush_failed else logger.warning
            self._flush_failed = True
            log("dspex: writing the spool from the recording thread failed", exc_info=True)

    def bound_backlog(self, limit: int) -> None:
        """Keep at most about ``limit`` unreleased events in memory: past it, :meth:`emit`
        calls the flush (:meth:`flush_when_due`) at once, and waits until the journal's
        spool has taken them (:meth:`release`) if another thread is writing them. Without
        it a program that records faster than the spool writes would grow without bound."""
        with self._lock:
            if self._drained is None:
                self._drained = threading.Condition(self._lock)
        self._backlog_limit = limit

    def _over_backlog(self) -> None:
        """More unreleased events than the bound: the flush is due now, in this thread
        (the flusher writes only every ``flush_interval``, up to a minute); wait only if
        the events are still there after it (another thread's write under way)."""
        if self._on_due is not None:
            self._due_ns = 0
            self._flush_due()
        limit = self._backlog_limit
        if limit is not None and len(self._raw) > limit:
            self._wait_for_release()

    def _wait_for_release(self) -> None:
        drained = self._drained
        if drained is None:
            return
        with drained:
            limit = self._backlog_limit
            if limit is None or len(self._raw) <= limit:
                return
            released = drained.wait_for(lambda: len(self._raw) <= limit // 2, timeout=2.0)
            if not released:  # the spool stopped taking events: never slow the run again
                self._backlog_limit = None

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
        if incoming and time.monotonic_ns() >= self._due_ns:
            self._flush_due()

    def raw_events(self) -> list[RawEvent]:
        """The events recorded so far (after :meth:`release`, those not released)."""
        with self._lock:
            return list(self._raw)

    def raw_since(self, position: int) -> list[RawEvent]:
        """The events recorded from ``position`` on (positions count every event recorded,
        released or not), for the journal's spool; emit() is not slowed down by it."""
        with self._lock:
            return self._raw[max(position - self._released, 0) :]

    def release(self, position: int) -> None:
        """Drop the events before ``position`` from memory: the journal has spooled them
        and nobody reads this trial's events back while it runs (a trial of direct calls).
        """
        with self._lock:
            count = position - self._released
            if count > 0:
                del self._raw[:count]  # one step under the GIL: a concurrent emit appends after
                self._released = position
                if self._drained is not None:
                    self._drained.notify_all()

    def __len__(self) -> int:
        return self._released + len(self._raw)

    def keeps_all(self) -> bool:
        """Whether every event recorded is still here (:meth:`release` dropped none)."""
        with self._lock:
            return self._released == 0

    def events(self) -> tuple[TraceEvent, ...]:
        """Validated TraceEvents in time order, numbered 0..n-1."""
        return trace_events(self.trial_id, self.raw_events())


def trace_events(trial_id: str, raw: Iterable[RawEvent], first: int = 0) -> tuple[TraceEvent, ...]:
    """``raw`` as validated TraceEvents of ``trial_id`` in time order, numbered from
    ``first`` on (0..n-1 by default)."""
    ordered = sorted(raw, key=TIME_ORDER)
    return tuple(
        trusted_event(
            id=e.id,
            trial_id=trial_id,
            parent_id=e.parent_id,
            sequence=sequence,
            timestamp=utc_time(e.time_ns),
            monotonic_ns=e.monotonic_ns,
            source=e.source or SOURCE_OF[e.kind],  # type: ignore[index]
            kind=e.kind,
            pid=e.pid,
            worker=e.worker,
            payload=e.payload if e.json_ready else jsonable(e.payload),
        )
        for sequence, e in enumerate(ordered, first)
    )
