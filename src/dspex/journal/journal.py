"""The ExperimentJournal: the running experiment, its trials, and their way to the store.

    journal = ExperimentJournal("arith", program=program, store=store)
    journal.start()
    recorder = journal.new_trial(name="baseline", program=program)
    ...                                   # run under recording(recorder)
    trial = journal.finish_trial(recorder, example_results=results, score=0.8)
    experiment = journal.finish()         # summary computed, experiment sealed

With a durable store (file or sql), every event also goes to a write-ahead spool on
local disk as it happens (:mod:`dspex.journal.writer`, at most ``journal.flush_interval``
behind), and each finished trial is written to the store from the spool. A store that
fails does not fail the run: what it did not take stays in the spool, is written again
with the next trial and at :meth:`finish`, and otherwise by ``dspex store recover``
(:mod:`dspex.journal.recover`), which also saves the trials of a process that was killed.
Recording inside a trial never touches the store. :meth:`finish` seals the experiment.
The front ends (``dspex.experiment``, ``dspex.autolog``, the EvaluationHarness, the
optimizer hooks) create trials through this class; it knows nothing of them.
"""

from __future__ import annotations

import itertools
import logging
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, cast

from dspex.analysis import with_verdict
from dspex.capture.program import module_paths, program_info, root_key, variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.config import get_settings
from dspex.errors import (
    DspexError,
    ExperimentNotFound,
    ImmutableRecordError,
    StoreError,
    ValidationError,
)
from dspex.export.sink import TrialSink, trial_sink_from_settings
from dspex.ids import new_id
from dspex.journal.spool import SpoolError, default_spool_dir
from dspex.journal.writer import ExperimentSpool
from dspex.model import (
    EnvironmentInfo,
    ErrorInfo,
    ExampleResult,
    Experiment,
    ExperimentStatus,
    Hypothesis,
    OptimizerInfo,
    ProgramInfo,
    ScoreScope,
    TraceEvent,
    Trial,
    TrialStatus,
    Variables,
    best_trial_of,
    summarize,
    utc_now,
)
from dspex.model.payloads import EVENT_FORMAT
from dspex.redact import redact
from dspex.store import EventPart, ResultStore

__all__ = ["ExperimentJournal", "finished_record"]

logger = logging.getLogger(__name__)

APPEND_CHUNK = 5000
"""Events per ``append_events`` call when a trial goes from the spool to the store."""
PUMP_INTERVAL = 1.0
"""Seconds between two sends of running trials' new events to the store."""


class _AppendsEvents(Protocol):
    """The store's ``append_event_parts`` (dspex.store), where the store has it."""

    def append_event_parts(
        self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]
    ) -> None: ...


class _Pumped:
    """How far the pump has sent a running trial's events to the store."""

    __slots__ = ("healthy", "lock", "offset", "sent")

    def __init__(self) -> None:
        self.offset = 0  # in the trial's spool file
        self.sent = 0  # events appended
        self.healthy = True
        self.lock = threading.Lock()


class _OpenTrial:
    __slots__ = ("recorder", "index", "name", "parents", "variables", "metadata", "started_at")

    def __init__(
        self,
        recorder: TrialRecorder,
        index: int,
        name: str,
        parents: tuple[str, ...],
        variables: Variables,
        metadata: dict[str, Any],
    ) -> None:
        self.recorder = recorder
        self.index = index
        self.name = name
        self.parents = parents
        self.variables = variables
        self.metadata = metadata
        self.started_at = utc_now()


