"""The study runner: plans the cells, resumes, dispatches to an engine, keeps the record.

The study's record (:class:`~dspex.model.study.StudyRecord`) lives in the same store as
its cells' experiments and is saved after every change, so whatever stops the runner
(Ctrl-C, a crash, a machine lost), the next run knows where it was:

* **Resume.** Running a study again keeps every sealed cell and runs the others. A cell
  whose attempt was still running when its runner died is marked ``lost``; if its
  experiment was sealed meanwhile, the cell adopts it; if not, the next attempt records
  under the same experiment id (the store replaces the dead attempt's partial record
  when the new one seals), so nothing is duplicated.
* **Retries.** A cell whose worker died (``crashed``) or ran past its time limit
  (``timeout``) runs again, up to ``retries`` times in one run; each attempt, its worker
  and its cause stay on the cell. A cell whose program or optimizer raised is ``failed``:
  the next run of the study tries it again.
* **One runner at a time.** The runner owns the study while it runs (host, pid, a
  heartbeat every 10 s); another runner refuses to start unless the owner is gone (its
  process is dead on this host, or its heartbeat is a minute old). Every save checks the
  record's revision, so two runners can never overwrite each other's cells.
* **Ctrl-C** stops the cells in flight (their workers are stopped), marks them
  ``interrupted``, keeps every finished cell, computes the verdict over the sealed ones,
  and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dspex.analysis.studies import study_verdict
from dspex.config import get_settings
from dspex.errors import (
    DspexError,
    ExperimentNotFound,
    StudyConflict,
    StudyError,
    StudyNotFound,
)
from dspex.ids import new_id
from dspex.model import Experiment, ExperimentStatus, utc_now
from dspex.model.study import (
    AttemptOutcome,
    CellAttempt,
    CellStatus,
    Seeding,
    StudyCell,
    StudyOwner,
    StudyRecord,
    StudyStatus,
)
from dspex.store import ResultStore
from dspex.study._imports import describe
from dspex.study.cell import CellTask, cell_result_of, lm_usage, study_tag
from dspex.study.engines import CellEvent, Engine, InlineEngine, LocalEngine, cause_of
from dspex.study.spec import RunOptions, StudySpec

__all__ = ["HEARTBEAT", "LEASE", "Snapshot", "StudyRunner", "new_record", "reconcile"]

HEARTBEAT = 10.0  # seconds between saves that only say the runner is alive
LEASE = 60.0  # a runner whose heartbeat is older than this is taken to be gone
_POLL = 0.25
_LIVE_EVERY = 2.0  # seconds between looks at the running cells' experiments


@dataclass(frozen=True)
class Snapshot:
    """How far a study has got, for progress bars."""

    study: str
    total: int
    sealed: int
    running: int
    failed: int
    pending: int
    retried: int
    elapsed_s: float
    lm_calls: int
    cost: float | None


class StudyRunner:
    """Runs ``spec`` into ``store`` (see the module docs); :meth:`run` returns the record."""

    def __init__(
        self,
        spec: StudySpec,
        store: ResultStore,
        *,
        run: RunOptions | None = None,
        alpha: float | None = None,
        on_progress: Callable[[Snapshot], None] | None = None,
        quiet: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.options = run or spec.run
        self.alpha = alpha
        self.on_progress = on_progress
        self.quiet = quiet
        self._engine = engine
        self._token = new_id("exp")[4:]
        self._record: StudyRecord | None = None
        self._saved_at = 0.0
        self._dirty = True
        self._started = time.monotonic()
        self._retries: dict[tuple[str, int], int] = {}
        self._owner = False  # whether the stored record is this runner's to change
        self._live = _LiveCounter(store, study_tag(spec.name))

    @property
    def record(self) -> StudyRecord:
        assert self._record is not None, "the study has not been opened"
        return self._record

    # -- the run ------------------------------------------------------------------------

    def run(self) -> StudyRecord:
        self._open()
        engine = self._engine or self._make_engine()
        stopped = False
        try:
            engine.start()
            self._loop(engine)
        except KeyboardInterrupt:
            stopped = True
        except BaseException as exc:
            with _no_interrupts():
                self._stop(engine, f"the study's runner stopped: {cause_of(exc)}")
                if self._owner:  # leave the record as a stopped study, not a running one
                    with contextlib.suppress(DspexError):  # the store may be what failed
                        self._finish(interrupted=True)
            raise
        with _no_interrupts():
            self._stop(engine, "the study was stopped (Ctrl-C) while the cell ran")
            final = self._finish(interrupted=stopped)
        if stopped:
            raise KeyboardInterrupt
        return final

    def _make_engine(self) -> Engine:
        options = self.options
        if options.engine == "ray":
            from dspex.study.ray_engine import RayEngine

            return RayEngine(
                options.max_concurrent,
                address=options.address,
                cpus_per_cell=options.cpus_per_cell,
                timeout=options.timeout,
            )
        if options.engine == "inline":
            return InlineEngine()
        return LocalEngine(options.max_concurrent or os.cpu_count() or 1, timeout=options.timeout)

    def _loop(self, engine: Engine) -> None:
        pending = deque(c.key for c in self.record.cells if c.status is not CellStatus.SEALED)
        while pending or engine.in_flight:
            while pending and engine.in_flight < engine.capacity:
                engine.submit(self._attempt(pending.popleft()))
            self._save()
            events = engine.poll(_POLL)
            for event in events:
                self._apply(event, pending)
            self._save(force=bool(events))
            self._report()

    def _stop(self, engine: Engine, cause: str) -> None:
        for event in engine.stop():
            self._apply(event, deque())
        record = self.record
        cells = []
        for cell in record.cells:  # attempts no engine reported (it never started them)
            if cell.status is CellStatus.RUNNING:
                cell = _end_attempt(cell, AttemptOutcome.INTERRUPTED, cause)
                cell = cell.replace(status=CellStatus.INTERRUPTED)
            cells.append(cell)
        self._record = record.replace(cells=tuple(cells))

    def _finish(self, *, interrupted: bool) -> StudyRecord:
        record = self.record
        if interrupted:
            status = StudyStatus.INTERRUPTED
        elif all(c.status is CellStatus.SEALED for c in record.cells):
            status = StudyStatus.COMPLETED
        else:
            status = StudyStatus.INCOMPLETE
        alpha = self.alpha if self.alpha is not None else get_settings().analysis.alpha
        verdict = study_verdict(record, alpha) if record.control and record.treatment else None
        self._record = record.replace(status=status, verdict=verdict, owner=None)
        self._save(force=True)
        self._report()
        return self.record

    # -- opening: create, resume, own ----------------------------------------------------

    def _open(self) -> None:
        try:
            stored: StudyRecord | None = self.store.get_study(self.spec.name)
        except StudyNotFound:
            stored = None
        record = new_record(self.spec) if stored is None else reconcile(stored, self.spec)
        if stored is not None:
            _check_owner(stored, self.store)
        now = utc_now()
        owner = StudyOwner(host=socket.gethostname(), pid=os.getpid(), token=self._token)
        cells = [_lost(cell, stored) for cell in record.cells]
        record = record.replace(
            cells=tuple(cells), owner=owner.replace(started_at=now), status=StudyStatus.RUNNING
        )
        self._record = record
        self._adopt()
        self._save(force=True)
        self._owner = True

    def _adopt(self) -> None:
        """Cells whose last attempt's experiment was sealed after their runner lost them."""
        cells = []
        for cell in self.record.cells:
            attempt = cell.attempts[-1] if cell.attempts else None
            if cell.status is not CellStatus.SEALED and attempt is not None:
                experiment = self._sealed(attempt.experiment_id)
                if experiment is not None and experiment.status is ExperimentStatus.COMPLETED:
                    result = cell_result_of(experiment, self.record.examples)
                    cell = _end_attempt(cell, AttemptOutcome.SEALED, "")
                    cell = cell.replace(status=CellStatus.SEALED, result=result)
            cells.append(cell)
        self._record = self.record.replace(cells=tuple(cells))

    def _sealed(self, experiment_id: str) -> Experiment | None:
        """The experiment when it is sealed (a running one, or none, gives None)."""
        try:
            summaries = self.store.query_experiments(
                tags=[study_tag(self.spec.name)],
                status=["completed", "failed", "interrupted"],
                limit=1000,
            )
        except Exception:  # noqa: BLE001 - a query that fails only costs the shortcut
            summaries = None
        if summaries is not None and len(summaries) < 1000:
            if experiment_id not in {s.id for s in summaries}:
                return None
        try:
            experiment = self.store.get_experiment(experiment_id)
        except ExperimentNotFound:
            return None
        return experiment if experiment.status.is_final else None

    # -- attempts and events ----------------------------------------------------------

    def _attempt(self, key: tuple[str, int]) -> CellTask:
        record = self.record
        cell = record.cell(*key)
        last = cell.attempts[-1] if cell.attempts else None
        experiment_id = new_id("exp")
        if (
            last is not None
            and last.outcome in _UNSEALED
            and self._sealed(last.experiment_id) is None
        ):
            experiment_id = last.experiment_id  # never sealed: the new attempt replaces it
        attempt = CellAttempt(number=len(cell.attempts) + 1, experiment_id=experiment_id)
        cell = cell.replace(status=CellStatus.RUNNING, attempts=(*cell.attempts, attempt))
        self._set(cell)
        spec = self.spec
        assert spec.evaluation is not None
        return CellTask(
            study=spec.name,
            hypothesis=spec.hypothesis,
            arm=spec.arm(key[0]),
            seed=key[1],
            attempt=attempt.number,
            experiment_id=experiment_id,
            store_url=_cell_store_url(self.store),
            program=spec.program,
            data=spec.data,
            metric=spec.metric,
            lm=spec.lm,
            examples=record.examples,
            threads=self.options.threads,
            paths=spec.paths,
            quiet=self.quiet,
        )

    def _apply(self, event: CellEvent, pending: deque[tuple[str, int]]) -> None:
        cell = self.record.cell(*event.key)
        if not cell.attempts or cell.attempts[-1].number != event.attempt:
            return  # a late word about an attempt that was already closed
        if event.kind == "started":
            cell = _update_attempt(cell, worker=event.worker, host=event.host, pid=event.pid)
            self._set(cell)
            return
        if event.kind == "done" and event.report is not None:
            if event.report.record is not None:  # a memory store: the worker sent the record
                self.store.archive_experiment(Experiment.from_json(event.report.record))
            cell = _update_attempt(
                cell, worker=event.worker, host=event.report.host, pid=event.report.pid
            )
            cell = _end_attempt(cell, AttemptOutcome.SEALED, "")
            self._set(cell.replace(status=CellStatus.SEALED, result=event.report.result))
            return
        outcome = _OUTCOMES[event.kind]
        cell = _update_attempt(cell, **_known(worker=event.worker, host=event.host, pid=event.pid))
        cell = _end_attempt(cell, outcome, event.cause)
        status = CellStatus.INTERRUPTED if event.kind == "interrupted" else CellStatus.FAILED
        if event.kind in ("crashed", "timeout"):
            used = self._retries.get(event.key, 0)
            if used < self.options.retries:
                self._retries[event.key] = used + 1
                pending.append(event.key)
                status = CellStatus.PENDING
        self._set(cell.replace(status=status))

    def _set(self, cell: StudyCell) -> None:
        record = self.record
        cells = tuple(cell if c.key == cell.key else c for c in record.cells)
        self._record = record.replace(cells=cells)
        self._dirty = True

    # -- saving and reporting -----------------------------------------------------------

    def _save(self, *, force: bool = False) -> None:
        record = self.record
        now = time.monotonic()
        if not (force or self._dirty) and now - self._saved_at < HEARTBEAT:
            return
        if record.owner is not None:
            record = record.replace(owner=record.owner.replace(heartbeat_at=utc_now()))
        with _deferred_interrupt():  # a Ctrl-C between the commit and this line would lose it
            try:
                self._record = self.store.save_study(record)
            except StudyConflict as exc:
                self._record = self._save_over_own(record, exc)
        self._saved_at = now
        self._dirty = False

    def _save_over_own(self, record: StudyRecord, conflict: StudyConflict) -> StudyRecord:
        """A conflict with a revision this runner saved itself (the commit went through but
        its answer was lost: a dropped connection) is no conflict: save over it. Any other
        writer means two runners: this one stops."""
        stored = self.store.get_study(record.name)
        if stored.owner is None or stored.owner.token != self._token:
            self._owner = False
            raise StudyError(
                f"study {record.name!r} was changed by another runner while this one ran; "
                f"this runner stops ({conflict})"
            ) from conflict
        return self.store.save_study(record.replace(revision=stored.revision))

    def _report(self) -> None:
        if self.on_progress is None:
            return
        self.on_progress(self.snapshot())

    def snapshot(self) -> Snapshot:
        record = self.record
        counts = {status: 0 for status in CellStatus}
        calls, cost, priced = 0, 0.0, False
        for cell in record.cells:
            counts[cell.status] += 1
            if cell.result is not None:
                calls += cell.result.lm_calls
                if cell.result.cost is not None:
                    cost += cell.result.cost
                    priced = True
        running = [c.experiment_id for c in record.cells if c.status is CellStatus.RUNNING]
        live_calls, live_cost = self._live.count([e for e in running if e])
        return Snapshot(
            study=record.name,
            total=len(record.cells),
            sealed=counts[CellStatus.SEALED],
            running=counts[CellStatus.RUNNING],
            failed=counts[CellStatus.FAILED],
            pending=counts[CellStatus.PENDING] + counts[CellStatus.INTERRUPTED],
            retried=sum(self._retries.values()),
            elapsed_s=time.monotonic() - self._started,
            lm_calls=calls + live_calls,
            cost=(cost + live_cost) if priced or live_cost else None,
        )


