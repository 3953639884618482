"""EventStudy: statsmodels agreement on the real snapshot, outcome log, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crackdown.errors import PriceDataError, StudyConfigError
from crackdown.estimation.study import EventStudy
from crackdown.timeline.calendars import relative_sessions
from crackdown.timeline.universe import load_universe

TOL = 1e-10
EVENTS = ["ant_ipo_suspended", "samr_platform_antitrust_draft",
          "overseas_listing_crackdown_opinions"]


@pytest.fixture(scope="module")
def events_table():
    from crackdown.timeline.events import load_events

    return load_events()


@pytest.fixture(scope="module")
def real_returns(prices_dir):
    """Wide simple returns of the snapshot tickers used below (independent of EventStudy)."""
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix

    tickers = ["BABA", "9988.HK", "JD", "PDD", "BIDU", "TCEHY", "0700.HK", "3690.HK", "9618.HK",
               "DIDI", "YMM", "NTES", "VIPS",
               "LI", "SPY", "^HSI"]
    prices = load_prices(tickers, "2018-06-01", "2022-06-30", prices_dir=prices_dir)
    wide = returns_matrix(compute_returns(prices, kind="simple"))
    # the default Hong Kong proxy, recomputed here: mean of the 44 constituents' returns
    members = [t for t, r in zip(load_universe()["ticker"], load_universe()["role"])
               if r == "benchmark_constituent"]
    cons = returns_matrix(compute_returns(load_prices(members, "2018-06-01", "2022-06-30",
                                                      prices_dir=prices_dir)))
    wide["HK_NONTECH_EW"] = cons.mean(axis=1).where(cons.notna().sum(axis=1) >= 30)
    return wide


def _reference_fit(returns, ticker, bench, exchange, day0, est=(-250, -11), window=(-1, 1),
                   factors=None):
    """statsmodels OLS of one firm-event on its own exchange sessions (complete cases)."""
    est_days = relative_sessions(exchange, day0, *est)
    ev_days = relative_sessions(exchange, day0, *window)
    y = returns[ticker].reindex(est_days)
    if factors is None:
        X = pd.DataFrame({"const": 1.0, "m": returns[bench].reindex(est_days)})
        Xe = pd.DataFrame({"const": 1.0, "m": returns[bench].reindex(ev_days)})
        ye = returns[ticker].reindex(ev_days)
    else:
        f = factors.reindex(est_days)
        fe = factors.reindex(ev_days)
        y = y - f["rf"]
        X = pd.concat([pd.Series(1.0, index=est_days, name="const"),
                       f[["mkt_rf", "smb", "hml"]]], axis=1)
        Xe = pd.concat([pd.Series(1.0, index=ev_days, name="const"),
                        fe[["mkt_rf", "smb", "hml"]]], axis=1)
        ye = returns[ticker].reindex(ev_days) - fe["rf"]
    ok = y.notna() & X.notna().all(axis=1)
    res = sm.OLS(y[ok].to_numpy(), X[ok].to_numpy()).fit()
    ar = ye.to_numpy() - Xe.to_numpy() @ res.params
    return res, ar, ev_days


def test_market_model_matches_statsmodels_on_real_snapshot(events_table, real_returns, prices_dir):
    events = events_table[events_table["event_id"].isin(EVENTS)]
    study = EventStudy.from_events(events, prices_dir=prices_dir, fallback="market-adjusted")
    res = study.fit()
    fits = res.fits
    ar = res.ar
    checked = 0
    for row in fits.itertuples(index=False):
        if row.model != "market":
            continue
        day0 = res.outcomes.set_index(["event_id", "ticker"]).loc[(row.event_id, row.ticker),
                                                                 "day0"]
        bench = "SPY" if row.exchange == "XNYS" else "HK_NONTECH_EW"
        assert row.benchmark == bench
        ref, ref_ar, ev_days = _reference_fit(real_returns, row.ticker, bench, row.exchange, day0)
        assert row.alpha == pytest.approx(ref.params[0], abs=TOL)
        assert row.beta == pytest.approx(ref.params[1], abs=TOL)
        assert row.sigma == pytest.approx(np.sqrt(ref.scale), abs=TOL)
        assert row.n_obs == ref.nobs
        assert row.r2 == pytest.approx(ref.rsquared, abs=TOL)
        got = ar[(ar.event_id == row.event_id) & (ar.ticker == row.ticker)]
        assert list(got["date"]) == list(ev_days)
        np.testing.assert_allclose(got["ar"].to_numpy(), ref_ar, rtol=0, atol=TOL)
        np.testing.assert_allclose(got["car"].to_numpy(), np.cumsum(ref_ar), rtol=0, atol=TOL)
        checked += 1
    assert checked >= 15  # several tickers x several events, US and HK listings
    assert {"XNYS", "XHKG"} <= set(fits["exchange"])


def test_ff3_matches_statsmodels_on_real_factors(events_table, real_returns, prices_dir):
    from crackdown.marketdata.factors import load_factors

    factors = load_factors("ff3")
    events = events_table[events_table["event_id"].isin(EVENTS)]
    tickers = ["BABA", "JD", "PDD", "BIDU"]
    study = EventStudy.from_events(events, tickers=tickers, prices_dir=prices_dir, model="ff3")
    res = study.fit()
    assert (res.outcomes["status"] == "used").all()
    assert len(res.fits) == len(tickers) * len(EVENTS)
    for row in res.fits.itertuples(index=False):
        day0 = res.outcomes.set_index(["event_id", "ticker"]).loc[(row.event_id, row.ticker),
                                                                 "day0"]
        ref, ref_ar, _ = _reference_fit(real_returns, row.ticker, None, "XNYS", day0,
                                        factors=factors)
        got = [row.b_const, row.b_mkt_rf, row.b_smb, row.b_hml]
        np.testing.assert_allclose(got, ref.params, rtol=0, atol=TOL)
        assert row.beta == row.b_mkt_rf and row.alpha == row.b_const
        assert row.sigma == pytest.approx(np.sqrt(ref.scale), abs=TOL)
        a = res.ar
        got_ar = a[(a.event_id == row.event_id) & (a.ticker == row.ticker)]["ar"].to_numpy()
        np.testing.assert_allclose(got_ar, ref_ar, rtol=0, atol=TOL)


def test_ff3_on_hong_kong_sessions_names_missing_factor_dates(events_table, prices_dir):
    events = events_table[events_table["event_id"] == "ant_ipo_suspended"]
    study = EventStudy.from_events(events, tickers=["9988.HK"], prices_dir=prices_dir,
                                   model="ff3", min_estimation_obs=50)
    with pytest.raises(PriceDataError, match=r"factor data .* missing on \d+ date\(s\).*20\d\d-"):
        study.fit()


def _firm_events(rows):
    return pd.DataFrame(rows, columns=["event_id", "ticker", "day0", "exchange"])


def test_didi_insufficient_estimation_then_fallback_flagged(real_returns):
    fe = _firm_events([("didi_review", "DIDI", pd.Timestamp("2021-07-02"), "XNYS"),
                       ("didi_review", "BABA", pd.Timestamp("2021-07-02"), "XNYS")])
    plain = EventStudy(real_returns, fe).fit()
    didi = plain.outcomes.set_index("ticker").loc["DIDI"]
    assert didi["status"] == "insufficient_estimation"
    assert "0 usable estimation days of 240 (minimum 100)" in didi["detail"]
    assert not didi["included"]
    assert set(plain.ar["ticker"]) == {"BABA"}

    res = EventStudy(real_returns, fe, fallback="market-adjusted").fit()
    didi = res.outcomes.set_index("ticker").loc["DIDI"]
    assert didi["status"] == "fallback" and didi["flagged"] and didi["included"]
    assert "market-adjusted" in didi["detail"] and didi["model"] == "market-adjusted"
    got = res.ar[res.ar.ticker == "DIDI"]
    assert got["flagged"].all() and (got["model"] == "market-adjusted").all()
    days = relative_sessions("XNYS", "2021-07-02", -1, 1)
    expected = (real_returns["DIDI"] - real_returns["SPY"]).reindex(days).to_numpy()
    np.testing.assert_allclose(got["ar"].to_numpy(), expected, atol=1e-15)
    # DIDI's first trading day is 2021-06-30, its first return 2021-07-01 (= day -1)
    assert got["date"].iloc[0] == pd.Timestamp("2021-07-01")
    assert res.outcomes.set_index("ticker").loc["BABA", "status"] == "used"


def test_listed_after_event_and_missing_event_window(real_returns):
    fe = _firm_events([
        ("pre_ipo", "LI", pd.Timestamp("2020-06-01"), "XNYS"),  # LI listed 2020-07-30
        ("delist", "DIDI", pd.Timestamp("2021-12-03"), "XNYS"),  # DIDI data end 2021-12-30
    ])
    res = EventStudy(real_returns, fe, window=(-1, 25), min_estimation_obs=50).fit()
    out = res.outcomes.set_index("ticker")
    assert out.loc["LI", "status"] == "listed_after_event"
    first = real_returns["LI"].first_valid_index()  # the detail names both dates in full
    assert out.loc["LI", "detail"] == (f"first return of LI on {first:%Y-%m-%d}, after day 0 "
                                       "2020-06-01")
    assert "2020-07-31" in out.loc["LI", "detail"] and not out.loc["LI", "included"]
    assert out.loc["DIDI", "status"] == "missing_event_window"
    assert out.loc["DIDI", "flagged"] and out.loc["DIDI", "included"]
    missing_days = relative_sessions("XNYS", "2021-12-03", 19, 25)
    assert missing_days[0] == pd.Timestamp("2021-12-31")  # first session after the data end
    assert "+19 (2021-12-31)" in out.loc["DIDI", "detail"]
    assert f"+25 ({missing_days[-1]:%Y-%m-%d})" in out.loc["DIDI", "detail"]
    didi = res.ar[res.ar.ticker == "DIDI"].set_index("rel_day")
    assert np.isfinite(didi.loc[18, "ar"])
    assert didi.loc[19:, "ar"].isna().all() and didi.loc[19:, "car"].isna().all()
    car = res.car(-1, 1).set_index("ticker")
    assert np.isfinite(car.loc["DIDI", "car"])
    assert np.isnan(res.car().set_index("ticker").loc["DIDI", "car"])  # never summed over a gap


def test_missing_event_day_inside_window_is_named(real_returns):
    rets = real_returns.copy()
    rets.loc[pd.Timestamp("2021-07-06"), "BABA"] = np.nan
    fe = _firm_events([("ev", "BABA", pd.Timestamp("2021-07-06"), "XNYS")])
    res = EventStudy(rets, fe).fit()
    row = res.outcomes.iloc[0]
    assert row["status"] == "missing_event_window"
    assert "+0 (2021-07-06)" in row["detail"]
    assert res.ar["ar"].isna().tolist() == [False, True, False]


def test_no_price_data_outcome_for_an_events_own_ticker(events_table, prices_without):
    events = events_table[events_table["event_id"] == "ymm_kanzhun_cybersecurity_review"]
    assert "BZ" in events["ticker_list"].iloc[0]
    folder = prices_without("BZ")  # the snapshot has BZ: take it away
    with pytest.warns(UserWarning, match="BZ"):
        study = EventStudy.from_events(events, prices_dir=folder, min_estimation_obs=5,
                                       fallback="market-adjusted")
    res = study.fit()
    out = res.outcomes.set_index("ticker")
    assert out.loc["BZ", "status"] == "no_price_data"
    assert "BZ" in out.loc["BZ", "detail"]
    assert (out.drop(index="BZ")["status"] != "no_price_data").all()


def test_clean_estimation_drops_other_event_windows_of_the_same_firm(real_returns):
    d1, d2 = pd.Timestamp("2021-07-06"), pd.Timestamp("2021-06-01")
    fe = _firm_events([("a", "BABA", d1, "XNYS"), ("b", "BABA", d2, "XNYS")])
    dirty = EventStudy(real_returns, fe).fit()
    clean = EventStudy(real_returns, fe, clean_estimation=True).fit()
    n_dirty = dirty.fits.set_index("event_id")["n_obs"]
    n_clean = clean.fits.set_index("event_id")["n_obs"]
    assert n_clean["a"] == n_dirty["a"] - 3  # event b's window -1..+1 lies in a's estimation
    assert n_clean["b"] == n_dirty["b"]  # a's window is after b's estimation window
    est = relative_sessions("XNYS", d1, -250, -11)
    drop = relative_sessions("XNYS", d2, -1, 1)
    keep = est.difference(drop)
    y = real_returns["BABA"].reindex(keep)
    x = real_returns["SPY"].reindex(keep)
    ok = y.notna() & x.notna()
    ref = sm.OLS(y[ok].to_numpy(), sm.add_constant(x[ok].to_numpy())).fit()
    row = clean.fits.set_index("event_id").loc["a"]
    assert row["alpha"] == pytest.approx(ref.params[0], abs=TOL)
    assert row["beta"] == pytest.approx(ref.params[1], abs=TOL)


def _toy():
    idx = pd.bdate_range("2020-01-01", periods=400)
    rng = np.random.default_rng(0)
    rets = pd.DataFrame({"A": rng.normal(0, 0.02, 400), "M": rng.normal(0, 0.01, 400)},
                        index=idx)
    fe = pd.DataFrame({"event_id": ["e"], "ticker": ["A"], "day0": [idx[300]]})
    return rets, fe


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window": (2, 1)}, "event window 2:1 ends before it starts"),
        ({"estimation": (-11, -250)}, "estimation window -11:-250 ends before it starts"),
        ({"estimation": (-250, 0)}, "overlaps the event window"),
        ({"estimation": (0, 30), "window": (-1, 1)}, "overlaps the event window"),
        ({"model": "capm"}, "unknown model 'capm'"),
        ({"fallback": "nope"}, "unknown model 'nope'"),
        ({"session_grid": "weekly"}, "session_grid"),
        ({"min_estimation_obs": 0}, "min_estimation_obs"),
    ],
)
def test_validation_errors(kwargs, message):
    rets, fe = _toy()
    kwargs = {"benchmark": "M", "session_grid": "data", **kwargs}
    with pytest.raises(StudyConfigError, match=message):
        EventStudy(rets, fe, **kwargs)


def test_unknown_ticker_and_benchmark_are_config_errors():
    rets, fe = _toy()
    bad = fe.assign(ticker="ZZZ")
    with pytest.raises(StudyConfigError, match="ZZZ not in the returns columns"):
        EventStudy(rets, bad, benchmark="M", session_grid="data")
    with pytest.raises(StudyConfigError, match="benchmark.*QQQ"):
        EventStudy(rets, fe, benchmark="QQQ", session_grid="data")
    with pytest.raises(StudyConfigError, match="lacks column"):
        EventStudy(rets, fe.drop(columns="day0"), benchmark="M", session_grid="data")
    with pytest.raises(StudyConfigError, match="not a XNYS session"), \
            pytest.warns(UserWarning, match="not XNYS sessions"):
        EventStudy(rets, fe.assign(day0=pd.Timestamp("2020-07-04"), exchange="XNYS"),
                   benchmark="M").fit()


def test_data_grid_toy_matches_statsmodels_and_uses_available_days():
    rets, fe = _toy()
    rets.iloc[100:160, 0] = np.nan  # 60 missing estimation days: 180 of 240 left
    res = EventStudy(rets, fe, benchmark="M", session_grid="data").fit()
    est = rets.iloc[300 - 250:300 - 10]
    ok = est["A"].notna()
    ref = sm.OLS(est.loc[ok, "A"].to_numpy(), sm.add_constant(est.loc[ok, "M"].to_numpy())).fit()
    row = res.fits.iloc[0]
    assert row["n_obs"] == 180
    assert row["alpha"] == pytest.approx(ref.params[0], abs=TOL)
    ev = rets.iloc[299:302]
    np.testing.assert_allclose(res.ar["ar"], ev["A"] - ref.params[0] - ref.params[1] * ev["M"],
                               atol=TOL)
    short = EventStudy(rets, fe, benchmark="M", session_grid="data",
                       min_estimation_obs=200).fit()
    assert short.outcomes["status"].iloc[0] == "insufficient_estimation"
    assert "180 usable estimation days of 240 (minimum 200)" in short.outcomes["detail"].iloc[0]


def test_user_factor_set_with_rf_matches_statsmodels():
    rets, fe = _toy()
    rng = np.random.default_rng(4)
    factors = pd.DataFrame({"f1": rng.normal(0, 0.01, len(rets)),
                            "f2": rng.normal(0, 0.01, len(rets)),
                            "rf": np.full(len(rets), 0.0001)}, index=rets.index)
    res = EventStudy(rets, fe, model="factors", factors=factors, session_grid="data").fit()
    est = slice(300 - 250, 300 - 10)
    y = rets["A"].iloc[est] - factors["rf"].iloc[est]
    X = sm.add_constant(factors[["f1", "f2"]].iloc[est].to_numpy())
    ref = sm.OLS(y.to_numpy(), X).fit()
    row = res.fits.iloc[0]
    np.testing.assert_allclose([row["b_const"], row["b_f1"], row["b_f2"]], ref.params, atol=TOL)
    ev = slice(299, 302)
    expected = (rets["A"].iloc[ev] - factors["rf"].iloc[ev]).to_numpy() - sm.add_constant(
        factors[["f1", "f2"]].iloc[ev].to_numpy(), has_constant="add") @ ref.params
    np.testing.assert_allclose(res.ar["ar"], expected, atol=TOL)
    short = factors.iloc[:250]  # factors end before the event window
    with pytest.raises(PriceDataError, match="factor data"):
        EventStudy(rets, fe, model="factors", factors=short, session_grid="data").fit()
