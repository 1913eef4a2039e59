"""How a trial is named and what its score was measured on, the same in every view.

A trial has a row number (``Trial.index``, the ``#`` of every table) and, when an
optimizer proposed it, a candidate number (``metadata["candidate"]``; decisions say
"from candidate 8"). Views show both together, so that a decision's words can be
matched to a row, and :func:`find_trial` accepts either (or a trial id)::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, new_id
    >>> t = Trial(experiment_id=new_id("exp"), index=12, name="candidate 8",
    ...           metadata={"candidate": 8}, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> trial_label(t), candidate_number(t)
    ('Trial 12 · candidate 8', 8)
    >>> score_scope_of(t)
    ScopeLabel(name=None, n=None)
    >>> parse_trial_ref("c8"), parse_trial_ref("candidate 8"), parse_trial_ref("12")
    (('candidate', 8), ('candidate', 8), ('row', 12))
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dspex.errors import TrialNotFound
from dspex.ids import is_valid_id
from dspex.model import Experiment, Trial

__all__ = [
    "ScopeLabel",
    "candidate_number",
    "find_trial",
    "full_label",
    "parse_trial_ref",
    "score_scope_of",
    "short_label",
    "trial_label",
]

_CANDIDATE_NAME = re.compile(r"^candidate (\d+)\b")


def candidate_number(trial: Trial) -> int | None:
    """The optimizer's candidate number of ``trial``, or None when it is not a candidate."""
    number = trial.metadata.get("candidate")
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    match = _CANDIDATE_NAME.match(trial.name)
    return int(match.group(1)) if match else None


def trial_label(trial: Trial) -> str:
    """``Trial 12 · candidate 8`` (row number, and candidate number when there is one)."""
    number = candidate_number(trial)
    return f"Trial {trial.index}" + ("" if number is None else f" · candidate {number}")


def short_label(trial: Trial) -> str:
    """``#12 c8``: the row number and candidate number, for narrow table cells."""
    number = candidate_number(trial)
    return f"#{trial.index}" + ("" if number is None else f" c{number}")


def full_label(trial: Trial) -> str:
    """:func:`trial_label` and the trial's name when the name says more than the label:
    ``Trial 0 · baseline``, ``Trial 12 · candidate 8``."""
    label = trial_label(trial)
    if not trial.name or candidate_number(trial) is not None and trial.name.startswith("cand"):
        return label
    return f"{label} · {trial.name}"


class ScopeLabel(NamedTuple):
    """Which example set a score was measured on (``dev``, ``minibatch``...) and how many."""

    name: str | None
    n: int | None


def score_scope_of(trial: Trial) -> ScopeLabel:
    """The scope of ``trial``'s score, from its record only.

    ``Trial.score_scope`` when capture filled it; otherwise what older records carry:
    the ``scope`` and ``n`` of the ``trial_score`` event, else the number of example
    results.
    """
    if trial.score_scope is not None:
        return ScopeLabel(trial.score_scope.name, trial.score_scope.n)
    name: str | None = None
    n: int | None = None
    for event in reversed(trial.events):
        if event.kind == "trial_score":
            scope, count = event.payload.get("scope"), event.payload.get("n")
            name = str(scope) if isinstance(scope, str) and scope else None
            n = count if isinstance(count, int) and not isinstance(count, bool) else None
            break
    if n is None and trial.example_results:
        n = len(trial.example_results)
    return ScopeLabel(name, n)


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
        return experiment.trial(str(value))
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
