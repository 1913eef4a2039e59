"""The recording side of the spool: a running experiment's trials written to disk as they
happen (see :mod:`dspex.journal.spool` for the files and their format).

    spool = ExperimentSpool.create(spool_dir, experiment, store_url, flush_interval=0.1)
    spool.open_trial(recorder, opening, release=True)   # events spooled from now on
    ...
    spool.end_trial(recorder, header)                    # the rest spooled, then the end
    trial = header.replace(events=spool.trial_events(header.id))   # read back from disk
    spool.mark_stored(header.id)                         # the store has it
    spool.finish(final_header); spool.remove()           # sealed: the spool is not needed

Each open trial's new events go from its recorder into the trial's file at most
``flush_interval`` seconds after the last write, with one ``write`` per batch: once
written, an event survives the process being killed (SIGKILL), so a kill loses at most the
events of the last ``flush_interval`` plus the time one flush takes. The thread that
records writes the batch when it records an event once a write is due
(:meth:`TrialRecorder.flush_when_due`), and every thread recording into the trial waits
for a write under way; a flusher thread writes the trials nobody records into just then.
(A flusher thread alone was starved: a thread waiting for the GIL restarts its wait each
time another lets the GIL go for a moment, which DSPy does several times a call.) A trial
opened with ``release=True`` (nobody reads its events back while it runs) has its spooled
events dropped from memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspex.capture.recorder import RawEvent, TrialRecorder, trace_events
from dspex.journal.parts import built_parts, raw_parts
from dspex.journal.spool import (
    PLAIN_SPOOL_BYTES,
    RecordType,
    SpoolError,
    SpoolFile,
    decode_part,
    encode_part,
    experiment_dir,
    hold_lock,
    iter_records,
)
from dspex.model import Experiment, TraceEvent
from dspex.store import EventPart, encode_parts
from dspex.workers.handoff import Handoff

__all__ = ["ExperimentSpool"]

logger = logging.getLogger(__name__)

STORED_SUFFIX = ".stored"
SPOOL_SUFFIX = ".spool"
WRITE_WAIT = 0.5
"""Seconds a thread that records waits for another thread's write of the same trial (see
:meth:`ExperimentSpool.flush_trial`) before it gives up and records on."""
_RETRY_NS = 1_000_000_000  # after giving up, the next write is due this much later
KEPT_TAILS = 64
"""Ended trials whose last write is kept in memory until the store holds them: past it
(a store that is down), the oldest are read back from their files when sent."""
BACKLOG_LIMIT = 1_000
"""Unspooled events a released trial may hold in memory: a program that records faster
than the spool writes waits there (measured on an idle 2-core machine, direct calls
outran the writer and the process grew about 5 KB per call)."""
FLUSH_EVENTS = 48
"""Unspooled events after which the thread that records writes a released trial whose
events leave memory once written (a trial of direct calls) at once, before
``journal.flush_interval`` has passed (16 direct ``Predict`` calls).

