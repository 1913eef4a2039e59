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
    >>> from dspex.model import ScoreScope
    >>> scope = ScoreScope(name="minibatch", fingerprint="ex_1", n=8)
    >>> scored(t.replace(score=0.75, score_scope=scope))
    '0.75 on minibatch (n=8)'
    >>> parse_trial_ref("c8"), parse_trial_ref("candidate 8"), parse_trial_ref("12")
    (('candidate', 8), ('candidate', 8), ('row', 12))
"""

from __future__ import annotations

from typing import NamedTuple

from dspex.model import Trial
from dspex.model.outcomes import scored_text
from dspex.model.trialref import candidate_number, find_trial, parse_trial_ref

__all__ = [
    "ScopeLabel",
    "candidate_number",
    "find_trial",
    "full_label",
    "parse_trial_ref",
    "score_scope_of",
    "scored",
    "short_label",
    "trial_label",
]


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
    score = trial.summarized_events().trial_score
    if score is not None:
        scope, count = score.get("scope"), score.get("n")
        name = str(scope) if isinstance(scope, str) and scope else None
        n = count if isinstance(count, int) and not isinstance(count, bool) else None
    if n is None and trial.example_results:
        n = len(trial.example_results)
    return ScopeLabel(name, n)


def scored(trial: Trial) -> str:
    """``trial``'s score with what it was measured on: ``0.75 on minibatch (n=8)``."""
    scope = score_scope_of(trial)
    return scored_text(trial.score, scope.name, scope.n)
