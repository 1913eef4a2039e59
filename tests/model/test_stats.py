"""Summary statistics against values computed by hand and by the standard library."""

from __future__ import annotations

import math
import statistics

import pytest

from dspex import ExampleResult, Trial, new_id, utc_now
from dspex.model import LatencyStats, MetricStats, best_trial_of, summarize
from dspex.model.stats import percentile, t_critical_95


def test_metric_stats_of_known_values():
    stats = MetricStats.of([1.0, 0.0, 1.0, 1.0])
    assert stats.mean == 0.75
    assert stats.median == 1.0
    assert stats.std == pytest.approx(statistics.stdev([1, 0, 1, 1]))
    half = 3.182 * stats.std / 2
    assert (stats.ci95_low, stats.ci95_high) == pytest.approx((0.75 - half, 0.75 + half))


def test_single_value_has_zero_width_interval():
    stats = MetricStats.of([0.5])
    assert (stats.std, stats.ci95_low, stats.ci95_high) == (0.0, 0.5, 0.5)


def test_t_critical_values_approach_the_normal_quantile():
    assert t_critical_95(1) == 12.706
    assert t_critical_95(31) == pytest.approx(2.040, abs=2e-3)
    assert t_critical_95(1000) == pytest.approx(1.962, abs=1e-3)


def test_percentiles_interpolate_like_numpy():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)
    assert LatencyStats.of(values).p99 == pytest.approx(39.7)


def test_summarize_uses_the_best_trial_for_metric_spread():
    exp_id = new_id("exp")

    def trial(index, score, values):
        results = tuple(
            ExampleResult(index=i, metrics={"accuracy": v}, latency_ms=10.0 * (i + 1), tokens=5)
            for i, v in enumerate(values)
        )
        return Trial(
            experiment_id=exp_id,
            index=index,
            started_at=utc_now(),
            score=score,
            example_results=results,
        )

    trials = [trial(0, 0.5, [1.0, 0.0]), trial(1, 1.0, [1.0, 1.0])]
    summary = summarize(trials)
    assert summary.metrics["accuracy"].mean == 1.0
    assert summary.trial_scores is not None and summary.trial_scores.mean == 0.75
    assert summary.total_tokens == 20
    assert summary.example_count == 4
    assert summary.latency_ms is not None and summary.latency_ms.p50 == 15.0
    assert not math.isnan(summary.total_cost)


def test_non_finite_values_are_left_out_and_counted():
    stats = MetricStats.of([1.0, math.nan, 0.0, math.inf, -math.inf])
    assert (stats.n, stats.mean, stats.non_finite) == (2, 0.5, 3)
    assert math.isfinite(stats.ci95_low) and math.isfinite(stats.ci95_high)
    assert MetricStats.of_any([math.nan, math.inf]) is None
    with pytest.raises(ValueError, match="no finite values"):
        MetricStats.of([math.nan])
    assert LatencyStats.of([10.0, math.inf, 20.0]).n == 2


def test_summarize_and_the_best_trial_ignore_non_finite_scores():
    exp_id = new_id("exp")
    trials = [
        Trial(experiment_id=exp_id, index=i, started_at=utc_now(), score=score,
              example_results=(ExampleResult(index=0, metrics={"m": score}),))
        for i, score in enumerate([math.inf, 0.25, math.nan, -math.inf, 0.5])
    ]  # fmt: skip
    best = best_trial_of(trials)
    assert best is not None and best.score == 0.5
    summary = summarize(trials)
    assert summary.trial_scores is not None
    assert (summary.trial_scores.n, summary.trial_scores.non_finite) == (2, 3)
    assert summary.metrics["m"].mean == 0.5
    only_nan = summarize([trials[2]], trials[2])
    assert only_nan.trial_scores is None and only_nan.metrics == {}
    assert best_trial_of([trials[0], trials[2]]) is None
