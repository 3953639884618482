"""``study_returns`` (price files straight to wide returns) against the reference chain.

The reference is the chain :meth:`EventStudy.from_events` ran before (issue #14, item 2):
``load_prices(must)`` + ``load_prices(report, on_missing="report")``, ``pd.concat``, then
``returns_matrix(compute_returns(...))`` with UserWarnings silenced. Every comparison is exact:
the frames (values, index, columns and their order, dtypes, names), the bytes of the values,
the ``missing`` dict, the warnings (category and message, in order) and the errors. Synthetic
folders hold every case the returns treat specially; a test makes sure those cases run on the
fast path (the reference fallback is switched off), so the comparison is not the reference
against itself.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from _price_helpers import OLD, write_price_file

from crackdown.errors import PriceDataError
from crackdown.marketdata import price_files, wide_returns
from crackdown.marketdata.prices import load_prices
from crackdown.marketdata.returns import compute_returns, returns_matrix
from crackdown.marketdata.wide_returns import study_returns
from crackdown.timeline.calendars import early_closes, sessions


@pytest.fixture(autouse=True)
def _fresh_memo():
    price_files.clear_price_memo()
    yield
    price_files.clear_price_memo()


def reference(must, report, start, end, *, prices_dir, kind="simple"):
    """The chain study_returns replaces, as inputs.study_inputs wrote it."""
    frames = [load_prices(must, start, end, prices_dir=prices_dir)] if must else []
    missing: dict[str, str] = {}
    if report is not None:
        extra = load_prices(report, start, end, prices_dir=prices_dir, on_missing="report")
        missing = dict(extra.attrs.get("missing", {}))
        frames.append(extra)
    prices = pd.concat(frames, ignore_index=True)
    if len(prices):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rets = returns_matrix(compute_returns(prices, kind=kind))
    else:
        rets = pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype=float)
    return rets, missing


def _run(fn, *args, **kwargs):
    """``(result or exception, [(category, message), ...])`` of one call."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            out = fn(*args, **kwargs)
        except PriceDataError as exc:
            out = exc
    return out, [(w.category, str(w.message)) for w in seen]


def assert_same(must, report, start, end, *, prices_dir, kind="simple"):
    """study_returns and the reference agree exactly (result, warnings, or the error)."""
    want, want_warn = _run(reference, must, report, start, end, prices_dir=prices_dir,
                           kind=kind)
    price_files.clear_price_memo()  # the same reads: memo misses first, as for the reference
    got, got_warn = _run(study_returns, must, report, start, end, prices_dir=prices_dir,
                         kind=kind)
    assert got_warn == want_warn
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
        return want
    (wide, missing), (want_wide, want_missing) = got, want
    pd.testing.assert_frame_equal(wide, want_wide, check_exact=True)
    assert list(wide.columns) == list(want_wide.columns)
    assert wide.columns.name == want_wide.columns.name and wide.index.name == "date"
    assert wide.to_numpy().tobytes() == want_wide.to_numpy().tobytes()  # NaN bits, -0.0
    assert missing == want_missing
    # a second call (memo hits) gives the same again
    again, again_warn = _run(study_returns, must, report, start, end, prices_dir=prices_dir,
                             kind=kind)
    assert again_warn == want_warn
    pd.testing.assert_frame_equal(again[0], want_wide, check_exact=True)
    return want


# ------------------------------------------------------------------ a synthetic folder
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def _walk(n: int, seed: int, start: float = 50.0, drift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(rng.normal(drift, 0.02, n)))


def _rows(days, prices, *, volume=1000) -> dict[str, str]:
    """``{YYYY-MM-DD: csv row}`` of ordinary rows (O, H, L around the close)."""
    out = {}
    for d, p in zip(days, prices):
        out[f"{d:%Y-%m-%d}"] = (f"{p * 1.01:.6f},{p * 1.02:.6f},{p * 0.98:.6f},{p:.6f},"
                                f"{p * 0.99:.6f},{volume}")
    return out


