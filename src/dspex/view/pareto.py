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
from dspex.model import Experiment, Trial
from dspex.model.eventsummary import EventSummary

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


def _details(value: Any) -> dict[str, Any]:
    details = value.get("details") if isinstance(value, dict) else None
    return details if isinstance(details, dict) else {}


def _compile_summaries(experiment: Experiment) -> list[EventSummary]:
    """What the compile trials' events say, in trial order (GEPA records its Pareto-front
    decisions there)."""
    return [
        trial.summarized_events()
        for trial in sorted(experiment.trials, key=lambda t: t.index)
        if trial.metadata.get("role") == "compile"
    ]


def _ids(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def pareto_front(experiment: Experiment) -> ParetoFront | None:
    """The last Pareto front recorded in ``experiment``, or None when there is none."""
    summaries = [s for s in _compile_summaries(experiment) if s.pareto_updates]
    if not summaries:
        return None
    last = summaries[-1].pareto_last
    by_id = {t.id: t for t in experiment.trials}
    details = _details(last)
    scores = details.get("valset_scores")
    scores = scores if isinstance(scores, dict) else {}
    best_on = details.get("best_on")
    best_on = best_on if isinstance(best_on, dict) else {}
    members = tuple(
        FrontMember(by_id[i], _number(scores.get(i)), best_on.get(i))
        for i in _ids(details.get("pareto_front"))
        if i in by_id
    )
    displaced = {i: by_id[i] for s in summaries for i in s.pareto_displaced if i in by_id}
    size = details.get("valset_size")
    optimizer = last.get("optimizer") if last is not None else None
    return ParetoFront(
        optimizer=str(optimizer or ""),
        members=members,
        valset_size=size if isinstance(size, int) else None,
        updates=sum(s.pareto_updates for s in summaries),
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
