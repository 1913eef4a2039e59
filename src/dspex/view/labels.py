"""How a trial is named and what its score was measured on, the same in every view.

A trial has a row number (``Trial.index``, the ``#`` of every table) and, when an
optimizer proposed it, a candidate number (``metadata["candidate"]``; decisions say
"from candidate 8"). Views show both together, so that a decision's words can be
matched to a row::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, new_id
    >>> t = Trial(experiment_id=new_id("exp"), index=12, name="candidate 8",
    ...           metadata={"candidate": 8}, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> trial_label(t), candidate_number(t)
    ('Trial 12 · candidate 8', 8)
    >>> score_scope_of(t)
    ScopeLabel(name=None, n=None)
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dspex.model import Trial

__all__ = ["ScopeLabel", "candidate_number", "score_scope_of", "trial_label"]

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
