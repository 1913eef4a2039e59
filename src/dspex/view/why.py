"""Why a trial exists and what became of it: what a trial page shows first.

The optimizer's decisions on the trial (what it decided, why, what it then did), the
outcome they came to (accepted, rejected, skipped, no change), and, on the candidate the
compile returned, why it was returned. Read from the records only::

    >>> from datetime import UTC, datetime
    >>> from dspex import Experiment, ProgramInfo, Trial
    >>> exp = Experiment(name="e", program=ProgramInfo(name="qa"))
    >>> t = Trial(experiment_id=exp.id, index=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> why_of(t, exp.replace(trials=(t,))).empty
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dspex.model import EventKind, Experiment, Trial
from dspex.model.outcomes import Outcome, ReturnReason, return_reason, trial_outcome
from dspex.model.payloads import payload_of
from dspex.view.labels import candidate_number

__all__ = ["MAX_DECISIONS", "Said", "Why", "mentions", "why_of"]

MAX_DECISIONS = 12
"""A trial page lists at most this many decisions first; the rest are in its timeline."""


@dataclass(frozen=True)
class Said:
    """One decision, as a page leads with it; ``event_id`` links it in the timeline."""

    event_id: str
    decision: str
    strategy: str | None
    rationale: str
    action: str
    verdict: bool
    """The decision the trial's outcome comes from (shown once, marked)."""


@dataclass(frozen=True)
class Why:
    trial: Trial
    outcome: Outcome | None
    decisions: tuple[Said, ...]
    more: int
    """Decisions left out (see :data:`MAX_DECISIONS`)."""
    returned: ReturnReason | None
    """Set when ``trial`` is the candidate the compile returned."""

    @property
    def empty(self) -> bool:
        return not self.decisions and self.outcome is None and self.returned is None


def why_of(trial: Trial, experiment: Experiment | None = None) -> Why:
    """What a trial page says first about ``trial`` (``experiment`` finds whether it was
    the returned candidate)."""
    said: list[Said] = []
    for event in trial.events:
        decision = payload_of(event, EventKind.DECISION)
        if decision is None:
            continue
        details = decision["details"] if isinstance(decision["details"], dict) else {}
        said.append(
            Said(
                event_id=event.id,
                decision=_text(decision["decision"]),
                strategy=_text(decision["strategy"]) or None,
                rationale=_text(decision["rationale"]),
                action=_text(decision["action"]),
                verdict=isinstance(details.get("accepted"), bool) or details.get("skipped") is True,
            )
        )
    reason = return_reason(experiment.trials) if experiment is not None else None
    kept = said[:MAX_DECISIONS]
    verdicts = [s for s in said[MAX_DECISIONS:] if s.verdict]
    if verdicts:  # the verdict is never the one left out
        kept = kept[: MAX_DECISIONS - 1] + verdicts[-1:]
    return Why(
        trial=trial,
        outcome=trial_outcome(trial),
        decisions=tuple(kept),
        more=len(said) - len(kept),
        returned=reason if reason is not None and reason.trial_id == trial.id else None,
    )


def _text(value: object) -> str:
    """A recorded value as text (records from elsewhere may hold any JSON here)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


_MENTION = re.compile(r"\b(?:candidate (\d+)|Trial (\d+))\b")


def mentions(text: str, experiment: Experiment | None) -> list[tuple[str, Trial | None]]:
    """``text`` cut into pieces, each with the trial it names ("candidate 8", "Trial 12")
    or None: a page links the candidates and trials a decision speaks of."""
    if experiment is None or not text:
        return [(text, None)]
    by_candidate = {candidate_number(t): t for t in experiment.trials}
    by_row = {t.index: t for t in experiment.trials}
    pieces: list[tuple[str, Trial | None]] = []
    at = 0
    for match in _MENTION.finditer(text):
        candidate, row = match.group(1), match.group(2)
        named = by_candidate.get(int(candidate)) if candidate else by_row.get(int(row))
        if named is None:
            continue
        if match.start() > at:
            pieces.append((text[at : match.start()], None))
        pieces.append((match.group(0), named))
        at = match.end()
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces
