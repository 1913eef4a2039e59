"""What the optimizer decided about each trial, read from the records only.

Every view and export says the same thing about a candidate: its **outcome** (was it
accepted into the optimizer's pool, rejected, skipped, or did it change nothing), whether
it is the candidate the compile **returned**, and **why** it was returned. These are read
from what capture recorded (trial metadata, ``decision`` and ``optimizer_end`` events),
never from DSPy objects::

    >>> from datetime import UTC, datetime
    >>> from dspex import Trial, new_id
    >>> t = Trial(experiment_id=new_id("exp"), index=3, metadata={"accepted": False},
    ...           started_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> trial_outcome(t)
    <Outcome.REJECTED: 'rejected'>
    >>> scored_text(0.75, "minibatch", 8), scored_text(0.5, None, None), scored_text(None, "dev", 3)
    ('0.75 on minibatch (n=8)', '0.5', 'n/a')

Outcomes by optimizer:

* GEPA: a proposal or merge GEPA added to its pool is ``accepted``, one it discarded
  ``rejected`` (its verdict decision, ``metadata["accepted"]``); an iteration GEPA ended
  before proposing (all minibatch scores perfect...) is ``skipped``; an iteration whose
  reflection proposed nothing is ``no change``.
* SIMBA: a candidate whose strategy declined to change it (``append_a_rule`` or
  ``append_a_demo`` returning False: the decision's ``details.skipped``) is ``no change``.
* Any optimizer: a decision whose ``details`` say ``accepted`` true or false.

Other trials have no outcome (None): evaluations, and candidates of optimizers that keep
every candidate they score (MIPROv2's optuna trials, COPRO, random search).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from dspex.formatting import format_number, format_score
from dspex.model.payloads import DecisionPayload, OptimizerEndPayload
from dspex.model.trial import Trial

__all__ = [
    "OUTCOMES",
    "Outcome",
    "ReturnReason",
    "compile_trial",
    "outcomes_of",
    "return_reason",
    "returned_trial_id",
    "scored_text",
    "trial_outcome",
]


class Outcome(StrEnum):
    """What an optimizer decided about a candidate."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    NO_CHANGE = "no change"


OUTCOMES = tuple(o.value for o in Outcome)
"""The outcome values, in the order filters list them."""


def scored_text(score: float | None, scope: str | None, n: int | None) -> str:
    """A score with what it was measured on: ``0.75 on minibatch (n=8)``; ``n/a`` for none.

    A score without its scope reads as if it were comparable with every other; every view
    writes scores this way (tables may split it into a score and a scope column).
    """
    if score is None:
        return "n/a"
    text = format_score(score)
    if scope:
        text += f" on {scope}"
    if n is not None:
        text += f" (n={n})"
    return text


def trial_outcome(trial: Trial) -> Outcome | None:
    """The outcome of ``trial`` (see the module docs), None when nothing was decided."""
    metadata = trial.metadata
    accepted = metadata.get("accepted")
    if isinstance(accepted, bool):
        return Outcome.ACCEPTED if accepted else Outcome.REJECTED
    if metadata.get("skipped"):
        return Outcome.SKIPPED
    if metadata.get("role") == "iteration":  # GEPA: an iteration that proposed nothing
        return Outcome.NO_CHANGE
    # the last decision whose details say accepted (true or false) or skipped
    decided = trial.summarized_events().decided
    return Outcome(decided) if decided is not None else None


def compile_trial(trials: Sequence[Trial]) -> Trial | None:
    """The last compile trial that is not nested in another (MIPROv2's inner
    BootstrapFewShot has the outer compile as its parent), None without an optimizer."""
    compiles = [t for t in trials if t.metadata.get("role") == "compile"]
    ids = {t.id for t in compiles}
    outer = [t for t in compiles if not any(p in ids for p in t.parent_trial_ids)]
    return max(outer, key=lambda t: t.index) if outer else None


