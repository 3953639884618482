"""Batched OLS engine and normal-return models against statsmodels and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from crackdown.errors import StudyConfigError
from crackdown.estimation.models import (
    MODELS,
    fit_batched_ols,
    fit_normal_model,
    model_spec,
)

TOL = 1e-10


def _synthetic(n=40, t=120, k_factors=1, seed=0, missing=0.1):
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0005, 0.012, (n, t, k_factors))
    beta = rng.normal(1.0, 0.3, (n, k_factors))
    y = 0.0004 + np.einsum("ntk,nk->nt", f, beta) + rng.normal(0, 0.02, (n, t))
    X = np.concatenate([np.ones((n, t, 1)), f], axis=2)
    mask = rng.random((n, t)) > missing
    y[rng.random((n, t)) < 0.02] = np.nan  # NaN in y is masked too
    return y, X, mask


@pytest.mark.parametrize("method", ["normal", "qr"])
@pytest.mark.parametrize("k_factors", [1, 3])
def test_batched_ols_matches_statsmodels(method, k_factors):
    y, X, mask = _synthetic(k_factors=k_factors)
    res = fit_batched_ols(y, X, mask, method=method)
    assert res.ok.all()
    for i in range(y.shape[0]):
        use = mask[i] & np.isfinite(y[i])
        ref = sm.OLS(y[i, use], X[i, use]).fit()
        np.testing.assert_allclose(res.params[i], ref.params, rtol=0, atol=TOL)
        np.testing.assert_allclose(res.resid[i, use], ref.resid, rtol=0, atol=TOL)
        assert np.isnan(res.resid[i, ~use]).all()
        assert res.sigma2[i] == pytest.approx(ref.scale, abs=TOL)  # ddof = k
        assert res.n_obs[i] == ref.nobs
        assert res.df_resid[i] == ref.df_resid
        np.testing.assert_allclose(res.xtx_inv[i], ref.normalized_cov_params, rtol=1e-9)
        assert res.r2[i] == pytest.approx(ref.rsquared, abs=TOL)


def test_shared_design_and_blocks_give_the_same_fit():
    rng = np.random.default_rng(3)
    t = 80
    x = np.column_stack([np.ones(t), rng.normal(0, 0.01, t)])
    y = rng.normal(0, 0.02, (25, t))
    mask = rng.random((25, t)) > 0.2
    shared = fit_batched_ols(y, x, mask)
    stacked = fit_batched_ols(y, np.broadcast_to(x, (25, t, 2)).copy(), mask, block_size=7)
    np.testing.assert_allclose(shared.params, stacked.params, atol=1e-15)
    np.testing.assert_allclose(shared.xtx_inv, stacked.xtx_inv, rtol=1e-13)
    for i in (0, 24):
        ref = sm.OLS(y[i, mask[i]], x[mask[i]]).fit()
        np.testing.assert_allclose(stacked.params[i], ref.params, atol=TOL)


def test_rank_deficient_and_too_few_rows_are_flagged_not_fatal():
    rng = np.random.default_rng(1)
    n, t = 4, 30
    m = rng.normal(0, 0.01, (n, t))
    X = np.stack([np.ones((n, t)), m, m], axis=2)  # third column duplicates the second...
    X[0, :, 2] = rng.normal(0, 0.01, t)  # ...except in row 0
    y = rng.normal(0, 0.02, (n, t))
    mask = np.ones((n, t), dtype=bool)
    mask[3, 2:] = False  # row 3: 2 rows for 3 parameters
    X[2, :, 1] = 0.0  # row 2: a zero column as well
    for method in ("normal", "qr"):
        res = fit_batched_ols(y, X, mask, method=method)
        assert res.ok.tolist() == [True, False, False, False]
        assert res.rank_deficient.tolist()[:3] == [False, True, True]
        assert np.isnan(res.params[1:]).all() and np.isnan(res.sigma2[1:]).all()
        ref = sm.OLS(y[0], X[0]).fit()
        np.testing.assert_allclose(res.params[0], ref.params, atol=TOL)


def test_forecast_factor_and_car_variance_match_statsmodels_prediction():
    y, X, mask = _synthetic(n=6, t=100, k_factors=2, seed=5)
    rng = np.random.default_rng(9)
    x_event = np.concatenate([np.ones((6, 5, 1)), rng.normal(0, 0.02, (6, 5, 2))], axis=2)
    y_event = rng.normal(0, 0.02, (6, 5))
    spec = model_spec("factors", ["f1", "f2"])
    fit = fit_normal_model(spec, y, X, mask, y_event, x_event)
    day_mask = np.array([False, True, True, True, False])
    car_var = fit.car_variance(day_mask)
    for i in range(6):
        use = mask[i] & np.isfinite(y[i])
        ref = sm.OLS(y[i, use], X[i, use]).fit()
        pred = ref.get_prediction(x_event[i])
        # Var(prediction error) = sigma^2 + Var(x'b) = sigma^2 (1 + x'(X'X)^-1 x)
        expected_factor = 1.0 + pred.var_pred_mean / ref.scale
        np.testing.assert_allclose(fit.forecast_var_factor[i], expected_factor, rtol=1e-10)
        np.testing.assert_allclose(fit.ar_event[i], y_event[i] - ref.predict(x_event[i]), atol=TOL)
        s = x_event[i, day_mask].sum(axis=0)
        expected_var = 3 * ref.scale + s @ ref.cov_params() @ s
        assert car_var[i] == pytest.approx(expected_var, rel=1e-10)


def test_market_adjusted_and_constant_mean_closed_forms():
    rng = np.random.default_rng(2)
    n, t, l_len = 5, 60, 3
    r = rng.normal(0.001, 0.02, (n, t))
    m = rng.normal(0.0, 0.01, (n, t))
    mask = rng.random((n, t)) > 0.1
    r_ev, m_ev = rng.normal(0, 0.02, (n, l_len)), rng.normal(0, 0.01, (n, l_len))
    ma = fit_normal_model(model_spec("market-adjusted"), r, m[:, :, None], mask, r_ev,
                          m_ev[:, :, None])
    np.testing.assert_allclose(ma.ar_event, r_ev - m_ev, atol=1e-15)
    assert (ma.forecast_var_factor == 1.0).all()
    assert ma.params.shape == (n, 0)
    for i in range(n):
        ar = (r[i] - m[i])[mask[i]]
        assert ma.sigma2[i] == pytest.approx(np.var(ar, ddof=1), rel=1e-12)
        assert ma.n_obs[i] == mask[i].sum() and ma.df_resid[i] == mask[i].sum() - 1
    car_var = ma.car_variance(np.ones(l_len, dtype=bool))
    np.testing.assert_allclose(car_var, 3 * ma.sigma2, rtol=1e-14)

    cm = fit_normal_model(model_spec("constant-mean"), r, np.ones((n, t, 1)), mask, r_ev,
                          np.ones((n, l_len, 1)))
    for i in range(n):
        mu = r[i, mask[i]].mean()
        np.testing.assert_allclose(cm.ar_event[i], r_ev[i] - mu, atol=1e-15)
        assert cm.sigma2[i] == pytest.approx(np.var(r[i, mask[i]], ddof=1), rel=1e-12)
        np.testing.assert_allclose(cm.forecast_var_factor[i], 1 + 1 / mask[i].sum(), rtol=1e-12)
        assert cm.r2[i] == 0.0


def test_model_spec_names_and_errors():
    assert set(MODELS) >= {"constant-mean", "market-adjusted", "market", "ff3", "carhart", "ff5"}
    assert model_spec("market").regressors == ("const", "market")
    assert model_spec("ff3").regressors == ("const", "mkt_rf", "smb", "hml")
    assert model_spec("carhart").regressors[-1] == "mom"
    assert model_spec("ff5").regressors[-2:] == ("rmw", "cma")
    assert model_spec("ff5").excess and not model_spec("market").excess
    user = model_spec("factors", ["a", "b", "rf"])
    assert user.regressors == ("const", "a", "b") and user.excess
    assert model_spec("market-adjusted").n_params == 0
    with pytest.raises(StudyConfigError, match="unknown model 'capm'"):
        model_spec("capm")
    with pytest.raises(StudyConfigError, match="factors"):
        model_spec("factors", None)


@pytest.mark.parametrize("refine", [False, True])
def test_ill_conditioned_design_still_matches_statsmodels(refine):
    """A regressor with mean 50x its sd (uncentred correlation with the constant ~0.9998)."""
    rng = np.random.default_rng(7)
    n, t = 20, 240
    f = rng.normal(0.05, 0.001, (n, t))
    y = 0.01 + 0.8 * f + rng.normal(0, 0.02, (n, t))
    X = np.stack([np.ones((n, t)), f], axis=2)
    res = fit_batched_ols(y, X, refine=refine)
    for i in range(n):
        ref = sm.OLS(y[i], X[i]).fit()
        # parameters are ill-determined (se ~ 1.3 for the slope); compare fitted values tightly
        np.testing.assert_allclose(res.resid[i], ref.resid, atol=TOL)
        np.testing.assert_allclose(res.params[i], ref.params, rtol=1e-8)
        assert res.sigma2[i] == pytest.approx(ref.scale, rel=1e-10)
