"""Each price file is parsed once per process (issue #14, item 2), and its fast path is exact.

``read_price_csv`` memoizes the validated frame of a file under its identity (resolved path,
mtime_ns, size, inode, device) and hands out deep copies; a file modified less than
``MEMO_MIN_AGE_NS`` ago is parsed but not memoized. Oracles: the csv module and ``float`` on the
file's cells, a fresh parse of the same text, and a count of the parser's calls.
"""

from __future__ import annotations

import csv
import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from _price_helpers import OLD, count_parses, write_price_file

from crackdown.errors import PriceDataError
from crackdown.marketdata import price_files
from crackdown.marketdata.prices import load_prices


@pytest.fixture(autouse=True)
def _fresh_memo():
    price_files.clear_price_memo()
    yield
    price_files.clear_price_memo()


@pytest.fixture
def parses(monkeypatch):
    """The paths ``read_price_csv`` really parsed (a memo hit parses nothing)."""
    return count_parses(monkeypatch)



TEXT = ("Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2021-01-04,10,11,9,10.5,10.25,1000\n"
        "2021-01-05,10.5,12,10,11.75,11.5,\n"
        "2021-01-06,11.75,12,11,11.5,11.25,2000\n")


def test_a_file_is_parsed_once_and_a_changed_copy_does_not_change_the_next_read(tmp_path,
                                                                                  parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    first = price_files.read_price_csv(path)
    want = price_files.parse_price_csv(TEXT, str(path))  # an independent parse of the text
    parses.clear()
    first.iloc[0, 0] = -999.0  # every way a caller can change its frame
    first["Close"] *= 2
    first.attrs["invalid_cells"].append((99, "Close", "2021-01-04", -1.0))
    first.index.name = "changed"
    first.columns = [c.lower() for c in first.columns]
    second = price_files.read_price_csv(path)
    assert parses == []  # a memo hit
    pd.testing.assert_frame_equal(second, want, check_exact=True)
    assert second.attrs == want.attrs == {"invalid_cells": []}
    second.loc[second.index[0], "Volume"] = 0.0
    pd.testing.assert_frame_equal(price_files.read_price_csv(path), want, check_exact=True)
    assert parses == []


def test_a_rewritten_replaced_or_fresh_file_is_parsed_again(tmp_path, parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, TEXT)
    assert price_files.read_price_csv(path)["Close"].iloc[0] == 10.5
    # same size, another mtime: parsed again
    changed = TEXT.replace("10.5,10.25", "10.6,10.35")
    assert len(changed) == len(TEXT)
    write_price_file(path, changed, OLD + 10)
    assert price_files.read_price_csv(path)["Close"].iloc[0] == 10.6
    # same size and the same mtime, but a new file (os.replace: another inode): parsed again
    other = tmp_path / "tmp.csv"
    write_price_file(other, TEXT.replace("10.5,10.25", "10.7,10.45"), OLD + 10)
    os.replace(other, path)
    assert price_files.read_price_csv(path)["Close"].iloc[0] == 10.7
    assert len(parses) == 3
    # a file just written is parsed on every read (its mtime could hide a second write)
    fresh = tmp_path / "BBB.csv"
    fresh.write_text(TEXT)
    assert time.time_ns() - fresh.stat().st_mtime_ns < price_files.MEMO_MIN_AGE_NS
    price_files.read_price_csv(fresh)
    price_files.read_price_csv(fresh)
    assert parses.count(str(fresh)) == 2
    # clear_price_memo forgets everything
    price_files.read_price_csv(path)
    price_files.clear_price_memo()
    price_files.read_price_csv(path)
    assert parses.count(str(path)) == 4


def test_a_memo_hit_repeats_the_invalid_value_warning_and_errors_are_never_memoized(tmp_path,
                                                                                      parses):
    path = tmp_path / "AAA.csv"
    write_price_file(path, "Date,Close\n2021-01-04,10\n2021-01-05,-1\n")
    for _ in range(2):
        with pytest.warns(UserWarning, match=r"AAA\.csv: 1 invalid value.*line 3 Close"):
            frame = price_files.read_price_csv(path)
        assert frame.attrs["invalid_cells"] == [(3, "Close", "2021-01-05", -1.0)]
    assert len(parses) == 1
    bad = tmp_path / "BAD.csv"
    write_price_file(bad, "Date,Close\n2021-01-04,10\n2021-01-05,abc\n")
    for _ in range(2):
        with pytest.raises(PriceDataError, match=r"BAD\.csv line 3: column 'Close' value 'abc'"):
            price_files.read_price_csv(bad)
    assert parses.count(str(bad)) == 2
    write_price_file(bad, "Date,Close\n2021-01-04,10\n2021-01-05,11\n", OLD + 5)  # fixed: read
    assert price_files.read_price_csv(bad)["Close"].tolist() == [10.0, 11.0]


def test_load_prices_reads_each_snapshot_file_once(prices_dir, parses):
    first = load_prices(["BABA", "SPY"], "2021-01-01", "2021-12-31", prices_dir=prices_dir)
    again = load_prices(["BABA", "SPY"], "2021-01-01", "2021-12-31", prices_dir=prices_dir)
    wider = load_prices(["BABA"], prices_dir=prices_dir)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert sorted(parses) == sorted(str(prices_dir / f"{t}.csv") for t in ("BABA", "SPY"))
    assert len(wider) > len(first[first["ticker"] == "BABA"])


# ------------------------------------------------------------------ the fast parser path
def _cells(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_every_snapshot_file_takes_the_fast_path_with_the_values_float_reads(prices_dir):
    files = sorted(prices_dir.glob("*.csv"))
    assert len(files) >= 30
    for path in files:
        text = path.read_text(encoding="utf-8-sig")
        fast = price_files._parse_plain(text)
        assert fast is not None, path.name
        header, rows = _cells(path)
        assert list(fast.columns) == header[1:]
        assert fast.index.equals(pd.DatetimeIndex([r[0] for r in rows]).as_unit("ns"))
        for j, column in enumerate(header[1:], start=1):
            want = np.array([float(r[j]) if r[j].strip() else np.nan for r in rows])
            got = fast[column].to_numpy()
            assert np.array_equal(got.view(np.int64), want.view(np.int64)) or (
                np.array_equal(got, want, equal_nan=True)), (path.name, column)
        slow, _ = price_files._parse_general(text, str(path), None)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)


PLAIN = [
    "Date,Close\n2021-01-04,1\n",
    "Date,Close\n2021-01-04,1",  # no final line end
    "Date,Close\r\n2021-01-04,1\r\n2021-01-05,\r\n",
    "Date,Close\n2020-02-29,1\n",
    "Date,Close\n2021-01-04,1.5e3\n2021-01-05,+2\n2021-01-06,.5\n2021-01-07,5.\n",
    "Date,Close,Volume\n2021-01-04,1,\n2021-01-05,2,3\n",
    "date , close,adj_close\n2021-01-04,1,2\n",
    "Date,Close\n2021-01-04,1\n2021-01-04,2\n",  # duplicated: the shared check raises
    "Date,Close\n2021-01-05,1\n2021-01-04,2\n",  # unsorted: sorted
    "Date,Close\n2021-01-04,1\n2021-01-05,-1\n",  # invalid: warned
    "Date,Open,Close\n2021-01-04,,\n2021-01-05,,3\n",
    "Date,Close\n1678-01-01,1\n2261-12-31,2\n",
]
GENERAL = [
    "Date,Close\n2021-02-29,1\n", "Date,Close\n2021-13-01,1\n", "Date,Close\n2021-1-01,1\n",
    "Date,Close\n2021-04-31,1\n", "Date,Close\n20210104,1\n", "Date,Close\n0000-01-04,1\n",
    "Date,Close\n2021-01-04,1,2\n", "Date,Close\n2021-01-04\n", "Date,Close\n\n2021-01-04,1\n",
    "Date,Close\n2021-01-04,1\n\n", "Date,Close\n2021-01-04,1e\n", "Date,Close\n2021-01-04,-\n",
    "Date,Close\n2021-01-04,nan\n", "Date,Close\n2021-01-04, 1\n", "Date,Close\n2021-01-04,inf\n",
    'Date,Close\n"2021-01-04",1\n', "Date,Close,Close\n2021-01-04,1,2\n",
    "Date,Foo\n2021-01-04,1\n", "Date\n2021-01-04\n", "Date,Close\n",
    "Date,Close\n2021-01-04 00:00:00-05:00,1\n", "Price,Close\nTicker,AAA\nDate,\n2021-01-04,1\n",
    "Date,Close\n2021-01-04,12345678901234567890123\n",
]


def _outcome(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fn(), [str(w.message) for w in caught]
        except PriceDataError as exc:
            return f"error: {exc}", [str(w.message) for w in caught]


@pytest.mark.parametrize("text", PLAIN + GENERAL)
def test_the_fast_path_gives_the_general_parsers_frame_error_and_warnings(text, monkeypatch):
    fast = price_files._parse_plain(text)
    assert (fast is not None) == (text in PLAIN)  # the inputs each path is meant for
    got = _outcome(lambda: price_files.parse_price_csv(text, "p/AAA.csv"))
    monkeypatch.setattr(price_files, "_parse_plain", lambda text: None)  # general parser only
    want = _outcome(lambda: price_files.parse_price_csv(text, "p/AAA.csv"))
    if isinstance(want[0], pd.DataFrame):
        pd.testing.assert_frame_equal(got[0], want[0], check_exact=True)
        assert got[0].attrs == want[0].attrs and got[1] == want[1]
    else:
        assert got == want
