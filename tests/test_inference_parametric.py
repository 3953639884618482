"""Parametric tests: closed forms on hand examples, scipy/statsmodels/pandas cross-checks, simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crackdown.inference as inf
from crackdown.errors import StudyConfigError
from crackdown.inference.base import resolve_window

# A tiny hand example: 3 firms, 4 estimation days, 2 event days.
EST = np.array([
    [0.01, -0.01, 0.02, -0.02],
    [0.00, 0.02, -0.02, 0.00],
    [0.03, -0.03, 0.01, -0.01],
])
EV = np.array([
    [0.02, 0.01],
    [0.01, -0.01],
    [0.04, 0.00],
])


def test_resolve_window_columns_and_rel_days():
    cols, label = resolve_window(5, None)
    assert cols.tolist() == [0, 1, 2, 3, 4] and label == (0, 4)
    cols, label = resolve_window(5, (-1, 1), rel_days=[-2, -1, 0, 1, 2])
    assert cols.tolist() == [1, 2, 3] and label == (-1, 1)
    cols, label = resolve_window(5, 0, rel_days=[-2, -1, 0, 1, 2])
    assert cols.tolist() == [2] and label == (0, 0)
    with pytest.raises(StudyConfigError, match="relative day 3"):
        resolve_window(5, (0, 3), rel_days=[-2, -1, 0, 1, 2])
    with pytest.raises(StudyConfigError, match="lo > hi"):
        resolve_window(5, (2, 1))


def test_cross_sectional_t_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    ar = rng.normal(0.002, 0.02, size=(25, 3))
    res = inf.cross_sectional_t(ar, (0, 2))
    car = ar.sum(axis=1)
    ref = stats.ttest_1samp(car, 0.0)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.df == 24 and res.distribution == "t"
    import statsmodels.api as sm

    ols = sm.OLS(car, np.ones((25, 1))).fit()
    assert res.statistic == pytest.approx(float(ols.tvalues[0]), rel=1e-10)


def test_cross_sectional_t_excludes_incomplete_firms_and_reports_them():
    ar = EV.copy()
    ar[1, 1] = np.nan
    res = inf.cross_sectional_t(ar, (0, 1))
    car = ar[[0, 2]].sum(axis=1)
    assert res.n == 2 and res.extra["n_excluded_missing"] == 1
    assert res.statistic == pytest.approx(car.mean() / (car.std(ddof=1) / np.sqrt(2)))
    # single day 1 still uses the two firms available that day
    assert inf.cross_sectional_t(ar, 1).n == 2


def test_brown_warner_1980_closed_form():
    res = inf.brown_warner_1980(EV, EST, (0, 1))
    s2 = EST.var(axis=1, ddof=1)
    caar = EV.sum(axis=1).mean()
    expected = caar / (np.sqrt(2 * s2.sum()) / 3)
    assert res.statistic == pytest.approx(expected, rel=1e-12)
    assert res.df == pytest.approx(3.0)  # mean(T_i) - 1 = 4 - 1
    assert not res.robust_to_clustering


def test_portfolio_t_closed_form_and_clustering_flag():
    res = inf.portfolio_t(EV, EST, 0)
    aar_est = EST.mean(axis=0)
    assert res.statistic == pytest.approx(EV[:, 0].mean() / aar_est.std(ddof=1), rel=1e-12)
    win = inf.brown_warner_1985(EV, EST, (0, 1))
    assert win.statistic == pytest.approx(EV.mean(axis=0).sum() / (np.sqrt(2) * aar_est.std(ddof=1)))
    assert win.robust_to_clustering and win.df == 3


def test_patell_and_bmp_closed_form_with_forecast_factor():
    c = np.array([[1.1, 1.2], [1.05, 1.3], [1.5, 1.0]])
    s = np.sqrt((EST**2).sum(axis=1) / (4 - 1))  # ddof = k = 1 (constant-mean model)
    # k=1 needs T - k > 2 -> T=4 gives 3 > 2
    scar = EV.sum(axis=1) / (s * np.sqrt(c.sum(axis=1)))
    pz = inf.patell_z(EV, EST, (0, 1), n_params=1, forecast_var_factor=c)
    t = 4 - 1
    assert pz.statistic == pytest.approx(scar.sum() / np.sqrt(3 * t / (t - 2)), rel=1e-12)
    bm = inf.bmp_t(EV, EST, (0, 1), n_params=1, forecast_var_factor=c)
    assert bm.statistic == pytest.approx(scar.mean() / scar.std(ddof=1) * np.sqrt(3), rel=1e-12)
    # the exact CAR factor replaces the diagonal sum
    v = np.array([2.5, 2.4, 2.6])
    pz2 = inf.patell_z(EV, EST, (0, 1), n_params=1, car_var_factor=v)
    scar2 = EV.sum(axis=1) / (s * np.sqrt(v))
    assert pz2.statistic == pytest.approx(scar2.sum() / np.sqrt(3 * t / (t - 2)), rel=1e-12)


def test_patell_rejects_too_short_estimation():
    with pytest.raises(StudyConfigError, match="T_i - k > 2"):
        inf.patell_z(EV, EST, 0, n_params=2)


def test_standardized_abnormal_returns_definition():
    sar = inf.standardized_abnormal_returns(EV, EST, n_params=1)
    s = inf.estimation_sigma(EST, ddof=1)
    np.testing.assert_allclose(sar, EV / s[:, None])


def test_market_model_var_factor_equals_ols_leverage():
    rng = np.random.default_rng(7)
    T, L = 60, 4
    m = rng.normal(0, 0.01, T)
    me = rng.normal(0, 0.02, L)
    e = rng.normal(0, 0.02, (2, T))
    e[1, :15] = np.nan  # late listing
    c = inf.market_model_var_factor(m, me, ar_est=e)
    for i in range(2):
        ok = ~np.isnan(e[i])
        X = np.column_stack([np.ones(ok.sum()), m[ok]])
        H = inf.ols_forecast_matrix(X, np.column_stack([np.ones(L), me]))
        np.testing.assert_allclose(c[i], 1 + np.diag(H), rtol=1e-12)
    c_all = inf.market_model_var_factor(m, me, ar_est=e, leverage="all_index_days")
    np.testing.assert_allclose(c_all[0], c[0], rtol=1e-12)
    assert not np.allclose(c_all[1], c[1])


def test_pairwise_correlations_match_pandas():
    rng = np.random.default_rng(3)
    e = rng.normal(size=(5, 80)) + 0.5 * rng.normal(size=80)
    e[2, :30] = np.nan
    e[4, 50:] = np.nan
    r = inf.pairwise_residual_correlations(e, min_overlap=30)
    ref = pd.DataFrame(e.T).corr(min_periods=30).to_numpy()
    np.testing.assert_allclose(r, ref, rtol=1e-10, equal_nan=True)
    # pair (2, 4) overlaps on 20 days only -> undefined
    assert np.isnan(r[2, 4])
    rbar = inf.average_residual_correlation(e, min_overlap=30)
    iu = np.triu_indices(5, 1)
    assert rbar == pytest.approx(np.nanmean(ref[iu]))


def test_kolari_pynnonen_adjustments():
    rng = np.random.default_rng(11)
    est = rng.normal(size=(6, 120)) + rng.normal(size=120)
    ev = rng.normal(size=(6, 3)) + 1.0
    base = inf.bmp_t(ev, est, (0, 2))
    adj = inf.kolari_pynnonen_bmp(ev, est, (0, 2))
    rbar = inf.average_residual_correlation(est)
    assert 0.3 < rbar < 0.7
    f = np.sqrt((1 - rbar) / (1 + 5 * rbar))
    assert adj.statistic == pytest.approx(base.statistic * f, rel=1e-12)
    assert adj.robust_to_clustering and adj.df == 5
    assert adj.pvalue == pytest.approx(2 * stats.t.sf(abs(adj.statistic), 5))
    pz = inf.patell_z(ev, est, (0, 2))
    kp = inf.kolari_pynnonen_patell(ev, est, (0, 2), mean_correlation=0.2)
    # Patell uses the known SAR variances: only the covariance terms are added, 1/sqrt(1+(N-1)r)
    assert kp.statistic == pytest.approx(pz.statistic / np.sqrt(1 + 5 * 0.2), rel=1e-12)
    assert inf.kolari_pynnonen_factor(0.2, 6, cross_sectional_variance=False) == \
        pytest.approx(1 / np.sqrt(2.0), rel=1e-15)
    assert inf.kolari_pynnonen_factor(0.0, 10) == 1.0
    with pytest.raises(StudyConfigError, match="undefined"):
        inf.kolari_pynnonen_factor(-0.5, 10)


def test_lamb_closed_form_and_requires_factor():
    cp = np.array([1.2, 1.1])
    res = inf.lamb_test(EV, EST, (0, 1), portfolio_var_factor=cp)
    sd = EST.mean(axis=0).std(ddof=1)
    aar = EV.mean(axis=0)
    assert res.statistic == pytest.approx(aar.sum() / (sd * np.sqrt(cp.sum())), rel=1e-12)
    daily = inf.lamb_test(EV, EST, (0, 1), portfolio_var_factor=cp, aggregate="sum_daily_z")
    assert daily.statistic == pytest.approx(np.sum(aar / (sd * np.sqrt(cp))) / np.sqrt(2))
    # a single day: both aggregations agree
    one = [inf.lamb_test(EV, EST, 1, portfolio_var_factor=cp, aggregate=a).statistic
           for a in ("caar", "sum_daily_z")]
    assert one[0] == pytest.approx(one[1])
    with pytest.raises(StudyConfigError, match="portfolio_var_factor"):
        inf.lamb_test(EV, EST, 0)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(StudyConfigError, match="rows"):
        inf.brown_warner_1980(EV, EST[:2], 0)
    with pytest.raises(StudyConfigError, match="forecast_var_factor"):
        inf.patell_z(EV, EST, 0, n_params=1, forecast_var_factor=np.ones((3, 3)))
    with pytest.raises(StudyConfigError, match="> 0"):
        inf.patell_z(EV, EST, 0, n_params=1, forecast_var_factor=np.full((3, 2), 0.0))
    # a factor below 1 is legitimate (GARCH: h_t / sigma2 on a calm day) and scales the AR
    half = inf.patell_z(EV, EST, 0, n_params=1, forecast_var_factor=np.full((3, 2), 0.5))
    one = inf.patell_z(EV, EST, 0, n_params=1, forecast_var_factor=np.ones((3, 2)))
    assert half.statistic == pytest.approx(one.statistic * np.sqrt(2), rel=1e-12)


def _simulate(n_draws, n_firms, T, L, rho, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_draws):
        common = rng.normal(size=T + L)
        x = np.sqrt(1 - rho) * rng.normal(size=(n_firms, T + L)) + np.sqrt(rho) * common
        x *= rng.uniform(0.01, 0.03, size=(n_firms, 1))  # heterogeneous volatility
        yield x[:, L:], x[:, :L]  # estimation, event (event days disjoint)


def test_size_under_null_iid_normal():
    """iid normal ARs, no effect: each test rejects ~5% at the 5% level (1200 draws)."""
    n_draws = 1200
    rejections = {}
    for est, ev in _simulate(n_draws, 20, 100, 3, 0.0, seed=2024):
        for res in (
            inf.cross_sectional_t(ev, (0, 2)),
            inf.brown_warner_1980(ev, est, (0, 2)),
            inf.portfolio_t(ev, est, (0, 2)),
            inf.patell_z(ev, est, (0, 2), n_params=0),
            inf.bmp_t(ev, est, (0, 2), n_params=0),
            inf.kolari_pynnonen_bmp(ev, est, (0, 2), n_params=0),
        ):
            rejections[res.name] = rejections.get(res.name, 0) + (res.pvalue < 0.05)
    se = np.sqrt(0.05 * 0.95 / n_draws)
    for name, count in rejections.items():
        rate = count / n_draws
        assert abs(rate - 0.05) < 3.5 * se, f"{name}: rejection rate {rate:.3f}"


def test_clustering_breaks_bmp_but_not_kp_or_portfolio():
    """Equicorrelated ARs (rho=0.3): BMP over-rejects, ADJ-BMP and the portfolio test do not."""
    n_draws = 600
    counts = {"bmp_t": 0, "kolari_pynnonen_bmp": 0, "brown_warner_1985": 0}
    for est, ev in _simulate(n_draws, 30, 120, 1, 0.3, seed=99):
        for res in (inf.bmp_t(ev, est, 0, n_params=0),
                    inf.kolari_pynnonen_bmp(ev, est, 0, n_params=0),
                    inf.portfolio_t(ev, est, 0)):
            counts[res.name] += res.pvalue < 0.05
    rates = {k: v / n_draws for k, v in counts.items()}
    assert rates["bmp_t"] > 0.25, rates
    assert 0.02 < rates["kolari_pynnonen_bmp"] < 0.085, rates
    assert 0.02 < rates["brown_warner_1985"] < 0.085, rates
