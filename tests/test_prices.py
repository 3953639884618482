"""crackdown.marketdata.prices (folder, verified cache, yfinance stand-in) and crackdown.timeline.universe."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance

from crackdown.errors import PriceDataError
from crackdown.marketdata import cache as cache_module
from crackdown.marketdata import prices as P
from crackdown.timeline.universe import (
    cross_listing_pairs,
    default_benchmark,
    load_universe,
    universe_row,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CRACKDOWN_OFFLINE", raising=False)


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _sample_frame(n: int = 5, start: str = "2021-01-04") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=n)
    close = 100.0 + np.arange(n) * 1.25 + 1 / 3
    return pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close,
         "Adj Close": close * 0.98, "Volume": np.arange(n, dtype=float) * 1000 + 7},
        index=pd.DatetimeIndex(dates, name="Date").astype("datetime64[ns]"),
    )


# ----------------------------------------------------------------------------- folder
def test_every_snapshot_ticker_loads_with_the_right_column(prices_dir):
    files = sorted(prices_dir.glob("*.csv"))
    assert len(files) >= 30
    for path in files:
        ticker = path.name[:-4]
        raw = _raw_rows(path)
        frame = P.load_prices([ticker], prices_dir=prices_dir, offline=True)
        column = "Adj Close" if "Adj Close" in raw[0] else "Close"
        assert len(frame) == len(raw), ticker
        assert set(frame["price_column"]) == {column}
        assert set(frame["source"]) == {"folder"}
        assert frame["date"].dtype == "datetime64[ns]"
        for i in (0, len(raw) // 2, -1):
            assert frame["date"].iloc[i] == pd.Timestamp(raw[i]["Date"][:10])
            assert frame["price"].iloc[i] == float(raw[i][column])
        if "Volume" not in raw[0]:
            assert frame["volume"].isna().all()


def test_range_is_inclusive_and_not_filled(prices_dir):
    frame = P.load_prices("BABA", "2021-04-09", "2021-04-13", prices_dir=prices_dir)
    assert list(frame["date"].dt.strftime("%Y-%m-%d")) == ["2021-04-09", "2021-04-12",
                                                           "2021-04-13"]
    # a range that extends past the file's end returns what exists (DIDI ends 2021-12-30)
    didi = P.load_prices("DIDI", "2021-12-01", "2022-06-30", prices_dir=prices_dir)
    assert didi["date"].max() == pd.Timestamp("2021-12-30")
    # DIDI's last rows have a Close but blank Volume
    assert np.isnan(didi["volume"].iloc[-1]) and didi["price"].iloc[-1] == pytest.approx(5.23)


def test_folder_file_without_rows_in_range_is_an_error(prices_dir):
    with pytest.raises(PriceDataError, match=r"DIDI.*2021-06-30\.\.2021-12-30"):
        P.load_prices("DIDI", "2022-01-01", "2022-06-30", prices_dir=prices_dir)


def test_price_matrix_is_wide_and_unfilled(prices_dir):
    long = P.load_prices(["DIDI", "BABA"], "2021-06-25", "2021-07-06", prices_dir=prices_dir)
    wide = P.price_matrix(long)
    assert list(wide.columns) == ["DIDI", "BABA"]
    assert wide.loc["2021-06-25", "DIDI"] != wide.loc["2021-06-25", "DIDI"]  # NaN before IPO
    assert wide["BABA"].notna().all()


def test_parse_layouts_and_errors(tmp_path):
    folder = tmp_path / "px"
    folder.mkdir()
    # yfinance multi-row header + time-zone suffix + Close only
    (folder / "AAA.csv").write_text(
        "Price,Close,High,Low,Open,Volume\nTicker,AAA,AAA,AAA,AAA,AAA\nDate,,,,,\n"
        "2021-01-04 00:00:00-05:00,10,11,9,10,100\n2021-01-05 00:00:00-05:00,11,12,10,10,0\n"
    )
    got = P.load_prices("AAA", prices_dir=folder)
    assert list(got["price"]) == [10.0, 11.0] and set(got["price_column"]) == {"Close"}
    assert list(got["volume"]) == [100.0, 0.0]
    # a blank price cell is kept as NaN (missing), not dropped or filled
    (folder / "BBB.csv").write_text("Date,Close,Adj Close\n2021-01-04,1,1\n2021-01-05,,\n"
                                    "2021-01-06,2,2\n")
    got = P.load_prices("BBB", prices_dir=folder)
    assert len(got) == 3 and np.isnan(got["price"].iloc[1])
    bad = {
        "C1": ("Date,Close\n2021-01-04,1\n2021-13-05,2\n", r"C1\.csv line 3: date '2021-13-05'"),
        "C2": ("Date,Close\n2021-01-04,1\n2021-01-05,abc\n", r"line 3: column 'Close' value 'abc'"),
        "C3": ("Date,Close\n2021-01-04,1\n2021-01-04,2\n", r"duplicated date\(s\) 2021-01-04"),
        "C4": ("Date,Close\n2021-01-04,0\n", r"Close on 2021-01-04 is 0\.0; prices must be > 0"),
        "C5": ("Date,Open\n2021-01-04,1\n", r"no 'Close' or 'Adj Close' column"),
        "C6": ("Date,Close\n", r"header but no rows"),
    }
    for ticker, (text, pattern) in bad.items():
        (folder / f"{ticker}.csv").write_text(text)
        with pytest.raises(PriceDataError, match=pattern):
            P.load_prices(ticker, prices_dir=folder)


def test_missing_folder_and_bad_dates_are_clear_errors(tmp_path):
    with pytest.raises(PriceDataError, match=r"prices folder .*nope.* does not exist"):
        P.load_prices("BABA", prices_dir=tmp_path / "nope")
    with pytest.raises(PriceDataError, match=r"start '2021-02-30' is not a date"):
        P.load_prices("BABA", "2021-02-30", prices_dir=tmp_path, offline=True)
    with pytest.raises(PriceDataError, match=r"start 2021-05-01 is after end 2021-04-01"):
        P.load_prices("BABA", "2021-05-01", "2021-04-01", prices_dir=tmp_path, offline=True)


# ----------------------------------------------------------------------------- cache
def test_cache_round_trip_is_exact_and_checksummed(tmp_path):
    frame = _sample_frame()
    path = P.write_cache("XYZ", frame, requested_start=pd.Timestamp("2021-01-01"),
                         requested_end=pd.Timestamp("2021-01-31"), cache_dir=tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["rows"] == 5
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    back, meta2 = P.read_cache("XYZ", tmp_path)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert meta2 == meta
    # and load_prices serves it (folder without the ticker -> cache), restricted to the range
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    long = P.load_prices("XYZ", "2021-01-05", "2021-01-31", prices_dir=empty_folder,
                         cache_dir=tmp_path, offline=True)
    assert set(long["source"]) == {"cache"} and len(long) == 4
    np.testing.assert_array_equal(long["price"], frame["Adj Close"].iloc[1:])


def test_interrupted_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    old = _sample_frame(4)
    P.write_cache("XYZ", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    csv_path, meta_path = P.cache_paths("XYZ", tmp_path)
    before = (csv_path.read_bytes(), meta_path.read_bytes())
    real_write_all = cache_module._write_all

    def write_half_then_die(handle, data):
        real_write_all(handle, data[: len(data) // 2])
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(cache_module, "_write_all", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        P.write_cache("XYZ", _sample_frame(300), requested_start=None, requested_end=None,
                      cache_dir=tmp_path)
    assert (csv_path.read_bytes(), meta_path.read_bytes()) == before
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["XYZ.csv", "XYZ.json"]
    frame, _ = P.read_cache("XYZ", tmp_path)
    pd.testing.assert_frame_equal(frame, old, check_freq=False)
    # first-ever write interrupted: no file at all, not a partial one
    with pytest.raises(KeyboardInterrupt):
        P.write_cache("NEW", old, requested_start=None, requested_end=None, cache_dir=tmp_path)
    assert P.read_cache("NEW", tmp_path) is None
    assert not any(p.name.startswith(".") for p in csv_path.parent.iterdir())


def test_crash_between_csv_and_sidecar_is_detected(tmp_path, monkeypatch):
    P.write_cache("XYZ", _sample_frame(4), requested_start=None, requested_end=None,
                  cache_dir=tmp_path)
    real = cache_module.atomic_write_bytes

    def fail_on_sidecar(path, data):
        if str(path).endswith(".json"):
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(cache_module, "atomic_write_bytes", fail_on_sidecar)
    with pytest.raises(OSError):
        P.write_cache("XYZ", _sample_frame(9), requested_start=None, requested_end=None,
                      cache_dir=tmp_path)
    with pytest.raises(P.CacheCorruptError, match="corrupt or truncated"):
        P.read_cache("XYZ", tmp_path)


def test_truncated_cache_is_detected_then_refetched_or_reported(tmp_path, monkeypatch):
    frame = _sample_frame(40)
    P.write_cache("XYZ", frame, requested_start=None, requested_end=None, cache_dir=tmp_path)
    csv_path, meta_path = P.cache_paths("XYZ", tmp_path)
    data = csv_path.read_bytes()
    # cut at a line boundary: the rest still parses, only the checksum/row count can tell
    cut = data[: data.rindex(b"\n", 0, len(data) // 2) + 1]
    csv_path.write_bytes(cut)
    with pytest.raises(P.CacheCorruptError, match=r"XYZ\.csv is corrupt or truncated"):
        P.read_cache("XYZ", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PriceDataError, match=r"corrupt.*offline mode forbids yfinance"):
        P.load_prices("XYZ", prices_dir=empty, cache_dir=tmp_path, offline=True)
    calls = []

    def fake_download(ticker, **kwargs):
        calls.append(ticker)
        return frame.copy()

    monkeypatch.setattr(yfinance, "download", fake_download)
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        long = P.load_prices("XYZ", prices_dir=empty, cache_dir=tmp_path)
    assert calls == ["XYZ"] and set(long["source"]) == {"yfinance"} and len(long) == 40
    repaired, _ = P.read_cache("XYZ", tmp_path)  # the re-download repaired the cache
    pd.testing.assert_frame_equal(repaired, frame, check_freq=False)
    # a CSV without its sidecar cannot be verified
    meta_path.unlink()
    with pytest.raises(P.CacheCorruptError, match="no valid checksum sidecar"):
        P.read_cache("XYZ", tmp_path)


# ----------------------------------------------------------------------------- yfinance
def test_yfinance_multiindex_result_is_normalised_and_cached(tmp_path, monkeypatch):
    base = _sample_frame(5)
    raw = base.copy()
    raw.columns = pd.MultiIndex.from_product([list(base.columns), ["XYZ"]],
                                             names=["Price", "Ticker"])
    raw.index = raw.index.tz_localize("America/New_York")
    seen = {}

    def fake_download(tickers, **kwargs):
        seen.update(kwargs, tickers=tickers)
        return raw

    monkeypatch.setattr(yfinance, "download", fake_download)
    long = P.load_prices("xyz", "2021-01-04", "2021-01-08", prices_dir=tmp_path,
                         cache_dir=tmp_path)
    assert seen["tickers"] == "XYZ"
    assert seen["start"] == "2021-01-04" and seen["end"] == "2021-01-09"  # end is exclusive
    assert seen["auto_adjust"] is False and seen["progress"] is False
    assert seen["actions"] is False and seen["multi_level_index"] is False
    assert set(long["source"]) == {"yfinance"}
    np.testing.assert_array_equal(long["price"], base["Adj Close"])
    assert list(long["date"]) == list(base.index)
    # second call: served by the cache, yfinance not touched
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pytest.fail("re-downloaded"))
    again = P.load_prices("XYZ", "2021-01-05", "2021-01-07", cache_dir=tmp_path)
    assert set(again["source"]) == {"cache"} and len(again) == 3
    # a wider range than the cached download is fetched again
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: base)
    wider = P.load_prices("XYZ", "2020-12-01", "2021-01-08", cache_dir=tmp_path)
    assert set(wider["source"]) == {"yfinance"}


def test_yfinance_group_by_ticker_and_auto_adjusted_shapes():
    base = _sample_frame(3)
    by_ticker = base.drop(columns="Adj Close")
    by_ticker.columns = pd.MultiIndex.from_product([["ABC"], list(by_ticker.columns)])
    got = P.normalize_yfinance_frame(by_ticker, "ABC")
    assert list(got.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert P.price_column_of(got) == "Close"
    np.testing.assert_array_equal(got["Close"], base["Close"])


def test_offline_empty_frame_is_a_clear_error(tmp_path, monkeypatch):
    def offline_download(ticker, **kwargs):
        logging.getLogger("yfinance").error(
            "['BABA']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
            "query2.finance.yahoo.com')")
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", offline_download)
    with pytest.raises(PriceDataError) as info:
        P.load_prices("BABA", "2021-01-01", "2021-01-31", cache_dir=tmp_path,
                      prices_dir=tmp_path)
    message = str(info.value)
    for needle in ("BABA", "2021-01-01..2021-01-31", "cannot reach Yahoo Finance",
                   "CRACKDOWN_PRICES_DIR", "--prices-dir", "check the symbol"):
        assert needle in message
    assert P.read_cache("BABA", tmp_path) is None  # nothing cached


def test_unknown_ticker_is_a_clear_error(tmp_path, monkeypatch):
    def unknown(ticker, **kwargs):
        logging.getLogger("yfinance").error(
            f"['{ticker}']: YFTzMissingError('possibly delisted; no timezone found')")
        return pd.DataFrame(columns=["Close"])

    monkeypatch.setattr(yfinance, "download", unknown)
    with pytest.raises(PriceDataError, match=r"NOTATICKER.*does not know 'NOTATICKER'.*"
                       r"check the symbol"):
        P.load_prices("NOTATICKER", "2021-01-01", "2021-01-31", cache_dir=tmp_path)


def test_yfinance_exception_becomes_price_data_error(tmp_path, monkeypatch):
    def boom(ticker, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(yfinance, "download", boom)
    with pytest.raises(PriceDataError, match=r"yfinance failed for ABC .*ConnectionError"):
        P.load_prices("ABC", "2021-01-01", "2021-01-31", cache_dir=tmp_path)


def test_offline_mode_never_calls_yfinance(tmp_path, monkeypatch):
    # the autouse guard in conftest would raise AssertionError if yfinance were called
    with pytest.raises(PriceDataError, match=r"ABC .*offline mode forbids yfinance"):
        P.load_prices("ABC", cache_dir=tmp_path, prices_dir=tmp_path, offline=True)
    monkeypatch.setenv("CRACKDOWN_OFFLINE", "1")
    with pytest.raises(PriceDataError, match="offline mode"):
        P.load_prices("ABC", cache_dir=tmp_path, prices_dir=tmp_path)


def test_on_missing_report_keeps_the_others(prices_dir):
    with pytest.warns(UserWarning, match="NOPE"):
        long = P.load_prices(["BABA", "NOPE"], "2021-01-04", "2021-01-08",
                             prices_dir=prices_dir, offline=True, on_missing="report")
    assert set(long["ticker"]) == {"BABA"} and list(long.attrs["missing"]) == ["NOPE"]


def test_fetch_prices_fills_cache_and_skips_covered(tmp_path, monkeypatch):
    calls = []

    def fake(ticker, **kwargs):
        calls.append(ticker)
        if ticker == "BAD":
            return pd.DataFrame()
        return _sample_frame(5)

    monkeypatch.setattr(yfinance, "download", fake)
    out = P.fetch_prices(["AAA", "BAD"], "2021-01-01", "2021-01-31", cache_dir=tmp_path)
    assert list(out["status"]) == ["downloaded", "failed"]
    assert "BAD" in out["detail"].iloc[1]
    out = P.fetch_prices(["AAA"], "2021-01-02", "2021-01-30", cache_dir=tmp_path)
    assert list(out["status"]) == ["cached"] and calls == ["AAA", "BAD"]
    out = P.fetch_prices(["AAA"], "2021-01-02", "2021-01-30", cache_dir=tmp_path, force=True)
    assert list(out["status"]) == ["downloaded"] and calls[-1] == "AAA"


def test_atomic_write_uses_same_folder_and_replace(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((Path(src).parent, Path(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    P.atomic_write_bytes(tmp_path / "a" / "f.csv", b"x,y\n")
    assert seen == [(tmp_path / "a", tmp_path / "a" / "f.csv")]
    assert (tmp_path / "a" / "f.csv").read_bytes() == b"x,y\n"


# ----------------------------------------------------------------------------- universe
def test_universe_covers_the_snapshot_and_is_consistent(prices_dir):
    from crackdown.timeline.universe import ROLES, exchange_for_ticker

    uni = load_universe()
    assert uni["ticker"].is_unique
    snapshot = {p.name[:-4] for p in prices_dir.glob("*.csv")}
    assert snapshot <= set(uni["ticker"]), sorted(snapshot - set(uni["ticker"]))
    assert set(uni["kind"]) <= {"stock", "adr", "etf", "index"}
    assert set(uni["exchange"]) <= {"XNYS", "XHKG", "XSHG"}
    assert set(uni["role"]) <= set(ROLES) and "" not in set(uni["role"])
    currency = {"XNYS": "USD", "XHKG": "HKD", "XSHG": "CNY"}
    for row in uni.itertuples():
        assert exchange_for_ticker(row.ticker) == row.exchange
        assert row.currency == currency[row.exchange], row.ticker
        assert (row.kind == "index") == (row.role == "index"), row.ticker
        assert (row.kind == "etf") == (row.role == "etf"), row.ticker
        if row.listed:
            assert pd.Timestamp(row.listed).strftime("%Y-%m-%d") == row.listed, row.ticker
        if row.kind in {"stock", "adr"}:
            assert row.sector, row.ticker
            assert row.benchmark == ("HK_NONTECH_EW" if row.exchange == "XHKG" else "SPY"), (
                row.ticker)
        if row.cross_listing:  # pairs name each other and sit on different exchanges
            other = universe_row(row.cross_listing)
            assert other is not None and other["cross_listing"] == row.ticker
            assert other["exchange"] != row.exchange and other["company"] == row.company
    # the 44 non-tech Hang Seng constituents of PROVENANCE.md batch B
    constituents = uni.loc[uni["role"] == "benchmark_constituent"]
    assert len(constituents) == 44 and set(constituents["exchange"]) == {"XHKG"}
    assert not {"0700.HK", "9988.HK", "3690.HK", "9618.HK", "1810.HK"} & set(constituents["ticker"])
    pairs = {(r.us_ticker, r.hk_ticker) for r in cross_listing_pairs().itertuples()}
    assert pairs >= {("BABA", "9988.HK"), ("JD", "9618.HK"), ("NTES", "9999.HK"),
                     ("TCEHY", "0700.HK"), ("BIDU", "9888.HK"), ("BILI", "9626.HK"),
                     ("WB", "9898.HK"), ("TCOM", "9961.HK"), ("LI", "2015.HK"),
                     ("XPEV", "9868.HK"), ("NIO", "9866.HK"), ("EDU", "9901.HK"),
                     ("GDS", "9698.HK")}
    assert uni.loc[uni["ticker"] == "SPY", "benchmark"].item() == ""
    # a listing date is never after the first row of its price file
    for row in uni.loc[uni["listed"] != ""].itertuples():
        path = prices_dir / f"{row.ticker}.csv"
        if path.is_file():
            first = pd.read_csv(path, usecols=[0], nrows=1).iloc[0, 0]
            assert pd.Timestamp(row.listed) <= pd.Timestamp(first[:10]), row.ticker


def test_default_benchmark_for_listed_unlisted_and_exchanges():
    assert default_benchmark("BABA") == "SPY"
    assert default_benchmark("9988.HK") == "HK_NONTECH_EW"
    assert default_benchmark("^HSI") == ""
    assert default_benchmark("1211.HK") == "HK_NONTECH_EW"  # not in the table: from the suffix
    assert default_benchmark("AAPL") == "SPY"
    assert default_benchmark("XHKG") == "HK_NONTECH_EW" and default_benchmark("XNYS") == "SPY"


def test_a_failed_download_says_the_same_whatever_yfinance_logged_before(tmp_path, monkeypatch):
    """yfinance keeps failed look-ups in its process: a second download of a ticker logs other
    words. The error must not depend on that (a reused report kernel and a fresh one must
    write the same outcome table)."""
    logs = iter([
        [("['DIDIY']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
          "query2.finance.yahoo.com')")],
        ["1 Failed download:", "['DIDIY']: possibly delisted; no timezone found",
         "DNSError('Could not resolve host: query2.finance.yahoo.com')"],
        ["['XYZQ']: YFTzMissingError('possibly delisted; no timezone found')"],
        ["['XYZQ']: YFPricesMissingError('possibly delisted; no price data found')"],
    ])

    def download(ticker, **kwargs):
        for text in next(logs):
            logging.getLogger("yfinance").error(text)
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", download)
    seen = []
    for ticker in ("DIDIY", "DIDIY", "XYZQ", "XYZQ"):
        with pytest.raises(PriceDataError) as info:
            P.load_prices(ticker, "2022-01-02", "2023-02-17", cache_dir=tmp_path,
                          prices_dir=tmp_path)
        seen.append(str(info.value))
    assert seen[0] == seen[1] and "cannot reach Yahoo Finance" in seen[0]
    assert seen[2] == seen[3] and "does not know 'XYZQ'" in seen[2]
    assert "yfinance:" not in "".join(seen)
