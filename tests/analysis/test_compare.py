"""Paired comparisons, checked against scipy's own tests on fixed data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import dspex
from dspex import NotComparableError, new_id
from dspex.analysis import compare_experiments, settings_diff
from dspex.model import OptimizerInfo
from tests.model.scored import demo_like, dev, experiment_of, scored_trial

A = [1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0]
B = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1]


def _pair(a, b, **kw):
    exp_id = new_id("exp")
    return scored_trial(exp_id, 0, a, **kw), scored_trial(exp_id, 1, b, **kw)


def test_binary_comparison_is_an_exact_mcnemar_test():
    a, b = _pair(A, B)
    c = dspex.compare(a, b)
    wins = sum(1 for x, y in zip(A, B, strict=True) if y > x)
    losses = sum(1 for x, y in zip(A, B, strict=True) if y < x)
    assert (c.wins, c.losses, c.ties, c.n) == (wins, losses, 20 - wins - losses, 20)
    assert c.test == "exact McNemar"
    assert c.p_value == pytest.approx(scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue)
    # 8 wins, 1 loss: twice the chance of at most 1 of 9 fair coin flips, (1 + 9) / 2**8
    assert (wins, losses) == (8, 1) and c.p_value == pytest.approx(10 / 2**8)
    assert c.difference == pytest.approx(np.mean(B) - np.mean(A))
    assert c.effect_size == pytest.approx((wins - losses) / (wins + losses))


def test_the_difference_interval_agrees_with_scipys_paired_bootstrap():
    a, b = _pair(A, B)
    c = dspex.compare(a, b, seed=11, resamples=3000)
    expected = scipy.stats.bootstrap(
        (np.array(A, float), np.array(B, float)),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        paired=True,
        n_resamples=3000,
        method="BCa",
        rng=np.random.default_rng(11),
    ).confidence_interval
    # other random draws (dspex's own, the same on every install): close, not equal
    assert (c.interval.low, c.interval.high) == pytest.approx(
        (expected.low, expected.high), abs=0.03
    )
    assert c.interval.method == "paired bootstrap BCa"
    assert c.interval.low <= c.difference <= c.interval.high


def test_a_bounded_metric_is_compared_with_wilcoxon_signed_rank():
    values_a = [0.2, 0.5, 0.4, 0.9, 0.3, 0.6, 0.5, 0.7, 0.1, 0.4, 0.5, 0.8]
    values_b = [0.6, 0.7, 0.4, 0.8, 0.8, 0.9, 0.7, 0.9, 0.3, 0.5, 0.9, 0.85]
    a, b = _pair(values_a, values_b)
    c = dspex.compare(a, b)
    expected = scipy.stats.wilcoxon(np.array(values_b) - np.array(values_a))
    assert c.test == "Wilcoxon signed-rank"
    assert (c.statistic, c.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert c.ties == 1 and c.losses == 1 and c.wins == 10
    assert 0 < c.effect_size <= 1


def test_flips_come_first_and_failed_examples_count_as_zero():
    a, b = _pair([1, 1, 1, 0], [1, 1, 1, 1], failed=[])
    c = dspex.compare(a, b)
    assert [p.a.index for p in c.ordered_pairs()] == [3, 0, 1, 2]
    exp_id = new_id("exp")
    broken = scored_trial(exp_id, 2, [1, 1, 1, 1], failed=[0])
    assert dspex.compare(a, broken).flips[0].value_b == 0.0


def test_identical_trials_differ_nowhere():
    a, b = _pair([1, 0, 1], [1, 0, 1])
    c = dspex.compare(a, b)
    assert (c.p_value, c.difference, c.effect_size, c.flips) == (1.0, 0.0, None, ())
    assert (c.interval.low, c.interval.high) == (0.0, 0.0)


def test_examples_pair_by_content_not_by_position():
    exp_id = new_id("exp")
    examples = dev(4)
    a = scored_trial(exp_id, 0, [1, 0, 0, 0], examples=examples)
    b = scored_trial(exp_id, 1, [0, 0, 0, 1], examples=list(reversed(examples)))
    c = dspex.compare(a, b)
    assert c.ties == 4  # the same example scored 1 by both, listed at different positions


@pytest.mark.parametrize(
    ("other", "named"),
    [
        ({"examples": dev(8, offset=40), "scope": "minibatch"}, "different example sets"),
        ({"metric": "f1"}, "different metrics"),
    ],
)
def test_trials_on_different_examples_or_metrics_are_refused(other, named):
    exp_id = new_id("exp")
    a = scored_trial(exp_id, 0, [1] * 8)
    b = scored_trial(exp_id, 1, [1] * 8, **other)
    with pytest.raises(NotComparableError) as caught:
        dspex.compare(a, b)
    message = str(caught.value)
    assert named in message and a.id in message and b.id in message
    assert "exp.evaluate" in message


def test_a_trial_without_example_results_is_refused():
    exp_id = new_id("exp")
    a = scored_trial(exp_id, 0, [1, 0])
    empty = a.replace(id=new_id("trl"), example_results=())
    with pytest.raises(NotComparableError, match="no score over recorded examples"):
        dspex.compare(a, empty)
    with pytest.raises(NotComparableError, match="two dspex.Trial records"):
        dspex.compare(a, "trl_x")  # type: ignore[arg-type]


def test_two_experiments_compare_their_best_trials_on_the_shared_set():
    first, second = demo_like(), demo_like()
    second = second.replace(optimizer=OptimizerInfo(name="SIMBA", settings={"max_steps": 8}))
    result = compare_experiments(first, second)
    assert result.scope.name == "dev"
    assert result.best_a == first.trials[3] and result.best_b == second.trials[3]
    assert result.comparison.n == 20
    assert [d.key for d in result.settings] == ["optimizer", "optimizer.settings.max_steps"]
    assert settings_diff(first, first) == ()


def test_experiments_without_a_shared_set_are_refused():
    a_id, b_id = new_id("exp"), new_id("exp")
    a = experiment_of([scored_trial(a_id, 0, [1, 0])], a_id)
    b = experiment_of([scored_trial(b_id, 0, [1, 0], examples=dev(2, offset=9))], b_id)
    with pytest.raises(NotComparableError, match="no trial on the same examples"):
        compare_experiments(a, b)
