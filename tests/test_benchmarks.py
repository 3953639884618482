"""The Hong Kong market proxy without the treated sector (HK_NONTECH_EW).

Checked against hand computations: a small frame averaged by hand, the raw constituent CSVs
read with pandas, and the leave-the-treated-out rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crackdown import EventStudy, load_events
from crackdown.errors import PriceDataError
from crackdown.marketdata.benchmarks import (
    HK_NONTECH_EW,
    benchmark_constituents,
    benchmark_name,
    benchmark_returns,
    equal_weighted_returns,
    parse_benchmark_name,
)
from crackdown.timeline.universe import default_benchmark, load_universe


def test_equal_weighted_returns_by_hand():
    idx = pd.to_datetime(["2022-01-03", "2022-01-04", "2022-01-05"])
    r = pd.DataFrame({"a": [0.01, np.nan, 0.03], "b": [0.03, 0.02, np.nan],
                      "c": [-0.01, np.nan, np.nan]}, index=idx)
    got = equal_weighted_returns(r, min_constituents=2)
    assert got.iloc[0] == pytest.approx((0.01 + 0.03 - 0.01) / 3)
    assert np.isnan(got.iloc[1]) and np.isnan(got.iloc[2])  # one return only: too thin
    assert got.attrs["thin_days"] == ["2022-01-04", "2022-01-05"]
    assert got.attrs["n_constituents"].tolist() == [3, 1, 1]
    one = equal_weighted_returns(r, min_constituents=1, kind="log")
    assert one.iloc[1] == pytest.approx(np.log(1.02))
    assert one.iloc[0] == pytest.approx(np.log1p(0.01))


def test_constituents_are_the_non_tech_rows_and_names_encode_exclusions():
    members = benchmark_constituents()
    uni = load_universe().set_index("ticker")
    assert len(members) == 44
    assert set(uni.loc[members, "role"]) == {"benchmark_constituent"}
    assert not {"0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK"} & set(members)
    name = benchmark_name(HK_NONTECH_EW, ["2318.HK", "BABA", "0388.HK"])
    assert name == "HK_NONTECH_EW ex 0388.HK+2318.HK"  # non-members ignored, sorted
    assert parse_benchmark_name(name) == (HK_NONTECH_EW, ("0388.HK", "2318.HK"))
    assert len(benchmark_constituents(name)) == 42
    assert benchmark_name(HK_NONTECH_EW, ["BABA"]) == HK_NONTECH_EW
    assert default_benchmark("9988.HK") == HK_NONTECH_EW
    assert default_benchmark("XHKG") == HK_NONTECH_EW


def _raw_simple_returns(prices_dir, ticker):
    frame = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"]).set_index("Date")
    return frame["Close"].pct_change()


def test_snapshot_benchmark_is_the_mean_of_raw_constituent_returns(prices_dir):
    rets, info = benchmark_returns([HK_NONTECH_EW, "HK_NONTECH_EW ex 0005.HK"],
                                   "2022-03-01", "2022-04-29", prices_dir=prices_dir)
    members = benchmark_constituents()
    raw = pd.DataFrame({t: _raw_simple_returns(prices_dir, t) for t in members})
    days = rets.index[1:]  # the first day has no previous price inside the range
    expected = raw.loc[days].mean(axis=1)
    np.testing.assert_allclose(rets.loc[days, HK_NONTECH_EW], expected, rtol=0, atol=1e-12)
    loo = raw.drop(columns="0005.HK").loc[days].mean(axis=1)
    np.testing.assert_allclose(rets.loc[days, "HK_NONTECH_EW ex 0005.HK"], loo, atol=1e-12)
    # 2022-03-16 (Liu He): ^HSI +9.1%, the non-tech blue chips about +4%
    assert 0.035 < rets.loc["2022-03-16", HK_NONTECH_EW] < 0.05
    assert info[HK_NONTECH_EW]["constituents"] == members
    assert info[HK_NONTECH_EW]["missing"] == {} and info[HK_NONTECH_EW]["thin_days"] == []


def test_study_default_hk_benchmark_leaves_out_the_events_own_constituents(prices_dir):
    events = pd.DataFrame({"event_id": ["e"], "date": ["2021-07-06"], "time_beijing": ["10:00"],
                           "tickers": ["9988.HK;2318.HK;BABA"]})
    study = EventStudy.from_events(events, prices_dir=prices_dir)
    fits = study.fit().fits.set_index("ticker")
    assert fits.loc["BABA", "benchmark"] == "SPY"
    # Ping An is named by the event: neither listing's proxy contains it
    assert fits.loc["9988.HK", "benchmark"] == "HK_NONTECH_EW ex 2318.HK"
    assert fits.loc["2318.HK", "benchmark"] == "HK_NONTECH_EW ex 2318.HK"
    info = study.benchmark_info["HK_NONTECH_EW ex 2318.HK"]
    assert len(info["constituents"]) == 43 and "2318.HK" not in info["constituents"]
    # ^HSI stays selectable, per exchange
    hsi = EventStudy.from_events(events, prices_dir=prices_dir,
                                 benchmark={"XHKG": "^HSI", "XNYS": "SPY"}).fit().fits
    assert set(hsi.loc[hsi["exchange"] == "XHKG", "benchmark"]) == {"^HSI"}
    beta_hsi = hsi.set_index("ticker").loc["9988.HK", "beta"]
    assert abs(beta_hsi - fits.loc["9988.HK", "beta"]) > 0.05


def test_missing_constituents_raise_a_clear_error(prices_without):
    members = benchmark_constituents()
    folder = prices_without(*members[:20])
    events = load_events(event_ids=["alibaba_antitrust_fine"])
    with pytest.raises(PriceDataError, match=r"only 24 of 44 constituents.*benchmark='\^HSI'"):
        EventStudy.from_events(events, prices_dir=folder)


def test_constructed_benchmark_missing_from_user_returns_says_how_to_build_it():
    idx = pd.bdate_range("2021-01-04", periods=300)
    rets = pd.DataFrame({"9988.HK": 0.0}, index=idx)
    fe = pd.DataFrame({"event_id": ["e"], "ticker": ["9988.HK"], "day0": [idx[280]]})
    with pytest.raises(Exception, match="HK_NONTECH_EW.*crackdown.benchmark_returns"):
        EventStudy(rets, fe, session_grid="data")


def test_benchmark_sensitivity_matches_statsmodels_with_either_proxy(prices_dir):
    import statsmodels.api as sm

    from crackdown.analyses.benchmark_choice import benchmark_sensitivity
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.returns import compute_returns, returns_matrix
    from crackdown.timeline.calendars import relative_sessions

    events = load_events(event_ids=["liu_he_fsdc_market_support"])
    table = benchmark_sensitivity(events, prices_dir=prices_dir).set_index("exchange")
    hk = [t for t in events["ticker_list"].iloc[0] if t.endswith(".HK")]
    assert table.loc["XHKG", "n_firms"] == len(hk) == 4
    prices = load_prices(hk + ["^HSI"] + benchmark_constituents(), "2020-06-01", "2022-06-30",
                         prices_dir=prices_dir)
    wide = returns_matrix(compute_returns(prices))
    proxies = {"hsi": wide["^HSI"], "clean": wide[benchmark_constituents()].mean(axis=1)}
    day0 = pd.Timestamp("2022-03-16")  # 14:00 Beijing: the Hong Kong afternoon session
    est, win = relative_sessions("XHKG", day0, -250, -11), relative_sessions("XHKG", day0, -1, 1)
    for label, m in proxies.items():
        cars = []
        for t in hk:
            y, x = wide[t].reindex(est), m.reindex(est)
            ok = y.notna() & x.notna()
            fit = sm.OLS(y[ok].to_numpy(), sm.add_constant(x[ok].to_numpy())).fit()
            cars.append((wide[t].reindex(win) - fit.params[0]
                         - fit.params[1] * m.reindex(win)).sum())
        assert table.loc["XHKG", f"caar_{label}"] == pytest.approx(np.mean(cars), abs=1e-10)
    # ^HSI rose with the platforms: the clean proxy leaves much more of the rally as abnormal
    assert table.loc["XHKG", "difference"] > 0.05


def test_sector_relative_is_the_raw_return_gap_to_the_sector(prices_dir):
    from crackdown.analyses.benchmark_choice import sector_relative

    events = load_events(event_ids=["alibaba_antitrust_fine"])
    res = EventStudy.from_events(events, prices_dir=prices_dir).fit()
    rel = sector_relative(res, prices_dir=prices_dir).set_index("ticker")
    for ticker, sector, days in (("BABA", "KWEB", ["2021-04-09", "2021-04-12", "2021-04-13"]),
                                 ("9988.HK", "^HSTECH", ["2021-04-09", "2021-04-12",
                                                         "2021-04-13"])):
        frame = pd.read_csv(prices_dir / f"{ticker}.csv", parse_dates=["Date"]).set_index("Date")
        sec = pd.read_csv(prices_dir / f"{sector}.csv", parse_dates=["Date"]).set_index("Date")
        col = "Adj Close" if "Adj Close" in frame else "Close"
        scol = "Adj Close" if "Adj Close" in sec else "Close"
        r = frame[col].pct_change().loc[days].sum()
        s = sec[scol].pct_change().loc[days].sum()
        assert rel.loc[ticker, "sector"] == sector
        assert rel.loc[ticker, "ret_sum"] == pytest.approx(r, abs=1e-12)
        assert rel.loc[ticker, "sector_sum"] == pytest.approx(s, abs=1e-12)
        assert rel.loc[ticker, "relative_to_sector"] == pytest.approx(r - s, abs=1e-12)


def test_hong_kong_only_event_needs_no_ticker_benchmark(prices_dir, prices_without):
    # Meituan's fine names 3690.HK only: its proxy is built, nothing else is loaded
    events = load_events(event_ids=["meituan_antitrust_fine"])
    res = EventStudy.from_events(events, prices_dir=prices_dir).fit()
    assert res.outcomes["status"].tolist() == ["used"]
    assert res.fits["benchmark"].tolist() == [HK_NONTECH_EW]
    # and when the event's only listing has no prices, the outcome says so
    folder = prices_without("3690.HK")
    with pytest.warns(UserWarning, match="no prices for 3690.HK"):
        res = EventStudy.from_events(events, prices_dir=folder).fit()
    assert res.outcomes["status"].tolist() == ["no_price_data"]
