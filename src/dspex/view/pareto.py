"""The Pareto front an optimizer kept (GEPA), read from its compile trial's decisions.

An optimizer that keeps a Pareto front records each change as a ``decision`` on its
compile trial whose ``details`` hold ``pareto_front`` (candidate trial ids), and per
candidate ``best_on`` (on how many valset examples it has the best score) and
``valset_scores``. The experiment view shows the last one.

>>> from dspex import Experiment, ProgramInfo
>>> pareto_front(Experiment(name="empty", program=ProgramInfo(name="qa"))) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dspex.formatting import format_score
from dspex.model import EventKind, Experiment, Trial
from dspex.model.payloads import DecisionPayload, payload_of

__all__ = ["FrontMember", "ParetoFront", "pareto_front", "pareto_lines"]


@dataclass(frozen=True)
class FrontMember:
    """A candidate on the front: its trial, valset score, and where it is the best."""

    trial: Trial
    score: float | None
    best_on: int | None


@dataclass(frozen=True)
class ParetoFront:
    optimizer: str
    members: tuple[FrontMember, ...]
    valset_size: int | None
    updates: int
    displaced: tuple[Trial, ...]


def _details(decision: DecisionPayload) -> dict[str, Any]:
    details = decision["details"]
    return details if isinstance(details, dict) else {}


def _front_decisions(experiment: Experiment) -> list[DecisionPayload]:
    """GEPA's Pareto-front decisions, in order (their details name the front)."""
    decisions = (
        payload_of(event, EventKind.DECISION)
        for trial in sorted(experiment.trials, key=lambda t: t.index)
        if trial.metadata.get("role") == "compile"
        for event in trial.events
    )
    return [
        d for d in decisions if d is not None and isinstance(_details(d).get("pareto_front"), list)
    ]


def _ids(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def pareto_front(experiment: Experiment) -> ParetoFront | None:
    """The last Pareto front recorded in ``experiment``, or None when there is none."""
    events = _front_decisions(experiment)
    if not events:
        return None
    by_id = {t.id: t for t in experiment.trials}
    details = _details(events[-1])
    scores = details.get("valset_scores")
    scores = scores if isinstance(scores, dict) else {}
    best_on = details.get("best_on")
    best_on = best_on if isinstance(best_on, dict) else {}
    members = tuple(
        FrontMember(by_id[i], _number(scores.get(i)), best_on.get(i))
        for i in _ids(details.get("pareto_front"))
        if i in by_id
    )
    displaced = {
        i: by_id[i]
        for event in events
        for i in _ids(_details(event).get("displaced"))
        if i in by_id
    }
    size = details.get("valset_size")
    return ParetoFront(
        optimizer=str(events[-1]["optimizer"] or ""),
        members=members,
        valset_size=size if isinstance(size, int) else None,
        updates=len(events),
        displaced=tuple(displaced.values()),
    )


def pareto_lines(front: ParetoFront) -> list[str]:
    """The front as plain text lines (a heading, one line per candidate)."""
    lines = [f"Pareto front ({front.optimizer}, {front.updates} update(s))"]
    of = f" of {front.valset_size}" if front.valset_size is not None else ""
    for member in front.members:
        best = f"  best on {member.best_on}{of}" if member.best_on is not None else ""
        lines.append(
            f"  Trial {member.trial.index} {member.trial.name}  valset "
            f"{format_score(member.score)}{best}"
        )
    if front.displaced:
        lines.append(
            "  displaced: " + ", ".join(f"Trial {t.index} {t.name}" for t in front.displaced)
        )
    return lines
