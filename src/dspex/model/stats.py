"""Summary statistics of an experiment: per-metric spread, latency percentiles, totals.

The confidence interval of a mean suits the metric (see :mod:`dspex.model.intervals`):
Wilson for 0/1 metrics, a seeded bootstrap for metrics in [0, 1], Student's t otherwise;
``ci_method`` names it. Percentiles interpolate linearly between closest ranks (numpy's
default method).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from pydantic import Field

from dspex.model._base import Record
from dspex.model.intervals import mean_interval
from dspex.model.trial import MetricKind, ScoreScope

__all__ = ["LatencyStats", "MetricStats", "Statistics", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; values need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class MetricStats(Record):
    """Spread of one metric's values, with a 95% confidence interval of the mean.

    ``ci_method`` names the interval (``Wilson score``, ``bootstrap BCa``, ``Student's t``);
    None in records written before intervals suited the metric, whose bounds are
    Student's t. ``ci95_low``/``ci95_high`` are None when no interval is defined
    (one value of an unbounded metric).

    Non-finite values (NaN, +inf, -inf: a metric that divided by zero) cannot be averaged;
    they are left out and counted in ``non_finite``, and ``n`` counts the others::

        >>> stats = MetricStats.of([1.0, float("nan"), 0.0, float("inf")])
        >>> stats.n, stats.mean, stats.non_finite
        (2, 0.5, 2)
    """

    n: int = Field(ge=0)
    mean: float
    std: float
    min: float
    max: float
    median: float
    ci95_low: float | None
    ci95_high: float | None
    ci_method: str | None = None
    non_finite: int = Field(default=0, ge=0)

    @classmethod
    def of(
        cls, values: Iterable[float], kind: MetricKind | None = None, *, seed: int = 0
    ) -> MetricStats:
        """Statistics of the finite ``values``; ``kind`` (default: read from the values)
        picks the interval. ValueError when no value is finite."""
        given = [float(v) for v in values]
        data = [v for v in given if math.isfinite(v)]
        if not data:
            raise ValueError(f"no finite values to summarize ({len(given)} given)")
        interval = mean_interval(data, kind, seed=seed)
        return cls(
            n=len(data),
            mean=statistics.fmean(data),
            std=statistics.stdev(data) if len(data) > 1 else 0.0,
            min=min(data),
            max=max(data),
            median=statistics.median(data),
            ci95_low=interval.low,
            ci95_high=interval.high,
            ci_method=interval.method,
            non_finite=len(given) - len(data),
        )

    @classmethod
    def of_any(cls, values: Iterable[float], kind: MetricKind | None = None) -> MetricStats | None:
        """:meth:`of`, or None when no value is finite."""
        data = [float(v) for v in values]
        return cls.of(data, kind) if any(math.isfinite(v) for v in data) else None


class LatencyStats(Record):
    """Latency percentiles in milliseconds."""

    n: int = Field(ge=0)
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Iterable[float]) -> LatencyStats:
        data = [float(v) for v in values if math.isfinite(v)]
        if not data:
            raise ValueError("no latencies to summarize")
        return cls(
            n=len(data),
            p50=percentile(data, 50),
            p95=percentile(data, 95),
            p99=percentile(data, 99),
        )


class Statistics(Record):
    """An experiment's summary.

    ``metrics`` summarizes each metric over the example results of the reported
    trial (the best one, or the only one of an evaluation); ``scope`` is the example set
    that trial was scored on, and ``trial_scores`` summarizes the scores of the trials
    scored on that same set (None in older records: every scored trial). Latency and
    totals cover every example result of every trial.
    """

    metrics: dict[str, MetricStats] = Field(default_factory=dict)
    trial_scores: MetricStats | None = None
    scope: ScoreScope | None = None
    latency_ms: LatencyStats | None = None
    total_tokens: int = Field(default=0, ge=0)
    total_cost: float = Field(default=0.0, ge=0)
    trial_count: int = Field(default=0, ge=0)
    example_count: int = Field(default=0, ge=0)
    error_count: int = Field(default=0, ge=0)