def _write(folder, ticker: str, rows: dict[str, str], header: str = HEADER,
           mtime: int | None = OLD) -> None:
    text = header + "".join(f"{d},{r}\n" for d, r in sorted(rows.items()))
    path = folder / f"{ticker}.csv"
    if mtime is None:
        path.write_text(text)  # just written: parsed on every read, never memoized
    else:
        write_price_file(path, text, mtime)


NY = sessions("XNYS", "2020-01-01", "2021-06-30")
HK = sessions("XHKG", "2020-01-01", "2021-06-30")
SPAN = ("2020-03-01", "2021-03-31")


@pytest.fixture
def folder(tmp_path):
    """Price files with every case the returns treat specially (see each comment)."""
    # AAA: invalid prices (negative, blank, inf), a 1000x spike (suspect), a Saturday
    # (non-session), a placeholder (Volume 0, O=H=L=C on a full session), a missing session
    aaa = _rows(NY, _walk(len(NY), 1))
    aaa["2020-04-01"] = "10,11,9,10,-1,100"
    aaa["2020-04-02"] = "10,11,9,10,,100"
    aaa["2020-04-03"] = "10,11,9,10,inf,100"
    spike = aaa["2020-06-01"].split(",")
    spike[4] = str(float(spike[4]) * 1000)
    aaa["2020-06-01"] = ",".join(spike)
    aaa["2020-06-06"] = "50,51,49,50,49.5,100"  # a Saturday
    aaa["2020-07-01"] = "48,48,48,48,47.5,0"  # a placeholder
    del aaa["2020-08-03"]
    _write(tmp_path, "AAA", aaa)
    # BBB: Close only (no placeholder columns), just written (not memoized)
    bbb = {f"{d:%Y-%m-%d}": f"{p:.4f}" for d, p in zip(NY, _walk(len(NY), 2))}
    _write(tmp_path, "BBB", bbb, header="Date,Close\n", mtime=None)
    # 0001.HK: a placeholder on a half day (a price) and on a full day (missing)
    hk = _rows(HK, _walk(len(HK), 3))
    half = next(d for d in early_closes("XHKG") if pd.Timestamp(SPAN[0]) <= d
                <= pd.Timestamp(SPAN[1]))
    hk[f"{half:%Y-%m-%d}"] = "60,60,60,60,60,0"
    hk["2020-09-01"] = "61,61,61,61,61,0"
    _write(tmp_path, "0001.HK", hk)
    # ^HSI: flat zero-volume rows are real closes for an index
    hsi = _rows(HK, _walk(len(HK), 4, 25000.0))
    hsi["2020-09-01"] = "25000,25000,25000,25000,25000,0"
    _write(tmp_path, "^HSI", hsi)
    # EEE: falls 5000-fold with no spike (a wide range: checked by suspect_price_mask itself)
    _write(tmp_path, "EEE", _rows(NY, np.geomspace(5000.0, 1.0, len(NY))))
    # FFF: prices outside PRICE_BOUNDS (suspect), and a 99.5x / 100.5x pair around the cut
    fff = _rows(NY, _walk(len(NY), 5))
    fff["2020-05-01"] = "1,1,1,1,2e9,100"
    fff["2020-05-04"] = "1,1,1,1,1e-7,100"
    for day, factor in (("2020-10-01", 99.5), ("2020-11-02", 100.5), ("2020-11-03", 0.0099)):
        cells = fff[day].split(",")
        cells[4] = repr(float(cells[4]) * factor)
        fff[day] = ",".join(cells)
    _write(tmp_path, "FFF", fff)
    # GGG: one row in the span (no return); HHH: rows before CALENDAR_START too
    _write(tmp_path, "GGG", _rows([pd.Timestamp("2020-06-01"), pd.Timestamp("2022-01-03")],
                                  [10.0, 11.0]))
    hhh = _rows(NY, _walk(len(NY), 6))
    hhh.update(_rows(pd.to_datetime(["2009-12-29", "2009-12-30"]), [40.0, 41.0]))
    _write(tmp_path, "HHH", hhh)
    # III: only invalid prices in the span (valid ones outside it); CCC: no row in the span
    iii = _rows(NY[NY < pd.Timestamp("2020-02-01")], _walk(20, 7))
    iii.update({f"{d:%Y-%m-%d}": "1,1,1,1,-5,10" for d in NY[(NY > pd.Timestamp("2020-05-01"))
                                                             & (NY < pd.Timestamp("2020-06-01"))]})
    _write(tmp_path, "III", iii)
    _write(tmp_path, "CCC", _rows(NY[NY > pd.Timestamp("2021-05-01")], _walk(30, 8)))
    # OLD, NEW: New York listings with disjoint spans (the sessions between are no row)
    _write(tmp_path, "OLD", _rows(NY[NY < pd.Timestamp("2020-05-01")], _walk(83, 10)))
    _write(tmp_path, "NEW", _rows(NY[NY > pd.Timestamp("2020-10-01")], _walk(187, 11)))
    # DUP: a duplicated date (an error naming the file)
    dup = _rows(NY[:5], _walk(5, 9))
    text = (HEADER + "".join(f"{d},{r}\n" for d, r in dup.items())
            + f"{NY[4]:%Y-%m-%d},1,1,1,1,1,1\n")
    write_price_file(tmp_path / "DUP.csv", text)
    return tmp_path


