"""eventstudies-style event-time alignment and confidence bands: independent checks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from _market import rebuilt_bootstrap
from scipy import stats

import crackdown.inference as inf
from crackdown.errors import StudyConfigError


@pytest.mark.parametrize("n", [1, 3, 6, 9])
def test_psignrank_matches_brute_force_enumeration(n):
    sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s)
            for signs in itertools.product([0, 1], repeat=n)]
    sums = np.array(sums)
    q = np.arange(-1, n * (n + 1) // 2 + 2)
    expected = np.array([(sums <= k).mean() for k in q])
    np.testing.assert_allclose(inf.psignrank(q, n), expected, rtol=1e-14)


def test_classic_interval_matches_scipy_t_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4))
    res = inf.classic_interval(x)
    for j in range(4):
        lo, hi = stats.t.interval(0.95, 7, loc=x[:, j].mean(), scale=stats.sem(x[:, j]))
        assert res.lower[j] == pytest.approx(lo) and res.upper[j] == pytest.approx(hi)
    const = inf.classic_interval(np.zeros((3, 1)))
    assert np.isnan(const.lower[0]) and const.center[0] == 0.0


def test_wilcox_interval_rule_for_larger_n():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 1))
    res = inf.wilcox_interval(x, prob=0.95)
    n, m = 12, 78
    # f = #k in 1..39 with 1 - 2 P(W <= k) >= 0.95, from the brute-force null distribution
    sums = np.array([sum(r for r, s in zip(range(1, n + 1), sg) if s)
                     for sg in itertools.product([0, 1], repeat=n)])
    f = sum(1 - 2 * (sums <= k).mean() >= 0.95 for k in range(1, m // 2 + 1))
    walsh = np.sort([(x[i, 0] + x[j, 0]) / 2 for i in range(n) for j in range(i, n)])
    assert res.lower[0] == walsh[f] and res.upper[0] == walsh[m - f - 1]
    assert res.center[0] == np.median(x[:, 0])
    # n = 3: bounds are min and max
    y = np.array([[1.0], [5.0], [2.0]])
    r3 = inf.wilcox_interval(y)
    assert (r3.lower[0], r3.center[0], r3.upper[0]) == (1.0, 2.0, 5.0)
    with pytest.raises(StudyConfigError, match="NaN"):
        inf.wilcox_interval(np.array([[1.0], [np.nan]]))


def test_bootstrap_interval_matches_a_rebuilt_draw_and_the_nominal_level():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    x[3, 1] = np.nan  # NaN-aware means: the resampled rows' nanmean
    a = inf.bootstrap_interval(x[:, :1], seed=5, n_boot=500)
    lo, hi, _ = rebuilt_bootstrap(x[:, :1], 500, 5)
    np.testing.assert_allclose(a.lower, lo, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a.upper, hi, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a.center, [np.mean(x[:, 0])], rtol=0, atol=1e-15)
    # NaN column: rebuild with the row-wise nanmean of the same resampled indices
    b = inf.bootstrap_interval(x, seed=5, n_boot=500, level=0.9)
    idx = np.random.default_rng(5).integers(0, 40, size=(500, 40))
    means = np.array([np.nanmean(x[row, 1]) for row in idx])
    assert b.lower[1] == pytest.approx(np.quantile(means, 0.05), abs=1e-15)
    assert b.upper[1] == pytest.approx(np.quantile(means, 0.95), abs=1e-15)
    assert b.center[1] == pytest.approx(np.nanmean(x[:, 1]), abs=1e-15)
    # Known answer: the bootstrap distribution of the mean has sd s0/sqrt(n) (s0: ddof=0) and,
    # to order 1/n, skewness g/sqrt(n) (g: sample skewness), so its quantiles are
    # mean + s0/sqrt(n) (z + g (z^2 - 1) / (6 sqrt(n))) (Cornish-Fisher). The Monte Carlo sd of a
    # quantile from B draws is sqrt(p(1-p)/B)/f(q); allow 4 of them plus the O(1/n) remainder
    # of the expansion (0.02 s0 for n = 40).
    n_boot, n = 20000, 40
    c = inf.bootstrap_interval(x[:, :1], seed=11, n_boot=n_boot)
    v = x[:, 0]
    s0 = v.std(ddof=0) / np.sqrt(n)
    g = stats.skew(v)
    z = stats.norm.ppf(0.975)
    mc_sd = np.sqrt(0.975 * 0.025 / n_boot) / stats.norm.pdf(z) * s0
    for sign, bound in ((1, c.upper[0]), (-1, c.lower[0])):
        q = v.mean() + s0 * (sign * z + g * (z**2 - 1) / (6 * np.sqrt(n)))
        assert abs(bound - q) < 4 * mc_sd + 0.02 * s0, (bound, q, mc_sd)
    # a 90% band (z = 1.645) would be 0.3 s0 too narrow on each side: far outside the tolerance
    assert 4 * mc_sd + 0.02 * s0 < 0.3 * s0 / 2


def test_phys_to_event_time_outcomes_and_previous_day_mapping():
    idx = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", "2024-01-08",
                          "2024-01-09"])
    data = pd.DataFrame({"A": [1, 2, 3, 4, 5, 6.0], "B": [1, np.nan, 3, 4, 5, 6.0]}, index=idx)
    events = pd.DataFrame({
        "name": ["A", "A", "B", "C", "A"],  # 2nd event precedes the data
        "when": pd.to_datetime(["2024-01-04", "2023-12-29", "2024-01-03", "2024-01-03",
                                "2024-01-07"]),
    })
    out = inf.phys_to_event_time(data, events, width=1)
    assert out.outcomes.tolist() == ["success", "wrongspan", "success", "unitmissing", "success"]
    # 2024-01-04 is not in the data: day 0 is the previous date 2024-01-03
    assert out.event_dates[0] == pd.Timestamp("2024-01-03")
    assert out.frame.loc[0, 0] == 3.0 and out.frame.loc[1, 0] == 4.0
    # B's missing value sits at event time -1, outside the checked range [0, +1]: kept
    assert np.isnan(out.frame.loc[-1, 2])
    out2 = inf.phys_to_event_time(data, events.iloc[[2]], width=2)
    assert out2.outcomes.tolist() == ["wdatamissing"]


def test_remap_cumsum_base_row():
    f = pd.DataFrame({0: [np.nan, 0.1, 0.2], 1: [0.5, -0.1, 0.3]}, index=[-1, 0, 1])
    out = inf.remap_cumsum(f, base=0)
    np.testing.assert_allclose(out[0], [0, 0.1, 0.3])
    np.testing.assert_allclose(out[1], [0, -0.1, 0.2])
