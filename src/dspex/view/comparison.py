"""Two trials (of any experiments) or two experiments side by side, as plain data.

:func:`trials_side_by_side` puts two trials next to each other: the paired statistics of
:func:`dspex.compare` when they were scored on the same examples (or why they cannot be
compared), what differs in their variables (instructions, demos, LM and its settings),
what each cost (tokens, money, LM calls, retrievals and embedding calls, latency, time)
and, per example, what each answered, the examples they disagree on first, and where
they retrieved different passages. :func:`experiments_side_by_side` does the
same for the best trial of each experiment on their shared example set, with the
settings that differ. Every renderer (text, rich, HTML) reads these records::

    side = trials_side_by_side(exp, exp.trials[0], exp, exp.trials[3])
    side.comparison.describe()     # None when the two were scored on different examples
    side.not_comparable            # ...and then this says why
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dspex.analysis import (
    Comparison,
    ExperimentComparison,
    SettingDiff,
    compare,
    compare_experiments,
    settings_diff,
)
from dspex.errors import NotComparableError
from dspex.formatting import format_score
from dspex.model import Experiment, ScoreScope, Trial, scope_of
from dspex.model.stats import percentile
from dspex.view.retrievals import RetrievalDiff, rag_stats, retrieval_diff
from dspex.view.timeline import Change, variables_diff

__all__ = [
    "CostRow",
    "ExperimentsSideBySide",
    "Side",
    "TrialsSideBySide",
    "experiments_side_by_side",
    "trials_side_by_side",
]


@dataclass(frozen=True)
class Side:
    """One of the two trials and the experiment it belongs to."""

    letter: str
    experiment: Experiment
    trial: Trial

    @property
    def scope(self) -> ScoreScope | None:
        return scope_of(self.trial)

    @property
    def title(self) -> str:
        name = f" · {self.trial.name}" if self.trial.name else ""
        return f"Trial {self.trial.index}{name}"

    @property
    def score_text(self) -> str:
        scope = self.scope
        on = f" on {scope.label}" if scope else " (no recorded examples)"
        return format_score(self.trial.score) + on


@dataclass(frozen=True)
class CostRow:
    """One measure of what a trial cost, for both sides."""

    name: str
    a: float | None
    b: float | None
    unit: str = ""

    def show(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.unit == "ms":
            return f"{value:,.1f} ms"
        if self.unit == "$":
            return f"${value:.4f}"
        return f"{value:,.0f}"

    @property
    def difference(self) -> str:
        if self.a is None or self.b is None:
            return ""
        delta = self.b - self.a
        if self.unit == "ms":
            return f"{delta:+,.1f} ms"
        if self.unit == "$":
            return f"{delta:+.4f}"
        return f"{delta:+,.0f}"


@dataclass(frozen=True)
class TrialsSideBySide:
    a: Side
    b: Side
    comparison: Comparison | None
    not_comparable: str | None
    changes: tuple[Change, ...]
    costs: tuple[CostRow, ...]
    retrievals: RetrievalDiff | None = None
    """Example by example, whether B retrieved other passages than A (None: no example
    both ran with retrievals)."""
    unread: tuple[str, ...] = ()
    """What was not compared because a trial came without its events (a long trial,
    which the web UI does not read whole): one line per such trial."""


@dataclass(frozen=True)
class ExperimentsSideBySide:
    a: Experiment
    b: Experiment
    settings: tuple[SettingDiff, ...]
    result: ExperimentComparison | None
    trials: TrialsSideBySide | None
    not_comparable: str | None


def trials_side_by_side(
    experiment_a: Experiment, trial_a: Trial, experiment_b: Experiment, trial_b: Trial
) -> TrialsSideBySide:
    """``trial_b`` against ``trial_a`` (statistics only when they share their examples)."""
    comparison, reason = None, None
    try:
        comparison = compare(trial_a, trial_b)
    except NotComparableError as exc:
        reason = str(exc)
    return TrialsSideBySide(
        a=Side("A", experiment_a, trial_a),
        b=Side("B", experiment_b, trial_b),
        comparison=comparison,
        not_comparable=reason,
        changes=tuple(_changes(trial_a, trial_b)),
        costs=_costs(trial_a, trial_b),
        retrievals=_retrievals(trial_a, trial_b),
        unread=_unread_lines(trial_a, trial_b),
    )


def experiments_side_by_side(
    a: Experiment, b: Experiment, *, load: Callable[[Trial], Trial] | None = None
) -> ExperimentsSideBySide:
    """The best trials of ``a`` and ``b`` on their shared examples, and their settings diff.

    ``load``: the best trials with their events, when ``a`` and ``b`` were read without
    them (``get_experiment(id, events=False)``); it may give a long trial back as it is."""
    try:
        result = compare_experiments(a, b)
    except NotComparableError as exc:
        return ExperimentsSideBySide(a, b, settings_diff(a, b), None, None, str(exc))
    best_a, best_b = result.best_a, result.best_b
    if load is not None:
        best_a, best_b = load(best_a), load(best_b)
    trials = TrialsSideBySide(
        a=Side("A", a, best_a),
        b=Side("B", b, best_b),
        comparison=result.comparison,
        not_comparable=None,
        changes=tuple(_changes(best_a, best_b)),
        costs=_costs(best_a, best_b),
        retrievals=_retrievals(best_a, best_b),
        unread=_unread_lines(best_a, best_b),
    )
    return ExperimentsSideBySide(a, b, result.settings, result, trials, None)


def _unread(trial: Trial) -> bool:
    """Whether ``trial`` came without the events it has (read as a header)."""
    return not trial.events and trial.summarized_events().events > 0


def _unread_lines(a: Trial, b: Trial) -> tuple[str, ...]:
    return tuple(
        f"{letter} (Trial {t.index}): its {t.summarized_events().events:,} events were not "
        "read; its LM calls come from its stored summary, its retrievals are not compared."
        for letter, t in (("A", a), ("B", b))
        if _unread(t)
    )


def _retrievals(a: Trial, b: Trial) -> RetrievalDiff | None:
    return None if _unread(a) or _unread(b) else retrieval_diff(a, b)


def _changes(a: Trial, b: Trial) -> list[Change]:
    changes = variables_diff(a, b)
    model_a = a.variables.lm.model if a.variables.lm else None
    model_b = b.variables.lm.model if b.variables.lm else None
    if model_a != model_b:
        changes.append(Change("lm", "model", model_a, model_b))
    return changes


def _costs(a: Trial, b: Trial) -> tuple[CostRow, ...]:
    def latencies(trial: Trial) -> list[float]:
        return [r.latency_ms for r in trial.example_results if r.latency_ms is not None]

    def pct(trial: Trial, q: float) -> float | None:
        values = latencies(trial)
        return percentile(values, q) if values else None

    def total(trial: Trial, attribute: str) -> float:
        return float(sum(getattr(r, attribute) or 0 for r in trial.example_results))

    def lm_calls(trial: Trial) -> float:
        return float(trial.summarized_events().lm_calls)  # also of a trial read without events

    def errors(trial: Trial) -> float:
        return float(sum(1 for r in trial.example_results if r.error is not None))

    return (
        CostRow("examples", float(len(a.example_results)), float(len(b.example_results))),
        CostRow("tokens", total(a, "tokens"), total(b, "tokens")),
        CostRow("cost", total(a, "cost"), total(b, "cost"), "$"),
        CostRow("LM calls", lm_calls(a), lm_calls(b)),
        *_rag_costs(a, b),
        CostRow("latency p50", pct(a, 50), pct(b, 50), "ms"),
        CostRow("latency p95", pct(a, 95), pct(b, 95), "ms"),
        CostRow("duration", a.duration_ms, b.duration_ms, "ms"),
        CostRow("errors", errors(a), errors(b)),
    )


def _rag_costs(a: Trial, b: Trial) -> tuple[CostRow, ...]:
    """Retrievals and embedding calls, when either trial made any."""
    rag_a, rag_b = rag_stats(a.events), rag_stats(b.events)
    if rag_a is None and rag_b is None:
        return ()

    side_a, side_b = not _unread(a), not _unread(b)  # False: its events were not read

    def count(stats: object, attribute: str, known: bool) -> float | None:
        if not known:
            return None
        return float(getattr(stats, attribute)) if stats is not None else 0.0

    return (
        CostRow(
            "retrievals", count(rag_a, "retrievals", side_a), count(rag_b, "retrievals", side_b)
        ),
        CostRow(
            "retrieval p50",
            rag_a.latency_p50 if rag_a else None,
            rag_b.latency_p50 if rag_b else None,
            "ms",
        ),
        CostRow(
            "embedding calls",
            count(rag_a, "embedding_calls", side_a),
            count(rag_b, "embedding_calls", side_b),
        ),
        CostRow(
            "embedding cost",
            count(rag_a, "embedding_cost", side_a),
            count(rag_b, "embedding_cost", side_b),
            "$",
        ),
    )
