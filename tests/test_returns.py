"""crackdown.marketdata.returns against plain arithmetic on the raw CSVs and synthetic gap cases."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from crackdown.errors import PriceDataError
from crackdown.marketdata.prices import load_prices
from crackdown.marketdata.returns import compute_returns, returns_matrix, session_returns


def _raw_return(path: Path, day: str, column: str) -> float:
    """Simple return on ``day`` from the raw file: this row's price / previous row's - 1."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    i = next(k for k, r in enumerate(rows) if r["Date"][:10] == day)
    return float(rows[i][column]) / float(rows[i - 1][column]) - 1.0


# PROVENANCE.md checks: (ticker, day, column used, published rounded %)
PROVENANCE_CHECKS = [
    ("DIDI", "2021-07-06", "Close", -19.58),
    ("BABA", "2021-04-12", "Adj Close", 9.27),
    ("3690.HK", "2021-07-26", "Close", -13.76),
    ("KWEB", "2022-03-16", "Adj Close", 39.72),
    ("^HSI", "2021-07-27", "Adj Close", -4.22),
    ("9988.HK", "2020-12-24", "Close", -7.97),  # HK half day, Volume 0 in the file
]


@pytest.mark.parametrize("ticker,day,column,pct", PROVENANCE_CHECKS)
def test_returns_match_raw_file_and_provenance(prices_dir, ticker, day, column, pct):
    start = (pd.Timestamp(day) - pd.Timedelta(days=20)).strftime("%Y-%m-%d")
    long = load_prices(ticker, start, day, prices_dir=prices_dir, offline=True)
    rets = compute_returns(long)
    row = rets.loc[rets["date"] == pd.Timestamp(day)].iloc[0]
    expected = _raw_return(prices_dir / f"{ticker}.csv", day, column)
    assert row["ret"] == pytest.approx(expected, rel=1e-12)
    assert round(100 * row["ret"], 2) == pct
    assert row["n_sessions"] == 1 and not row["gap_before"]
    log = compute_returns(long, "log")
    assert log.loc[log["date"] == pd.Timestamp(day), "ret"].item() == pytest.approx(
        math.log1p(expected), rel=1e-12)


def test_delisted_series_ends_cleanly_and_has_no_gaps(prices_dir):
    rets = compute_returns(load_prices("DIDI", prices_dir=prices_dir, offline=True))
    assert rets["date"].min() == pd.Timestamp("2021-07-01")  # first price 2021-06-30: no return
    assert rets["date"].max() == pd.Timestamp("2021-12-30")
    assert rets["ret"].notna().all() and len(rets) == 127


def test_hk_weather_closures_are_holidays_and_real_gaps_are_reported(prices_dir):
    long = load_prices("0700.HK", "2023-08-25", "2023-09-15", prices_dir=prices_dir)
    p = long.set_index("date")["price"]
    rets = compute_returns(long)
    # 2023-09-01 (typhoon) and 2023-09-08 (black rainstorm) are closures, not missing sessions
    assert not rets["missing_price"].any()
    row = rets.loc[rets["date"] == "2023-09-04"].iloc[0]
    assert row["ret"] == pytest.approx(p["2023-09-04"] / p["2023-08-31"] - 1, rel=1e-12)
    assert row["n_sessions"] == 1
    # a real gap (drop one session's print) is reported and never filled
    gappy = long.loc[long["date"] != "2023-09-05"]
    rets = compute_returns(gappy)
    missing = rets.loc[rets["missing_price"], "date"].dt.strftime("%Y-%m-%d").tolist()
    assert missing == ["2023-09-05"]
    after = rets.loc[rets["date"] == "2023-09-06"].iloc[0]
    assert np.isnan(after["ret"]) and after["gap_before"] and after["n_sessions"] == 0
    spanned = compute_returns(gappy, span_gaps=True)
    row = spanned.loc[spanned["date"] == "2023-09-06"].iloc[0]
    assert row["ret"] == pytest.approx(p["2023-09-06"] / p["2023-09-04"] - 1, rel=1e-12)
    assert row["n_sessions"] == 2 and row["gap_before"]
    assert spanned.loc[spanned["date"] == "2023-09-05", "ret"].isna().all()


def _synthetic(dates, prices, ticker="TESTX"):
    return pd.DataFrame({"date": pd.DatetimeIndex(dates).astype("datetime64[ns]"),
                         "ticker": ticker, "price": prices, "price_column": "Close",
                         "volume": 1.0, "source": "folder"})


