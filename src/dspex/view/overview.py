"""What an experiment view shows, as plain data: statistics, lineage, trial rows.

>>> from dspex import Experiment, ProgramInfo
>>> overview = build_overview(Experiment(name="empty", program=ProgramInfo(name="qa")))
>>> overview.rows, overview.best, overview.baseline
((), None, None)
"""

from __future__ import annotations

from dataclasses import dataclass

from dspex.analysis import Comparison, compare
from dspex.errors import NotComparableError
from dspex.model import (
    Experiment,
    ScoreScope,
    Statistics,
    Trial,
    Verdict,
    reference_scope,
)
from dspex.model.experiment import best_trial_of, summarize
from dspex.model.outcomes import Outcome, ReturnReason, return_reason, trial_outcome
from dspex.model.scopes import baseline_in
from dspex.view.labels import full_label, score_scope_of
from dspex.view.timeline import Change, variables_diff

__all__ = ["LineageNode", "Overview", "TrialRow", "build_overview", "strategies_by_trial"]


@dataclass(frozen=True)
class TrialRow:
    """One row of the trial table."""

    trial: Trial
    strategy: str | None
    parents: tuple[int, ...]
    lm_calls: int
    tokens: int
    errors: int
    event_count: int
    parent_trials: tuple[Trial, ...] = ()
    role: str | None = None
    """What the trial was for (``metadata["role"]``: evaluation, candidate, sampling...)."""
    scope: str | None = None
    """The example set its score was measured on (dev, minibatch, full...), from the record."""
    n: int | None = None
    cache_hits: int = 0
    """LM calls answered from DSPy's cache (counted in ``lm_calls``, no tokens, no cost)."""
    outcome: Outcome | None = None
    """What the optimizer decided about it (accepted, rejected, skipped, no change)."""
    returned: bool = False
    """The candidate the compile returned."""


@dataclass(frozen=True)
class LineageNode:
    """A trial in the candidate tree; ``depth`` 0 for roots (baselines)."""

    trial: Trial
    depth: int
    strategy: str | None
    on_best_path: bool = False
    """On the way from a root to the best trial: views show this branch unfolded."""
    descendants: int = 0
    outcome: Outcome | None = None
    returned: bool = False


@dataclass(frozen=True)
class Overview:
    """What the experiment views show.

    ``best`` is the best trial on ``scope`` (the reference example set), ``baseline``
    the first trial on that set that derives from no other, ``comparison`` the two
    compared example by example (None when either is missing or they are one trial).
    ``root`` is the first root trial whatever it was scored on, so that a view can say
    when the baseline was measured elsewhere.
    """

    experiment: Experiment
    stats: Statistics
    rows: tuple[TrialRow, ...]
    lineage: tuple[LineageNode, ...]
    best: Trial | None
    baseline: Trial | None
    best_changes: tuple[Change, ...]
    scope: ScoreScope | None = None
    root: Trial | None = None
    comparison: Comparison | None = None
    returned: Trial | None = None
    """The candidate the compile returned (None: no optimizer, or it failed)."""
    reason: ReturnReason | None = None
    """Why the compile returned it, in the optimizer's words."""
    returned_validations: tuple[Trial, ...] = ()
    """The trials that scored the returned candidate again (an optimizer's validation on
    the full set): the scores its choice rests on."""

    @property
    def verdict(self) -> Verdict | None:
        hypothesis = self.experiment.hypothesis
        return hypothesis.verdict if hypothesis is not None else None


def strategies_by_trial(experiment: Experiment) -> dict[str, str | None]:
    """Trial id -> the strategy named by the candidate_created event that made it."""
    found: dict[str, str | None] = {}
    for trial in experiment.trials:
        found.update(trial.summarized_events().candidates)
    return found


def build_overview(experiment: Experiment) -> Overview:
    """The overview of ``experiment`` (statistics are recomputed when none were stored)."""
    strategies = strategies_by_trial(experiment)
    by_id = {t.id: t for t in experiment.trials}
    ordered = sorted(experiment.trials, key=lambda t: t.index)
    reason = return_reason(ordered, {t.id: full_label(t) for t in ordered})
    returned = by_id.get(reason.trial_id) if reason is not None else None
    rows = tuple(_row(t, strategies, by_id, returned) for t in ordered)
    scope = reference_scope(experiment.trials)
    # Recomputed rather than read from best_trial_id: records written before scores had
    # scopes named a minibatch score "best" against a dev-set baseline.
    best = best_trial_of(experiment.trials, scope)
    baseline = baseline_in(experiment.trials, scope)
    changes = variables_diff(baseline, best) if best and baseline and best is not baseline else []
    return Overview(
        experiment=experiment,
        stats=_statistics(experiment),
        rows=rows,
        lineage=tuple(_lineage(experiment, strategies, best, returned)),
        best=best,
        baseline=baseline,
        best_changes=tuple(changes),
        scope=scope,
        root=_root(experiment),
        comparison=_comparison(baseline, best),
        returned=returned,
        reason=reason,
        returned_validations=tuple(validations_of(ordered, returned)),
    )


