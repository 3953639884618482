"""Event-dummy SUR regression: checked against statsmodels GLS on the stacked system,
statsmodels' multivariate OLS (MANOVA) tests, linearmodels SUR, closed forms and a simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crackdown.errors import CrackdownError, StudyConfigError
from crackdown.inference.dummy_regression import event_dummy_regression, lawley_hotelling_f

N_FIRMS, T_TOTAL = 6, 90
EVENT_POS = [86, 87, 88]
REL_DAYS = [-1, 0, 1]


def _panel(seed=0, n=N_FIRMS, t=T_TOTAL, k=1, rho=0.4, effect=0.0, effect_pos=EVENT_POS[1]):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0005, 0.01, (t, k))
    beta = rng.uniform(0.5, 1.5, (n, k))
    sd = rng.uniform(0.01, 0.03, n)
    common = rng.normal(size=t)
    eps = sd[:, None] * (np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.normal(size=(n, t)))
    y = 0.0003 + beta @ x.T + eps
    if effect:
        y[:, effect_pos] += effect
    return y, x


def _stacked_design(x, t, pos):
    dummies = np.zeros((t, len(pos)))
    dummies[pos, np.arange(len(pos))] = 1.0
    return np.column_stack([np.ones(t), x, dummies])


def _wald(beta, cov, r):
    rb = r @ beta
    return float(rb @ np.linalg.solve(r @ cov @ r.T, rb))


@pytest.fixture(scope="module")
def fitted():
    y, x = _panel()
    return y, x, event_dummy_regression(y, x, EVENT_POS, rel_days=REL_DAYS)


def _restrictions(n, p, length):
    """Rows of R (firm-major stacking [a_i, b_i, gamma_i1..gamma_iL]) for tests (a), (b), (c)."""
    k_eq = p + length
    r_all = np.zeros((n * length, n * k_eq))
    for i in range(n):
        for d in range(length):
            r_all[i * length + d, i * k_eq + p + d] = 1.0
    r_caar = np.zeros((1, n * k_eq))
    r_daily = np.zeros((length, n * k_eq))
    for i in range(n):
        r_caar[0, i * k_eq + p : i * k_eq + p + length] = 1.0 / n
        for d in range(length):
            r_daily[d, i * k_eq + p + d] = 1.0 / n
    return r_all, r_caar, r_daily


def test_matches_statsmodels_gls_on_stacked_system(fitted):
    import statsmodels.api as sm

    y, x, res = fitted
    n, t = y.shape
    z = _stacked_design(x, t, EVENT_POS)
    p, length = 1 + x.shape[1], len(EVENT_POS)
    big_x = np.kron(np.eye(n), z)
    big_y = y.ravel()  # firm-major: [r_1(1..T), r_2(1..T), ...]
    omega = np.kron(res.sigma, np.eye(t))
    gls = sm.GLS(big_y, big_x, sigma=omega).fit()
    params = gls.params.reshape(n, p + length)
    np.testing.assert_allclose(params[:, p:], res.gamma, rtol=0, atol=1e-10)
    np.testing.assert_allclose(params[:, :p], res.coefficients, rtol=0, atol=1e-10)
    cov = gls.normalized_cov_params  # (X' Omega^-1 X)^-1, Sigma treated as known
    se = np.sqrt(np.diag(cov)).reshape(n, p + length)[:, p:]
    np.testing.assert_allclose(se, res.gamma_se, rtol=1e-8)

    r_all, r_caar, r_daily = _restrictions(n, p, length)
    for key, r in (("all_gamma", r_all), ("caar", r_caar), ("daily_aar", r_daily)):
        ours = res.tests[key].extra["wald_chi2"]
        theirs = gls.wald_test(r, cov_p=cov, scalar=True, use_f=False).statistic
        assert ours == pytest.approx(float(theirs), rel=1e-8), key
        # p-value of the chi2 form
        assert res.tests[key].extra["pvalue_chi2"] == pytest.approx(
            stats.chi2.sf(float(theirs), r.shape[0]), rel=1e-8
        )
    # single-day test equals the wald on one row of r_daily
    for d_idx, d in enumerate(REL_DAYS):
        theirs = gls.wald_test(r_daily[[d_idx]], cov_p=cov, scalar=True, use_f=False).statistic
        assert res.tests[f"aar_{d}"].statistic == pytest.approx(float(theirs), rel=1e-8)
        assert res.tests[f"aar_{d}"].window == (d, d)


def test_sigma_is_estimation_window_residual_covariance(fitted):
    import statsmodels.api as sm

    y, x, res = fitted
    z = _stacked_design(x, y.shape[1], EVENT_POS)
    resid = np.column_stack([sm.OLS(y[i], z).fit().resid for i in range(y.shape[0])])
    # dummy days have zero residuals, so the residual covariance uses estimation days only
    np.testing.assert_allclose(resid[EVENT_POS], 0.0, atol=1e-12)
    nu = y.shape[1] - z.shape[1]
    assert res.df_resid == nu == T_TOTAL - len(EVENT_POS) - 2
    np.testing.assert_allclose(res.sigma, resid.T @ resid / nu, rtol=1e-10)
    # per-firm OLS standard errors of the dummies = sqrt(Sigma_ii C_dd)
    bse = np.vstack([sm.OLS(y[i], z).fit().bse[2:] for i in range(y.shape[0])])
    np.testing.assert_allclose(bse, res.gamma_se, rtol=1e-8)
    table = res.coefficient_table
    assert list(table.columns) == ["firm", "rel_day", "gamma", "se", "t", "pvalue"]
    assert len(table) == N_FIRMS * len(EVENT_POS)
    tvals = np.vstack([sm.OLS(y[i], z).fit().tvalues[2:] for i in range(y.shape[0])])
    np.testing.assert_allclose(table["t"].to_numpy(), tvals.ravel(), rtol=1e-8)


def test_f_forms_match_statsmodels_manova(fitted):
    from statsmodels.multivariate.multivariate_ols import _MultivariateOLS

    y, x, res = fitted
    n, t = y.shape
    z = _stacked_design(x, t, EVENT_POS)
    p, length = 1 + x.shape[1], len(EVENT_POS)
    mv = _MultivariateOLS(y.T, z).fit()
    l_dummies = np.eye(p + length)[p:]
    l_sum = l_dummies.sum(axis=0, keepdims=True)
    m_all = np.eye(n)
    m_mean = np.full((n, 1), 1.0 / n)
    hyps = [("all", l_dummies, m_all), ("caar", l_sum, m_mean), ("daily", l_dummies, m_mean)]
    out = mv.mv_test(hypotheses=hyps)
    for name, key in (("all", "all_gamma"), ("caar", "caar"), ("daily", "daily_aar")):
        row = out.results[name]["stat"].loc["Hotelling-Lawley trace"]
        ours = res.tests[key]
        assert ours.statistic == pytest.approx(float(row["F Value"]), rel=1e-8), key
        assert ours.df == (pytest.approx(float(row["Num DF"])), pytest.approx(float(row["Den DF"])))
        assert ours.pvalue == pytest.approx(float(row["Pr > F"]), rel=1e-7, abs=1e-14)


def test_matches_linearmodels_sur():
    lm = pytest.importorskip("linearmodels.system")
    y, x = _panel(seed=3, n=4, t=70)
    pos = [67, 68, 69]
    res = event_dummy_regression(y, x, pos, rel_days=REL_DAYS)
    z = _stacked_design(x, y.shape[1], pos)
    eqs = {f"f{i}": {"dependent": y[i], "exog": z} for i in range(y.shape[0])}
    fit = lm.SUR(eqs).fit(method="gls", cov_type="unadjusted", debiased=True)
    k_eq = z.shape[1]
    params = np.asarray(fit.params).reshape(4, k_eq)
    np.testing.assert_allclose(params[:, 2:], res.gamma, atol=1e-10)
    np.testing.assert_allclose(np.asarray(fit.sigma), res.sigma, rtol=1e-8)
    cov = np.asarray(fit.cov)
    r_all, r_caar, r_daily = _restrictions(4, 2, 3)
    beta = np.asarray(fit.params)
    for key, r in (("all_gamma", r_all), ("caar", r_caar), ("daily_aar", r_daily)):
        assert res.tests[key].extra["wald_chi2"] == pytest.approx(_wald(beta, cov, r), rel=1e-8)


def test_constant_only_model_closed_form():
    y, _ = _panel(seed=5)
    res = event_dummy_regression(y, None, EVENT_POS, rel_days=REL_DAYS)
    est = np.delete(y, EVENT_POS, axis=1)
    t_s = est.shape[1]
    np.testing.assert_allclose(res.gamma, y[:, EVENT_POS] - est.mean(axis=1, keepdims=True))
    np.testing.assert_allclose(res.forecast_cov, np.eye(3) + 1.0 / t_s)
    np.testing.assert_allclose(res.sigma, np.cov(est, ddof=1))
    # CAAR test: t = mean CAR / sqrt(var of equal-weight portfolio * c'Cc), F(1, T_s - 1)
    port = est.mean(axis=0)
    caar = res.gamma.sum(axis=1).mean()
    t_stat = caar / np.sqrt(port.var(ddof=1) * (3 + 9.0 / t_s))
    caar_test = res.tests["caar"]
    assert caar_test.statistic == pytest.approx(t_stat**2, rel=1e-10)
    assert caar_test.pvalue == pytest.approx(2 * stats.t.sf(abs(t_stat), t_s - 1), rel=1e-8)
    assert caar_test.robust_to_clustering and caar_test.df == (1.0, float(t_s - 1))


def test_hotelling_exact_when_single_event_day():
    y, x = _panel(seed=9)
    res = event_dummy_regression(y, x, [EVENT_POS[1]])
    test = res.tests["all_gamma"]
    nu, n = res.df_resid, N_FIRMS
    w = test.extra["wald_chi2"]
    assert test.statistic == pytest.approx((nu - n + 1) * w / (nu * n), rel=1e-12)
    assert test.df == (float(n), float(nu - n + 1))
    assert lawley_hotelling_f(w / nu, n, 1, nu)[0] == pytest.approx(test.statistic)


def test_detects_injected_effect_and_subwindow():
    y, x = _panel(seed=11, effect=0.10)
    res = event_dummy_regression(y, x, EVENT_POS, rel_days=REL_DAYS)
    assert res.tests["aar_0"].pvalue < 1e-6
    assert res.tests["caar"].pvalue < 1e-3
    assert res.tests["aar_0"].estimate == pytest.approx(res.gamma[:, 1].mean())
    sub = res.caar_test(0, 1)
    assert sub.window == (0, 1)
    assert sub.estimate == pytest.approx(res.gamma[:, 1:].sum(axis=1).mean())
    with pytest.raises(StudyConfigError, match="covers none"):
        res.caar_test(5, 6)


def test_listwise_deletion_equals_fit_on_common_sample():
    y, x = _panel(seed=13)
    y_nan = y.copy()
    y_nan[2, 10] = np.nan
    y_nan[4, 40] = np.nan
    res = event_dummy_regression(y_nan, x, EVENT_POS, rel_days=REL_DAYS)
    keep = np.setdiff1d(np.arange(T_TOTAL), [10, 40])
    pos = [int(np.searchsorted(keep, p_)) for p_ in EVENT_POS]
    ref = event_dummy_regression(y[:, keep], x[keep], pos, rel_days=REL_DAYS)
    np.testing.assert_allclose(res.gamma, ref.gamma, rtol=1e-12)
    np.testing.assert_allclose(res.sigma, ref.sigma, rtol=1e-12)
    assert res.dropped_positions.tolist() == [10, 40]
    assert res.tests["caar"].extra["n_dropped_estimation_dates"] == 2
    assert res.tests["caar"].statistic == pytest.approx(ref.tests["caar"].statistic, rel=1e-12)
    with pytest.raises(StudyConfigError, match="missing='listwise'"):
        event_dummy_regression(y_nan, x, EVENT_POS, missing="raise")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda y, x: (np.where(np.arange(T_TOTAL) == 87, np.nan, y), x), "missing on event day 0"),
        (lambda y, x: (y, x[:-1]), "regressors has 89 rows"),
        (lambda y, x: (y[:, 80:], x[80:]), "out of range|must exceed"),
    ],
)
def test_bad_input_raises_crackdown_error(mutate, match):
    y, x = _panel(seed=1)
    y2, x2 = mutate(y, x)
    with pytest.raises(CrackdownError, match=match):
        event_dummy_regression(y2, x2, EVENT_POS, rel_days=REL_DAYS, firm_labels=list("ABCDEF"))


def test_too_few_dates_for_sigma_raises():
    y, x = _panel(seed=1, n=30, t=33)
    with pytest.raises(StudyConfigError, match="must exceed N=30"):
        event_dummy_regression(y, x, [30, 31, 32])


def test_size_under_cross_correlation_by_simulation():
    """Equicorrelated errors (rho = 0.5): the SUR CAAR and all-gamma F p-values are uniform."""
    rng = np.random.default_rng(2024)
    n, t, sims = 8, 70, 400
    pos = [67, 68, 69]
    p_caar, p_all, p_chi2 = [], [], []
    x = rng.normal(0, 0.01, (t, 1))
    for _ in range(sims):
        common = rng.normal(size=t)
        y = 0.02 * (np.sqrt(0.5) * common + np.sqrt(0.5) * rng.normal(size=(n, t))) + x.T
        res = event_dummy_regression(y, x, pos)
        p_caar.append(res.tests["caar"].pvalue)
        p_all.append(res.tests["all_gamma"].pvalue)
        p_chi2.append(res.tests["all_gamma"].extra["pvalue_chi2"])
    # KS against Uniform(0,1): the exact F(1, nu) law of the CAAR test and the (exact-ish)
    # McKeon F of the all-gamma test. Ignoring the correlation gives KS p-values below 1e-30.
    assert stats.kstest(p_caar, "uniform").pvalue > 1e-3
    assert stats.kstest(p_all, "uniform").pvalue > 1e-3
    mc_se = np.sqrt(0.05 * 0.95 / sims)
    assert abs(np.mean(np.array(p_caar) < 0.05) - 0.05) < 3.5 * mc_se
    # the chi2 form ignores the estimation of Sigma (24 restrictions, nu = 65) and over-rejects
    assert np.mean(np.array(p_chi2) < 0.05) > np.mean(np.array(p_all) < 0.05)