class ExperimentJournal:
    """Holds one running experiment and writes each trial to the ResultStore as it finishes."""

    def __init__(
        self,
        name: str,
        *,
        program: Any = None,
        program_name: str | None = None,
        hypothesis: str | Hypothesis | None = None,
        optimizer: OptimizerInfo | None = None,
        tags: Iterable[str] = (),
        store: ResultStore | None = None,
        metadata: dict[str, Any] | None = None,
        experiment_id: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"experiment name must be a non-empty string, not {name!r}")
        if isinstance(hypothesis, str):
            hypothesis = Hypothesis(research_question=hypothesis, status="active")
        self.store = store
        self.program_name = program_name
        info = (
            program_info(program, program_name)
            if program is not None
            else ProgramInfo(name=program_name or name)
        )
        self._experiment = Experiment(
            id=experiment_id or new_id("exp"),
            name=name,
            hypothesis=hypothesis,
            program=info,
            optimizer=optimizer,
            tags=tuple(tags),
            environment=EnvironmentInfo.current(_config_snapshot()),
            metadata=metadata or {},
        )
        self._lock = threading.RLock()
        self._indices = itertools.count()
        self._open: dict[str, _OpenTrial] = {}
        self._trials: dict[str, Trial] = {}  # by id; without events once streamed to the store
        self._warnings: list[str] = []
        self._finished: Experiment | None = None
        self._sink: TrialSink | None = None  # live export (dspex.export), opened by start()
        self._spool: ExperimentSpool | None = None  # write-ahead spool, opened by start()
        self._spooled: set[str] = set()  # open trials whose events go to the spool
        self._in_spool: set[str] = set()  # finished trials whose events the spool holds
        self._streamed = False  # the trials kept here have no events: the store has them
        self._full: Experiment | None = None  # the sealed record read back, when asked
        self._pumped: dict[str, _Pumped] = {}  # running trials sent to the store so far
        self._pump_stop = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._unsaved: list[str] = []  # finished trials the store has not taken yet
        self._save_lock = threading.Lock()
        self._save_error: BaseException | None = None  # the store's last failure
        self.unsaved_spool: str | None = None
        """After :meth:`finish`: the spool directory that holds what the store did not
        take (saved by ``dspex store recover``), or None when the store holds it all."""

    # -- identity -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._experiment.id

    @property
    def experiment(self) -> Experiment:
        """The experiment as it stands (sealed record after :meth:`finish`)."""
        if self._finished is not None:
            return self._sealed_record()
        with self._lock:
            return self._experiment.replace(
                trials=tuple(sorted(self._trials.values(), key=lambda t: t.index)),
                warnings=tuple(self._warnings),
            )

    @property
    def spool(self) -> ExperimentSpool | None:
        """The running experiment's write-ahead spool (None with the memory store, which
        keeps no spool, and once the experiment is sealed)."""
        return self._spool

    @property
    def finished(self) -> bool:
        return self._finished is not None

    @property
    def trials(self) -> list[Trial]:
        """The finished trials. While the experiment runs, a trial whose events went to the
        store as it was written is kept here without them (``events == ()``): read them
        with ``store.read_events`` (or take the sealed :attr:`experiment`)."""
        with self._lock:
            return sorted(self._trials.values(), key=lambda t: t.index)

    def _sealed_record(self) -> Experiment:
        """After :meth:`finish`: the sealed experiment; when its trials were kept without
        their events, read back from the store once (on first use)."""
        assert self._finished is not None
        if not self._streamed:
            return self._finished
        if self._full is None:
            try:
                self._full = (
                    self._store().get_experiment(self.id)
                    if self.unsaved_spool is None
                    else self._from_spool(self._finished)
                )
            except DspexError as exc:
                logger.warning("dspex: experiment %s could not be read back: %s", self.id, exc)
                return self._finished
        return self._full

    def _from_spool(self, final: Experiment) -> Experiment:
        """``final`` with its trials' events read back from the spool (the store failed)."""
        assert self._spool is not None
        trials = tuple(
            t.replace(events=self._spool.trial_events(t.id)) if t.id in self._in_spool else t
            for t in final.trials
        )
        return final.replace(trials=trials)

    def _store(self) -> ResultStore:
        if self.store is None:
            self.store = ResultStore.default()
        return self.store

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Mark the experiment running and record its header in the store.

        This one write happens in the calling thread, before anything runs, so that an
        unreachable store fails at once (not when the experiment ends) and a crash
        always leaves a running experiment behind for the trials written later.
        """
        # Live export: created first, so that a missing dspex[otel] extra fails the start.
        self._sink = trial_sink_from_settings()
        with self._lock:
            self._experiment = self._experiment.replace(
                status=ExperimentStatus.RUNNING, started_at=utc_now()
            )
            header = self._experiment
        self._store().start_experiment(header)
        self._open_spool(header)

    def _open_spool(self, header: Experiment) -> None:
        store = self._store()
        if store.url.startswith("memory:"):
            return  # nothing outlives this process there: no spool to recover from
        settings = get_settings().journal
        spool_dir = settings.spool_dir.expanduser() if settings.spool_dir else default_spool_dir()
        try:
            self._spool = ExperimentSpool.create(
                spool_dir.resolve(), header, store.url, flush_interval=settings.flush_interval
            )
        except SpoolError as exc:
            self.warn(
                f"no write-ahead spool ({exc}): a store failure or a crash loses the trials "
                "not yet written; set journal.spool_dir to a writable local directory"
            )
            return
        if self._streams():
            self._pump_thread = threading.Thread(
                target=self._pump, name="dspex-store-pump", daemon=True
            )
            self._pump_thread.start()

    def set_optimizer(self, optimizer: OptimizerInfo) -> None:
        with self._lock:
            if self._experiment.optimizer is None:
                self._experiment = self._experiment.replace(optimizer=optimizer)

    def warn(self, message: str) -> None:
        """Note on the experiment what the recording could not capture (shown in every view)."""
        logger.warning("dspex: experiment %s: %s", self.id, message)
        with self._lock:
            if message not in self._warnings:
                self._warnings.append(message)

    def new_trial(
        self,
        *,
        name: str = "",
        parents: Sequence[str] = (),
        program: Any = None,
        variables: Variables | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> TrialRecorder:
        """Open a trial; record into the returned recorder, then :meth:`finish_trial` it."""
        trial_id = new_id("trl")
        recorder = TrialRecorder(trial_id)
        if program is not None:
            recorder.adopt(program, module_paths(program, self.program_name), root_key(program))
        if variables is None:
            variables = (
                variables_of(program, self.program_name) if program is not None else Variables()
            )
        with self._lock:
            index = next(self._indices)
            self._open[trial_id] = opened = _OpenTrial(
                recorder, index, name or f"trial {index}", tuple(parents), variables, metadata or {}
            )
        if self._spool is not None:
            self._spool_trial(recorder, opened)
        return recorder

    def _spool_trial(self, recorder: TrialRecorder, opened: _OpenTrial) -> None:
        assert self._spool is not None
        opening = {
            "id": recorder.trial_id,
            "experiment_id": self.id,
            "index": opened.index,
            "name": opened.name,
            "parent_trial_ids": list(opened.parents),
            "variables": opened.variables.to_dict(),
            "started_at": opened.started_at.isoformat(),
            "metadata": redact(opened.metadata),
            "event_format": EVENT_FORMAT,
        }
        try:
            # Nobody reads a trial of direct calls or of an evaluation back while it runs:
            # its spooled events leave the recorder (the other trials' hooks read their
            # own events). An evaluation's are given back at its end as built for the
            # spool; a trial of direct calls keeps none (read them from the store).
            role = opened.metadata.get("role")
            self._spool.open_trial(
                recorder,
                opening,
                release=role in ("calls", "evaluation"),
                keep_built=role != "calls",
            )
        except SpoolError as exc:
            logger.warning("dspex: trial %s is not spooled: %s", recorder.trial_id, exc)
            return
        with self._lock:
            self._spooled.add(recorder.trial_id)

    def open_trial_ids(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def trial_role(self, trial_id: str) -> str | None:
        """The ``role`` metadata of an open trial ("compile", "evaluation", ...), if any."""
        with self._lock:
            open_trial = self._open.get(trial_id)
            return None if open_trial is None else open_trial.metadata.get("role")

    def update_trial(
        self,
        recorder: TrialRecorder,
        *,
        program: Any = None,
        variables: Variables | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        parents: Sequence[str] | None = None,
    ) -> None:
        """Change what an open trial will record as its variables, metadata, name or parents."""
        with self._lock:
            open_trial = self._open[recorder.trial_id]
            if parents is not None:
                open_trial.parents = tuple(parents)
            if program is not None:
                recorder.adopt(program, module_paths(program, self.program_name), root_key(program))
                open_trial.variables = variables_of(program, self.program_name)
            if variables is not None:
                open_trial.variables = variables
            if metadata:
                open_trial.metadata.update(metadata)
            if name:
                open_trial.name = name

    def finish_trial(
        self,
        recorder: TrialRecorder,
        *,
        example_results: Sequence[ExampleResult] = (),
        score: float | None = None,
        score_scope: ScoreScope | None = None,
        error: BaseException | ErrorInfo | None = None,
    ) -> Trial:
        """Close a trial, build its record and write it to the store before returning.

        ``score_scope`` says which examples ``score`` was measured on.

        The write makes the trial durable: a crash after this returns loses nothing of
        it. A store that fails here does not fail the run: the trial is kept, a warning
        logged, and the sealed record at :meth:`finish` includes it. Anything else that
        goes wrong (a record that cannot be serialized, Ctrl-C) propagates.
        """
        with self._lock:
            open_trial = self._open.pop(recorder.trial_id, None)
        if open_trial is None:
            raise ValidationError(f"trial {recorder.trial_id} is not open in experiment {self.id}")
        if isinstance(error, BaseException):
            error = ErrorInfo.from_exception(error)
        with self._lock:
            spooled = recorder.trial_id in self._spooled
            self._spooled.discard(recorder.trial_id)
        trial = Trial(
            id=recorder.trial_id,
            experiment_id=self.id,
            index=open_trial.index,
            name=open_trial.name,
            parent_trial_ids=open_trial.parents,
            variables=open_trial.variables,
            example_results=tuple(sorted(example_results, key=lambda r: r.index)),
            score=score,
            score_scope=score_scope,
            status=TrialStatus.FAILED if error is not None else TrialStatus.OK,
            error=error,
            started_at=open_trial.started_at,
            finished_at=utc_now(),
            events=() if spooled else recorder.events(),
            event_format=EVENT_FORMAT,
            metadata=open_trial.metadata,
        )
        kept = trial
        if spooled and self._streams():
            # The store gets the events from the spool (append_events): nothing of them
            # stays here. The caller gets them back, but for a trial of direct calls,
            # whose events left memory while it ran (read them from the store).
            self._end_spool(recorder, trial)
            if open_trial.metadata.get("role") != "calls" or self._sink is not None:
                trial = trial.replace(events=self._read_spooled(recorder, trial))
        elif spooled:
            self._end_spool(recorder, trial)
            trial = kept = trial.replace(events=self._read_spooled(recorder, trial))
        with self._lock:
            self._trials[trial.id] = kept
            self._unsaved.append(trial.id)
            if spooled:
                self._in_spool.add(trial.id)
        self._save_unsaved()
        # Live export: queues the trial and returns at once (dspex.export.live).
        if self._sink is not None:
            self._sink.trial_finished(self._experiment, trial)
        return trial

    def _streams(self) -> bool:
        """Whether trials go to the store as their events plus a header (the store's
        ``append_events``), so that the journal keeps no events in memory."""
        if self._spool is None:
            return False
        self._streamed = self._streamed or callable(
            getattr(self._store(), "append_event_parts", None)
        )
        return self._streamed

    def _end_spool(self, recorder: TrialRecorder, trial: Trial) -> None:
        """The trial's last events and its end spooled (kept in memory if the spool fails)."""
        assert self._spool is not None
        try:
            self._spool.end_trial(recorder, trial.to_dict())
        except SpoolError as exc:
            logger.warning("dspex: the end of trial %s is not spooled: %s", trial.id, exc)

    def _read_spooled(self, recorder: TrialRecorder, trial: Trial) -> tuple[TraceEvent, ...]:
        """The trial's events read back from the spool (from memory where the spool failed
        on the way), in time order."""
        assert self._spool is not None
        built = self._spool.take_events(trial.id)  # as numbered for the spool, if kept
        if built is not None:
            return built
        if recorder.keeps_all():  # the spool holds the same events: no need to read them
            return recorder.events()
        try:
            return self._spool.trial_events(trial.id)
        except SpoolError as exc:  # the file went away: what the recorder still holds
            logger.warning(
                "dspex: trial %s could not be read back from the spool: %s", trial.id, exc
            )
            return recorder.events()

    def _save_unsaved(self) -> bool:
        """Write the finished trials the store does not hold yet, oldest first; stop at the
        first failure (the store is down: the rest waits for the next write or the end).
        True when the store holds every finished trial. One thread writes at a time."""
        with self._save_lock:
            return self._save_in_order()

    def _save_in_order(self) -> bool:
        restarted = False
        while True:
            with self._lock:
                if not self._unsaved:
                    return True
                trial_id = self._unsaved[0]
                trial = self._trials[trial_id]
                in_spool = trial_id in self._in_spool
            try:
                if in_spool and self._streamed:
                    self._append_spooled(trial_id)
                self._store().record_trial(self.id, trial)
            except Exception as exc:  # noqa: BLE001 - kept (spool and memory), written later
                raise_interrupt(exc)
                self._save_error = exc
                if isinstance(exc, ExperimentNotFound) and not restarted:
                    restarted = True
                    if self._start_again():
                        continue
                with self._lock:
                    waiting = len(self._unsaved)
                logger.warning(
                    "dspex: %d trial(s) could not be written yet (kept%s): %s",
                    waiting,
                    f" in {self._spool.directory}" if self._spool is not None else " in memory",
                    exc,
                )
                return False
            with self._lock:
                self._unsaved.remove(trial_id)
            if self._spool is not None:
                self._spool.mark_stored(trial_id)

    def _start_again(self) -> bool:
        """The store has lost this running experiment (a database dropped and re-created):
        record it again and queue every finished trial again, from the spool. True when
        the store took the experiment's header."""
        try:
            self._store().start_experiment(self._experiment)
        except Exception as exc:  # noqa: BLE001 - still failing: the trials wait
            raise_interrupt(exc)
            return False
        logger.warning(
            "dspex: the ResultStore at %s had lost running experiment %s: its %d trial(s) "
            "are written again",
            self._store().url,
            self.id,
            len(self._trials),
        )
        with self._lock:
            self._unsaved = sorted(self._trials, key=lambda t: self._trials[t].index)
        return True

    def _append_spooled(self, trial_id: str) -> None:
        """Send a finished trial's events from the spool to the store: from where the pump
        got while it ran, else from the first (the store skips what it holds already)."""
        assert self._spool is not None
        with self._lock:
            state = self._pumped.pop(trial_id, None)
        if state is None:
            state = _Pumped()
        with state.lock:
            if not state.healthy:
                state.offset = state.sent = 0
            self._send(trial_id, state, self._spool.event_parts(trial_id, state.offset))

    def _send(self, trial_id: str, state: _Pumped, parts: Iterable[EventPart]) -> None:
        """Append ``parts`` (as spooled: numbered and serialized) to the store from
        ``state.sent`` on, about APPEND_CHUNK events a call; the store skips what it holds."""
        append = cast(_AppendsEvents, self._store()).append_event_parts
        chunk: list[EventPart] = []
        size = 0
        for part in parts:
            if part.stop <= state.sent:
                continue  # sent already (the pump got this far)
            chunk.append(part)
            size += part.count
            if size >= APPEND_CHUNK:
                append(self.id, trial_id, chunk)
                state.sent, chunk, size = part.stop, [], 0
        if chunk:
            append(self.id, trial_id, chunk)
            state.sent = chunk[-1].stop

    def _pump(self) -> None:
        """While the experiment runs: every PUMP_INTERVAL, the new events of each open
        trial go from the spool to the store, so that a running trial can be read there
        (live views). A trial whose append fails is left to its end (sent whole then)."""
        assert self._spool is not None
        spool = self._spool
        while not self._pump_stop.wait(PUMP_INTERVAL):
            for trial_id in spool.open_trial_ids():
                with self._lock:
                    state = self._pumped.setdefault(trial_id, _Pumped())
                with state.lock:
                    if not state.healthy:
                        continue
                    try:
                        self._send(trial_id, state, self._pumped_parts(trial_id, state))
                    except Exception as exc:  # noqa: BLE001 - the trial's end sends it all
                        state.healthy = False
                        logger.info(
                            "dspex: trial %s goes to the store at its end: %s", trial_id, exc
                        )

    def _pumped_parts(self, trial_id: str, state: _Pumped) -> Iterator[EventPart]:
        assert self._spool is not None
        for part, end in self._spool.parts_from(trial_id, state.offset):
            yield part
            state.offset = end

    def _stop_pump(self) -> None:
        self._pump_stop.set()
        if self._pump_thread is not None:
            self._pump_thread.join()
            self._pump_thread = None

    def finish(
        self,
        status: ExperimentStatus = ExperimentStatus.COMPLETED,
        error: BaseException | None = None,
    ) -> Experiment:
        """Close open trials as failed, compute the summary, and seal the experiment.

        Returns the record as sealed; trials whose events went to the store as they were
        written come without them here (:attr:`experiment` reads the whole record back).
        """
        if self._finished is not None:
            return self._finished
        for trial_id in self.open_trial_ids():
            with self._lock:
                recorder = self._open[trial_id].recorder
            cause = error or RuntimeError(f"experiment ended with status {status.value}")
            self.finish_trial(
                recorder,
                error=ErrorInfo(
                    type="dspex.UnfinishedTrial",
                    message=f"the experiment ended ({status.value}) before this trial finished: "
                    f"{cause}",
                ),
            )
        trials = tuple(self.trials)
        metadata = dict(self._experiment.metadata)
        if error is not None:
            metadata["error"] = ErrorInfo.from_exception(error).to_dict()
        # Live export: what was not delivered is kept on the sealed record (otlp_export).
        if self._sink is not None:
            metadata.update(self._sink.experiment_finished(self._experiment))
        final = finished_record(self._experiment, trials, status, tuple(self._warnings), metadata)
        if not self._spool_end(final):  # sealing now would seal trials without events
            assert self._save_error is not None
            self._finished = final
            self._report_unsaved(final, self._save_error)
            return final
        try:
            self._store().archive_experiment(final)
        except (ImmutableRecordError, ValidationError):
            self._close_spool()
            raise  # not a failing store: a record that cannot be stored as it is
        except Exception as exc:  # spooled: said below, saved by recover
            raise_interrupt(exc)
            if self._spool is None:
                if isinstance(exc, DspexError):
                    raise
                raise StoreError(
                    f"experiment {self.id} could not be sealed in the ResultStore at "
                    f"{self._store().url}: {exc}"
                ) from exc
            self._finished = final
            self._report_unsaved(final, exc)
            return final
        if self._spool is not None:
            self._spool.remove()
            self._spool = None
        self._finished = final
        return final

    def _spool_end(self, final: Experiment) -> bool:
        """The last trials written, the experiment's end spooled; False when the store
        does not hold every trial's events, which the seal would then leave out."""
        if self._spool is None:
            return True
        self._stop_pump()
        saved = self._save_unsaved()
        try:
            self._spool.finish(final)
        except SpoolError as exc:
            logger.warning("dspex: the end of experiment %s is not spooled: %s", self.id, exc)
        return saved or not self._streamed

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()

    def _report_unsaved(self, final: Experiment, exc: BaseException) -> None:
        """Say what the store did not take, where it is, and the command that saves it."""
        assert self._spool is not None
        self._spool.close()
        directory = str(self._spool.directory)
        self.unsaved_spool = directory
        with self._lock:
            unsaved = len(self._unsaved)
        url = self._store().url
        message = (
            f"dspex: experiment {final.name!r} ({self.id}) could not be saved in the "
            f"ResultStore at {url}: {exc}\n"
            f"  {unsaved} of {len(final.trials)} trial(s) are not in the store, and the "
            "experiment is not sealed there. Nothing is lost: all of it is kept in\n"
            f"    {directory}\n"
            "  Once the store answers again, save it with"
            + (" (the store's URL with its password):\n" if "***" in url else ":\n")
            + f"    dspex store recover --store {_quoted(url)} {_quoted(directory)}"
        )
        logger.warning("%s", message)
        print(message, file=sys.stderr, flush=True)


