"""crackdown.marketdata.quality: every finding checked against an independent computation."""

from __future__ import annotations

import csv
import warnings

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from crackdown.errors import PriceDataError
from crackdown.marketdata.prices import load_prices
from crackdown.marketdata.quality import format_report, quality_report


def _xc_sessions(mic: str, start: str, end: str) -> pd.DatetimeIndex:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcals.get_calendar(mic).sessions_in_range(start, end)


def _long(dates, prices, volume, ticker="TESTQ"):
    return pd.DataFrame({"date": pd.DatetimeIndex(dates).astype("datetime64[ns]"),
                         "ticker": ticker, "price": prices, "price_column": "Adj Close",
                         "volume": volume, "source": "folder"})


def test_synthetic_findings_are_listed_exactly():
    sess = _xc_sessions("XNYS", "2021-01-04", "2021-01-29")  # 19 sessions (MLK day 01-18)
    dates = list(sess.strftime("%Y-%m-%d"))
    prices = list(100.0 + np.arange(len(sess)))
    volume = [1000.0] * len(sess)
    del dates[5], prices[5], volume[5]  # 2021-01-11 missing
    prices[8] = prices[7]  # flat day (2021-01-15 after the deletion shift)
    prices[10] = prices[9] * 1.30  # +30% move
    volume[2] = 0.0
    dates.append("2021-01-18")  # MLK day: not a session
    prices.append(105.0)
    volume.append(10.0)
    report = quality_report(_long(dates, prices, volume), start="2020-12-28", end="2021-02-05")
    row = report.iloc[0]
    assert row["exchange"] == "XNYS" and row["price_column"] == "Adj Close"
    assert row["n_sessions"] == len(sess)
    assert row["missing_sessions"] == ["2021-01-11"] and row["n_missing_sessions"] == 1
    assert row["extra_dates"] == ["2021-01-18"]
    assert row["zero_volume_dates"] == [dates[2]]
    assert row["flat_dates"] == [dates[8]]
    assert row["large_moves"] == [f"{dates[10]} +30.00%"]
    # 2020-12-28..2020-12-31: 4 sessions before; 2021-02-01..02-05: 5 sessions after
    assert row["sessions_before_first"] == len(_xc_sessions("XNYS", "2020-12-28", "2021-01-03"))
    assert row["sessions_after_last"] == len(_xc_sessions("XNYS", "2021-01-30", "2021-02-05"))
    assert "1 missing session(s)" in row["status"] and "1 non-session date(s)" in row["status"]
    assert row["first_date"] == pd.Timestamp("2021-01-04")
    assert row["last_date"] == pd.Timestamp("2021-01-29")


def test_large_move_across_a_gap_is_marked():
    dates = ["2021-01-04", "2021-01-07", "2021-01-08"]  # 01-05, 01-06 missing
    report = quality_report(_long(dates, [10.0, 5.0, 5.1], 1.0), large_move=0.25)
    assert report.loc[0, "large_moves"] == ["2021-01-07 -50.00% (3 sessions)"]
    assert report.loc[0, "missing_sessions"] == ["2021-01-05", "2021-01-06"]
    with pytest.raises(PriceDataError, match="large_move"):
        quality_report(_long(dates, [10.0, 5.0, 5.1], 1.0), large_move=0)


def test_real_snapshot_findings(prices_dir):
    long = load_prices(["0700.HK", "^HSI", "KWEB", "DIDI"], "2018-01-01", "2024-12-31",
                       prices_dir=prices_dir, offline=True)
    report = quality_report(long, start="2018-01-01", end="2024-12-31").set_index("ticker")
    for ticker in ("0700.HK", "^HSI"):
        # 2023-09-01/08 weather closures are holidays in crackdown.timeline.calendars, not gaps
        assert report.loc[ticker, "missing_sessions"] == []
        assert report.loc[ticker, "n_extra_dates"] == 0
    # ^HSI zero-volume days named in PROVENANCE.md; independent count from the raw file
    with (prices_dir / "^HSI.csv").open(newline="") as handle:
        raw_zero = [r["Date"] for r in csv.DictReader(handle) if float(r["Volume"]) == 0]
    assert report.loc["^HSI", "zero_volume_dates"] == raw_zero
    assert {"2019-12-18", "2020-03-23", "2022-02-07"} <= set(raw_zero)
    assert report.loc["KWEB", "large_moves"] == ["2022-03-16 +39.72%"]
    assert report.loc["KWEB", "status"] == "ok"
    # DIDI: IPO 2021-06-30, last row 2021-12-30: the uncovered range is reported
    didi = report.loc["DIDI"]
    assert didi["sessions_before_first"] == len(_xc_sessions("XNYS", "2018-01-01", "2021-06-29"))
    assert didi["sessions_after_last"] == len(_xc_sessions("XNYS", "2021-12-31", "2024-12-31"))
    assert didi["n_sessions"] == 128 and didi["n_missing_sessions"] == 0
    printable = format_report(report.reset_index(), max_items=1)
    assert printable.set_index("ticker").loc["0700.HK", "missing_sessions"] == ""
