"""dspex's plain-Python statistics give what scipy gives, on generated data."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from dspex.model import _numerics as nx

small_counts = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(small_counts)
def test_binomial_p_is_scipy_s(kn):
    k, n = kn
    assert nx.binom_two_sided_p(k, n) == pytest.approx(
        scipy.stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300
    )


@given(st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=40))
def test_ranks_are_scipy_s(values):
    assert nx.rankdata(values) == list(scipy.stats.rankdata(values))


differences = st.lists(
    st.one_of(
        st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0]),  # ties and zeros
        st.floats(min_value=-1, max_value=1, allow_nan=False),
    ),
    min_size=1,
    max_size=80,
).filter(any)


@settings(max_examples=120, deadline=None)
@given(differences)
def test_wilcoxon_is_scipy_s(values):
    statistic, p = nx.wilcoxon_signed_rank(values)
    expected = scipy.stats.wilcoxon(values)
    assert statistic == pytest.approx(float(expected.statistic), rel=1e-12)
    assert p == pytest.approx(float(expected.pvalue), rel=1e-7, abs=1e-300)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 9, 30, 200, 5000])
@pytest.mark.parametrize("q", [0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9999])
def test_t_quantile_is_scipy_s(q, df):
    assert nx.t_ppf(q, df) == pytest.approx(scipy.stats.t.ppf(q, df), rel=1e-9, abs=1e-12)


def test_percentile_is_numpy_s():
    rng = random.Random(1)
    values = sorted(rng.random() for _ in range(37))
    for q in (0, 2.5, 25, 50, 97.5, 100):
        assert nx.percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)


@pytest.mark.parametrize("n", [8, 30, 120])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bca_interval_agrees_with_scipy_s_within_monte_carlo_error(n, seed):
    rng = random.Random(100 + seed)
    values = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(n)]
    low, high, method = nx.bootstrap_mean_bca(values, confidence=0.95, seed=seed, resamples=20000)
    expected = scipy.stats.bootstrap(
        (np.asarray(values),), np.mean, confidence_level=0.95, n_resamples=20000,
        method="BCa", rng=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    assert method == "bootstrap BCa"
    width = expected.high - expected.low
    assert abs(low - expected.low) < 0.05 * width + 0.01
    assert abs(high - expected.high) < 0.05 * width + 0.01


def test_the_bootstrap_is_seeded_and_covers_the_mean():
    values = [0.03, 0.31, 0.97, 0.52, 0.74, 0.99, 0.08, 0.47]
    first = nx.bootstrap_mean_bca(values, confidence=0.95, seed=7, resamples=2000)
    assert first == nx.bootstrap_mean_bca(values, confidence=0.95, seed=7, resamples=2000)
    assert first != nx.bootstrap_mean_bca(values, confidence=0.95, seed=8, resamples=2000)
    assert first[0] < sum(values) / len(values) < first[1]


def test_normal_tail_is_precise_far_out():
    assert nx.normal_sf(10) == pytest.approx(scipy.stats.norm.sf(10), rel=1e-12)
    assert math.isclose(nx.normal_ppf(0.975), scipy.stats.norm.ppf(0.975), rel_tol=1e-12)
