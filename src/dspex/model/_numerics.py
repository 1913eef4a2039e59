"""The statistics dspex computes when it seals a record, in plain Python.

Verdicts and intervals are computed whenever an experiment is sealed and whenever a view
shows one, so they belong to the core install, which carries neither numpy nor scipy
(numpy alone would double its size). Every function here computes what the scipy
function named in its docstring computes, and ``tests/model/test_numerics.py`` checks
each against scipy on generated data: the deterministic ones to 1e-9, the bootstrap
within its Monte Carlo error (it draws its resamples from :class:`random.Random`, so a
seed gives the same interval on every install).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from statistics import NormalDist

__all__ = [
    "binom_two_sided_p",
    "bootstrap_mean_bca",
    "normal_ppf",
    "normal_sf",
    "percentile",
    "rankdata",
    "t_ppf",
    "wilcoxon_signed_rank",
]

_NORMAL = NormalDist()


def normal_ppf(q: float) -> float:
    """The standard normal quantile (``scipy.special.ndtri``)."""
    return _NORMAL.inv_cdf(q)


def normal_sf(z: float) -> float:
    """``P(Z > z)`` for a standard normal, precise far into the tail (``ndtr(-z)``)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def binom_two_sided_p(k: int, n: int) -> float:
    """Two-sided p-value of ``k`` successes in ``n`` trials under p = 1/2, exactly
    (``scipy.stats.binomtest(k, n, 0.5).pvalue``): twice the smaller tail."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got {k} of {n}")
    if 2 * k == n:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return min(1.0, float(Fraction(2 * tail, 2**n)))


def rankdata(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given their average rank (``scipy.stats.rankdata``)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def wilcoxon_signed_rank(differences: Sequence[float]) -> tuple[float, float]:
    """(statistic, two-sided p-value) of the Wilcoxon signed-rank test of ``differences``,
    as ``scipy.stats.wilcoxon(differences)`` computes them (zeros dropped, no continuity
    correction): the exact distribution for at most 50 differences without ties or
    zeros; with ties or zeros, every sign flip enumerated up to 13 differences, the normal
    approximation with the tie correction beyond. The statistic is the smaller of the
    positive and negative rank sums."""
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        raise ValueError("every difference is zero: the test is undefined")
    ranks = rankdata([abs(d) for d in nonzero])
    r_plus = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    r_minus = sum(r for r, d in zip(ranks, nonzero, strict=True) if d < 0)
    statistic = min(r_plus, r_minus)
    zeros = len(differences) - len(nonzero)
    ties = len(set(ranks)) < len(ranks)
    if len(differences) <= 50 and not ties and not zeros:
        return statistic, _exact_signed_rank_p(len(nonzero), int(r_plus))
    if len(differences) <= 13:
        return statistic, _sign_flip_p(ranks, r_plus)
    return statistic, _normal_signed_rank_p(ranks, r_plus)


def _subset_sum_counts(weights: Sequence[int]) -> list[int]:
    """counts[s] = how many subsets of ``weights`` sum to s."""
    counts = [1] + [0] * sum(weights)
    top = 0
    for w in weights:
        top += w
        for s in range(top, w - 1, -1):
            counts[s] += counts[s - w]
    return counts


def _exact_signed_rank_p(n: int, r_plus: int) -> float:
    counts = _subset_sum_counts(range(1, n + 1))
    total = 2**n
    below = sum(counts[: r_plus + 1])  # P(T <= r_plus)
    above = sum(counts[r_plus:])  # P(T >= r_plus)
    return min(1.0, float(Fraction(2 * min(below, above), total)))


def _sign_flip_p(ranks: Sequence[float], r_plus: float) -> float:
    """Every assignment of signs to the ranks (average ranks are halves: doubled to
    integers, so that the comparison is exact)."""
    doubled = [round(2 * r) for r in ranks]
    counts = _subset_sum_counts(doubled)
    observed = round(2 * r_plus)
    total = 2 ** len(ranks)
    below = sum(counts[: observed + 1])
    above = sum(counts[observed:])
    return min(1.0, float(Fraction(2 * min(below, above), total)))


def _normal_signed_rank_p(ranks: Sequence[float], r_plus: float) -> float:
    n = len(ranks)
    mean = n * (n + 1) / 4
    groups: dict[float, int] = {}
    for r in ranks:
        groups[r] = groups.get(r, 0) + 1
    tie_term = sum(t**3 - t for t in groups.values())
    se = math.sqrt((n * (n + 1) * (2 * n + 1) - tie_term / 2) / 24)
    z = (r_plus - mean) / se
    return min(1.0, 2 * normal_sf(abs(z)))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, interpolated linearly between
    neighbours (``numpy.percentile``'s default)."""
    h = (len(ordered) - 1) * q / 100
    low = math.floor(h)
    if low >= len(ordered) - 1:
        return float(ordered[-1])
    return float(ordered[low] + (h - low) * (ordered[low + 1] - ordered[low]))


