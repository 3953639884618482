"""Nonparametric tests: hand examples, scipy cross-checks, and size under the null by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import crackdown.inference as inf
from crackdown.errors import StudyConfigError


def test_sign_test_closed_form():
    ev = np.array([[0.01], [0.02], [-0.01], [0.03], [0.0]])
    res = inf.sign_test(ev, 0)
    # 3 positives out of 5 (zero is not positive)
    assert res.statistic == pytest.approx((3 - 2.5) / np.sqrt(5 * 0.25))
    assert res.extra["n_positive"] == 3
    assert res.pvalue == pytest.approx(2 * stats.norm.sf(abs(res.statistic)))


def test_generalized_sign_both_p_hat_conventions():
    est = np.array([
        [1, 1, 1, -1],           # 3/4 positive
        [1, -1, np.nan, np.nan],  # 1/2 positive
    ], dtype=float)
    ev = np.array([[0.1], [0.2]])
    firm = inf.generalized_sign_test(ev, est, 0)
    assert firm.extra["p_hat"] == pytest.approx((0.75 + 0.5) / 2)
    pooled = inf.generalized_sign_test(ev, est, 0, p_hat="pooled")
    assert pooled.extra["p_hat"] == pytest.approx(4 / 6)
    p = 4 / 6
    assert pooled.statistic == pytest.approx((2 - 2 * p) / np.sqrt(2 * p * (1 - p)))
    with pytest.raises(StudyConfigError, match="p_hat"):
        inf.generalized_sign_test(ev, est, 0, p_hat="bogus")


def test_corrado_rank_hand_example():
    # 2 firms, 3 estimation days + 1 event day, no ties.
    est = np.array([[0.1, -0.2, 0.05], [0.3, 0.1, -0.1]])
    ev = np.array([[0.4], [0.2]])
    res = inf.corrado_rank_test(ev, est, 0)
    # firm 1 values (0.1,-0.2,0.05,0.4) -> ranks (3,1,2,4); firm 2 (0.3,0.1,-0.1,0.2) -> (4,2,1,3)
    k = np.array([[3, 1, 2, 4], [4, 2, 1, 3]]) - 2.5
    kbar = k.mean(axis=0)
    s = np.sqrt(np.sum(kbar**2) / 4)
    assert res.statistic == pytest.approx(kbar[-1] / s)
    assert res.robust_to_clustering


def test_modified_rank_and_cz_sign_hand_example():
    est = np.array([[0.1, -0.2, 0.05], [0.3, 0.1, -0.1]])
    ev = np.array([[0.4], [0.2]])
    u = np.array([[3, 1, 2, 4], [4, 2, 1, 3]]) / 5 - 0.5
    a = u.sum(axis=0) / np.sqrt(2)
    assert inf.modified_rank_test(ev, est, 0).statistic == pytest.approx(
        a[-1] / np.sqrt(np.sum(a**2) / 4))
    # medians: firm1 median(0.1,-0.2,0.05,0.4)=0.075, firm2 median=0.15
    g = np.sign(np.array([[0.1, -0.2, 0.05, 0.4], [0.3, 0.1, -0.1, 0.2]])
                - np.array([[0.075], [0.15]]))
    b = g.sum(axis=0) / np.sqrt(2)
    assert inf.corrado_zivney_sign_test(ev, est, 0).statistic == pytest.approx(
        b[-1] / np.sqrt(np.sum(b**2) / 4))


def test_cross_sum_quirk_only_matters_with_missing_firms():
    rng = np.random.default_rng(5)
    est = rng.normal(size=(4, 50))
    ev = rng.normal(size=(4, 2))
    a = inf.corrado_rank_test(ev, est, 1).statistic
    b = inf.corrado_rank_test(ev, est, 1, cross_sum="estudy2_rowmeans").statistic
    assert a == pytest.approx(b)
    est[0, :20] = np.nan
    a = inf.corrado_rank_test(ev, est, 1).statistic
    b = inf.corrado_rank_test(ev, est, 1, cross_sum="estudy2_rowmeans").statistic
    assert a != pytest.approx(b)
    d = inf.corrado_rank_test(ev, est, 1, sd_divisor="days").statistic
    assert d != pytest.approx(a)


def test_window_rank_is_sum_of_daily_over_sqrt_L():
    rng = np.random.default_rng(8)
    est = rng.normal(size=(6, 80))
    ev = rng.normal(size=(6, 3))
    for f in (inf.corrado_rank_test, inf.modified_rank_test, inf.corrado_zivney_sign_test):
        daily = [f(ev, est, t).statistic for t in range(3)]
        assert f(ev, est, (0, 2)).statistic == pytest.approx(sum(daily) / np.sqrt(3))


def test_wilcoxon_matches_scipy():
    rng = np.random.default_rng(12)
    x = rng.normal(0.5, 1, size=(15, 2))
    res = inf.wilcoxon_signed_rank_test(x, (0, 1))
    car = x.sum(axis=1)
    ref = stats.wilcoxon(car, alternative="greater")  # statistic = W+
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(stats.wilcoxon(car, method="exact").pvalue)
    assert res.distribution == "exact"
    # zeros are dropped (R wilcox.test convention)
    y = np.array([[0.0], [1.0], [2.0], [-0.5]])
    r = inf.wilcoxon_signed_rank_test(y, 0)
    assert r.n == 3 and r.extra["n_zero_dropped"] == 1 and r.statistic == 5.0


def test_size_under_null_iid_normal():
    """iid normal ARs, no effect: 5%-level rejection rate near 5% (1000 draws)."""
    rng = np.random.default_rng(77)
    n_draws = 1000
    counts: dict[str, int] = {}
    for _ in range(n_draws):
        x = rng.normal(size=(25, 102)) * rng.uniform(0.5, 2.0, size=(25, 1))
        est, ev = x[:, :100], x[:, 100:]
        for res in (
            inf.sign_test(ev, 0),
            inf.generalized_sign_test(ev, est, 0),
            inf.corrado_zivney_sign_test(ev, est, 0),
            inf.corrado_rank_test(ev, est, (0, 1)),
            inf.modified_rank_test(ev, est, (0, 1)),
            inf.wilcoxon_signed_rank_test(ev, (0, 1)),
        ):
            counts[res.name] = counts.get(res.name, 0) + (res.pvalue < 0.05)
    se = np.sqrt(0.05 * 0.95 / n_draws)
    for name, c in counts.items():
        rate = c / n_draws
        # sign tests on 25 firms are discrete and conservative; allow the lower side more room
        assert 0.05 - 4 * se < rate < 0.05 + 3.5 * se, f"{name}: {rate:.3f}"
