"""The closed-form ``k == 2`` branch of fit_batched_ols against the general branch and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from crackdown.estimation.ols import fit_batched_ols

FIELDS = ("params", "resid", "sigma2", "xtx_inv", "ssr", "r2")


def _market_data(n=60, t=120, seed=0, missing=0.05):
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.012, (n, t))
    y = rng.normal(0, 0.001, (n, 1)) + rng.normal(1, 0.4, (n, 1)) * m + rng.normal(0, 0.02, (n, t))
    y[rng.random((n, t)) < 0.02] = np.nan
    m[rng.random((n, t)) < 0.01] = np.nan
    X = np.moveaxis(np.stack([np.ones((n, t)), m]), 0, 2)  # regressor-major, as study builds it
    mask = rng.random((n, t)) > missing
    return y, X, mask


def _assert_same(fast, ref, rtol=1e-12):
    """Same NaN pattern, flags and counts; values equal to ``rtol`` relative to each row's scale."""
    for name in ("ok", "rank_deficient", "n_obs", "df_resid"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    for name in FIELDS:
        a, b = getattr(fast, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name}: NaN pattern")
        scale = np.nanmax(np.abs(b).reshape(len(b), -1), axis=1, initial=0.0)
        if name == "r2":  # 1 - SSR/TSS: absolute (R² near 0 has no relative accuracy)
            scale = np.ones_like(scale)
        scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (b.ndim - 1))
        np.testing.assert_allclose(np.nan_to_num(a / scale), np.nan_to_num(b / scale), rtol=0,
                                   atol=rtol, err_msg=name)


def test_auto_uses_the_closed_form_for_two_regressors_and_matches_the_general_branch():
    y, X, mask = _market_data()
    auto = fit_batched_ols(y, X, mask)
    closed = fit_batched_ols(y, X, mask, method="closed", block_size=7)
    general = fit_batched_ols(y, X, mask, method="normal")
    assert auto.ok.all()
    for name in FIELDS:  # "auto" is the closed form (bit for bit, whatever the block size)
        np.testing.assert_array_equal(getattr(auto, name), getattr(closed, name))
    _assert_same(closed, general)
    # and both against statsmodels directly
    for i in range(0, len(y), 7):
        use = mask[i] & np.isfinite(y[i]) & np.isfinite(X[i, :, 1])
        ref = sm.OLS(y[i, use], X[i, use]).fit()
        np.testing.assert_allclose(closed.params[i], ref.params, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(closed.resid[i, use], ref.resid, atol=1e-13)
        assert np.isnan(closed.resid[i, ~use]).all()
        assert closed.sigma2[i] == pytest.approx(ref.scale, rel=1e-12)
        assert closed.r2[i] == pytest.approx(ref.rsquared, rel=1e-10)
        np.testing.assert_allclose(closed.xtx_inv[i], ref.normalized_cov_params, rtol=1e-10)


def test_edge_cases_are_flagged_like_the_general_branch():
    rng = np.random.default_rng(4)
    n, t = 8, 40
    y, X, mask = _market_data(n=n, t=t, seed=4, missing=0.0)
    y[:, :3] = rng.normal(0, 0.02, (n, 3))  # the first rows finite, so the counts are known
    X[:, :3, 1] = rng.normal(0, 0.01, (n, 3))
    mask[:] = True
    mask[0] = False  # all masked
    mask[1, 2:] = False  # n_obs == 2 (= k): not enough rows
    mask[2, 1:] = False  # n_obs == 1: [1, x] and x are proportional on one row -> collinear
    X[3, :, 1] = 0.013  # constant x: collinear with the constant
    X[4, :, 1] = 0.0  # zero column
    y[5] = np.nan  # all-NaN y
    mask[6, 3:] = False  # n_obs == 3: smallest estimable design (df_resid = 1)
    X[7, :, 0] = rng.normal(0, 1, t)  # no constant: two arbitrary columns (uncentred R²)
    for centered in (True, False):
        fast = fit_batched_ols(y, X, mask, method="closed", centered_r2=centered)
        ref = fit_batched_ols(y, X, mask, method="normal", centered_r2=centered)
        _assert_same(fast, ref)
        assert fast.ok.tolist() == [False] * 6 + [True, True]
        assert fast.rank_deficient.tolist() == [True, False, True, True, True, True, False, False]
        assert fast.n_obs.tolist()[:3] == [0, 2, 1]
        assert np.isnan(fast.params[:6]).all() and np.isnan(fast.resid[:6]).all()
    for i in (6, 7):
        use = mask[i] & np.isfinite(y[i]) & np.isfinite(X[i]).all(axis=1)
        assert use.sum() == fast.n_obs[i]
        ref = sm.OLS(y[i, use], X[i, use]).fit()
        np.testing.assert_allclose(fast.params[i], ref.params, rtol=1e-10)
        assert fast.sigma2[i] == pytest.approx(ref.scale, rel=1e-10)


def test_ill_conditioned_design_matches_the_general_branch():
    """A regressor with mean 50x its sd (uncentred correlation with the constant ~0.9998)."""
    rng = np.random.default_rng(7)
    n, t = 20, 240
    f = rng.normal(0.05, 0.001, (n, t))
    y = 0.01 + 0.8 * f + rng.normal(0, 0.02, (n, t))
    X = np.stack([np.ones((n, t)), f], axis=2)
    fast = fit_batched_ols(y, X, method="closed")
    _assert_same(fast, fit_batched_ols(y, X, method="normal"), rtol=1e-9)
    for i in range(n):
        ref = sm.OLS(y[i], X[i]).fit()
        np.testing.assert_allclose(fast.resid[i], ref.resid, atol=1e-10)
        np.testing.assert_allclose(fast.params[i], ref.params, rtol=1e-8)


def test_closed_method_refuses_other_designs_and_auto_falls_back():
    y, X, mask = _market_data(n=5, t=30)
    X3 = np.concatenate([X, X[:, :, 1:] ** 2], axis=2)
    with pytest.raises(ValueError, match="k == 2"):
        fit_batched_ols(y, X3, mask, method="closed")
    with pytest.raises(ValueError, match="method must be"):
        fit_batched_ols(y, X, mask, method="cholesky")
    three = fit_batched_ols(y, X3, mask)  # auto -> general branch for k = 3
    np.testing.assert_array_equal(three.params, fit_batched_ols(y, X3, mask, method="normal").params)
    refined = fit_batched_ols(y, X, mask, refine=True)  # auto -> general branch with refinement
    _assert_same(refined, fit_batched_ols(y, X, mask))