def bootstrap_mean_bca(
    values: Sequence[float], *, confidence: float, seed: int, resamples: int
) -> tuple[float, float, str]:
    """(low, high, method) of a seeded bootstrap interval for the mean of ``values``: BCa
    (bias-corrected and accelerated, Efron 1987, as ``scipy.stats.bootstrap`` computes
    it), the percentile interval where BCa is undefined."""
    data = [float(v) for v in values]
    n = len(data)
    draw = random.Random(seed).choices
    means = sorted(sum(draw(data, k=n)) / n for _ in range(resamples))
    alpha = (1 - confidence) / 2
    try:
        bca = _bca_levels(data, means, alpha)
    except (ZeroDivisionError, OverflowError, ValueError):  # extreme values: no BCa
        bca = None
    if bca is not None:
        low, high = percentile(means, bca[0] * 100), percentile(means, bca[1] * 100)
        if math.isfinite(low) and math.isfinite(high):
            return low, high, "bootstrap BCa"
    return (
        percentile(means, alpha * 100),
        percentile(means, (1 - alpha) * 100),
        ("bootstrap percentile"),
    )


def _bca_levels(
    data: Sequence[float], means: Sequence[float], alpha: float
) -> tuple[float, float] | None:
    """The percentile levels BCa reads the bootstrap distribution at; None when the bias
    correction or the acceleration is undefined (every resample on one side, no spread)."""
    n = len(data)
    estimate = sum(data) / n
    below = sum(1 for m in means if m < estimate)
    at_or_below = sum(1 for m in means if m <= estimate)
    share = (below + at_or_below) / (2 * len(means))
    if not 0 < share < 1:
        return None
    z0 = normal_ppf(share)
    total = sum(data)
    jackknife = [(total - x) / (n - 1) for x in data] if n > 1 else []
    if not jackknife:
        return None
    centre = sum(jackknife) / n
    spread = sum((centre - j) ** 2 for j in jackknife)
    scale = 6 * spread**1.5
    if not 0 < scale < math.inf:  # no spread, or one too small or large for a float
        return None
    acceleration = sum((centre - j) ** 3 for j in jackknife) / scale
    if not math.isfinite(acceleration):
        return None
    levels = []
    for z in (normal_ppf(alpha), -normal_ppf(alpha)):
        shifted = z0 + z
        denominator = 1 - acceleration * shifted
        if denominator == 0:
            return None
        levels.append(1 - normal_sf(z0 + shifted / denominator))
    return levels[0], levels[1]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
        + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom, t >= 0."""
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))


def t_ppf(q: float, df: float) -> float:
    """Student's t quantile (``scipy.stats.t.ppf``) for 0.5 <= q < 1, by bisection on
    the distribution function to machine precision."""
    if not 0.5 <= q < 1:
        raise ValueError(f"t_ppf takes 0.5 <= q < 1, not {q}")
    target = 1 - q
    low, high = 0.0, 1.0
    while _t_sf(high, df) > target:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if _t_sf(middle, df) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2
