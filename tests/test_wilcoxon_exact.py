"""The exact Wilcoxon signed-rank p-value and the numpy row ranks, against scipy.

``wilcoxon_signed_rank_test`` computes the exact two-sided p-value (n <= 50, no ties or zeros)
from cached subset counts instead of ``scipy.stats.wilcoxon``; every term is an integer over
``2^n``, so the values must be bit-identical to scipy's. ``rank_rows`` replaces
``scipy.stats.rankdata(axis=1, nan_policy="omit")`` in the rank tests.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from crackdown.inference.base import rank_rows
from crackdown.inference.nonparametric import (
    _wilcoxon_cumulative_counts,
    wilcoxon_exact_pvalue,
    wilcoxon_signed_rank_test,
)


def _scipy_p(x) -> float:
    return float(stats.wilcoxon(x, zero_method="wilcox", correction=False,
                                alternative="two-sided", method="exact").pvalue)


def _sample_with_w_plus(n: int, w: int) -> np.ndarray:
    """Untied values ±1..±n whose positive ranks sum to ``w`` (greedy from the top rank)."""
    positive, rest = set(), w
    for r in range(n, 0, -1):
        if r <= rest:
            positive.add(r)
            rest -= r
    assert rest == 0
    return np.array([r if r in positive else -r for r in range(1, n + 1)], dtype=float)


def test_counts_by_brute_force():
    """C[w] = #{subsets of {1..n} with sum <= w}, enumerated for n <= 10."""
    for n in range(11):
        sums = [sum(c) for k in range(n + 1) for c in itertools.combinations(range(1, n + 1), k)]
        expected = np.cumsum(np.bincount(sums, minlength=n * (n + 1) // 2 + 1))
        np.testing.assert_array_equal(_wilcoxon_cumulative_counts(n), expected)


def test_counts_known_answers():
    # n = 3: subset sums 0,1,2,3,3,4,5,6 -> counts 1,1,1,2,1,1,1
    assert _wilcoxon_cumulative_counts(3).tolist() == [1, 2, 3, 5, 6, 7, 8]
    assert int(_wilcoxon_cumulative_counts(50)[-1]) == 2**50
    with pytest.raises(Exception, match="n <= 50"):
        _wilcoxon_cumulative_counts(51)


@pytest.mark.parametrize("n", range(1, 51))
def test_exact_pvalue_bit_identical_to_scipy_for_every_n(n):
    """Every n in 1..50 at W+ = 0, 1, the middle, the top and a spread of values between."""
    top = n * (n + 1) // 2
    ws = sorted({0, 1, 2, top // 4, top // 2, (top + 1) // 2, 3 * top // 4, top - 1, top}
                & set(range(top + 1)))
    for w in ws:
        x = _sample_with_w_plus(n, w)
        assert wilcoxon_exact_pvalue(float(w), n) == _scipy_p(x), (n, w)
        res = wilcoxon_signed_rank_test(x[:, None])
        assert res.statistic == float(w) and res.pvalue == _scipy_p(x), (n, w)


def test_every_w_for_small_n():
    for n in range(1, 13):
        for w in range(n * (n + 1) // 2 + 1):
            assert wilcoxon_exact_pvalue(float(w), n) == _scipy_p(_sample_with_w_plus(n, w))


def test_non_integral_statistic_uses_scipys_rounding():
    """Up for the lower tail, down for the upper tail, then 2 x min, clipped at 1."""
    cum = _wilcoxon_cumulative_counts(6)
    total = 2**6
    w = 8.5
    below = cum[9]  # T <= ceil(w)
    above = total - cum[7]  # T >= floor(w)
    assert wilcoxon_exact_pvalue(w, 6) == min(1.0, 2.0 * min(above, below) / total)


_values = st.floats(min_value=-0.2, max_value=0.2, allow_nan=False, width=64)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_values, st.sampled_from([0.0, 0.01, -0.01, 0.02])),
                min_size=1, max_size=60))
def test_battery_wilcoxon_equals_scipy(cars):
    """Random CARs, ties and zeros included: the exact fast path where it applies, scipy's
    normal approximation (zeros dropped, no continuity correction) elsewhere."""
    x = np.asarray(cars)
    res = wilcoxon_signed_rank_test(x[:, None])
    nz = x[x != 0]
    if nz.size == 0:
        assert np.isnan(res.pvalue) and np.isnan(res.statistic)
        return
    ties = np.unique(np.abs(nz)).size < nz.size
    method = "exact" if (nz.size <= 50 and not ties) else "approx"
    expected = float(stats.wilcoxon(nz, zero_method="wilcox", correction=False,
                                    alternative="two-sided", method=method).pvalue)
    ranks = stats.rankdata(np.abs(nz))
    assert res.statistic == float(ranks[nz > 0].sum())
    if method == "exact":
        assert res.pvalue == expected  # bit-identical
    else:
        assert res.pvalue == expected  # scipy itself
    assert res.distribution == ("exact" if method == "exact" else "normal")
    assert res.extra["n_zero_dropped"] == int((x == 0).sum())


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**32 - 1), st.booleans())
def test_rank_rows_equals_scipy_rankdata(n, m, seed, ties):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-3, 4, size=(n, m)).astype(float) if ties
         else rng.standard_normal((n, m)))
    x[rng.random((n, m)) < 0.25] = np.nan
    if seed % 5 == 0:
        x[0] = np.nan  # a row without data
    got = rank_rows(x)
    expected = stats.rankdata(x, axis=1, nan_policy="omit")
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_rank_rows_known_answer():
    x = np.array([[3.0, 1.0, np.nan, 3.0, 2.0]])
    np.testing.assert_array_equal(rank_rows(x), [[3.5, 1.0, np.nan, 3.5, 2.0]])
    assert rank_rows(np.zeros((2, 0))).shape == (2, 0)
