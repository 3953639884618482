"""Reproduce LemaireJean-Baptiste/eventstudy's AAPL iPhone 2007 table (single firm)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crackdown.inference as inf


@pytest.fixture(scope="module")
def aapl(holdout_dir):
    d = holdout_dir / "lemaire_aapl_iphone_2007"
    data = pd.read_csv(d / "simple_returns_AAPL_SPY.csv", index_col=0, parse_dates=True)
    expected = pd.read_csv(d / "expected_notebook_table_rounded.csv")
    e = data.index.get_loc(pd.Timestamp("2007-01-09"))
    est = data.iloc[e - 33 - 299: e - 33 + 1]  # 300 rows ending 33 rows before the event row
    window = data.iloc[e - 2: e + 11]  # rows -2 .. +10
    X = np.column_stack([np.ones(len(est)), est["SPY"]])
    coef = np.linalg.lstsq(X, est["AAPL"].to_numpy(), rcond=None)[0]
    resid = est["AAPL"].to_numpy() - X @ coef
    Xe = np.column_stack([np.ones(len(window)), window["SPY"]])
    ar = window["AAPL"].to_numpy() - Xe @ coef
    return {"est": est, "window": window, "coef": coef, "resid": resid, "ar": ar, "X": X,
            "Xe": Xe, "expected": expected}


def test_windows_and_fit(aapl):
    assert len(aapl["est"]) == 300
    assert aapl["est"].index[0] == pd.Timestamp("2005-09-13")
    assert aapl["est"].index[-1] == pd.Timestamp("2006-11-17")
    assert aapl["window"].index[0] == pd.Timestamp("2007-01-05")
    assert aapl["window"].index[-1] == pd.Timestamp("2007-01-24")
    np.testing.assert_allclose(aapl["coef"], [0.00135841, 1.52393911], atol=5e-9)


def test_table_at_printed_precision(aapl):
    path = inf.single_firm_path(aapl["ar"], aapl["resid"], ddof=0, forecast_error=False,
                                df=len(aapl["resid"]) - 1, rel_days=np.arange(-2, 11))
    exp = aapl["expected"]
    np.testing.assert_array_equal(path.rel_days, exp["rel_day"])
    np.testing.assert_allclose(path.ar, exp["AR"], atol=5e-4 + 1e-12)
    np.testing.assert_allclose(path.se_ar, exp["SE_AR"], atol=5e-6 + 1e-12)
    np.testing.assert_allclose(path.car, exp["CAR"], atol=5e-4 + 1e-12)
    np.testing.assert_allclose(path.se_car, exp["SE_CAR"], atol=5e-6 + 1e-12)
    np.testing.assert_allclose(path.t_car, exp["T_stat"], atol=5e-3 + 1e-12)
    assert path.df == 299
    # the notebook's p-values are one-sided: check that reading, not the numbers' digits
    from scipy import stats

    one_sided = stats.t.sf(np.abs(path.t_car), 299)
    np.testing.assert_allclose(one_sided, exp["P_value_one_sided_as_printed"], atol=5e-3 + 1e-12)
    np.testing.assert_allclose(path.p_car, 2 * one_sided, rtol=1e-10)


def test_textbook_convention_is_slightly_wider(aapl):
    """Default (ddof=k, forecast error on) inflates the SE a little relative to Lemaire's."""
    H = inf.ols_forecast_matrix(aapl["X"], aapl["Xe"])
    clean = inf.single_firm_path(aapl["ar"], aapl["resid"], forecast_matrix=H)
    lemaire = inf.single_firm_path(aapl["ar"], aapl["resid"], ddof=0, forecast_error=False)
    ratio = clean.se_car / lemaire.se_car
    tau = np.arange(1, 14)
    cum_h = np.array([H[:j, :j].sum() for j in tau])
    np.testing.assert_allclose(ratio, np.sqrt(300 / 298 * (tau + cum_h) / tau), rtol=1e-12)
    assert np.all(ratio > 1.0) and np.all(ratio < 1.03)  # 0.7% .. 2.5% wider here
    res = inf.single_firm_car_test(aapl["ar"], aapl["resid"], (0, 1), rel_days=np.arange(-2, 11),
                                   forecast_matrix=H)
    assert res.estimate == pytest.approx(aapl["ar"][2:4].sum())
    assert res.df == 298
