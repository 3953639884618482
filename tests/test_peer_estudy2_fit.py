"""Reproduce estudy2's market-model fit and abnormal returns (7 firms, COVID crash).

Peer: R package estudy2 v0.10.0 (see <shared>/data/eventstudy_holdout/README.md, section 1).
Estimation = the 240 index days 2019-04-02..2020-03-13 (complete cases per firm: ZM 227,
UBER 212), event window 2020-03-16..2020-03-20, log returns, market model on ^GSPC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crackdown.estimation.study import EventStudy

TOL = 1e-10  # the expected CSVs are printed with 12 significant digits


@pytest.fixture(scope="module")
def estudy2(holdout_dir):
    folder = holdout_dir / "estudy2_covid7"
    returns = pd.read_csv(folder / "log_returns_7firms_gspc.csv", index_col="date",
                          parse_dates=True)
    firms = [c for c in returns.columns if c != "GSPC"]
    firm_events = pd.DataFrame({"event_id": "covid_crash", "ticker": firms,
                                "day0": pd.Timestamp("2020-03-16")})
    return folder, returns, firm_events


def _fit(returns, firm_events, window):
    study = EventStudy(returns, firm_events, benchmark="GSPC", model="market",
                       estimation=(-240, -1), window=window, min_estimation_obs=200,
                       session_grid="data", returns_kind="log")
    return study.fit()


def test_market_model_fit_matches_estudy2(estudy2):
    folder, returns, firm_events = estudy2
    res = _fit(returns, firm_events, (0, 4))
    assert (res.outcomes["status"] == "used").all()
    expected = pd.read_csv(folder / "expected_market_model_fit.csv").set_index("firm")
    fits = res.fits.set_index("ticker").loc[expected.index]
    np.testing.assert_allclose(fits["alpha"], expected["alpha"], rtol=0, atol=TOL)
    np.testing.assert_allclose(fits["beta"], expected["beta"], rtol=0, atol=TOL)
    assert fits["n_obs"].tolist() == expected["estimation_length"].tolist()
    assert fits.loc["UBER", "n_obs"] == 212 and fits.loc["ZM", "n_obs"] == 227
    assert (fits["est_end"] == pd.Timestamp("2020-03-13")).all()
    # sigma: our ddof=k (2) value, rescaled to the peer-derived ddof=1 sd of the same residuals
    rescaled = fits["sigma"] * np.sqrt((fits["n_obs"] - 2) / (fits["n_obs"] - 1))
    np.testing.assert_allclose(rescaled, expected["sigma_est_resid_sd_ddof1"], rtol=1e-9)


def test_event_window_abnormal_returns_match_estudy2(estudy2):
    folder, returns, firm_events = estudy2
    res = _fit(returns, firm_events, (0, 4))
    expected = pd.read_csv(folder / "expected_abnormal_returns_event_window.csv",
                           index_col="date", parse_dates=True)
    ar = res.ar.pivot(index="date", columns="ticker", values="ar")
    assert list(ar.index) == list(expected.index)
    diff = np.abs(ar.loc[expected.index, expected.columns].to_numpy() - expected.to_numpy())
    assert diff.max() < TOL
    # README: the CAAR over the 5 days is 5 x 0.02213319 = 0.1106659
    assert res.caar()["caar"].iloc[0] == pytest.approx(0.1106659, abs=5e-7)


def test_all_days_abnormal_returns_match_estudy2(estudy2):
    folder, returns, firm_events = estudy2
    expected = pd.read_csv(folder / "expected_abnormal_returns_all_days.csv", index_col="date",
                           parse_dates=True)
    # event window 0..11 runs to the last file day (2020-03-31); estimation residuals cover the rest
    res = _fit(returns, firm_events, (0, 11))
    p = res.panel
    got = {}
    for i, ticker in enumerate(p.keys["ticker"]):
        s_est = pd.Series(p.ar_est[i], index=pd.DatetimeIndex(p.dates_est[i]))
        s_ev = pd.Series(p.ar_event[i], index=pd.DatetimeIndex(p.dates_event[i]))
        got[ticker] = pd.concat([s_est, s_ev])
    got = pd.DataFrame(got).reindex(expected.index)[expected.columns]
    both_nan = got.isna().to_numpy() == expected.isna().to_numpy()
    assert both_nan.all(), "missing days (ZM/UBER before their IPOs) must agree"
    diff = np.abs(got.to_numpy() - expected.to_numpy())
    assert np.nanmax(diff) < TOL
    assert expected.notna().sum().sum() == np.isfinite(got.to_numpy()).sum()
