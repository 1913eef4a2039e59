"""Summary statistics against values computed by hand, by the standard library and scipy."""

from __future__ import annotations

import math
import statistics

import pytest
import scipy.stats

from dspex import ExampleResult, Trial, new_id, utc_now
from dspex.model import LatencyStats, MetricStats, best_trial_of, summarize
from dspex.model.stats import percentile


def test_metric_stats_of_a_binary_metric_use_the_wilson_interval():
    stats = MetricStats.of([1.0, 0.0, 1.0, 1.0])
    assert stats.mean == 0.75
    assert stats.median == 1.0
    assert stats.std == pytest.approx(statistics.stdev([1, 0, 1, 1]))
    wilson = scipy.stats.binomtest(3, 4).proportion_ci(0.95, method="wilson")
    assert (stats.ci95_low, stats.ci95_high) == pytest.approx((wilson.low, wilson.high))
    assert stats.ci_method == "Wilson score"


def test_a_binary_metric_at_n_8_stays_inside_0_and_1():
    # The example: Student's t gave 0.363 to 1.137 for this 0/1 metric.
    stats = MetricStats.of([1, 1, 1, 0, 1, 1, 0, 1])
    assert stats.ci95_low is not None and stats.ci95_high is not None
    assert 0.0 <= stats.ci95_low < stats.mean < stats.ci95_high <= 1.0


def test_an_unbounded_metric_uses_students_t():
    values = [2.5, -1.0, 4.0, 3.5, 0.5]
    stats = MetricStats.of(values)
    t = scipy.stats.t.interval(0.95, 4, loc=stats.mean, scale=scipy.stats.sem(values))
    assert (stats.ci95_low, stats.ci95_high) == pytest.approx(t)
    assert stats.ci_method == "Student's t"


def test_a_single_value_has_no_false_certainty():
    bounded = MetricStats.of([0.5])
    assert bounded.std == 0.0 and bounded.ci_method == "Wilson bound"
    assert bounded.ci95_low is not None and bounded.ci95_low < 0.5 < (bounded.ci95_high or 0)
    unbounded = MetricStats.of([3.0])
    assert (unbounded.ci95_low, unbounded.ci95_high) == (None, None)


def test_old_records_without_a_method_still_read():
    old = {"n": 8, "mean": 0.75, "std": 0.46, "min": 0.0, "max": 1.0, "median": 1.0,
           "ci95_low": 0.363, "ci95_high": 1.137}  # fmt: skip
    assert MetricStats.from_dict(old).ci_method is None


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
    assert summary.scope is not None and summary.scope.n == 2
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