GOOD = ["AAA", "BBB", "0001.HK", "^HSI", "EEE", "FFF", "GGG", "HHH", "III"]


@pytest.mark.parametrize("kind", ["simple", "log"])
@pytest.mark.parametrize("span", [SPAN, (None, None), ("2020-01-01", "2020-03-10")])
def test_the_edge_cases_give_the_reference_frame(folder, kind, span):
    want = assert_same(["^HSI"], [t for t in GOOD if t != "^HSI"] + ["CCC", "ZZZ"], *span,
                       prices_dir=folder, kind=kind)
    wide, missing = want
    if span == SPAN:  # the cases are there: the comparison covers them
        assert {"CCC", "ZZZ"} <= set(missing) and "GGG" not in wide.columns
        assert "III" not in wide.columns and wide.shape[1] == 7
        on_ny = wide.index.isin(NY)
        assert wide["AAA"].isna().sum() > 5 and np.isfinite(wide.loc[on_ny, "EEE"]).all()
        assert wide.loc[~on_ny, "AAA"].isna().all() and (~on_ny).any()  # HK-only sessions


def test_the_edge_cases_run_on_the_fast_path(folder, monkeypatch):
    def no_fallback(*args):
        raise AssertionError("the reference fallback ran")

    checked = []  # the tickers whose range lets a spike in: suspect_price_mask itself
    exact = wide_returns.suspect_price_mask

    def counting(price):
        checked.append(len(price))
        return exact(price)

    monkeypatch.setattr(wide_returns, "_reference_wide", no_fallback)
    monkeypatch.setattr(wide_returns, "suspect_price_mask", counting)
    for kind in ("simple", "log"):
        assert_same(["^HSI", "AAA"], GOOD[1:3] + GOOD[4:] + ["CCC"], *SPAN, prices_dir=folder,
                    kind=kind)
    assert len(checked) == 2 * 2 * 3  # AAA (spike), EEE (range), FFF (bounds); 2 calls each


def test_sessions_no_listing_has_a_return_on_are_no_rows(folder, monkeypatch):
    monkeypatch.setattr(wide_returns, "_reference_wide", None)  # the fast path only
    for must in (["OLD", "NEW"], ["NEW", "0001.HK", "OLD"]):
        wide, _ = assert_same(must, None, *SPAN, prices_dir=folder)
        assert list(wide.columns) == must
        gap = wide.index.isin(NY[(NY > pd.Timestamp("2020-05-01"))
                                 & (NY <= pd.Timestamp("2020-10-01"))])
        if "0001.HK" in must:  # the gap's rows are the Hong Kong sessions
            assert gap.any() and wide.index[gap].isin(HK).all()
            assert wide.loc[gap, ["OLD", "NEW"]].isna().all().all()
        else:
            assert not gap.any()


