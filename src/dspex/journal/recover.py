"""Saving what a spool holds into a store: ``dspex store recover``.

A spool directory (:mod:`dspex.journal.spool`) is left behind when the store failed
until the end of an experiment, or when the recording process died (killed, out of
memory, the machine rebooted). :func:`recover` writes it into a store from any process:

* each finished trial the store does not hold yet, as it was recorded;
* each trial that was still running when the process died, as an ``interrupted`` trial
  with every event the spool holds (a torn last record is dropped);
* the experiment sealed: as it ended when its end was spooled, else ``interrupted``,
  with its summary over the trials recovered.

Writing a trial again replaces it (by id) and sealing identical content again changes
nothing, so recovering twice, or after a partial recovery, never duplicates. A spool
whose process still runs (it holds the directory's lock) is left alone. The directory
is deleted once the experiment is sealed.

    >>> from pathlib import Path
    >>> recover(Path("/no/such/spool"), store=None)
    Traceback (most recent call last):
    ...
    dspex.journal.spool.SpoolError: no spool at /no/such/spool: ...
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspex.capture.recorder import RawEvent, trace_events
from dspex.errors import ExperimentNotFound, ImmutableRecordError
from dspex.journal.journal import finished_record
from dspex.journal.spool import (
    RecordType,
    SpoolError,
    decode_events,
    decode_part,
    iter_records,
    try_lock,
)
from dspex.journal.writer import SPOOL_SUFFIX, STORED_SUFFIX
from dspex.model import (
    ErrorInfo,
    Experiment,
    ExperimentStatus,
    TraceEvent,
    Trial,
    TrialStatus,
    utc_now,
)
from dspex.store import EventPart, ResultStore

__all__ = ["Recovered", "recover", "spool_directories"]

INTERRUPTED_TYPE = "dspex.Interrupted"


@dataclass
class Recovered:
    """What :func:`recover` did with one spool directory."""

    directory: Path
    experiment_id: str = ""
    store: str = ""
    trials_written: int = 0
    interrupted: list[str] = field(default_factory=list)
    events: int = 0
    torn_bytes: int = 0
    sealed_as: str | None = None  # the status it was sealed with; None when skipped
    skipped: str | None = None  # why nothing was done


def spool_directories(path: Path) -> list[Path]:
    """``path`` itself when it is one experiment's spool, else the spools under it."""
    if (path / ("experiment" + SPOOL_SUFFIX)).exists():
        return [path]
    if not path.is_dir():
        raise SpoolError(
            f"no spool at {path}: give an experiment's spool directory or the spool "
            "directory (journal.spool_dir)"
        )
    return sorted(p for p in path.iterdir() if (p / ("experiment" + SPOOL_SUFFIX)).exists())


def recover(
    directory: Path,
    store: ResultStore | None,
    *,
    open_store: Callable[[str], ResultStore] | None = None,
) -> Recovered:
    """Write one experiment's spool ``directory`` into ``store`` (None: the store the
    experiment was recorded to, opened with ``open_store(url)``) and seal it."""
    if not (directory / ("experiment" + SPOOL_SUFFIX)).exists():
        raise SpoolError(f"no spool at {directory}: it has no experiment{SPOOL_SUFFIX}")
    result = Recovered(directory)
    lock = try_lock(directory)
    if lock is None:
        result.skipped = "a running process is recording it (it holds the spool's lock)"
        return result
    try:
        header, final = _experiment_records(directory, result)
        experiment = Experiment.from_dict(header["experiment"])
        result.experiment_id = experiment.id
        result.store = str(header.get("store", ""))
        if store is None:
            if open_store is None or not result.store:
                raise SpoolError(f"the spool at {directory} names no store; pass one")
            if "***" in result.store:
                raise SpoolError(
                    f"the spool at {directory} names its store without the password "
                    f"({result.store}): pass the full URL with --store"
                )
            store = open_store(result.store)
        trials, stored = _trials(directory, experiment.id, result)
        if not _already_sealed(store, experiment.id):
            _write_trials(store, experiment, trials, stored, result)
            sealed = _sealed(experiment, final, trials)
            try:
                store.archive_experiment(sealed)
            except ImmutableRecordError:
                if not _already_sealed(store, experiment.id):
                    raise
            result.sealed_as = sealed.status.value
        else:
            result.sealed_as = "already sealed"
    finally:
        os.close(lock)
    shutil.rmtree(directory, ignore_errors=True)
    return result