def _cell_store_url(store: ResultStore) -> str | None:
    """Where workers record: the store's URL, or None for a memory store (each worker then
    records privately and sends the sealed record back, to be archived here)."""
    url = store.backend.url
    return None if url.startswith("memory:") else url


_UNSEALED = (
    AttemptOutcome.CRASHED,
    AttemptOutcome.TIMEOUT,
    AttemptOutcome.INTERRUPTED,
    AttemptOutcome.LOST,
)
_OUTCOMES = {
    "failed": AttemptOutcome.FAILED,
    "crashed": AttemptOutcome.CRASHED,
    "timeout": AttemptOutcome.TIMEOUT,
    "interrupted": AttemptOutcome.INTERRUPTED,
}


def _known(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "")}


def _update_attempt(cell: StudyCell, **fields: Any) -> StudyCell:
    attempt = cell.attempts[-1].replace(**_known(**fields))
    return cell.replace(attempts=(*cell.attempts[:-1], attempt))


def _end_attempt(cell: StudyCell, outcome: AttemptOutcome, cause: str) -> StudyCell:
    if not cell.attempts:
        return cell
    attempt = cell.attempts[-1].replace(outcome=outcome, cause=cause, ended_at=utc_now())
    return cell.replace(attempts=(*cell.attempts[:-1], attempt))