def test_every_price_is_where_the_returns_module_puts_it(folder):
    """An independent check of a few cells: the file's prices by hand."""
    with pytest.warns(UserWarning, match=r"AAA\.csv: 2 invalid value"):
        wide, _ = study_returns(["AAA", "0001.HK", "^HSI"], None, *SPAN, prices_dir=folder)
    raw = pd.read_csv(folder / "AAA.csv", index_col=0, parse_dates=True)["Adj Close"]
    day, prev = pd.Timestamp("2020-03-04"), pd.Timestamp("2020-03-03")
    assert wide.loc[day, "AAA"] == raw[day] / raw[prev] - 1.0
    for gone in ("2020-04-01", "2020-04-02", "2020-04-03", "2020-04-06",  # invalid, next
                 "2020-06-01", "2020-06-02", "2020-07-01", "2020-07-02",  # spike, placeholder
                 "2020-08-03", "2020-08-04"):  # a missing row
        assert np.isnan(wide.loc[gone, "AAA"]), gone
    assert pd.Timestamp("2020-06-06") not in wide.index  # a Saturday is no row
    assert np.isnan(wide.loc["2020-09-01", "0001.HK"])  # placeholder on a full day
    assert np.isfinite(wide.loc["2020-09-01", "^HSI"])  # an index's flat row is a close
    half = next(d for d in early_closes("XHKG") if d >= pd.Timestamp(SPAN[0]))
    assert np.isfinite(wide.loc[half, "0001.HK"])  # the half day's price is kept
    assert list(wide.columns) == ["AAA", "0001.HK", "^HSI"]
    assert wide.index.equals(wide.index.sort_values()) and wide.index.is_unique


def test_errors_and_warnings_are_the_reference_ones(folder):
    # a must ticker without prices (no row in the span, no file), one or several
    for must in (["CCC"], ["CCC", "ZZZ"], ["AAA", "ZZZ"]):
        err = assert_same(must, ["BBB"], *SPAN, prices_dir=folder)
        assert isinstance(err, PriceDataError)
    # a duplicated date in a file: its parse error; a ticker in both lists: duplicated dates
    assert isinstance(assert_same(["DUP"], None, *SPAN, prices_dir=folder), PriceDataError)
    _, missing = assert_same(["AAA"], ["DUP"], *SPAN, prices_dir=folder)  # reported, left out
    assert "duplicated date" in missing["DUP"]
    err = assert_same(["AAA"], ["AAA", "BBB"], *SPAN, prices_dir=folder)
    assert "duplicated date" in str(err)
    # a bad kind, a range the wrong way round, a folder that does not exist
    assert isinstance(assert_same(["AAA"], None, *SPAN, prices_dir=folder, kind="pct"),
                      PriceDataError)
    assert_same(["AAA"], None, "2021-01-01", "2020-01-01", prices_dir=folder)
    assert_same([], ["AAA"], "2021-01-01", "2020-01-01", prices_dir=folder)
    assert_same([], ["AAA"], *SPAN, prices_dir=folder / "nowhere")
    # nothing loads at all: the empty frame; only tickers without a return: no column
    wide, missing = assert_same([], ["CCC", "ZZZ"], *SPAN, prices_dir=folder)
    assert wide.empty and set(missing) == {"CCC", "ZZZ"}
    assert_same(["GGG"], ["III"], *SPAN, prices_dir=folder)


def test_the_memoized_frames_are_not_changed(folder):
    """study_returns reads the memo's frames in place: they stay what a fresh parse gives."""
    path = folder / "AAA.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        study_returns(["AAA", "FFF"], ["0001.HK"], *SPAN, prices_dir=folder)
        study_returns(["AAA"], None, None, None, prices_dir=folder)
        got = price_files.read_price_csv(path)
        want = price_files.parse_price_csv(path.read_text(), str(path))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs


