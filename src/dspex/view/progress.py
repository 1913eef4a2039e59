"""How far an experiment has got: trials done, best score on each scope, time.

What the experiment page shows at the top and what ``/api/experiments/{id}/progress``
answers while a run records (the page polls it to update itself)::

    >>> from dspex import Experiment, ProgramInfo
    >>> progress_of(Experiment(name="x", program=ProgramInfo(name="qa"))).trials
    0

Scores are grouped by the example set they were measured on (``score_scope_of``), so
that an 8-example minibatch score is never ranked against a 20-example dev score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dspex.model import Experiment, Trial, utc_now
from dspex.view.labels import score_scope_of, trial_label

__all__ = ["BestOnScope", "Progress", "progress_of"]


@dataclass(frozen=True)
class BestOnScope:
    """The best score measured on one example set (``scope`` None: not recorded)."""

    scope: str | None
    n: int | None
    trial: Trial
    count: int
    """How many trials were scored on this scope."""


@dataclass(frozen=True)
class Progress:
    status: str
    running: bool
    trials: int
    scored: int
    best: tuple[BestOnScope, ...]
    elapsed_s: float | None
    last_trial_at: datetime | None
    version: str
    """Changes whenever anything shown here changes (the page reloads its sections then)."""

    def to_dict(self, trial_url: Any = None) -> dict[str, Any]:
        return {
            "status": self.status,
            "running": self.running,
            "trials": self.trials,
            "scored": self.scored,
            "elapsed_s": self.elapsed_s,
            "last_trial_at": self.last_trial_at.isoformat() if self.last_trial_at else None,
            "version": self.version,
            "best": [
                {
                    "scope": b.scope,
                    "n": b.n,
                    "score": b.trial.score,
                    "trial": b.trial.id,
                    "label": trial_label(b.trial),
                    "count": b.count,
                    **({"url": trial_url(b.trial)} if trial_url else {}),
                }
                for b in self.best
            ],
        }


def progress_of(experiment: Experiment, now: datetime | None = None) -> Progress:
    """The progress of ``experiment`` at ``now`` (default: the current time)."""
    groups: dict[tuple[str | None, int | None], list[Trial]] = {}
    for trial in experiment.trials:
        if trial.score is not None:
            scope = score_scope_of(trial)
            key = (scope.name, scope.n if scope.name in (None, "") else None)
            groups.setdefault(key, []).append(trial)
    best = []
    for (name, _), trials in groups.items():
        top = max(trials, key=lambda t: (t.score, -t.index))
        best.append(BestOnScope(name, score_scope_of(top).n, top, len(trials)))
    best.sort(key=lambda b: (-b.count, b.scope or ""))
    running = not experiment.status.is_final
    end = experiment.completed_at if not running else (now or utc_now())
    started = experiment.started_at
    elapsed = (end - started).total_seconds() if end and started else None
    finished = [t.finished_at for t in experiment.trials if t.finished_at is not None]
    return Progress(
        status=experiment.status.value,
        running=running,
        trials=len(experiment.trials),
        scored=sum(len(v) for v in groups.values()),
        best=tuple(best),
        elapsed_s=elapsed,
        last_trial_at=max(finished) if finished else None,
        version=f"{experiment.status.value}:{len(experiment.trials)}",
    )
