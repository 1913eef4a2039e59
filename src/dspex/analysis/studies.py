"""Statistics across seeds: each arm of a study summarized, arms compared, the verdict.

A study runs each arm (an optimizer with its options) at several seeds, and evaluates
every optimized program on one shared evaluation set. The **seed** is the unit of
replication: a fresh seed gives a different program, and the question is whether one
arm beats another on a fresh seed, not on one lucky run. The examples are **shared**:
every cell scored the same examples, so a hard example is hard for every arm and its
difficulty cancels out of the differences.

* Per arm: the mean of its per-seed scores, their spread, min and max, and a
  **two-way bootstrap** interval (seeds and examples resampled, 4,000 resamples, seeded).
* Between two arms: the difference of their means with a two-way bootstrap interval
  (seeds resampled within each arm; examples resampled once for both arms, which keeps
  them paired); an **exact permutation test over seeds** (arm labels shuffled among the
  per-seed scores; every arrangement when there are at most 50,000, else 20,000 drawn);
  **Hedges' g** over per-seed scores; the **probability of superiority**, that the
  treatment scores higher than the control on a fresh seed of each (ties count half).
* With more than two arms every pair is compared and the p-values are adjusted by
  **Holm**'s step-down method.
* The verdict: validated when the treatment beats the control at ``analysis.alpha``
  (adjusted p), rejected when the control beats it, else inconclusive, with roughly how
  many seeds per arm would detect the observed difference.

Only numpy and the standard library are used (see docs/studies.md for coverage and
false-positive rates measured by simulation)::

    >>> import numpy as np
    >>> a = ArmScores("mipro", np.array([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]], float))
    >>> b = ArmScores("simba", np.array([[1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 0, 1]], float))
    >>> c = compare_arms(a, b)
    >>> round(c.effect, 3), round(c.p_value, 2), c.p_superiority
    (0.417, 0.1, 1.0)
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from dspex.errors import AnalysisError
from dspex.formatting import format_p
from dspex.model import VerdictOutcome
from dspex.model.study import (
    ArmComparison,
    CellStatus,
    StudyRecord,
    StudyVerdict,
)

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CI_METHOD",
    "TEST",
    "ArmScores",
    "ArmSummary",
    "arm_scores",
    "arm_summaries",
    "cell_rows",
    "compare_arms",
    "holm",
    "permutation_p",
    "seeds_needed",
    "study_comparisons",
    "study_verdict",
    "summarize_arm",
]

BOOTSTRAP_RESAMPLES = 4000
CONFIDENCE = 0.95
CI_METHOD = "two-way bootstrap over seeds and examples"
TEST = "permutation test over seeds"
EXACT_LIMIT = 50_000  # arrangements enumerated exactly up to this many
DRAWN = 20_000  # arrangements drawn beyond it
POWER = 0.8
_CHUNK = 500  # bootstrap resamples computed at once (bounds memory at n x 500 floats)


@dataclass(frozen=True)
class ArmScores:
    """One arm's per-example values: a (seeds x examples) matrix, examples in study order."""

    arm: str
    values: Any  # numpy array, shape (seeds, examples)
    baseline: Any = None  # the baseline program's values, same shape, or None

    @property
    def per_seed(self) -> Any:
        return self.values.mean(axis=1)

    @property
    def seeds(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class ArmSummary:
    """An arm across its sealed cells: scores, interval, baseline, cost and time."""

    arm: str
    seeds: int
    mean: float | None
    sd: float | None
    min: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    baseline: float | None
    lm_calls: int
    tokens: int
    cost: float | None
    wall_s: float
    cells: int
    failed: int


def _np() -> Any:
    import numpy

    return numpy


def _rng(*matrices: Any) -> Any:
    """A generator seeded by the data: the same data give the same interval."""
    digest = hashlib.sha256()
    for matrix in matrices:
        digest.update(str(matrix.shape).encode())
        digest.update(_np().ascontiguousarray(matrix, dtype=float).tobytes())
    return _np().random.default_rng(int.from_bytes(digest.digest()[:8], "big"))


def _bootstrap_means(matrices: Sequence[Any], resamples: int, rng: Any) -> list[Any]:
    """Each matrix's mean over resampled seeds (its own rows) and resampled examples
    (one draw of columns shared by every matrix: the examples stay paired)."""
    np = _np()
    n = matrices[0].shape[1]
    out: list[list[Any]] = [[] for _ in matrices]
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        columns = _counts(rng.integers(0, n, (size, n)), n)  # (size, n): draws per example
        for k, matrix in enumerate(matrices):
            m = matrix.shape[0]
            rows = _counts(rng.integers(0, m, (size, m)), m)  # (size, m): draws per seed
            weighted = rows @ matrix  # (size, n): the drawn seeds' values, per example
            out[k].append((weighted * columns).sum(axis=1) / (m * n))
    return [np.concatenate(parts) for parts in out]


def _counts(draws: Any, width: int) -> Any:
    """How often each of ``width`` items was drawn, per row of ``draws``."""
    np = _np()
    size = draws.shape[0]
    flat = (draws + np.arange(size)[:, None] * width).ravel()
    return np.bincount(flat, minlength=size * width).reshape(size, width)


def _interval(samples: Any) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = _np().percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def summarize_arm(scores: ArmScores) -> tuple[float, float | None, float | None, float | None]:
    """(mean, sd of per-seed scores, ci_low, ci_high); no sd or interval from one seed."""
    per_seed = scores.per_seed
    mean = float(per_seed.mean())
    if scores.seeds < 2:
        return mean, None, None, None
    sd = float(per_seed.std(ddof=1))
    rng = _rng(scores.values)
    (means,) = _bootstrap_means([scores.values], BOOTSTRAP_RESAMPLES, rng)
    low, high = _interval(means)
    return mean, sd, low, high


def permutation_p(a: Sequence[float], b: Sequence[float], rng: Any = None) -> float:
    """Two-sided p of "the arms' per-seed scores come from one distribution": the share
    of arrangements of the arm labels whose difference of means is at least as far from
    zero as the observed one (exact up to 50,000 arrangements, else 20,000 drawn).

        >>> permutation_p([0.5, 0.6, 0.55, 0.52], [0.8, 0.82, 0.79, 0.85])
        0.02857142857142857
    """
    np = _np()
    pooled = np.asarray([*a, *b], dtype=float)
    m, total = len(a), len(pooled)
    if m == 0 or m == total:
        return 1.0
    observed = abs(pooled[m:].mean() - pooled[:m].mean())
    tolerance = 1e-12 * max(1.0, abs(observed))
    if math.comb(total, m) <= EXACT_LIMIT:
        groups = np.array(list(itertools.combinations(range(total), m)))
        sums = pooled[groups].sum(axis=1)
        extreme = int((_gap(sums, pooled.sum(), m, total) >= observed - tolerance).sum())
        return extreme / len(groups)
    rng = rng if rng is not None else np.random.default_rng(0)
    drawn = np.argsort(rng.random((DRAWN, total)), axis=1)[:, :m]
    sums = pooled[drawn].sum(axis=1)
    extreme = int((_gap(sums, pooled.sum(), m, total) >= observed - tolerance).sum())
    return (extreme + 1) / (DRAWN + 1)


def _gap(sums: Any, grand: float, m: int, total: int) -> Any:
    return abs((grand - sums) / (total - m) - sums / m)


def _hedges_g(a: Any, b: Any) -> float | None:
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    if pooled <= 0:
        return None
    correction = 1 - 3 / (4 * (na + nb) - 9)
    return float((b.mean() - a.mean()) / math.sqrt(pooled) * correction)


def _superiority(a: Any, b: Any) -> float:
    greater = (b[:, None] > a[None, :]).mean()
    equal = (b[:, None] == a[None, :]).mean()
    return float(greater + equal / 2)


def compare_arms(
    control: ArmScores, treatment: ArmScores, *, p_adjusted: float | None = None
) -> ArmComparison:
    """``treatment`` against ``control`` over the shared examples (see the module docs)."""
    np = _np()
    if control.values.shape[1] != treatment.values.shape[1]:
        raise AnalysisError(
            f"arms {control.arm!r} and {treatment.arm!r} were scored on different numbers of "
            f"examples ({control.values.shape[1]} and {treatment.values.shape[1]}); a study "
            "compares arms over one shared evaluation set"
        )
    a, b = control.per_seed, treatment.per_seed
    effect = float(b.mean() - a.mean())
    low = high = None
    if control.seeds >= 2 and treatment.seeds >= 2:
        rng = _rng(control.values, treatment.values)
        mean_a, mean_b = _bootstrap_means(
            [control.values, treatment.values], BOOTSTRAP_RESAMPLES, rng
        )
        low, high = _interval(mean_b - mean_a)
    p = permutation_p(list(a), list(b), np.random.default_rng(0))
    return ArmComparison(
        control=control.arm,
        treatment=treatment.arm,
        effect=effect,
        ci_low=low,
        ci_high=high,
        ci_method=CI_METHOD if low is not None else "",
        confidence=CONFIDENCE,
        test=TEST,
        p_value=min(1.0, p),
        p_adjusted=min(1.0, p if p_adjusted is None else p_adjusted),
        effect_size=_hedges_g(a, b),
        p_superiority=_superiority(a, b),
        control_seeds=control.seeds,
        treatment_seeds=treatment.seeds,
        n=int(control.values.shape[1]),
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: each p-value as it compares with alpha.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = round(running, 15)
    return adjusted


def seeds_needed(
    comparison: ArmComparison, sd_control: float | None, sd_treatment: float | None, alpha: float
) -> int | None:
    """Roughly how many seeds per arm would detect ``comparison.effect`` with 80% power at
    ``alpha`` (two-sided, normal approximation; at least what the permutation test needs
    to reach ``alpha`` at all). None when the arms do not differ."""
    if comparison.effect == 0:
        return None
    least = _fewest_for_permutation(alpha)
    variance = ((sd_control or 0.0) ** 2 + (sd_treatment or 0.0) ** 2) / 2
    if variance <= 0:
        return least
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(POWER)
    return max(least, math.ceil(2 * z * z * variance / comparison.effect**2) + 1)


def _fewest_for_permutation(alpha: float) -> int:
    """The fewest seeds per arm for which the exact two-sided test can give p < alpha."""
    m = 2
    while 2 / math.comb(2 * m, m) >= alpha:
        m += 1
    return m


# -- over a study's record ----------------------------------------------------------------


def arm_scores(study: StudyRecord) -> dict[str, ArmScores]:
    """Each arm's sealed cells as a matrix (seeds in study order); arms without one are
    left out."""
    np = _np()
    found: dict[str, ArmScores] = {}
    for arm in study.arms:
        cells = [
            c
            for c in study.cells
            if c.arm == arm.name and c.status is CellStatus.SEALED and c.result is not None
        ]
        rows = [c.result.values for c in cells if c.result is not None and c.result.values]
        if not rows:
            continue
        base = [c.result.baseline_values for c in cells if c.result is not None]
        baseline = np.array(base, dtype=float) if all(base) else None
        found[arm.name] = ArmScores(arm.name, np.array(rows, dtype=float), baseline)
    return found


def arm_summaries(study: StudyRecord) -> list[ArmSummary]:
    """Every arm of ``study``, in spec order (arms with no sealed cell have no scores)."""
    scores = arm_scores(study)
    summaries = []
    for arm in study.arms:
        cells = [c for c in study.cells if c.arm == arm.name]
        results = [c.result for c in cells if c.result is not None]
        found = scores.get(arm.name)
        mean = sd = low = high = None
        if found is not None:
            mean, sd, low, high = summarize_arm(found)
        per_seed = found.per_seed if found is not None else None
        costs = [r.cost for r in results if r.cost is not None]
        summaries.append(
            ArmSummary(
                arm=arm.name,
                seeds=found.seeds if found is not None else 0,
                mean=mean,
                sd=sd,
                min=float(per_seed.min()) if per_seed is not None else None,
                max=float(per_seed.max()) if per_seed is not None else None,
                ci_low=low,
                ci_high=high,
                ci_method=CI_METHOD if low is not None else "",
                baseline=_baseline(found),
                lm_calls=sum(r.lm_calls for r in results),
                tokens=sum(r.tokens for r in results),
                cost=sum(costs) if costs else None,
                wall_s=sum(r.wall_s for r in results),
                cells=len(cells),
                failed=sum(1 for c in cells if c.status is CellStatus.FAILED),
            )
        )
    return summaries


def _baseline(scores: ArmScores | None) -> float | None:
    if scores is None or scores.baseline is None:
        return None
    return float(scores.baseline.mean())


def study_comparisons(study: StudyRecord) -> list[ArmComparison]:
    """Every pair of arms with sealed cells (the control of each pair is the arm listed
    first, or the study's control), p-values Holm-adjusted over all pairs."""
    scores = arm_scores(study)
    names = [arm.name for arm in study.arms if arm.name in scores]
    pairs = []
    for first, second in itertools.combinations(names, 2):
        if second == study.control or first == study.treatment:
            first, second = second, first
        pairs.append((first, second))
    raw = [compare_arms(scores[a], scores[b]) for a, b in pairs]
    adjusted = holm([c.p_value for c in raw])
    return [c.replace(p_adjusted=p) for c, p in zip(raw, adjusted, strict=True)]


def study_verdict(study: StudyRecord, alpha: float) -> StudyVerdict | None:
    """The verdict on ``study``'s hypothesis (its treatment beats its control), or None
    when either arm has no sealed cell yet."""
    comparisons = study_comparisons(study)
    pair = next(
        (c for c in comparisons if (c.control, c.treatment) == (study.control, study.treatment)),
        None,
    )
    if pair is None:
        return None
    scores = arm_scores(study)
    sd_a = _sd(scores[pair.control])
    sd_b = _sd(scores[pair.treatment])
    family = max(1, len(comparisons))
    significant = pair.p_adjusted < alpha
    if significant:
        outcome = VerdictOutcome.VALIDATED if pair.effect > 0 else VerdictOutcome.REJECTED
        needed = None
    else:
        outcome = VerdictOutcome.INCONCLUSIVE
        needed = seeds_needed(pair, sd_a, sd_b, alpha / family)
    correction = f"Holm over {family} comparisons" if family > 1 else "none (one comparison)"
    return StudyVerdict(
        outcome=outcome,
        alpha=alpha,
        control=pair.control,
        treatment=pair.treatment,
        comparison=pair,
        comparisons=tuple(comparisons),
        correction=correction,
        reason=_reason(pair, outcome, alpha, family, needed, _missing(study)),
        seeds_needed=needed,
    )


def _sd(scores: ArmScores) -> float | None:
    return float(scores.per_seed.std(ddof=1)) if scores.seeds >= 2 else None


def _missing(study: StudyRecord) -> int:
    return sum(1 for c in study.cells if c.status is not CellStatus.SEALED)


def _reason(
    pair: ArmComparison,
    outcome: VerdictOutcome,
    alpha: float,
    family: int,
    needed: int | None,
    missing: int,
) -> str:
    interval = (
        f" (95% CI {pair.ci_low:+.3f} to {pair.ci_high:+.3f})" if pair.ci_low is not None else ""
    )
    seeds = f"{pair.treatment_seeds} and {pair.control_seeds} seeds"
    p_text = f"p={format_p(pair.p_adjusted)}" + (" Holm-adjusted" if family > 1 else "")
    said = (
        f"{pair.treatment} vs {pair.control}: {pair.effect:+.3f}{interval} over {seeds}, "
        f"{TEST} {p_text}"
    )
    partial = f", with {missing} cells not sealed" if missing else ""
    if outcome is VerdictOutcome.VALIDATED:
        return f"{said} < alpha {alpha:g}: {pair.treatment} beats {pair.control}{partial}."
    if outcome is VerdictOutcome.REJECTED:
        return f"{said} < alpha {alpha:g}: {pair.control} beats {pair.treatment}{partial}."
    if needed is None:
        tail = "; the arms score the same on average, and more seeds are not expected to part them"
    else:
        tail = f"; about {needed} seeds per arm would detect a difference this large"
        fewest = _fewest_for_permutation(alpha / family)
        fewer = min(pair.treatment_seeds, pair.control_seeds)
        if fewer < fewest:
            tail += f" (with {fewer}, the test cannot reach alpha at all; it needs {fewest})"
    return f"{said} >= alpha {alpha:g}{tail}{partial}."


def cell_rows(study: StudyRecord) -> list[dict[str, Any]]:
    """One row per cell: its arm, seed, status, attempts, scores, cost and where it ran."""
    optimizers = {arm.name: arm.optimizer for arm in study.arms}
    rows = []
    for cell in study.cells:
        result = cell.result
        last = cell.attempts[-1] if cell.attempts else None
        score = result.score if result is not None else None
        baseline = result.baseline_score if result is not None else None
        rows.append(
            {
                "study": study.name,
                "arm": cell.arm,
                "optimizer": optimizers.get(cell.arm, ""),
                "seed": cell.seed,
                "status": cell.status.value,
                "attempts": len(cell.attempts),
                "experiment_id": cell.experiment_id,
                "score": score,
                "baseline_score": baseline,
                "gain": score - baseline if score is not None and baseline is not None else None,
                "n": len(result.values) if result is not None else None,
                "lm_calls": result.lm_calls if result is not None else None,
                "tokens": result.tokens if result is not None else None,
                "cost": result.cost if result is not None else None,
                "wall_s": result.wall_s if result is not None else None,
                "trials": result.trials if result is not None else None,
                "worker": last.worker if last is not None else None,
                "host": last.host if last is not None else None,
                "last_cause": last.cause if last is not None and last.cause else None,
            }
        )
    return rows