def validations_of(trials: list[Trial], candidate: Trial | None) -> list[Trial]:
    """The trials that scored ``candidate`` again (``role`` validation, its child)."""
    if candidate is None:
        return []
    return [
        t
        for t in trials
        if t.metadata.get("role") == "validation" and candidate.id in t.parent_trial_ids
    ]


def _statistics(experiment: Experiment) -> Statistics:
    """The stored summary; recomputed for records whose intervals did not suit the metric."""
    stored = experiment.summary
    if stored is None or any(m.ci_method is None for m in stored.metrics.values()):
        return summarize(experiment.trials)
    return stored


def _comparison(baseline: Trial | None, best: Trial | None) -> Comparison | None:
    if baseline is None or best is None or baseline.id == best.id:
        return None
    try:
        return compare(baseline, best)
    except NotComparableError:  # the same set by fingerprint, but results that do not pair
        return None


def _row(
    trial: Trial,
    strategies: dict[str, str | None],
    by_id: dict[str, Trial],
    returned: Trial | None = None,
) -> TrialRow:
    parents = tuple(by_id[p] for p in trial.parent_trial_ids if p in by_id)
    scope = score_scope_of(trial)
    role = trial.metadata.get("role")
    events = trial.summarized_events()
    return TrialRow(
        trial=trial,
        strategy=strategies.get(trial.id),
        parents=tuple(p.index for p in parents),
        lm_calls=events.lm_calls,
        cache_hits=events.cache_hits,
        tokens=sum(r.tokens for r in trial.example_results),
        errors=sum(1 for r in trial.example_results if r.error is not None),
        event_count=events.events,
        parent_trials=parents,
        role=str(role) if isinstance(role, str) else None,
        scope=scope.name,
        n=scope.n,
        outcome=trial_outcome(trial),
        returned=returned is not None and returned.id == trial.id,
    )


def _root(experiment: Experiment) -> Trial | None:
    trials = sorted(experiment.trials, key=lambda t: t.index)
    roots = [t for t in trials if not t.parent_trial_ids]
    return roots[0] if roots else (trials[0] if trials else None)


def _lineage(
    experiment: Experiment,
    strategies: dict[str, str | None],
    best: Trial | None,
    returned: Trial | None = None,
) -> list[LineageNode]:
    trials = sorted(experiment.trials, key=lambda t: t.index)
    known = {t.id for t in trials}
    parent_of: dict[str, str | None] = {}
    children: dict[str | None, list[Trial]] = {}
    for trial in trials:
        parent = next((p for p in trial.parent_trial_ids if p in known), None)
        parent_of[trial.id] = parent
        children.setdefault(parent, []).append(trial)
    path: set[str] = set()
    current = best.id if best is not None else None
    while current is not None and current not in path:
        path.add(current)
        current = parent_of.get(current)
    order: list[tuple[Trial, int]] = []
    stack = [(t, 0) for t in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        trial, depth = stack.pop()
        if trial.id in seen:
            continue
        seen.add(trial.id)
        order.append((trial, depth))
        stack += [(c, depth + 1) for c in reversed(children.get(trial.id, []))]
    below = _descendant_counts(order)
    return [
        LineageNode(
            t,
            depth,
            strategies.get(t.id),
            t.id in path,
            below[i],
            trial_outcome(t),
            returned is not None and returned.id == t.id,
        )
        for i, (t, depth) in enumerate(order)
    ]


def _descendant_counts(order: list[tuple[Trial, int]]) -> list[int]:
    """For each node of a depth-first listing, how many nodes its subtree holds below it."""
    counts = [0] * len(order)
    open_nodes: list[int] = []
    for i, (_, depth) in enumerate(order):
        while open_nodes and order[open_nodes[-1]][1] >= depth:
            open_nodes.pop()
        for ancestor in open_nodes:
            counts[ancestor] += 1
        open_nodes.append(i)
    return counts
