"""Summary statistics of an experiment: per-metric spread, latency percentiles, totals.

The confidence interval is Student's t interval for the mean (two-sided, 95%);
percentiles interpolate linearly between closest ranks (numpy's default method).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from pydantic import Field

from dspex.model._base import Record

__all__ = ["LatencyStats", "MetricStats", "Statistics", "percentile", "t_critical_95"]

# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_critical_95(dof: int) -> float:
    """Two-sided 95% critical value of Student's t with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if dof <= len(_T95):
        return _T95[dof - 1]
    # Cornish-Fisher expansion around the normal quantile; accurate to 1e-3 beyond 30.
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


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
    """Spread of one metric's values.

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
    ci95_low: float
    ci95_high: float
    non_finite: int = Field(default=0, ge=0)

    @classmethod
    def of(cls, values: Iterable[float]) -> MetricStats:
        """The spread of the finite ``values``; ValueError when there is none."""
        given = [float(v) for v in values]
        data = [v for v in given if math.isfinite(v)]
        if not data:
            raise ValueError(f"no finite values to summarize ({len(given)} given)")
        mean = statistics.fmean(data)
        std = statistics.stdev(data) if len(data) > 1 else 0.0
        half = t_critical_95(len(data) - 1) * std / math.sqrt(len(data)) if len(data) > 1 else 0.0
        return cls(
            n=len(data),
            mean=mean,
            std=std,
            min=min(data),
            max=max(data),
            median=statistics.median(data),
            ci95_low=mean - half,
            ci95_high=mean + half,
            non_finite=len(given) - len(data),
        )

    @classmethod
    def of_any(cls, values: Iterable[float]) -> MetricStats | None:
        """:meth:`of`, or None when no value is finite."""
        data = list(values)
        return cls.of(data) if any(math.isfinite(v) for v in data) else None


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
    trial (the best one, or the only one of an evaluation); ``trial_scores``
    summarizes the scores of every scored trial; latency and totals cover every
    example result of every trial.
    """

    metrics: dict[str, MetricStats] = Field(default_factory=dict)
    trial_scores: MetricStats | None = None
    latency_ms: LatencyStats | None = None
    total_tokens: int = Field(default=0, ge=0)
    total_cost: float = Field(default=0.0, ge=0)
    trial_count: int = Field(default=0, ge=0)
    example_count: int = Field(default=0, ge=0)
    error_count: int = Field(default=0, ge=0)
