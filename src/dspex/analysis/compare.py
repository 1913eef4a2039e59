"""Paired comparison of two trials over the examples both were scored on.

    comparison = dspex.compare(baseline, optimized)   # two Trial records
    comparison.difference, comparison.p_value, comparison.test
    # (0.45, 0.0039, 'exact McNemar')

Each example is scored by both trials, so the comparison pairs them by example (the key
of its inputs and labels) and looks at the per-example differences ``b - a``:

* **wins / losses / ties** from ``b``'s side, and the examples that flipped;
* the mean difference with a **paired bootstrap** interval (seeded);
* a test of "no difference": **exact McNemar** (a binomial test on the examples that
  flipped) for 0/1 metrics, **Wilcoxon signed-rank** otherwise;
* an effect size: the matched-pairs **rank-biserial correlation**, from -1 (``a`` better
  on every example that differs) to +1 (``b`` better on every one).

Trials scored on different example sets, or with different metrics, are refused with
:class:`dspex.NotComparableError`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from dspex.errors import NotComparableError
from dspex.formatting import format_p
from dspex.model import ExampleResult, MetricKind, ScoreScope, Trial, example_key, scope_of
from dspex.model._numerics import binom_two_sided_p, rankdata, wilcoxon_signed_rank
from dspex.model.intervals import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    Interval,
    paired_bootstrap_interval,
)
from dspex.model.scopes import example_value, kind_of

__all__ = [
    "Comparison",
    "ExamplePair",
    "compare",
    "describe_scope",
    "format_p",
    "pair_examples",
    "rank_biserial",
]

Outcome = Literal["win", "loss", "tie"]


@dataclass(frozen=True)
class ExamplePair:
    """One example as both trials saw it; ``outcome`` is from ``b``'s side."""

    key: str
    a: ExampleResult
    b: ExampleResult
    value_a: float
    value_b: float

    @property
    def difference(self) -> float:
        return self.value_b - self.value_a

    @property
    def outcome(self) -> Outcome:
        if self.value_b > self.value_a:
            return "win"
        return "loss" if self.value_b < self.value_a else "tie"

    @property
    def flipped(self) -> bool:
        """Whether the two trials scored this example differently."""
        return self.outcome != "tie"


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found; ``difference`` and ``interval`` are ``b - a``."""

    a: Trial
    b: Trial
    scope: ScoreScope
    kind: MetricKind
    pairs: tuple[ExamplePair, ...]
    mean_a: float
    mean_b: float
    interval: Interval
    test: str
    statistic: float | None
    p_value: float
    effect_size: float | None
    non_finite: int = 0  # examples left out: NaN or infinite on a side

    @property
    def n(self) -> int:
        return len(self.pairs)

    @property
    def difference(self) -> float:
        return self.mean_b - self.mean_a

    @property
    def wins(self) -> int:
        return sum(1 for p in self.pairs if p.outcome == "win")

    @property
    def losses(self) -> int:
        return sum(1 for p in self.pairs if p.outcome == "loss")

    @property
    def ties(self) -> int:
        return sum(1 for p in self.pairs if p.outcome == "tie")

    @property
    def flips(self) -> tuple[ExamplePair, ...]:
        """The examples the trials scored differently, largest change first."""
        return tuple(sorted((p for p in self.pairs if p.flipped), key=lambda p: -abs(p.difference)))

    def ordered_pairs(self) -> tuple[ExamplePair, ...]:
        """Every pair, the flips first (largest change first), then the ties in order."""
        return self.flips + tuple(p for p in self.pairs if not p.flipped)

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def describe(self) -> str:
        """``+0.450 (95% CI ...), 9 wins / 0 losses / 11 ties, exact McNemar p=0.0039``."""
        left_out = f", {self.non_finite} non-finite left out" if self.non_finite else ""
        return (
            f"{self.difference:+.3f} ({self.interval.describe()}), "
            f"{self.wins} wins / {self.losses} losses / {self.ties} ties, "
            f"{self.test} p={format_p(self.p_value)}, n={self.n}{left_out}"
        )


def describe_scope(scope: ScoreScope | None) -> str:
    """``dev (n=20, exact_match, ex_1b65...)`` for messages."""
    if scope is None:
        return "no recorded examples"
    return f"{scope.name} (n={scope.n}, {scope.metric or 'unnamed metric'}, {scope.fingerprint})"


def _trial_label(trial: Trial) -> str:
    return f"Trial {trial.index}" + (f" ({trial.name})" if trial.name else "") + f" [{trial.id}]"


def _checked_scope(a: Trial, b: Trial) -> ScoreScope:
    scope_a, scope_b = scope_of(a), scope_of(b)
    for trial, scope in ((a, scope_a), (b, scope_b)):
        if scope is None or not trial.example_results:
            raise NotComparableError(
                f"{_trial_label(trial)} has no score over recorded examples, so it cannot be "
                "compared example by example; evaluate it with exp.evaluate(program, devset, "
                "metric)"
            )
    assert scope_a is not None and scope_b is not None
    if not scope_a.comparable_with(scope_b):
        what = "metrics" if scope_a.fingerprint == scope_b.fingerprint else "example sets"
        raise NotComparableError(
            f"{_trial_label(a)} was scored on {describe_scope(scope_a)} and {_trial_label(b)} "
            f"on {describe_scope(scope_b)}: scores over different {what} are not comparable. "
            "Evaluate both programs on the same examples with the same metric "
            "(exp.evaluate(program, devset, metric)) and compare those trials."
        )
    return scope_a


def pair_examples(a: Trial, b: Trial, metric: str) -> tuple[ExamplePair, ...]:
    """The example results of ``a`` and ``b`` paired by example (inputs and labels), a's order."""
    waiting: dict[str, list[ExampleResult]] = defaultdict(list)
    for result in sorted(b.example_results, key=lambda r: r.index):
        waiting[example_key(result.inputs, result.labels)].append(result)
    pairs = []
    for result in sorted(a.example_results, key=lambda r: r.index):
        key = example_key(result.inputs, result.labels)
        if not waiting[key]:
            raise NotComparableError(
                f"example {result.index} of {_trial_label(a)} has no counterpart in "
                f"{_trial_label(b)}: their example results do not pair up"
            )
        other = waiting[key].pop(0)
        pairs.append(
            ExamplePair(
                key, result, other, example_value(result, metric), example_value(other, metric)
            )
        )
    return tuple(pairs)