def _experiment_records(
    directory: Path, result: Recovered
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    header: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    for record in iter_records(directory / ("experiment" + SPOOL_SUFFIX)):
        if isinstance(record, int):
            result.torn_bytes += record
        elif record.type is RecordType.HEADER:
            header = record.body
        elif record.type is RecordType.FINAL:
            final = record.body
    if header is None:
        raise SpoolError(f"the spool at {directory} has no experiment header: nothing to save")
    return header, final


def _trials(directory: Path, experiment_id: str, result: Recovered) -> tuple[list[Trial], set[str]]:
    trials: list[Trial] = []
    stored: set[str] = set()
    for path in sorted(directory.glob("trl_*")):
        if path.suffix not in (SPOOL_SUFFIX, STORED_SUFFIX):
            continue
        trial = _trial(path, experiment_id, result)
        if trial is None:
            continue
        if path.suffix == STORED_SUFFIX:
            stored.add(trial.id)
        trials.append(trial)
    trials.sort(key=lambda t: t.index)
    return trials, stored


def _trial(path: Path, experiment_id: str, result: Recovered) -> Trial | None:
    opening: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    raw: list[RawEvent] = []  # spooled by an earlier release (EVENTS records)
    parts: list[EventPart] = []
    for record in iter_records(path):
        if isinstance(record, int):
            result.torn_bytes += record
        elif record.type is RecordType.TRIAL_OPEN:
            opening = record.body
        elif record.type is RecordType.EVENT_PART:
            parts.append(decode_part(record.body))
        elif record.type is RecordType.EVENTS:
            raw.extend(decode_events(record.body))
        elif record.type is RecordType.TRIAL_END:
            end = record.body
    if opening is None and end is None:
        return None  # created, never written to: nothing to save
    trial_id = str((end or opening or {})["id"])
    events = _part_events(trial_id, parts) + trace_events(trial_id, raw, _stop(parts))
    result.events += len(events)
    if end is not None:
        return Trial.from_dict({**end, "events": events})
    assert opening is not None
    result.interrupted.append(trial_id)
    started = Trial.from_dict({**opening, "events": ()}).started_at
    last = max(e.timestamp for e in events) if events else started
    return Trial.from_dict(
        {
            **opening,
            "experiment_id": experiment_id,
            "status": TrialStatus.INTERRUPTED.value,
            "finished_at": max(last, started),
            "error": ErrorInfo(
                type=INTERRUPTED_TYPE,
                message=f"the process recording this trial ended before the trial did; "
                f"its {len(events)} event(s) were recovered from the write-ahead spool",
            ),
            "events": events,
        }
    )


def _part_events(trial_id: str, parts: list[EventPart]) -> tuple[TraceEvent, ...]:
    """The events of a trial's spooled parts, in order; should a part repeat events or
    leave a gap, each event is kept once and nothing after a gap (numbers stay 0..n-1)."""
    events: list[TraceEvent] = []
    for part in parts:
        if part.stop <= len(events):
            continue
        if part.first > len(events):
            break
        parsed = part.events(trial_id)
        events.extend(parsed[len(events) - part.first :])
    return tuple(events)


def _stop(parts: list[EventPart]) -> int:
    return parts[-1].stop if parts else 0


def _already_sealed(store: ResultStore, experiment_id: str) -> bool:
    try:
        return store.get_experiment(experiment_id).status.is_final
    except ExperimentNotFound:
        return False


def _write_trials(
    store: ResultStore,
    experiment: Experiment,
    trials: list[Trial],
    stored: set[str],
    result: Recovered,
) -> None:
    store.start_experiment(experiment.replace(status=ExperimentStatus.RUNNING))
    for trial in trials:
        # Trials the store took earlier are written again too (the same record, by id):
        # the store may have lost them since (a database dropped and re-created).
        store.record_trial(experiment.id, trial)
        if trial.id not in stored:
            result.trials_written += 1


def _sealed(
    experiment: Experiment, final: dict[str, Any] | None, trials: list[Trial]
) -> Experiment:
    if final is not None:
        return Experiment.from_dict({**final, "trials": tuple(trials)})
    metadata = dict(experiment.metadata)
    metadata["recovered"] = {
        "at": utc_now().isoformat(),
        "why": "the recording process ended before the experiment did; its trials were "
        "recovered from the write-ahead spool by dspex store recover",
        "interrupted_trials": [t.id for t in trials if t.status is TrialStatus.INTERRUPTED],
    }
    return finished_record(
        experiment,
        tuple(trials),
        ExperimentStatus.INTERRUPTED,
        experiment.warnings,
        metadata,
    )
