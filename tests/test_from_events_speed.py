"""The fast paths of a study's cold build give what the obvious computation gives.

``exchange_for_ticker`` and ``default_benchmark`` read two dicts built once from the universe
table's columns (not a pandas row per ticker); ``load_prices`` checks the range and the folder
once, reads each parsed file as one float array and takes its rows with a numpy mask (no sliced
frame, no Series per column); ``compute_returns`` places each ticker's rows on its sessions
with arrays and builds indexes only for what it reports. Each test here recomputes the result
the slow way, written out in this file (boolean masks on the table, ``frame.loc[mask]`` and one
column at a time, per-ticker :func:`align_to_calendar`), and requires identical values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from crackdown.errors import CalendarError, PriceDataError
from crackdown.marketdata import prices as prices_module
from crackdown.marketdata.price_files import read_price_csv
from crackdown.marketdata.prices import LONG_COLUMNS, load_prices, load_ticker
from crackdown.marketdata.returns import align_to_calendar, compute_returns
from crackdown.timeline import universe
from crackdown.timeline.universe import default_benchmark, exchange_for_ticker, load_universe


# ------------------------------------------------------------------ universe look-ups
def _slow_cell(frame: pd.DataFrame, ticker: str, column: str) -> str | None:
    hit = frame.loc[frame["ticker"] == ticker]
    return None if hit.empty else str(hit.iloc[0][column])


@pytest.fixture
def fresh_maps():
    """Empty the per-ticker indexes before and after (a test may swap the table under them)."""
    def clear():
        universe._column_maps.cache_clear()
        universe._row_positions.cache_clear()
        universe._ROW_CACHE.clear()

    clear()
    yield
    clear()


def test_exchange_and_benchmark_equal_the_table_row_of_every_ticker():
    frame = load_universe()
    for ticker in frame["ticker"]:
        assert exchange_for_ticker(ticker) == _slow_cell(frame, ticker, "exchange").strip().upper()
        assert default_benchmark(ticker) == _slow_cell(frame, ticker, "benchmark")
    # not in the table: the suffix rules and the exchange's proxy
    assert (exchange_for_ticker("ZZZZ"), default_benchmark("ZZZZ")) == ("XNYS", "SPY")
    assert (exchange_for_ticker("9999.HK"), default_benchmark("9999.HK")) == (
        "XHKG", "HK_NONTECH_EW")
    assert default_benchmark(" BABA ") == _slow_cell(frame, "BABA", "benchmark")
    assert default_benchmark("XHKG") == "HK_NONTECH_EW"


def test_column_maps_take_the_first_row_and_report_a_bad_exchange(monkeypatch, fresh_maps):
    fake = pd.DataFrame({c: ["", "", "", ""] for c in universe.UNIVERSE_COLUMNS})
    fake["ticker"] = ["DUPE", "DUPE", "BADX", "LOWER"]
    fake["exchange"] = ["XHKG", "XNYS", "XLON", " xhkg "]
    fake["benchmark"] = ["^HSI", "SPY", "", ""]
    monkeypatch.setattr(universe, "_read_universe", lambda: fake)
    assert universe.universe_row("DUPE")["exchange"] == "XHKG"  # the first row, both ways
    assert exchange_for_ticker("DUPE") == "XHKG"
    assert default_benchmark("DUPE") == "^HSI"
    assert exchange_for_ticker("LOWER") == "XHKG"  # stripped and upper-cased, as before
    assert default_benchmark("BADX") == ""  # listed with no benchmark: the market itself
    with pytest.raises(CalendarError, match=r"universe.csv gives ticker 'BADX' the exchange"
                                            r" 'XLON'"):
        exchange_for_ticker("BADX")


# ------------------------------------------------------------------ load_prices
def _slow_long(folder, tickers, start, end) -> pd.DataFrame:
    """One sliced frame per ticker (boolean mask, ``frame.loc``), columns one at a time."""
    parts = []
    lo = None if start is None else pd.Timestamp(start)
    hi = None if end is None else pd.Timestamp(end)
    for ticker in tickers:
        full = read_price_csv(folder / f"{ticker}.csv")
        keep = np.ones(len(full), dtype=bool)
        if lo is not None:
            keep &= full.index >= lo
        if hi is not None:
            keep &= full.index <= hi
        frame = full.loc[keep]
        column = "Adj Close" if "Adj Close" in frame.columns else "Close"
        n = len(frame)
        o, h, low, c, v = (frame[k].to_numpy(dtype=float)
                           for k in ("Open", "High", "Low", "Close", "Volume"))
        parts.append(pd.DataFrame({
            "date": pd.DatetimeIndex(frame.index).astype("datetime64[ns]").to_numpy(),
            "ticker": np.full(n, ticker, dtype=object),
            "price": frame[column].to_numpy(dtype=float),
            "price_column": np.full(n, column, dtype=object),
            "volume": v,
            "source": np.full(n, "folder", dtype=object),
            "flat_zero_volume": (v == 0) & (o == h) & (h == low) & (low == c),
        }))
    return pd.concat(parts, ignore_index=True).loc[:, list(LONG_COLUMNS)]


@pytest.mark.parametrize("start, end", [(None, None), ("2020-06-01", "2022-03-31"),
                                        ("2021-07-06", "2021-07-06"), ("1500-01-01", None)])
def test_load_prices_equals_sliced_frames_column_by_column(prices_dir, start, end):
    tickers = ["BABA", "9988.HK", "DIDI", "^HSI", "SPY", "0700.HK", "JD"]
    got = load_prices(tickers, start, end, prices_dir=prices_dir)
    pd.testing.assert_frame_equal(got, _slow_long(prices_dir, tickers, start, end),
                                  check_exact=True)
    assert got.attrs["missing"] == {}
    for ticker in ("BABA", "^HSI"):  # load_ticker: the sliced frame itself
        frame, source = load_ticker(ticker, start, end, prices_dir=prices_dir)
        full = read_price_csv(prices_dir / f"{ticker}.csv")
        keep = np.ones(len(full), dtype=bool)
        if start is not None:
            keep &= full.index >= pd.Timestamp(start)
        if end is not None:
            keep &= full.index <= pd.Timestamp(end)
        pd.testing.assert_frame_equal(frame, full.loc[keep], check_exact=True)
        assert source == "folder"


def test_rows_of_other_frames_take_the_general_path():
    days = pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-06"], name="Date"
                            ).as_unit("ns")
    plain = pd.DataFrame({"Open": [1.0, 2.0, 3.0], "High": [1.0, 2.5, 3.0],
                          "Low": [1.0, 1.5, 3.0], "Close": [1.0, 2.0, 3.0],
                          "Volume": [0.0, 10.0, 0.0]}, index=days)
    mask = np.array([True, False, True])
    mixed = plain.assign(Volume=[0, 10, 0])  # int volume: read as float either way
    odd = plain.assign(Note=["a", "b", "c"])  # an object column: the general path
    tz = plain.tz_localize("UTC")  # not naive: the general path
    no_volume = plain.drop(columns="Volume")
    seconds = plain.set_axis(days.as_unit("s"))  # not nanoseconds: the general path
    for m in (mask, None):  # a tz-aware index fails the same way on both paths
        with pytest.raises(TypeError, match="timezone-aware"):
            prices_module._to_long(tz if m is None else tz.loc[m], "AAA", "folder")
        with pytest.raises(TypeError, match="timezone-aware"):
            prices_module._rows_to_long(tz, m, "AAA", "folder")
    for frame in (plain, mixed, odd, no_volume, seconds):
        for m in (mask, None, np.ones(3, dtype=bool)):
            got = prices_module._rows_to_long(frame, m, "AAA", "folder")
            want = prices_module._to_long(frame if m is None else frame.loc[m], "AAA",
                                          "folder")
            assert got.keys() == want.keys()
            for key in got:
                if isinstance(want[key], np.ndarray):
                    assert got[key].dtype == want[key].dtype, key
                    assert np.array_equal(got[key], want[key], equal_nan=True), key
                else:
                    assert got[key] == want[key], key
    for other in (odd, tz, seconds):
        assert prices_module._plain(other) is None
    for usual in (plain, mixed, no_volume):
        assert prices_module._plain(usual) is not None


def test_range_mask_equals_pandas_comparisons():
    index = pd.DatetimeIndex(["2021-01-04", "NaT", "2020-12-31", "2021-01-05"])
    frame = pd.DataFrame({"Close": [1.0, 2.0, 3.0, 4.0]}, index=index)
    bounds = [None, pd.Timestamp("2021-01-04"), pd.Timestamp("1500-01-01"),
              pd.Timestamp("2262-01-01"), pd.Timestamp("2021-01-04 00:00:00.000000001")]
    for lo in bounds:
        for hi in bounds:
            want = np.ones(len(frame), dtype=bool)
            if lo is not None:
                want &= frame.index >= lo
            if hi is not None:
                want &= frame.index <= hi
            got = prices_module._range_mask(frame, lo, hi)
            assert got.tolist() == want.tolist(), (lo, hi)


def test_a_bad_range_fails_every_ticker_with_load_tickers_message(prices_dir):
    with pytest.raises(PriceDataError) as one:
        load_ticker("BABA", "2022-01-01", "2021-01-01", prices_dir=prices_dir)
    with pytest.raises(PriceDataError) as many:
        load_prices(["BABA", "JD"], "2022-01-01", "2021-01-01", prices_dir=prices_dir)
    assert str(many.value) == (f"no prices for 2 tickers (BABA, JD): BABA: {one.value}; "
                               f"JD: {one.value}")
    with pytest.warns(UserWarning):
        got = load_prices(["BABA", "JD"], "2022-01-01", "2021-01-01", prices_dir=prices_dir,
                          on_missing="report")
    assert got.empty and got.attrs["missing"] == {"BABA": str(one.value),
                                                  "JD": str(one.value)}
    with pytest.raises(PriceDataError, match="does not exist"):
        load_prices(["BABA"], prices_dir=prices_dir / "no-such-folder")


# ------------------------------------------------------------------ compute_returns
def _messy() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-12-01", periods=40)
    frames = []
    for ticker in ("AAA", "0005.HK", "^HSI", "BBB"):
        p = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, len(dates))))
        p[4], p[7], p[11], p[15] = np.nan, 0.0, np.inf, p[15] * 900
        if ticker == "BBB":
            p[:] = np.nan  # no price at all
        flat = np.zeros(len(dates), dtype=bool)
        flat[[2, 16, 17, 30]] = True
        frames.append(pd.DataFrame({"date": dates, "ticker": ticker, "price": p,
                                    "flat_zero_volume": flat}))
    extra = pd.DataFrame({"date": pd.to_datetime(["2021-12-04", "1980-01-02"]),
                          "ticker": "AAA", "price": [5.0, 6.0], "flat_zero_volume": False})
    return pd.concat(frames + [extra]).sample(frac=1.0, random_state=5).reset_index(drop=True)


@pytest.mark.parametrize("flat", [True, False])
def test_returns_and_their_report_equal_align_to_calendar_per_ticker(flat):
    messy = _messy() if flat else _messy().drop(columns="flat_zero_volume")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = compute_returns(messy)
    want = {k: {} for k in ("non_session_dates", "outside_calendar_dates", "placeholder_dates",
                            "invalid_prices", "suspect_prices")}
    for ticker in ("AAA", "0005.HK", "^HSI", "BBB"):
        rows = messy.loc[messy["ticker"] == ticker]
        on = align_to_calendar(ticker, rows)
        # the indexes keep the dates' name, except the unnamed empty defaults
        assert on.outside_calendar_dates.name == "date"
        assert on.invalid_prices.index.name == on.suspect_prices.index.name == "date"
        assert on.sessions.name is None and on.sessions.dtype == "datetime64[ns]"
        placeholder_named = flat and not ticker.startswith("^") and ticker != "BBB"
        assert on.placeholder_dates.name == ("date" if placeholder_named else None)
        assert on.non_session_dates.name == (None if ticker == "BBB" else "date")
        for key, found in (("non_session_dates", on.non_session_dates),
                           ("outside_calendar_dates", on.outside_calendar_dates),
                           ("placeholder_dates", on.placeholder_dates)):
            if len(found):
                want[key][ticker] = [f"{d:%Y-%m-%d}" for d in found]
        for key, found in (("invalid_prices", on.invalid_prices),
                           ("suspect_prices", on.suspect_prices)):
            if len(found):
                want[key][ticker] = [f"{d:%Y-%m-%d} {float(v)!r}" for d, v in found.items()]
        mine = got.loc[got["ticker"] == ticker]
        assert mine["date"].tolist() == list(on.sessions[1:])
        price = on.price
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = price[1:] / price[:-1] - 1.0
        assert np.array_equal(mine["ret"].to_numpy(), ratio, equal_nan=True)
    for key, value in want.items():
        assert got.attrs[key] == value, key
    assert want["suspect_prices"] and want["invalid_prices"] and want["non_session_dates"]
    assert bool(want["placeholder_dates"]) == flat
    assert want["outside_calendar_dates"] == {"AAA": ["1980-01-02"]}
