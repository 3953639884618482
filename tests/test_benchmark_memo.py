"""The per-process memo of ``benchmark_returns``: the same frames as a fresh computation,
copies the caller may change, and a new computation when a constituent file changes, when the
price memo is cleared, or when a file is too young (or not in the prices folder)."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from crackdown.marketdata import benchmarks, price_files
from crackdown.marketdata.benchmarks import HK_NONTECH_EW, benchmark_constituents

START, END = "2020-06-01", "2021-06-30"
_COMPUTE = benchmarks._benchmark_returns  # the computation itself, before any monkeypatch


@pytest.fixture
def folder(prices_dir, tmp_path):
    """A prices folder with real copies of the constituents' files (so they can be changed),
    dated an hour ago (old enough to be memoized)."""
    out = tmp_path / "prices"
    out.mkdir()
    hour_ago = time.time() - 3600
    for ticker in benchmark_constituents(HK_NONTECH_EW):
        target = out / f"{ticker}.csv"
        shutil.copyfile(prices_dir / f"{ticker}.csv", target)
        os.utime(target, (hour_ago, hour_ago))
    return out


@pytest.fixture
def computations(monkeypatch):
    """Count the real computations behind ``benchmark_returns``."""
    calls = []
    real = benchmarks._benchmark_returns

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(benchmarks, "_benchmark_returns", counting)
    benchmarks._MEMO.clear()
    return calls


def _fresh(folder):
    """The computation without any memo (price files parsed again)."""
    price_files.clear_price_memo()
    names = [HK_NONTECH_EW]
    members = {HK_NONTECH_EW: benchmark_constituents(HK_NONTECH_EW)}
    return _COMPUTE(names, members, members[HK_NONTECH_EW], START, END,
                                         folder, "simple")


def test_a_hit_is_a_copy_of_the_same_frames(folder, computations):
    expected, expected_info = _fresh(folder)
    first, info = benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    second, info2 = benchmarks.benchmark_returns([HK_NONTECH_EW], pd.Timestamp(START),
                                                 pd.Timestamp(END), prices_dir=folder)
    assert len(computations) == 1  # the same range given as strings or Timestamps
    pd.testing.assert_frame_equal(first, expected, check_exact=True)
    pd.testing.assert_frame_equal(second, expected, check_exact=True)
    assert info == info2 == expected_info and len(info[HK_NONTECH_EW]["constituents"]) == 44
    # the caller owns its copies: changing them changes no later call
    second.iloc[:, 0] = 0.0
    info2[HK_NONTECH_EW]["constituents"].clear()
    third, info3 = benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    pd.testing.assert_frame_equal(third, expected, check_exact=True)
    assert info3 == expected_info
    # another range or kind is another key
    log, _ = benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder,
                                          kind="log")
    assert len(computations) == 2
    pd.testing.assert_series_equal(log[HK_NONTECH_EW], np.log1p(expected[HK_NONTECH_EW]),
                                   check_exact=True)


def test_a_changed_file_or_a_cleared_price_memo_computes_again(folder, computations):
    base, _ = benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    price_files.clear_price_memo()
    benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    assert len(computations) == 2
    # double one constituent's prices from 2021 on: its return on its first 2021 session
    # changes (or the jump is flagged suspect and left out), so the benchmark's return does
    ticker = benchmark_constituents(HK_NONTECH_EW)[0]
    path = folder / f"{ticker}.csv"
    frame = pd.read_csv(path)
    later = frame["Date"] >= "2021-01-01"
    for column in ("Open", "High", "Low", "Close", "Adj Close"):
        if column in frame:
            frame.loc[later, column] = frame.loc[later, column] * 2
    frame.to_csv(path, index=False)
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago + 1))
    changed, _ = benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    assert len(computations) == 3
    pd.testing.assert_frame_equal(changed, _fresh(folder)[0], check_exact=True)
    first_2021 = changed.index[changed.index >= "2021-01-01"][0]
    n = _fresh(folder)[1][HK_NONTECH_EW]["constituents"]
    assert len(n) == 44 and changed.loc[first_2021].iloc[0] != base.loc[first_2021].iloc[0]
    assert not changed.equals(base)


def test_young_or_absent_files_are_not_memoized(folder, computations, tmp_path):
    ticker = benchmark_constituents(HK_NONTECH_EW)[1]
    os.utime(folder / f"{ticker}.csv")  # modified now: file times tick coarsely
    for _ in range(2):
        benchmarks.benchmark_returns([HK_NONTECH_EW], START, END, prices_dir=folder)
    assert len(computations) == 2 and not benchmarks._MEMO
    # a constituent that is not in the folder would come from the cache or yfinance
    assert benchmarks._memo_key([HK_NONTECH_EW], START, END, "simple", tmp_path,
                                benchmark_constituents(HK_NONTECH_EW)) is None