def finished_record(
    experiment: Experiment,
    trials: tuple[Trial, ...],
    status: ExperimentStatus,
    warnings: tuple[str, ...],
    metadata: dict[str, Any],
) -> Experiment:
    """``experiment`` ended with ``status`` and ``trials``: its summary, best trial and
    verdict, as sealed (by :meth:`ExperimentJournal.finish` and by the recovery)."""
    best = best_trial_of(trials)
    final = experiment.replace(
        status=status,
        completed_at=utc_now(),
        trials=trials,
        summary=summarize(trials, best) if trials else None,
        best_trial_id=best.id if best else None,
        warnings=warnings,
        metadata=metadata,
    )
    return _decided(final)


def raise_interrupt(exc: BaseException) -> None:
    """Re-raise a Ctrl-C that a library turned into another exception.

    pydantic-core reports a KeyboardInterrupt that lands while it serializes a record as a
    PydanticSerializationError (a ValueError) naming it; on the recording path that must
    stay a Ctrl-C, never an error to log and go past.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt):
            raise current
        if type(current).__name__ == "PydanticSerializationError" and "KeyboardInterrupt" in str(
            current
        ):
            raise KeyboardInterrupt(str(current)) from current
        current = current.__cause__ or current.__context__


def _quoted(text: str) -> str:
    return shlex.quote(text)


def _decided(experiment: Experiment) -> Experiment:
    """``experiment`` with its hypothesis's verdict; as it was if statistics fail, so that a
    failure of the analysis never costs the record."""
    try:
        return with_verdict(experiment, alpha=get_settings().analysis.alpha)
    except Exception as exc:  # noqa: BLE001 - the record matters more than its verdict
        logger.warning("dspex: no verdict for experiment %s: %s", experiment.id, exc)
        return experiment


def _config_snapshot() -> dict[str, Any]:
    """The effective settings, as stored in every experiment: no secret leaves with them."""
    snapshot: dict[str, Any] = redact(get_settings().model_dump(mode="json"))
    return snapshot
