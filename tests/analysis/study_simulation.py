"""Simulated studies, to measure how the statistics across seeds behave.

A study is simulated as the crossed design it is: a fixed set of evaluation examples
(each with a difficulty), arms run at several seeds (each seed a program of its own
quality), and a seed x example interaction (which examples a given program gets
right). An example's value is 1 with probability ``sigmoid(arm + seed + example +
interaction)`` (0/1 metrics) or that probability plus noise, clipped to [0, 1]
(bounded metrics). Every replicate draws fresh examples and fresh seeds; the truth is
the arm's expected score over fresh seeds *and* fresh examples.

``python -m tests.analysis.study_simulation`` prints the table in docs/studies.md.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dspex.analysis.studies import ArmScores, compare_arms, holm, summarize_arm


@dataclass(frozen=True)
class Scenario:
    label: str
    seeds: int
    examples: int
    arms: tuple[float, ...]  # each arm's mean logit
    seed_sd: tuple[float, ...] = (0.5,)  # per arm (one value: the same for every arm)
    example_sd: float = 1.0
    interaction_sd: float = 0.5
    bounded: bool = False

    def seed_sd_of(self, arm: int) -> float:
        return self.seed_sd[arm] if len(self.seed_sd) > 1 else self.seed_sd[0]


SCENARIOS = [
    Scenario("0/1, no difference", 4, 20, (0.0, 0.0)),
    Scenario("0/1, no difference", 4, 100, (0.0, 0.0)),
    Scenario("0/1, no difference", 8, 50, (0.0, 0.0)),
    Scenario("0/1, seeds vary 4x as much in B", 6, 50, (0.0, 0.0), seed_sd=(0.2, 0.8)),
    Scenario("[0,1] values, no difference", 5, 30, (0.5, 0.5), bounded=True),
    Scenario("0/1, B better by 0.6 logit", 4, 50, (0.0, 0.6)),
    Scenario("0/1, B better by 0.6 logit", 8, 50, (0.0, 0.6)),
    Scenario("3 arms, no difference", 5, 30, (0.0, 0.0, 0.0)),
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _values(logits: np.ndarray, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    p = _sigmoid(logits)
    if scenario.bounded:
        return np.clip(p + rng.normal(0, 0.15, p.shape), 0.0, 1.0)
    return (rng.random(p.shape) < p).astype(float)


def true_means(scenario: Scenario, draws: int = 400_000) -> list[float]:
    """Each arm's expected score over fresh seeds and fresh examples (Monte Carlo)."""
    rng = np.random.default_rng(12345)
    means = []
    for arm, mu in enumerate(scenario.arms):
        logits = (
            mu
            + rng.normal(0, scenario.seed_sd_of(arm), draws)
            + rng.normal(0, scenario.example_sd, draws)
            + rng.normal(0, scenario.interaction_sd, draws)
        )
        p = _sigmoid(logits)
        if scenario.bounded:  # the mean of the clipped noisy value
            p = np.clip(p + rng.normal(0, 0.15, draws), 0.0, 1.0)
        means.append(float(p.mean()))
    return means


def draw_study(scenario: Scenario, rng: np.random.Generator) -> list[ArmScores]:
    examples = rng.normal(0, scenario.example_sd, scenario.examples)
    arms = []
    for arm, mu in enumerate(scenario.arms):
        seeds = rng.normal(0, scenario.seed_sd_of(arm), (scenario.seeds, 1))
        interaction = rng.normal(0, scenario.interaction_sd, (scenario.seeds, scenario.examples))
        logits = mu + seeds + examples + interaction
        arms.append(ArmScores(f"arm{arm}", _values(logits, scenario, rng)))
    return arms


@dataclass(frozen=True)
class Measured:
    arm_coverage: float
    difference_coverage: float
    positive: float  # share of studies where the first pair's p < alpha
    familywise: float  # share where any pair's Holm-adjusted p < alpha
    unadjusted: float  # share where any pair's raw p < alpha


def measure(scenario: Scenario, studies: int, alpha: float = 0.05, seed: int = 0) -> Measured:
    rng = np.random.default_rng(seed)
    truth = true_means(scenario)
    arm_hits = diff_hits = positive = familywise = unadjusted = 0
    for _ in range(studies):
        arms = draw_study(scenario, rng)
        _, _, low, high = summarize_arm(arms[0])
        arm_hits += low is not None and high is not None and low <= truth[0] <= high
        pairs = list(itertools.combinations(range(len(arms)), 2))
        comparisons = [compare_arms(arms[a], arms[b]) for a, b in pairs]
        first = comparisons[0]
        gap = truth[1] - truth[0]
        assert first.ci_low is not None and first.ci_high is not None
        diff_hits += first.ci_low <= gap <= first.ci_high
        positive += first.p_value < alpha
        raw = [c.p_value for c in comparisons]
        familywise += min(holm(raw)) < alpha
        unadjusted += min(raw) < alpha
    return Measured(
        arm_hits / studies,
        diff_hits / studies,
        positive / studies,
        familywise / studies,
        unadjusted / studies,
    )


def table(studies: int = 1000) -> str:
    lines = [
        "| data | seeds x examples | arm interval covers | difference interval covers "
        "| p < 0.05 (first pair) | any pair, Holm | any pair, uncorrected |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        m = measure(scenario, studies)
        many = len(scenario.arms) > 2
        lines.append(
            f"| {scenario.label} | {scenario.seeds} x {scenario.examples} "
            f"| {m.arm_coverage:.3f} | {m.difference_coverage:.3f} | {m.positive:.3f} "
            f"| {m.familywise:.3f} | {m.unadjusted:.3f} |"
            if many
            else f"| {scenario.label} | {scenario.seeds} x {scenario.examples} "
            f"| {m.arm_coverage:.3f} | {m.difference_coverage:.3f} | {m.positive:.3f} | | |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