def compare(
    a: Trial,
    b: Trial,
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Comparison:
    """Compare ``b`` against ``a`` example by example (see the module docs).

    Raises :class:`dspex.NotComparableError` when they were scored on different example
    sets or with different metrics, or without recorded example results.
    """
    if not isinstance(a, Trial) or not isinstance(b, Trial):
        raise NotComparableError(
            f"compare takes two dspex.Trial records, not {type(a).__name__} and "
            f"{type(b).__name__} (read them with ResultStore.get_trial(experiment_id, trial_id))"
        )
    scope = _checked_scope(a, b)
    every_pair = pair_examples(a, b, scope.metric)
    # a non-finite value (a metric that divided by zero) is no measurement to compare:
    # its example is left out, and counted
    pairs = tuple(p for p in every_pair if math.isfinite(p.value_a) and math.isfinite(p.value_b))
    if not pairs:
        raise NotComparableError(
            f"no example has a finite metric value in both {_trial_label(a)} and "
            f"{_trial_label(b)} ({len(every_pair)} paired, every one NaN or infinite on a side)"
        )
    values_a = [p.value_a for p in pairs]
    values_b = [p.value_b for p in pairs]
    differences = [p.difference for p in pairs]
    declared = scope if scope.kind is not None else scope_of(b)  # either may declare it
    kind = kind_of(declared, [*values_a, *values_b])
    test, statistic, p_value = _test(kind, differences)
    return Comparison(
        a=a,
        b=b,
        scope=scope,
        kind=kind,
        pairs=pairs,
        mean_a=fmean(values_a),
        mean_b=fmean(values_b),
        interval=paired_bootstrap_interval(
            values_a, values_b, confidence=confidence, seed=seed, resamples=resamples
        ),
        test=test,
        statistic=statistic,
        p_value=p_value,
        effect_size=rank_biserial(differences),
        non_finite=len(every_pair) - len(pairs),
    )


def _test(kind: MetricKind, differences: list[float]) -> tuple[str, float | None, float]:
    if kind is MetricKind.BINARY:
        wins, losses = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
        if wins + losses == 0:
            return "exact McNemar", 0.0, 1.0
        return "exact McNemar", float(wins), binom_two_sided_p(wins, wins + losses)
    if not any(differences):
        return "Wilcoxon signed-rank", 0.0, 1.0
    statistic, p_value = wilcoxon_signed_rank(differences)
    return "Wilcoxon signed-rank", statistic, p_value


def rank_biserial(differences: Sequence[float]) -> float | None:
    """Matched-pairs rank-biserial correlation of ``differences`` (zeros left out).

    For 0/1 metrics it is (wins - losses) / (wins + losses). None when nothing differs.
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return None
    ranks = rankdata([abs(d) for d in nonzero])
    signed = sum(r if d > 0 else -r for r, d in zip(ranks, nonzero, strict=True))
    return signed / sum(ranks)