def _end_of(trial: Trial) -> OptimizerEndPayload | None:
    """The trial's last ``optimizer_end`` (its required keys there, as ``payload_of``)."""
    end = trial.summarized_events().optimizer_end
    if end is None:
        return None
    return cast(OptimizerEndPayload, {"optimizer": None, "ok": None, "error": None, **end})


def returned_trial_id(trials: Sequence[Trial]) -> str | None:
    """The trial whose program the compile returned: the one its ``Return ...`` decision
    names (``details.returned``), else the candidate its ``optimizer_end`` names
    (``returned``, else ``best_candidate``), else the compile trial itself when it ended
    well (an optimizer without candidates returns what it built)."""
    compiled = compile_trial(trials)
    if compiled is None:
        return None
    end = _end_of(compiled)
    if end is None or not end["ok"]:
        return None
    known = {t.id for t in trials}
    decision = _return_decision(compiled)
    details = decision[1]["details"] if decision is not None else None
    named = details.get("returned") if isinstance(details, dict) else None
    if isinstance(named, str) and named in known:
        return named
    extra: dict[str, Any] = dict(end)
    for key in ("returned", "best_candidate"):
        named = extra.get(key)
        if isinstance(named, str) and named in known:
            return named
    return compiled.id


@dataclass(frozen=True)
class ReturnReason:
    """Why the compile returned a candidate: the optimizer's own words when it recorded a
    ``Return ...`` decision, else what its ``optimizer_end`` reported."""

    trial_id: str
    optimizer: str
    decision: str
    """``Return candidate 24``."""
    rationale: str
    """``Highest full-trainset score 0.8125 among candidate 3 (0.75), ...``."""
    event_id: str | None = None
    """The decision event it was read from (None: from ``optimizer_end``)."""
    compile_trial_id: str | None = None
    """The compile trial that holds that event."""

    @property
    def line(self) -> str:
        return f"{self.decision}: {self.rationale}" if self.rationale else self.decision


def return_reason(
    trials: Sequence[Trial], names: dict[str, str] | None = None
) -> ReturnReason | None:
    """Why the compile returned what it did (see :class:`ReturnReason`); ``names`` maps
    trial ids to the labels to use for them (default: trial names)."""
    compiled = compile_trial(trials)
    returned = returned_trial_id(trials)
    if compiled is None or returned is None:
        return None
    end = _end_of(compiled)
    optimizer = end["optimizer"] if end is not None else str(compiled.metadata.get("optimizer"))
    by_id = {t.id: t for t in trials}
    names = names or {}

    def name(trial_id: str) -> str:
        trial = by_id.get(trial_id)
        return names.get(trial_id) or (trial.name if trial and trial.name else trial_id)

    found = _return_decision(compiled)
    if found is not None:
        event_id, decision = found
        return ReturnReason(
            returned,
            optimizer,
            str(decision["decision"]),
            str(decision["rationale"] or ""),
            event_id,
            compiled.id,
        )
    if returned == compiled.id:
        return ReturnReason(
            returned,
            optimizer,
            f"Return the program {optimizer} built",
            "it compares no candidates: the compile's result is its only program",
        )
    best = end.get("best_score") if end is not None else None
    scored = by_id.get(returned)
    scope = scored.score_scope if scored is not None else None
    rationale = f"{optimizer} reported it as its best candidate"
    if isinstance(best, int | float) and not isinstance(best, bool):
        rationale += f", score {format_number(best)}"
        if scope is not None:
            rationale += f" on {scope.name} (n={scope.n})"
    return ReturnReason(returned, optimizer, f"Return {name(returned)}", rationale)


def _return_decision(compiled: Trial) -> tuple[str, DecisionPayload] | None:
    """The compile's last run-level decision that says what it returns (``Return ...``)."""
    summary = compiled.summarized_events()
    if summary.return_event is None or summary.return_decision is None:
        return None
    return summary.return_event, cast(DecisionPayload, summary.return_decision)


def outcomes_of(trials: Iterable[Trial]) -> dict[str, Outcome | None]:
    """Trial id -> :func:`trial_outcome`."""
    return {t.id: trial_outcome(t) for t in trials}