A program that allocates as much as it frees never starts a garbage collection. DSPy's
LM history is such a program once it is full: each call's entry replaces the oldest, so
the collector's count stays near zero while the young generation fills with the entries.
Events held until the next write (a tenth of a second: hundreds of calls of a fast LM)
pushed the count past its threshold (700) again and again; each collection then walked
DSPy's recent history and moved it to an older generation, which led to full
collections of the whole process every few thousand calls (about 0.1 s each). Held for
48 events at most, they stay under the threshold (``python -m benchmarks.bench_flusher``
prints the collections)."""


@dataclass(frozen=True)
class _Tail:
    """The parts of one write, each with the file offset just after it."""

    start: int  # the file offset where the write began
    parts: list[tuple[EventPart, int]]


@dataclass
class _SpooledTrial:
    recorder: TrialRecorder
    file: SpoolFile
    release: bool
    cursor: int = 0  # events of the recorder written to the file
    lock: threading.Lock = field(default_factory=threading.Lock)
    broken: SpoolError | None = None  # the file failed: the rest stays in the recorder
    ended: bool = False  # end_trial() wrote its end: a late flush from a recorder does nothing
    flushing: int | None = None  # the thread flushing it (under lock)
    # the events as numbered when spooled, kept for a trial that is not released (its
    # caller gets them back at its end without building them again)
    built: list[TraceEvent] | None = None
    # the parts of the last write, each with the file offset after it: the journal sends
    # a trial's events to the store from the spool when it ends, and the last ones are
    # then read from here instead of back from the file
    tail: _Tail | None = None


class ExperimentSpool:
    """The spool directory of one running experiment (see the module docs)."""

    def __init__(self, directory: Path, lock_fd: int, flush_interval: float) -> None:
        self.directory = directory
        self.flush_interval = flush_interval
        self._interval_ns = int(flush_interval * 1e9)
        self._lock_fd = lock_fd
        self._files_lock = threading.Lock()
        self._open: dict[str, _SpooledTrial] = {}
        self._ended: dict[str, _SpooledTrial] = {}  # not released, until take_events()
        # events a broken file could not take, and the sequence number of the first
        self._leftovers: dict[str, tuple[int, list[RawEvent]]] = {}
        # ended trials' last writes (see _SpooledTrial.tail), until the store holds them
        self._tails: dict[str, _Tail] = {}
        self._experiment_file = SpoolFile(directory / ("experiment" + SPOOL_SUFFIX))
        # bytes of event parts written so far, by every thread (close enough: it decides
        # only from when parts are compressed, see PLAIN_SPOOL_BYTES)
        self._part_bytes = 0
        self.max_lag_ms = 0.0
        """The longest an event waited in memory before it was written (ms), so far: the
        spool's bound (``flush_interval``) as it held, and an example's time where a
        harness worker hands its events over when the example ends."""
        self._stop = threading.Event()
        # a thread that records gives the flusher the GIL once its time has come, right
        # after it wrote its own trial (the flusher wakes on the same schedule)
        self._handoff = Handoff()
        self._handoff.sleep_until(time.monotonic_ns() + self._interval_ns)
        self._thread = threading.Thread(target=self._run, name="dspex-spool", daemon=True)
        self._thread.start()

    @classmethod
    def create(
        cls, spool_dir: Path, experiment: Experiment, store_url: str, *, flush_interval: float
    ) -> ExperimentSpool:
        """The spool of ``experiment`` (running), its header written; raises SpoolError."""
        directory = experiment_dir(spool_dir, experiment.id)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = hold_lock(directory)
            for stale in directory.iterdir():  # a dead run under this id: replaced whole
                if stale.name != "lock":
                    stale.unlink()
        except OSError as exc:
            raise SpoolError(f"cannot use the spool directory {directory}: {exc}") from exc
        spool = cls(directory, lock_fd, flush_interval)
        try:
            spool._experiment_file.append(
                RecordType.HEADER,
                {
                    "store": store_url,
                    "experiment": experiment.model_dump(mode="json", exclude={"trials"}),
                },
            )
            spool._experiment_file.sync()
        except SpoolError:
            spool.close()
            raise
        return spool

    # -- trials ---------------------------------------------------------------------

    def trial_path(self, trial_id: str, suffix: str = SPOOL_SUFFIX) -> Path:
        return self.directory / (trial_id + suffix)

    def open_trial(
        self,
        recorder: TrialRecorder,
        opening: dict[str, Any],
        *,
        release: bool,
        keep_built: bool | None = None,
    ) -> None:
        """Spool ``recorder``'s events from now on; ``opening`` is what recovery needs to
        rebuild the trial if the process dies (index, name, parents, variables...).

        ``release``: the recorder drops its events once spooled (nobody reads them there
        while the trial runs). ``keep_built`` (default: not ``release``): the events as
        built for the spool are kept for :meth:`take_events` at the trial's end."""
        file = SpoolFile(self.trial_path(recorder.trial_id))
        try:
            file.append(RecordType.TRIAL_OPEN, opening)
        except SpoolError:
            file.close()
            raise
        keep = not release if keep_built is None else keep_built
        spooled = _SpooledTrial(recorder, file, release, built=[] if keep else None)
        with self._files_lock:
            self._open[recorder.trial_id] = spooled
        if release:
            recorder.bound_backlog(BACKLOG_LIMIT)
        recorder.flush_when_due(
            lambda: self.flush_trial(spooled, if_due=True),
            time.monotonic_ns() + self._interval_ns,
            # events that leave memory when written (not kept built for the trial's end)
            events=FLUSH_EVENTS if release and not keep else None,
        )

    def flush_trial(self, spooled: _SpooledTrial, *, if_due: bool = False) -> None:
        """Write the trial's new events; the next flush is due ``flush_interval`` after.

        Called by :meth:`end_trial`, and with ``if_due`` by the flusher thread and by the
        recorder from a thread that records once a flush is due
        (:meth:`TrialRecorder.flush_when_due`). Such a thread waits here while another
        thread's flush of the trial finishes, then writes only if one is still due: the
        thread flushing gets the GIL, instead of being starved by the threads that record
        (a re-entrant call, from the flushing thread itself, does nothing). It waits at
        most WRITE_WAIT: a write that hangs (a stalled disk) does not stop the program,
        which records on and tries again a second later.
        """
        me = threading.get_ident()
        if spooled.flushing == me:
            return
        if not spooled.lock.acquire(timeout=WRITE_WAIT if if_due else -1):
            spooled.recorder.flush_due_at(time.monotonic_ns() + _RETRY_NS)
            return
        try:
            if if_due and spooled.recorder.flush_due_ns > time.monotonic_ns():
                return  # another thread wrote them while this one waited
            spooled.flushing = me
            try:
                self._flush_locked(spooled)
            finally:
                spooled.flushing = None
                spooled.recorder.flush_due_at(time.monotonic_ns() + self._interval_ns)
        finally:
            spooled.lock.release()
        if if_due and me != self._thread.ident:
            self._handoff.give_way()

    def _flush_locked(self, spooled: _SpooledTrial) -> None:
        if spooled.broken is not None or spooled.ended:
            return
        batch = spooled.recorder.raw_since(spooled.cursor)
        if not batch:
            return
        # numbered and serialized once, as the store keeps them: the store is given
        # these bytes (ExperimentJournal._send), not the events again
        trial_id = spooled.recorder.trial_id
        events: tuple[TraceEvent, ...] = ()
        # no TraceEvents for a trial whose events are read back from disk only
        fast = raw_parts(trial_id, batch, spooled.cursor) if spooled.built is None else None
        if fast is not None:
            parts = fast
        else:
            events = trace_events(trial_id, batch, spooled.cursor)
            parts = built_parts(spooled.cursor, events)
        compress = self._part_bytes >= PLAIN_SPOOL_BYTES
        bodies = [encode_part(part, compress=compress) for part in parts]
        self._part_bytes += sum(map(len, bodies))
        writing = time.monotonic_ns()  # not after: the write's return waits for the GIL
        start = spooled.file.bytes_written
        try:
            ends = spooled.file.append_many(RecordType.EVENT_PART, bodies)
        except SpoolError as exc:
            spooled.broken = exc
            logger.warning(
                "dspex: trial %s is kept in memory from now on: %s",
                spooled.recorder.trial_id,
                exc,
            )
            return
        spooled.cursor += len(batch)
        spooled.tail = _Tail(start, list(zip(parts, ends, strict=True)))
        lag = (writing - min(e.monotonic_ns for e in batch)) / 1e6
        if lag > self.max_lag_ms:
            self.max_lag_ms = lag
        if spooled.built is not None:
            spooled.built.extend(events)
        if spooled.release:
            spooled.recorder.release(spooled.cursor)

    def flush(self) -> None:
        with self._files_lock:
            open_trials = list(self._open.values())
        for spooled in open_trials:
            self.flush_trial(spooled)

    def end_trial(self, recorder: TrialRecorder, header: dict[str, Any]) -> None:
        """The trial ends: its last events and its record (``header``, no events) spooled.

        Events that a failing file could not take are kept in memory for
        :meth:`trial_events`; raises SpoolError only if even the end cannot be written
        (the trial is then complete in memory and in the caller's hands). For a trial
        opened with ``release=False``, :meth:`take_events` then gives its events.
        """
        with self._files_lock:
            spooled = self._open.pop(recorder.trial_id)
        recorder.flush_when_due(None)
        self.flush_trial(spooled)
        if spooled.built is not None:
            with self._files_lock:
                self._ended[recorder.trial_id] = spooled
        with spooled.lock:
            try:
                if spooled.broken is not None:
                    self._leftovers[recorder.trial_id] = (
                        spooled.cursor,
                        recorder.raw_since(spooled.cursor),
                    )
                    raise spooled.broken
                spooled.file.append(RecordType.TRIAL_END, header)
                if spooled.tail is not None:
                    with self._files_lock:
                        self._tails[recorder.trial_id] = spooled.tail
                        while len(self._tails) > KEPT_TAILS:  # the store is behind
                            del self._tails[next(iter(self._tails))]
                spooled.tail = None
            finally:
                spooled.ended = True
                spooled.file.close()

    def take_events(self, trial_id: str) -> tuple[TraceEvent, ...] | None:
        """The events of a trial opened with ``release=False`` and ended, as they were
        numbered and spooled (those a failing file could not take after them), once;
        None for another trial. The same events as :meth:`trial_events` reads back."""
        with self._files_lock:
            spooled = self._ended.pop(trial_id, None)
        if spooled is None or spooled.built is None:
            return None
        with spooled.lock:
            events = spooled.built
            spooled.built = None
        leftover = self._leftovers.get(trial_id)
        if leftover:
            cursor, raw = leftover
            events.extend(trace_events(trial_id, raw, cursor))
        return tuple(events)

    def trial_events(self, trial_id: str) -> tuple[TraceEvent, ...]:
        """The trial's events read back from its file, in time order, numbered 0..n-1."""
        events: list[TraceEvent] = []
        for part in self.event_parts(trial_id):
            events.extend(part.events(trial_id))
        return tuple(events)

    def event_parts(self, trial_id: str, start: int = 0) -> Iterator[EventPart]:
        """The trial's events as spooled, part by part (bounded memory), from file offset
        ``start`` (see :meth:`parts_from`) on, then those a failing file could not take."""
        for part, _ in self.parts_from(trial_id, start):
            yield part
        leftover = self._leftovers.get(trial_id)
        if leftover:
            cursor, raw = leftover
            yield from encode_parts(cursor, trace_events(trial_id, raw, cursor))

    def parts_from(self, trial_id: str, start: int = 0) -> Iterator[tuple[EventPart, int]]:
        """The whole event parts in the trial's file from offset ``start``, each with the
        offset just after it: a trial still being written is read on from there. An ended
        trial's last write comes from memory, as it was written (until :meth:`mark_stored`)."""
        with self._files_lock:
            tail = self._tails.get(trial_id)
        # an ended trial's last write is taken as it was written, not read back
        stop = tail.start if tail is not None else None
        if stop is None or start < stop:
            path = self.trial_path(trial_id)
            if not path.exists():
                path = self.trial_path(trial_id, STORED_SUFFIX)
            for record in iter_records(path, start, stop):
                if not isinstance(record, int) and record.type is RecordType.EVENT_PART:
                    yield decode_part(record.body), record.end
        if tail is not None:
            yield from ((part, end) for part, end in tail.parts if end > start)

    def open_trial_ids(self) -> list[str]:
        with self._files_lock:
            return list(self._open)

    def mark_stored(self, trial_id: str) -> None:
        """The store holds the trial: recovery need not write it again."""
        with self._files_lock:
            self._tails.pop(trial_id, None)
        with contextlib.suppress(OSError):
            os.replace(self.trial_path(trial_id), self.trial_path(trial_id, STORED_SUFFIX))

    def unsaved_trials(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("trl-*" + SPOOL_SUFFIX))

    # -- the experiment -------------------------------------------------------------------

    def finish(self, final: Experiment) -> None:
        """The experiment ended: its final record (trials not included) spooled."""
        self._experiment_file.append(
            RecordType.FINAL, final.model_dump(mode="json", exclude={"trials"})
        )
        self._experiment_file.sync()

    def close(self) -> None:
        """Stop the flusher and let the lock go (the files stay)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        with self._files_lock:
            open_trials = list(self._open.values())
            self._open.clear()
            self._ended.clear()
            self._tails.clear()
        for spooled in open_trials:
            spooled.recorder.flush_when_due(None)
            with spooled.lock:
                spooled.ended = True
                spooled.file.close()
        self._experiment_file.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def remove(self) -> None:
        """The experiment is sealed in the store: the spool goes."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self) -> None:
        """The flusher: each open trial whose flush is due and that its recording thread
        has not flushed (it records nothing just now) is flushed here, on time.

        A thread that records as fast as it can writes its trial itself and then gives
        the flusher the GIL (:class:`~dspex.workers.handoff.Handoff`): waiting for the GIL
        while that thread runs Python, the flusher would be woken at each of the
        thread's short releases of it, for up to a hundred milliseconds, at the
        thread's cost (``benchmarks/bench_flusher.py``)."""
        wait = self.flush_interval
        while not self._stop.wait(wait):
            try:
                wait = self._flush_late()
            except Exception as exc:  # noqa: BLE001 - the next round tries again; the run goes on
                logger.warning("dspex: the spool flusher failed: %s", exc)
                wait = self.flush_interval
            self._handoff.sleep_until(time.monotonic_ns() + int(wait * 1e9))
        self._handoff.sleep_until(None)

    def _flush_late(self) -> float:
        """Flush the trials whose flush is due; the seconds until the next one is."""
        with self._files_lock:
            open_trials = list(self._open.values())
        next_due = time.monotonic_ns() + self._interval_ns
        for spooled in open_trials:
            self.flush_trial(spooled, if_due=True)
            next_due = min(next_due, spooled.recorder.flush_due_ns)
        return max(next_due - time.monotonic_ns(), 1_000_000) / 1e9
