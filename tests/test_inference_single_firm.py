"""Single-firm AR/CAR t-tests: forecast-error variance checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

import crackdown.inference as inf
from crackdown.errors import StudyConfigError


@pytest.fixture(scope="module")
def market_model_case():
    rng = np.random.default_rng(42)
    T, L = 120, 5
    m = rng.normal(0.0005, 0.01, T + L)
    r = 0.0002 + 1.3 * m + rng.normal(0, 0.015, T + L)
    X = sm.add_constant(m[:T])
    fit = sm.OLS(r[:T], X).fit()
    Xe = sm.add_constant(m[T:], has_constant="add")
    ar = r[T:] - Xe @ fit.params
    return fit, X, Xe, ar


def test_forecast_matrix_and_ar_se_match_statsmodels_prediction(market_model_case):
    fit, X, Xe, ar = market_model_case
    H = inf.ols_forecast_matrix(X, Xe)
    path = inf.single_firm_path(ar, fit.resid, forecast_matrix=H)
    pred = fit.get_prediction(Xe)
    se_obs = np.sqrt(pred.se_mean**2 + fit.scale)  # prediction-error sd for a new observation
    np.testing.assert_allclose(path.se_ar, se_obs, rtol=1e-10)
    assert path.sigma == pytest.approx(np.sqrt(fit.scale), rel=1e-12)
    assert path.df == fit.df_resid


def test_car_variance_matches_statsmodels_cov_params(market_model_case):
    fit, X, Xe, ar = market_model_case
    H = inf.ols_forecast_matrix(X, Xe)
    path = inf.single_firm_path(ar, fit.resid, forecast_matrix=H)
    cov = fit.cov_params()
    for j in range(len(ar)):
        a = Xe[: j + 1].sum(axis=0)
        var = (j + 1) * fit.scale + a @ cov @ a  # CAR = Σ e_t - (Σ x_t)'(b - β)
        assert path.se_car[j] == pytest.approx(np.sqrt(var), rel=1e-10)
    # sub-window test equals the same construction on columns 1..3
    res = inf.single_firm_car_test(ar, fit.resid, (1, 3), forecast_matrix=H)
    a = Xe[1:4].sum(axis=0)
    se = np.sqrt(3 * fit.scale + a @ cov @ a)
    assert res.statistic == pytest.approx(ar[1:4].sum() / se, rel=1e-10)
    assert res.df == fit.df_resid and res.window == (1, 3)


def test_lemaire_convention_tau_sigma2(market_model_case):
    fit, _, _, ar = market_model_case
    path = inf.single_firm_path(ar, fit.resid, ddof=0, forecast_error=False, df=len(fit.resid) - 1)
    s2 = np.var(fit.resid, ddof=0)
    np.testing.assert_allclose(path.se_car, np.sqrt(np.arange(1, 6) * s2), rtol=1e-12)
    np.testing.assert_allclose(path.car, np.cumsum(ar))
    assert path.df == 119
    frame = path.to_frame()
    assert list(frame.columns[:3]) == ["rel_day", "ar", "se_ar"]


def test_errors_are_explicit(market_model_case):
    fit, _, _, ar = market_model_case
    with pytest.raises(StudyConfigError, match="forecast_matrix"):
        inf.single_firm_path(ar, fit.resid)
    bad = ar.copy()
    bad[2] = np.nan
    with pytest.raises(StudyConfigError, match="columns \\[2\\]"):
        inf.single_firm_path(bad, fit.resid, forecast_error=False)
