"""Statistics across seeds: the permutation test against brute force, Holm, the effect
sizes, the verdict's three outcomes and its seeds-needed estimate, and, on simulated
studies, coverage of the intervals and the false-positive rate of the verdict.

``python -m tests.analysis.study_simulation`` prints the table in docs/studies.md.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dspex.analysis.studies import (
    ArmScores,
    arm_summaries,
    compare_arms,
    holm,
    permutation_p,
    seeds_needed,
    study_comparisons,
    study_verdict,
)
from dspex.model import VerdictOutcome
from dspex.model.study import CellResult, StudyArm, StudyCell, StudyRecord
from tests.analysis.study_simulation import SCENARIOS, measure


def _brute_p(a, b):
    pooled = [*a, *b]
    observed = abs(np.mean(b) - np.mean(a))
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        mine = [pooled[i] for i in chosen]
        total += 1
        hits += abs(np.mean(rest) - np.mean(mine)) >= observed - 1e-12
    return hits / total


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.5, 0.6, 0.55], [0.8, 0.82, 0.79]),
        ([0.5, 0.6, 0.55, 0.52], [0.8, 0.82, 0.79, 0.85]),
        ([0.1, 0.4, 0.4, 0.2, 0.9], [0.3, 0.3, 0.5]),
        ([0.7, 0.7, 0.7, 0.7], [0.7, 0.7, 0.7, 0.7]),
        ([0.2], [0.4, 0.5, 0.6, 0.3]),
    ],
)
def test_the_permutation_test_counts_every_arrangement(a, b):
    assert permutation_p(a, b) == pytest.approx(_brute_p(a, b))


def test_the_permutation_test_draws_arrangements_when_there_are_too_many():
    rng = np.random.default_rng(5)
    a, b = list(rng.normal(0, 1, 12)), list(rng.normal(0.0, 1, 12))  # C(24, 12) = 2.7 million
    p = permutation_p(a, b, np.random.default_rng(1))
    assert 0 < p <= 1 and p == permutation_p(a, b, np.random.default_rng(1))
    far = permutation_p(a, [x + 5 for x in b], np.random.default_rng(1))
    assert far == pytest.approx(1 / 20_001)  # nothing as extreme: the smallest it reports


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5]) == [0.5]
    assert holm([0.001, 0.9, 0.02, 0.03]) == [0.004, 0.9, 0.06, 0.06]


def test_a_comparison_is_paired_over_examples_and_replicated_over_seeds():
    control = ArmScores("a", np.array([[1, 0, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 0]], float))
    treatment = ArmScores("b", np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 0], [1, 1, 0, 1, 1]], float))
    c = compare_arms(control, treatment)
    assert c.effect == pytest.approx(treatment.values.mean() - control.values.mean())
    assert c.p_value == pytest.approx(0.1)  # 3 vs 3 seeds: 2 of 20 arrangements this extreme
    assert c.p_superiority == 1.0 and c.effect_size is not None and c.effect_size > 2
    assert c.ci_low is not None and c.ci_high is not None and c.ci_low < c.effect < c.ci_high
    assert c.ci_method == "two-way bootstrap over seeds and examples"
    again = compare_arms(control, treatment)
    assert (again.ci_low, again.ci_high) == (c.ci_low, c.ci_high)  # seeded by the data


def test_one_seed_gives_no_interval_and_no_effect_size():
    one = ArmScores("one", np.array([[1, 0, 1, 1]], float))
    many = ArmScores("many", np.array([[1, 1, 1, 1], [0, 1, 1, 1]], float))
    c = compare_arms(one, many)
    assert c.ci_low is None and c.effect_size is None and c.control_seeds == 1


def test_seeds_needed_grows_as_the_effect_shrinks_and_covers_the_test_s_minimum():
    base = compare_arms(
        ArmScores("a", np.array([[0.5], [0.6], [0.55]])),
        ArmScores("b", np.array([[0.58], [0.66], [0.61]])),
    )
    wide = seeds_needed(base, 0.05, 0.05, 0.05)
    narrow = seeds_needed(base.replace(effect=base.effect / 2), 0.05, 0.05, 0.05)
    assert wide is not None and narrow is not None and narrow > 3 * wide
    assert seeds_needed(base, 0.0, 0.0, 0.05) == 4  # no spread: the permutation test's minimum
    assert seeds_needed(base, 0.0, 0.0, 0.05 / 3) == 5
    assert seeds_needed(base.replace(effect=0.0), 0.05, 0.05, 0.05) is None


def _record(scores: dict[str, list[list[float]]], control: str, treatment: str) -> StudyRecord:
    n = len(next(iter(scores.values()))[0])
    cells = []
    for arm, rows in scores.items():
        for seed, row in enumerate(rows):
            result = CellResult(
                experiment_id=f"exp_01JEZ0000000000000000000{len(cells) % 100:02d}",
                score=float(np.mean(row)),
                baseline_score=0.25,
                values=tuple(row),
                baseline_values=tuple([0.25] * n),
                lm_calls=10,
                cost=0.01,
                wall_s=1.5,
            )
            cells.append(StudyCell(arm=arm, seed=seed, status="sealed", result=result))
    return StudyRecord(
        name="s",
        hypothesis="h",
        control=control,
        treatment=treatment,
        arms=tuple(StudyArm(name=a, optimizer="dspy.SIMBA") for a in scores),
        seeds=tuple(range(max(len(r) for r in scores.values()))),
        examples=tuple(f"k{i}" for i in range(n)),
        cells=tuple(cells),
    )


def test_the_verdict_validates_rejects_or_says_how_many_seeds_it_would_need():
    low = [[0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]
    high = [[1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1], [1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    validated = study_verdict(_record({"a": low, "b": high}, "a", "b"), alpha=0.05)
    assert validated is not None and validated.outcome is VerdictOutcome.VALIDATED
    assert validated.comparison.p_value == pytest.approx(2 / 70)
    assert validated.reason.startswith("b vs a: +0.500 (95% CI") and "b beats a" in validated.reason
    assert validated.correction == "none (one comparison)" and validated.seeds_needed is None
    rejected = study_verdict(_record({"a": low, "b": high}, "b", "a"), alpha=0.05)
    assert rejected is not None and rejected.outcome is VerdictOutcome.REJECTED
    close = [[1, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 1]]
    unclear = study_verdict(_record({"a": low, "b": close}, "a", "b"), alpha=0.05)
    assert unclear is not None and unclear.outcome is VerdictOutcome.INCONCLUSIVE
    assert unclear.seeds_needed is not None and unclear.seeds_needed > 4
    assert f"about {unclear.seeds_needed} seeds per arm" in unclear.reason


def test_with_three_arms_p_values_are_holm_adjusted_and_the_verdict_says_so():
    low = [[0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]
    high = [[1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1], [1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    record = _record({"a": low, "b": high, "c": low}, "a", "b")
    comparisons = study_comparisons(record)
    assert [(c.control, c.treatment) for c in comparisons] == [("a", "b"), ("a", "c"), ("c", "b")]
    raw = [c.p_value for c in comparisons]
    assert [c.p_adjusted for c in comparisons] == pytest.approx(holm(raw))
    verdict = study_verdict(record, alpha=0.05)
    assert verdict is not None and verdict.correction == "Holm over 3 comparisons"
    # 2/70 = 0.029 raw, but two comparisons that small, Holm: 0.057 > 0.05
    assert verdict.outcome is VerdictOutcome.INCONCLUSIVE and "Holm-adjusted" in verdict.reason
    assert "the test cannot reach alpha at all; it needs 5" in verdict.reason


def test_arm_summaries_report_scores_spread_baseline_and_spend():
    record = _record({"a": [[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]]}, "", "")
    (summary,) = arm_summaries(record)
    assert summary.mean == pytest.approx(np.mean([0.75, 0.5, 1.0]))
    assert summary.sd == pytest.approx(np.std([0.75, 0.5, 1.0], ddof=1))
    assert (summary.min, summary.max, summary.baseline) == (0.5, 1.0, 0.25)
    assert summary.ci_low is not None and summary.ci_low <= summary.mean <= summary.ci_high
    assert (summary.lm_calls, summary.cost, summary.wall_s) == (30, pytest.approx(0.03), 4.5)
    assert study_verdict(record, alpha=0.05) is None  # one arm: nothing to compare


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [SCENARIOS[1], SCENARIOS[3], SCENARIOS[7]], ids=str)
def test_simulated_coverage_and_false_positives_stay_near_their_nominal_rates(scenario):
    measured = measure(scenario, studies=200, seed=7)
    assert 0.88 <= measured.arm_coverage <= 1.0
    assert 0.88 <= measured.difference_coverage <= 1.0
    # the permutation test is exact: 5% in expectation; 200 studies put 95% of runs below 9%
    assert measured.positive <= 0.09
    if len(scenario.arms) > 2:
        assert measured.familywise <= 0.09  # Holm keeps the chance of any false pair near 5%
        assert measured.familywise <= measured.unadjusted


def test_simulated_power_rises_with_seeds():
    effect = [s for s in SCENARIOS if s.arms == (0.0, 0.6)]
    few, many = (measure(s, studies=60, seed=3).positive for s in effect)
    assert many > few
    assert not math.isnan(many)