def _lost(cell: StudyCell, stored: StudyRecord | None) -> StudyCell:
    """A cell still running in the stored record: its runner died without saying so."""
    if cell.status is not CellStatus.RUNNING:
        return cell
    owner = stored.owner if stored is not None else None
    by = f" ({owner.host}, pid {owner.pid})" if owner is not None else ""
    cell = _end_attempt(cell, AttemptOutcome.LOST, f"its runner{by} stopped before it finished")
    return cell.replace(status=CellStatus.INTERRUPTED)


def _check_owner(stored: StudyRecord, store: ResultStore) -> None:
    owner = stored.owner
    if owner is None:
        return
    age = (utc_now() - owner.heartbeat_at).total_seconds()
    if owner.host == socket.gethostname() and not _pid_alive(owner.pid):
        return
    if age > LEASE:
        return
    raise StudyError(
        f"study {stored.name!r} is being run by {owner.host} (pid {owner.pid}, last heartbeat "
        f"{age:.0f} s ago) into {store.url}; wait for it to finish or stop it. A runner that "
        f"died is taken over {LEASE:.0f} s after its last heartbeat (at once on its own host)."
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is not signal.SIG_IGN:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Let the record be saved whole: a second Ctrl-C waits until it is."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- the record of a spec --------------------------------------------------------------------


def new_record(spec: StudySpec) -> StudyRecord:
    """A study's first record: every cell pending."""
    assert spec.evaluation is not None, "a checked spec has its evaluation set"
    return StudyRecord(
        name=spec.name,
        hypothesis=spec.hypothesis,
        spec=spec.raw,
        fingerprint=spec.fingerprint,
        control=spec.control,
        treatment=spec.treatment,
        arms=tuple(arm.record() for arm in spec.arms),
        seeds=spec.seeds,
        evaluation=spec.evaluation.scope,
        examples=spec.evaluation.keys,
        cells=tuple(_cells(spec)),
        warnings=tuple(_warnings(spec)),
    )


def _cells(spec: StudySpec) -> Iterator[StudyCell]:
    for seed in spec.seeds:  # seed-major: a study stopped early has every arm at its seeds
        for arm in spec.arms:
            if seed in arm.cell_seeds(spec.seeds):
                yield StudyCell(arm=arm.name, seed=seed)


def _warnings(spec: StudySpec) -> Iterator[str]:
    for arm in spec.arms:
        if arm.seeding is not Seeding.NONE:
            continue
        optimizer = describe(arm.optimizer)
        if arm.replicates:
            yield (
                f"arm {arm.name} ({optimizer}) takes no seed: its {len(spec.seeds)} cells are "
                "replicates that differ only by what is random outside the optimizer"
            )
        else:
            yield (
                f"arm {arm.name} ({optimizer}) takes no seed: it runs one cell (seed "
                f"{spec.seeds[0]}); set replicates = true to run it at every seed"
            )


def reconcile(stored: StudyRecord, spec: StudySpec) -> StudyRecord:
    """``stored`` updated to ``spec`` when they describe the same study (new seeds and new
    arms become new cells); :class:`dspex.StudyError` naming every difference otherwise."""
    fresh = new_record(spec)
    changes = []
    if stored.fingerprint != fresh.fingerprint:
        before = stored.spec
        for key in ("program", "data", "metric", "lm"):
            if before.get(key) != fresh.spec.get(key):
                changes.append(f"{key}: {before.get(key)!r} -> {fresh.spec.get(key)!r}")
    if stored.evaluation is not None and fresh.evaluation is not None:
        if stored.evaluation.fingerprint != fresh.evaluation.fingerprint:
            changes.append(
                f"the evaluation set: {stored.evaluation.label} {stored.evaluation.fingerprint} "
                f"-> {fresh.evaluation.label} {fresh.evaluation.fingerprint}"
            )
    arms = {arm.name: arm for arm in fresh.arms}
    for arm in stored.arms:
        if arm.name not in arms:
            changes.append(f"arm {arm.name} is no longer in the spec")
        elif arms[arm.name] != arm:
            changes.append(f"arm {arm.name}: {_arm_diff(arm.to_dict(), arms[arm.name].to_dict())}")
    removed = sorted(set(stored.seeds) - set(fresh.seeds))
    if removed:
        changes.append(f"seeds {removed} are no longer in the spec")
    if changes:
        raise StudyError(
            f"study {stored.name!r} was run with another spec: "
            + "; ".join(changes)
            + ". A study's cells must all come from one spec: give the changed one another "
            "name, or restore these settings to resume it."
        )
    known = {cell.key: cell for cell in stored.cells}
    cells = tuple(known.get(cell.key, cell) for cell in fresh.cells)
    return stored.replace(
        hypothesis=fresh.hypothesis,
        spec=fresh.spec,
        control=fresh.control,
        treatment=fresh.treatment,
        arms=fresh.arms,
        seeds=fresh.seeds,
        cells=cells,
        warnings=fresh.warnings,
    )


def _arm_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            parts.append(f"{key} {before.get(key)!r} -> {after.get(key)!r}")
    return ", ".join(parts)


class _LiveCounter:
    """LM calls and cost recorded so far by the cells still running (their experiments
    are read from the store at most every 2 s, and only when they gained trials)."""

    def __init__(self, store: ResultStore, tag: str) -> None:
        self.store = store
        self.tag = tag
        self._seen: dict[str, tuple[int, int, float]] = {}  # id: (trials, calls, cost)
        self._at = 0.0

    def count(self, running: list[str]) -> tuple[int, float]:
        now = time.monotonic()
        if running and now - self._at >= _LIVE_EVERY and not self.store.url.startswith("memory"):
            self._at = now
            with contextlib.suppress(Exception):  # a progress figure is never worth failing for
                self._refresh(set(running))
        calls = sum(self._seen[e][1] for e in running if e in self._seen)
        cost = sum(self._seen[e][2] for e in running if e in self._seen)
        return calls, cost

    def _refresh(self, running: set[str]) -> None:
        page = self.store.query_experiments(tags=[self.tag], status="running", limit=1000)
        for summary in page:
            if summary.id not in running:
                continue
            seen = self._seen.get(summary.id)
            if seen is not None and seen[0] == summary.trial_count:
                continue
            experiment = self.store.get_experiment(summary.id)
            calls, _, cost = lm_usage(experiment.trials)
            self._seen[summary.id] = (summary.trial_count, calls, cost or 0.0)
