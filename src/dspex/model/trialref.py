"""How a trial is referred to, the same way everywhere: the CLI (``--trial 12``,
``E:c8``), the web UI (``/experiments/E/trials/12``), the API and
:meth:`dspex.Experiment.trial`.

A trial has a row number (``Trial.index``, the ``#`` of every table) and, when an
optimizer proposed it, a candidate number (``metadata["candidate"]``; decisions say
"from candidate 8"); :func:`find_trial` accepts either, or a trial id::

    >>> parse_trial_ref("c8"), parse_trial_ref("candidate 8"), parse_trial_ref("12")
    (('candidate', 8), ('candidate', 8), ('row', 12))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from dspex.errors import TrialNotFound
from dspex.ids import is_valid_id
from dspex.model.trial import Trial


class Experiment(Protocol):
    """What finding a trial reads of an experiment (a :class:`dspex.Experiment`); a
    protocol, so that this module sits below the experiment that uses it."""

    @property
    def id(self) -> str: ...

    @property
    def trials(self) -> Sequence[Trial]: ...


__all__ = ["candidate_number", "find_trial", "parse_trial_ref"]

_CANDIDATE_NAME = re.compile(r"^candidate (\d+)\b")


def candidate_number(trial: Trial) -> int | None:
    """The optimizer's candidate number of ``trial``, or None when it is not a candidate."""
    number = trial.metadata.get("candidate")
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    match = _CANDIDATE_NAME.match(trial.name)
    return int(match.group(1)) if match else None


_CANDIDATE_REF = re.compile(r"^(?:c|cand|candidate)\s*#?\s*(\d+)$", re.IGNORECASE)
_ROW_REF = re.compile(r"^(?:#|trial\s*)?\s*(\d+)$", re.IGNORECASE)


def parse_trial_ref(ref: str | int) -> tuple[str, int | str]:
    """What ``ref`` names: ``("row", 12)``, ``("candidate", 8)`` or ``("id", "trl_...")``."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ("row", ref)
    text = str(ref).strip()
    if (match := _ROW_REF.match(text)) is not None:
        return ("row", int(match.group(1)))
    if (match := _CANDIDATE_REF.match(text)) is not None:
        return ("candidate", int(match.group(1)))
    return ("id", text)


def find_trial(experiment: Experiment, ref: str | int) -> Trial:
    """The trial ``ref`` names: a row number (``12``, ``#12``), a candidate number
    (``c8``, ``candidate 8``) or a trial id. The error says what was looked up and what
    would have been valid."""
    kind, value = parse_trial_ref(ref)
    trials = experiment.trials
    if kind == "row":
        found = [t for t in trials if t.index == value]
        if found:
            return found[0]
        raise TrialNotFound(experiment.id, str(ref), message=_missing_row(experiment, value))
    if kind == "candidate":
        found = [t for t in trials if candidate_number(t) == value]
        if found:
            return found[0]
        raise TrialNotFound(experiment.id, str(ref), message=_missing_candidate(experiment, value))
    if is_valid_id(str(value), "trl"):
        for trial in trials:
            if trial.id == value:
                return trial
        raise TrialNotFound(
            experiment.id,
            str(value),
            message=f"no trial with id {value!r} in experiment {experiment.id}: give "
            f"{_valid_refs(experiment)}",
        )
    raise TrialNotFound(
        experiment.id,
        str(ref),
        message=f"{str(ref)!r} names no trial of experiment {experiment.id}: give "
        f"{_valid_refs(experiment)}",
    )


def _range(numbers: list[int]) -> str:
    return f"{min(numbers)}–{max(numbers)}" if numbers else "none"


def _missing_row(experiment: Experiment, row: object) -> str:
    rows = [t.index for t in experiment.trials]
    where = f"experiment {experiment.id} has no trials" if not rows else f"rows run {_range(rows)}"
    return (
        f"no trial #{row} in experiment {experiment.id}: {where} (the # column of "
        f"`dspex experiments show {experiment.id}`); a candidate number is written c8"
    )


def _missing_candidate(experiment: Experiment, number: object) -> str:
    numbers = [n for n in (candidate_number(t) for t in experiment.trials) if n is not None]
    where = f"candidates run {_range(numbers)}" if numbers else "no trial is a candidate"
    return f"no candidate {number} in experiment {experiment.id}: {where}"


def _valid_refs(experiment: Experiment) -> str:
    rows = _range([t.index for t in experiment.trials])
    numbers = [n for n in (candidate_number(t) for t in experiment.trials) if n is not None]
    candidates = f", a candidate number (c{min(numbers)}–c{max(numbers)})" if numbers else ""
    return f"a row number ({rows}){candidates} or a trial id (trl_...)"