def test_gap_handling_on_synthetic_series():
    with warnings.catch_warnings():  # exchange_calendars vs pandas 3 deprecations
        warnings.simplefilter("ignore")
        nyse = xcals.get_calendar("XNYS")
        sess = nyse.sessions_in_range("2021-01-04", "2021-01-15")  # 10 sessions, independent
    prices = 100.0 * 1.01 ** np.arange(len(sess))
    keep = np.ones(len(sess), dtype=bool)
    keep[[3, 6, 7]] = False  # one missing session, then two in a row
    long = _synthetic(sess[keep], prices[keep])
    plain = compute_returns(long)
    assert list(plain["date"]) == list(sess[1:])
    assert plain["missing_price"].tolist() == list(~keep[1:])
    assert plain["gap_before"].tolist() == list(~keep[:-1])
    expected = np.full(len(sess) - 1, np.nan)
    for i in range(1, len(sess)):
        if keep[i] and keep[i - 1]:
            expected[i - 1] = prices[i] / prices[i - 1] - 1
    np.testing.assert_allclose(plain["ret"], expected, rtol=1e-12)
    assert plain["n_sessions"].tolist() == [int(not np.isnan(v)) for v in expected]
    spanned = compute_returns(long, span_gaps=True)
    r = spanned.set_index("date")
    assert r.loc[sess[4], "n_sessions"] == 2
    assert r.loc[sess[4], "ret"] == pytest.approx(prices[4] / prices[2] - 1)
    assert r.loc[sess[8], "n_sessions"] == 3
    assert r.loc[sess[8], "ret"] == pytest.approx(prices[8] / prices[5] - 1)
    assert r["ret"].notna().sum() == keep.sum() - 1  # one return per price after the first


def test_non_session_date_is_left_out_and_reported():
    dates = ["2021-01-14", "2021-01-15", "2021-01-18", "2021-01-19"]  # 01-18: MLK day
    long = _synthetic(dates, [10.0, 11.0, 50.0, 12.1])
    with pytest.warns(UserWarning, match="not exchange sessions"):
        rets = compute_returns(long)
    assert rets.attrs["non_session_dates"] == {"TESTX": ["2021-01-18"]}
    assert rets["date"].dt.strftime("%Y-%m-%d").tolist() == ["2021-01-15", "2021-01-19"]
    assert rets["ret"].tolist() == pytest.approx([0.1, 0.1])


def test_blank_price_is_a_gap_and_bad_input_is_rejected():
    long = _synthetic(["2021-01-04", "2021-01-05", "2021-01-06"], [1.0, np.nan, 2.0])
    rets = compute_returns(long)
    assert rets["missing_price"].tolist() == [True, False]
    assert rets["ret"].isna().all()
    with pytest.raises(PriceDataError, match="'simple' or 'log'"):
        compute_returns(long, "pct")
    with pytest.raises(PriceDataError, match="lacks column"):
        compute_returns(long.drop(columns="price"))
    # a non-positive price is a missing price that is reported (issue #16), never a return
    with pytest.warns(UserWarning,
                      match=r"invalid prices .* treated as missing: TESTX: 2021-01-05 -1\.0"):
        bad = compute_returns(_synthetic(["2021-01-04", "2021-01-05", "2021-01-06"],
                                         [1.0, -1.0, 2.0]))
    assert bad["ret"].isna().all() and bad["missing_price"].tolist() == [True, False]
    assert bad.attrs["invalid_prices"] == {"TESTX": ["2021-01-05 -1.0"]}


def test_session_returns_log_and_matrix(prices_dir):
    ret, n, gap = session_returns(np.array([1.0, 2.0, np.nan, 8.0]), "log", span_gaps=True)
    np.testing.assert_allclose(ret, [math.log(2), np.nan, math.log(4)])
    assert n.tolist() == [1, 0, 2] and gap.tolist() == [False, False, True]
    long = load_prices(["BABA", "9988.HK"], "2021-12-20", "2021-12-31", prices_dir=prices_dir)
    wide = returns_matrix(compute_returns(long))
    assert list(wide.columns) == ["BABA", "9988.HK"]
    # 2021-12-24: NYSE closed (Christmas observed), HKEX half day -> only the HK return
    assert np.isnan(wide.loc["2021-12-24", "BABA"]) and not np.isnan(wide.loc["2021-12-24",
                                                                                 "9988.HK"])