@pytest.mark.parametrize("cow", [True, False])
def test_a_handed_out_copy_cannot_change_the_memo(folder, monkeypatch, cow):
    """Shallow copies under Copy-on-Write (pandas >= 3), deep ones without it (pandas 2)."""
    monkeypatch.setattr(price_files, "_copy_on_write", lambda: cow)
    path = folder / "FFF.csv"
    price_files.read_price_csv(path)  # parsed and memoized
    first = price_files.read_price_csv(path)  # a hit: the handed-out copy
    memo = price_files._read_memoized(path, False, 2)
    assert np.shares_memory(first["Close"].to_numpy(), memo["Close"].to_numpy()) == cow
    want = first.copy(deep=True)
    first.iloc[:, 0] = -1.0
    first.index.name = "x"
    first.columns.name = "y"
    first.attrs["invalid_cells"] = ["changed"]
    again = price_files.read_price_csv(path)
    pd.testing.assert_frame_equal(again, want, check_exact=True)
    assert again.attrs == {"invalid_cells": []}


@pytest.mark.parametrize("kind", ["simple", "log"])
def test_the_snapshot_gives_the_reference_frame(prices_dir, kind):
    tickers = sorted(p[:-4] for p in os.listdir(prices_dir) if p.endswith(".csv"))
    assert len(tickers) > 20
    assert_same(["SPY", "^HSI"], [t for t in tickers if t not in ("SPY", "^HSI")],
                "2018-10-20", "2023-08-13", prices_dir=prices_dir, kind=kind)
    assert_same(tickers[:40], None, None, None, prices_dir=prices_dir, kind=kind)
    assert_same([], tickers[40:] + ["NOPE"], "2021-01-01", "2021-12-31",
                prices_dir=prices_dir, kind=kind)


@pytest.mark.parametrize("seed", range(6))
def test_random_folders_give_the_reference_frame(tmp_path, monkeypatch, seed):
    """Random listings (both calendars, random spans, gaps, blank / invalid / spiked prices,
    flat zero-volume rows, weekend rows) on the fast path (the reference fallback only when
    no listing has a return), against the reference."""
    fallbacks = []
    reference_wide = wide_returns._reference_wide

    def recording(*args):
        fallbacks.append(args)
        return reference_wide(*args)

    monkeypatch.setattr(wide_returns, "_reference_wide", recording)
    rng = np.random.default_rng(seed)
    names = []
    for k in range(12):
        ticker = f"R{k}" if k % 3 else f"{k + 1:04d}.HK"
        grid = NY if k % 3 else HK
        a, b = np.sort(rng.integers(0, len(grid), 2))
        days = grid[a:max(b, a + 2)]
        days = days[rng.random(len(days)) > 0.05]  # missing sessions
        rows = _rows(days, _walk(len(days), seed * 100 + k, drift=rng.normal(0, 0.01)))
        keys = list(rows)
        for day in rng.choice(keys, size=min(len(keys), 6), replace=False):
            cells = rows[day].split(",")
            what = rng.integers(0, 5)
            if what == 0:
                cells[4] = ""  # blank: a missing price
            elif what == 1:
                cells[4] = "-2"  # invalid
            elif what == 2:
                cells[4] = repr(float(cells[4]) * rng.choice([150.0, 1 / 150.0]))  # spike
            elif what == 3:
                cells = [cells[3]] * 4 + [cells[3], "0"]  # a flat zero-volume row
            else:
                cells[5] = "0"  # zero volume, not flat
            rows[day] = ",".join(cells)
        if rng.random() < 0.3:  # a row on a Sunday
            rows["2020-06-07"] = "10,10,10,10,10,5"
        _write(tmp_path, ticker, rows)
        names.append(ticker)
    for kind in ("simple", "log"):
        lo, hi = sorted(rng.choice(NY, 2, replace=False))
        for args in ((names[:3], names[3:], None, None), ([], names, lo, hi)):
            fallbacks.clear()
            got = assert_same(*args, prices_dir=tmp_path, kind=kind)
            assert not fallbacks or (not isinstance(got, Exception) and got[0].shape[1] == 0)
