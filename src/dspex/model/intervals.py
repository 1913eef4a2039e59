"""Confidence intervals for the mean of a metric, chosen by the values the metric takes.

* **binary** (every value 0 or 1): the Wilson score interval for a proportion;
* **bounded** (values in [0, 1]): a bootstrap interval (BCa, seeded, so that the same data
  always gives the same interval);
* **unbounded**: Student's t interval, the only one of the three that assumes the mean is
  close to normally distributed.

The first two never leave [0, 1]. Every interval names its method, so that a view can
print it next to the numbers. The arithmetic is :mod:`dspex.model._numerics` (plain
Python, checked against scipy in the tests: the core install carries no scipy)::

    >>> ci = mean_interval([1, 0, 1, 1, 0, 1, 1, 1])
    >>> ci.method, round(ci.low, 3), round(ci.high, 3)
    ('Wilson score', 0.409, 0.929)
    >>> mean_interval([0.25, 0.5, 1.0, 0.75], seed=0).method
    'bootstrap BCa'
    >>> mean_interval([3.0]).defined      # one value of an unbounded metric: no interval
    False
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from dspex.model._numerics import bootstrap_mean_bca, normal_ppf, t_ppf
from dspex.model.trial import MetricKind

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CONFIDENCE",
    "Interval",
    "bootstrap_interval",
    "mean_interval",
    "metric_kind",
    "paired_bootstrap_interval",
    "t_interval",
    "wilson_interval",
]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 5000
"""Resamples per bootstrap interval: enough for a stable BCa 95% interval at small n."""


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval; ``low`` and ``high`` are None when it is undefined."""

    low: float | None
    high: float | None
    method: str
    confidence: float = CONFIDENCE

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    def contains(self, value: float) -> bool:
        return self.defined and self.low <= value <= self.high  # type: ignore[operator]

    def describe(self) -> str:
        """``95% CI 0.41 to 0.93, Wilson score`` (3 decimals)."""
        share = f"{self.confidence:.0%}"
        if not self.defined:
            return f"{share} CI undefined ({self.method})"
        return f"{share} CI {self.low:.3f} to {self.high:.3f}, {self.method}"


def metric_kind(values: Sequence[float]) -> MetricKind:
    """What ``values`` look like: all 0/1, all within [0, 1], or anything else."""
    if all(v in (0.0, 1.0) for v in values):
        return MetricKind.BINARY
    if all(0.0 <= v <= 1.0 for v in values):
        return MetricKind.BOUNDED
    return MetricKind.UNBOUNDED


def mean_interval(
    values: Sequence[float],
    kind: MetricKind | str | None = None,
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """The interval for the mean of ``values`` that suits ``kind`` (default: read from values).

    A declared kind the values contradict (a 0.5 under ``binary``) falls back to the kind
    the values show, so that no interval is computed under a false assumption.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("no values: an interval needs at least one")
    seen = metric_kind(data)
    declared = MetricKind(kind) if kind is not None else seen
    if _order(seen) > _order(declared):
        declared = seen
    if declared is MetricKind.BINARY:
        return wilson_interval(int(sum(data)), len(data), confidence=confidence)
    if declared is MetricKind.BOUNDED:
        return bootstrap_interval(data, confidence=confidence, seed=seed, resamples=resamples)
    return t_interval(data, confidence=confidence)


def _order(kind: MetricKind) -> int:
    return {MetricKind.BINARY: 0, MetricKind.BOUNDED: 1, MetricKind.UNBOUNDED: 2}[kind]


def wilson_interval(successes: int, n: int, *, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval for ``successes`` out of ``n`` (inside [0, 1] by construction)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    low, high = _wilson(successes / n, n, confidence)
    return Interval(low, high, "Wilson score", confidence)


def wilson_bound(mean: float, n: int, *, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson interval around ``mean`` for a [0, 1] metric whose values show no spread.

    A bootstrap of identical values is a single point, which would claim certainty that
    n examples cannot give. The variance of a [0, 1] variable with mean p is at most
    p(1 - p), the binomial variance, so the Wilson score interval is a conservative bound.
    """
    low, high = _wilson(mean, n, confidence)
    return Interval(low, high, "Wilson bound", confidence)


def _wilson(mean: float, n: int, confidence: float) -> tuple[float, float]:
    z = normal_ppf(0.5 + confidence / 2)
    centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n))
    return _clip(centre - half), _clip(centre + half)


def bootstrap_interval(
    values: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """Seeded bootstrap interval (BCa; percentile when BCa is undefined) for a [0, 1] mean."""
    data = [float(v) for v in values]
    if max(data) == min(data):
        return wilson_bound(data[0], len(data), confidence=confidence)
    low, high, method = bootstrap_mean_bca(
        data, confidence=confidence, seed=seed, resamples=resamples
    )
    return Interval(_clip(low), _clip(high), method, confidence)


def paired_bootstrap_interval(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """Seeded paired bootstrap interval for the mean of ``b - a`` (examples resampled
    together: the bootstrap of the per-example differences)."""
    if len(a) != len(b) or not len(a):
        raise ValueError("paired values need two sequences of the same, non-zero length")
    differences = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    if max(differences) == min(differences):
        value = differences[0]
        return Interval(value, value, "paired bootstrap (every difference equal)", confidence)
    low, high, method = bootstrap_mean_bca(
        differences, confidence=confidence, seed=seed, resamples=resamples
    )
    return Interval(low, high, "paired " + method, confidence)


def t_interval(values: Sequence[float], *, confidence: float = CONFIDENCE) -> Interval:
    """Student's t interval for the mean; undefined for fewer than two values."""
    data = [float(v) for v in values]
    if len(data) < 2:
        return Interval(None, None, "Student's t needs two values", confidence)
    mean = statistics.fmean(data)
    if max(data) == min(data):
        return Interval(mean, mean, "Student's t", confidence)
    half = t_ppf(0.5 + confidence / 2, len(data) - 1) * statistics.stdev(data)
    half /= math.sqrt(len(data))
    return Interval(mean - half, mean + half, "Student's t", confidence)


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
