"""The models peers have: Carhart, Asia Pacific factors, international market model,
Scholes–Williams, Dimson and GARCH(1,1), each checked against an independent computation
(statsmodels / arch run by hand on the same days, or a simulation with a known answer)."""

from __future__ import annotations

import warnings
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import crackdown as cd
from crackdown.errors import PriceDataError, StudyConfigError
from crackdown.estimation.layout import world_market_on_grid
from crackdown.estimation.study import EventStudy
from crackdown.estimation.thin_trading import thin_trading_beta
from crackdown.marketdata.factors import read_french_csv
from crackdown.timeline.calendars import sessions

EVENT = "alibaba_antitrust_probe"  # 2020-12-24, BABA and 9988.HK


def _used_days(res, row: int) -> pd.DatetimeIndex:
    p = res.panel
    used = np.isfinite(p.ar_est[row])
    return pd.DatetimeIndex(p.dates_est[row][used])


def _returns(tickers, start="2019-06-01", end="2021-06-30") -> pd.DataFrame:
    prices = cd.load_prices(tickers, start, end)
    return cd.returns_matrix(cd.compute_returns(prices))


# ----------------------------------------------------------------------------- simulation
def _thin_trader(n=4000, seed=3):
    """A stock whose price absorbs half of each market move the next session: beta = 1."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.01, n + 2)
    r = 0.0002 + 0.5 * m[1:-1] + 0.5 * m[:-2] + rng.normal(0, 0.01, n)
    return r, m[:-2], m[1:-1], m[2:]  # r_t, m_{t-1}, m_t, m_{t+1}


def test_thin_trading_betas_recover_the_true_beta_where_ols_is_halved():
    r, lag, m, lead = (a[None, :] for a in _thin_trader())
    use = np.ones_like(r, dtype=bool)
    ols = np.polyfit(m[0], r[0], 1)[0]
    sw = thin_trading_beta("scholes-williams", r, lag, m, lead, use)["beta"][0]
    dim = thin_trading_beta("dimson", r, lag, m, lead, use)["beta"][0]
    assert ols == pytest.approx(0.5, abs=0.05)
    assert sw == pytest.approx(1.0, abs=0.06)
    assert dim == pytest.approx(1.0, abs=0.06)


def test_scholes_williams_and_dimson_equal_statsmodels_by_hand():
    r, lag, m, lead = _thin_trader(n=300, seed=9)
    use = np.ones((1, 300), dtype=bool)
    use[0, ::17] = False  # masked days are left out of every moment
    keep = use[0]
    sw = thin_trading_beta("scholes-williams", r[None], lag[None], m[None], lead[None], use)
    slopes = [sm.OLS(r[keep], sm.add_constant(x[keep])).fit().params[1] for x in (lag, m, lead)]
    rho = np.corrcoef(m[keep], lag[keep])[0, 1]
    beta_sw = sum(slopes) / (1 + 2 * rho)
    assert sw["beta"][0] == pytest.approx(beta_sw, rel=1e-10)
    assert sw["alpha"][0] == pytest.approx(r[keep].mean() - beta_sw * m[keep].mean(), rel=1e-10)
    dim = thin_trading_beta("dimson", r[None], lag[None], m[None], lead[None], use)
    X = sm.add_constant(np.column_stack([lag, m, lead])[keep])
    b = sm.OLS(r[keep], X).fit().params
    assert dim["beta"][0] == pytest.approx(b[1] + b[2] + b[3], rel=1e-10)
    assert dim["b_lag"][0] == pytest.approx(b[1], rel=1e-10)


# ----------------------------------------------------------------------------- real events
@pytest.fixture(scope="module")
def event(prices_dir):
    return cd.load_events(event_ids=[EVENT])


@pytest.mark.parametrize("model", ["scholes-williams", "dimson"])
def test_thin_trading_models_on_a_real_event_match_a_hand_computation(event, model):
    res = EventStudy.from_events(event, model=model, tickers=["BABA"]).fit()
    fit = res.fits.iloc[0]
    days = _used_days(res, 0)
    grid = sessions("XNYS", "2019-06-01", "2021-06-30")
    ret = _returns(["BABA", "SPY"]).reindex(grid)
    m = ret["SPY"]
    frame = pd.DataFrame({"r": ret["BABA"], "lag": m.shift(1), "m": m, "lead": m.shift(-1)})
    est = frame.loc[days]
    assert est.notna().all().all() and len(est) == fit["n_obs"] == 240
    if model == "dimson":
        b = sm.OLS(est["r"], sm.add_constant(est[["lag", "m", "lead"]])).fit().params
        beta = b["lag"] + b["m"] + b["lead"]
    else:
        s = [sm.OLS(est["r"], sm.add_constant(est[c])).fit().params[c] for c in ("lag", "m", "lead")]
        beta = sum(s) / (1 + 2 * np.corrcoef(est["m"], est["lag"])[0, 1])
    alpha = est["r"].mean() - beta * est["m"].mean()
    assert fit["beta"] == pytest.approx(beta, rel=1e-9)
    assert fit["alpha"] == pytest.approx(alpha, rel=1e-7, abs=1e-12)
    # abnormal returns use the corrected beta on the contemporaneous market
    ev_days = pd.DatetimeIndex(res.panel.dates_event[0])
    expected = frame.loc[ev_days, "r"] - alpha - beta * frame.loc[ev_days, "m"]
    np.testing.assert_allclose(res.panel.ar_event[0], expected.to_numpy(), rtol=1e-9)
    resid = est["r"] - alpha - beta * est["m"]
    assert fit["sigma"] ** 2 == pytest.approx((resid**2).sum() / (len(est) - 2), rel=1e-9)


def test_garch_matches_arch_run_by_hand(event):
    from arch import arch_model

    res = EventStudy.from_events(event, model="garch", tickers=["BABA"]).fit()
    fit = res.fits.iloc[0]
    days = _used_days(res, 0)
    ret = _returns(["BABA", "SPY"])
    est = ret.loc[days]
    am = arch_model(100 * est["BABA"].to_numpy(), x=100 * est[["SPY"]].to_numpy(), mean="LS",
                    vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = am.fit(disp="off")
    const, slope, _omega, a, b = ref.params.to_numpy()
    assert fit["beta"] == pytest.approx(slope, rel=1e-8)
    assert fit["alpha"] == pytest.approx(const / 100, rel=1e-8)
    assert fit["garch_a"] == pytest.approx(a, rel=1e-8, abs=1e-12)
    assert fit["garch_b"] == pytest.approx(b, rel=1e-8)
    # variance forecasts: arch's own multi-step forecast from the last estimation day
    grid = sessions("XNYS", days[-1], "2021-01-31")
    steps = [grid.get_loc(d) for d in pd.DatetimeIndex(res.panel.dates_event[0])]
    x_future = np.zeros((1, max(steps)))
    h_arch = ref.forecast(horizon=max(steps), x={"x0": x_future}, reindex=False).variance
    expected_h = h_arch.to_numpy()[0, np.array(steps) - 1] / 100**2
    p = res.panel
    np.testing.assert_allclose(p.sigma2[0] * p.forecast_var_factor[0], expected_h, rtol=1e-8)
    # the standardized tests divide by the conditional sd: Var(CAR) = sum h
    assert p.car_variance(np.arange(3))[0] == pytest.approx(expected_h.sum(), rel=1e-8)
    both = EventStudy.from_events(event, model="garch").fit().tests().set_index("test")
    assert np.isfinite(both.loc["kolari_pynnonen_bmp", "statistic"])


def test_world_market_on_grid_sums_the_sessions_a_listing_has_not_priced():
    ny = sessions("XNYS", "2021-02-08", "2021-02-19")
    hk = sessions("XHKG", "2021-02-08", "2021-02-19")  # Lunar New Year: HK shut 02-12..02-15
    spy = pd.Series(np.arange(1, len(ny) + 1) / 1000.0, index=ny)
    out = world_market_on_grid(spy.to_frame("SPY"), "SPY", "XHKG", hk)
    by_hand = []
    for i, t in enumerate(hk):
        prev = hk[i - 1] if i else None
        if prev is None:
            by_hand.append(np.nan)  # the New York sessions before it are not in the data
            continue
        by_hand.append(spy[(spy.index >= prev) & (spy.index < t)].sum())
    np.testing.assert_allclose(out[1:], by_hand[1:], rtol=1e-12)
    # 2021-02-16 (first HK session after the holiday) prices NY 02-11, 02-12 (02-15 is a US
    # holiday too)
    assert out[hk.get_loc(pd.Timestamp("2021-02-16"))] == pytest.approx(
        spy["2021-02-11"] + spy["2021-02-12"])
    hsi = pd.Series(np.arange(1, len(hk) + 1) / 100.0, index=hk)
    back = world_market_on_grid(hsi.to_frame("^HSI"), "^HSI", "XNYS", ny)
    # New York on 2021-02-12 and 02-16: no Hong Kong session since the previous NY close on
    # 02-12 -> 0; 02-16 prices HK 02-16 (same date, HK closes first)
    assert back[ny.get_loc(pd.Timestamp("2021-02-12"))] == 0.0
    assert back[ny.get_loc(pd.Timestamp("2021-02-16"))] == pytest.approx(hsi["2021-02-16"])
    gap = hsi.copy()
    gap["2021-02-10"] = np.nan  # a missing return is never filled
    assert np.isnan(world_market_on_grid(gap.to_frame("^HSI"), "^HSI", "XNYS", ny)[2])


def test_international_model_matches_ols_on_hand_built_regressors(event):
    res = EventStudy.from_events(event, model="international").fit()
    fits = res.fits.set_index("ticker")
    assert set(fits.index) == {"BABA", "9988.HK"}
    bench, _ = cd.benchmark_returns(["HK_NONTECH_EW"], "2019-06-01", "2021-06-30")
    ret = _returns(["BABA", "9988.HK", "SPY"])
    # Hong Kong listing: local = HK proxy ex the treated firm, world = previous NY session(s)
    hk = sessions("XHKG", "2019-06-01", "2021-06-30")
    spy = ret["SPY"].reindex(sessions("XNYS", "2019-06-01", "2021-06-30"))
    def since(a, b):  # NY sessions in [a, b): none (NY closed) -> 0, a missing one -> NaN
        part = spy[(spy.index >= a) & (spy.index < b)]
        return part.sum(min_count=1) if len(part) else 0.0

    world_hk = pd.Series([since(a, b) for a, b in pairwise(hk)], index=hk[1:])
    row = int(np.flatnonzero(res.panel.keys["ticker"] == "9988.HK")[0])
    days = _used_days(res, row)
    X = pd.DataFrame({"m": bench.iloc[:, 0].reindex(days), "w": world_hk.reindex(days)})
    b = sm.OLS(ret["9988.HK"].reindex(days), sm.add_constant(X)).fit().params
    assert fits.loc["9988.HK", "b_world"] == pytest.approx(b["w"], rel=1e-8)
    assert fits.loc["9988.HK", "beta"] == pytest.approx(b["m"], rel=1e-8)
    assert fits.loc["9988.HK", "benchmark"] == "HK_NONTECH_EW"  # 9988.HK is no constituent
    # New York listing: local = SPY, world = the Hong Kong proxy of the same date
    row = int(np.flatnonzero(res.panel.keys["ticker"] == "BABA")[0])
    days = _used_days(res, row)
    ny = sessions("XNYS", "2019-06-01", "2021-06-30")
    hk_ret = bench.iloc[:, 0].reindex(hk)
    world_ny = {}
    for a, b in pairwise(ny):  # HK sessions in (a, b]: none (HK closed) -> 0
        part = hk_ret[(hk_ret.index > a) & (hk_ret.index <= b)]
        world_ny[b] = part.sum(min_count=1) if len(part) else 0.0
    X = pd.DataFrame({"m": ret["SPY"].reindex(days), "w": pd.Series(world_ny).reindex(days)})
    b = sm.OLS(ret["BABA"].reindex(days), sm.add_constant(X)).fit().params
    assert fits.loc["BABA", "b_world"] == pytest.approx(b["w"], rel=1e-8)


def test_carhart_on_a_real_event_matches_statsmodels(event, prices_dir):
    res = EventStudy.from_events(event, model="carhart", tickers=["BABA"]).fit()
    fit = res.fits.iloc[0]
    days = _used_days(res, 0)
    f3 = read_french_csv(prices_dir / "factors" / "F-F_Research_Data_Factors_daily.CSV")
    mom = read_french_csv(prices_dir / "factors" / "F-F_Momentum_Factor_daily.CSV")
    f = f3.join(mom).reindex(days)
    y = _returns(["BABA"])["BABA"].reindex(days) - f["rf"]
    b = sm.OLS(y, sm.add_constant(f[["mkt_rf", "smb", "hml", "mom"]])).fit().params
    for name in ("mkt_rf", "smb", "hml", "mom"):
        assert fit[f"b_{name}"] == pytest.approx(b[name], rel=1e-8)


def test_asia_pacific_factors_for_a_hong_kong_listing(event, prices_dir):
    res = EventStudy.from_events(event, model="ff3-asia", tickers=["9988.HK"]).fit()
    fit = res.fits.iloc[0]
    days = _used_days(res, 0)
    raw = pd.read_csv(prices_dir / "factors" / "Asia_Pacific_ex_Japan_3_Factors_Daily.csv")
    raw.index = pd.to_datetime(raw["Date"].astype(str), format="%Y%m%d")
    f = raw.reindex(days) / 100.0
    y = _returns(["9988.HK"])["9988.HK"].reindex(days) - f["RF"]
    b = sm.OLS(y, sm.add_constant(f[["Mkt-RF", "SMB", "HML"]])).fit().params
    assert fit["b_mkt_rf"] == pytest.approx(b["Mkt-RF"], rel=1e-8)
    assert fit["b_hml"] == pytest.approx(b["HML"], rel=1e-8)


def test_asia_pacific_factors_refuse_us_listings_and_dates_past_the_file(event):
    with pytest.raises(StudyConfigError, match="Hong Kong listings; BABA"):
        EventStudy.from_events(event, model="ff3-asia", tickers=["BABA", "9988.HK"])
    late = cd.load_events(event_ids=["didi_cybersecurity_review"])  # 2021-07-02
    with pytest.raises(PriceDataError, match="run to 2022-06-30"):
        EventStudy.from_events(cd.load_events(event_ids=[_event_after("2022-09-01")]),
                               model="ff5-asia", tickers=["0700.HK"]).fit()
    res = EventStudy.from_events(late, model="ff5-asia", tickers=["0700.HK"]).fit()
    assert res.outcomes["status"].iloc[0] == "used"


def _event_after(date: str) -> str:
    events = cd.load_events()
    later = events.loc[pd.to_datetime(events["date"]) > pd.Timestamp(date), "event_id"]
    return str(later.iloc[0])


def test_model_sensitivity_rows_equal_separate_studies(event):
    from crackdown.analyses.model_choice import model_sensitivity

    table = model_sensitivity(event, {"market": None, "carhart": ("XNYS",),
                                      "ff3-asia": ("XHKG",)})
    got = table.set_index(["model", "exchange"])
    assert set(got.index) == {("market", "XNYS"), ("market", "XHKG"), ("carhart", "XNYS"),
                              ("ff3-asia", "XHKG")}
    car = EventStudy.from_events(event).fit().car(-1, 1).set_index("exchange")["car"]
    assert got.loc[("market", "XHKG"), "caar"] == pytest.approx(car["XHKG"], rel=1e-12)
    alone = EventStudy.from_events(event, model="carhart", tickers=["BABA"]).fit()
    assert got.loc[("carhart", "XNYS"), "caar"] == pytest.approx(
        alone.car(-1, 1)["car"].iloc[0], rel=1e-12)
    assert got.loc[("carhart", "XNYS"), "beta"] == pytest.approx(alone.fits["beta"].iloc[0])
    assert got["note"].str.startswith("one listing").all()  # one listing per exchange: no test
