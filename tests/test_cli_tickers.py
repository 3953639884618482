"""`crackdown tickers`: the universe with each ticker's coverage, checked against raw files."""

from __future__ import annotations

import io
import json
import warnings

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from crackdown.cli import main
from crackdown.cli.tickers_cmd import STATUSES, TICKERS_COLUMNS
from crackdown.timeline.calendars import EXTRA_CLOSURES
from crackdown.timeline.universe import load_universe


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    """No ticker may be found in a cache of this machine: the folder is the only source."""
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "empty-cache"))


def _xcal_sessions(exchange: str, start, end) -> pd.DatetimeIndex:
    """Sessions straight from exchange_calendars, plus the project's documented closures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar(exchange, start="2010-01-01", end="2026-12-31")
    days = pd.DatetimeIndex(cal.sessions_in_range(start, end)).tz_localize(None)
    extra = pd.DatetimeIndex(EXTRA_CLOSURES.get(exchange, ()))
    return days[~days.isin(extra)].astype("datetime64[ns]")


def _xcal_early_closes(exchange: str) -> pd.DatetimeIndex:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar(exchange, start="2010-01-01", end="2026-12-31")
    return pd.DatetimeIndex(cal.early_closes).tz_localize(None).normalize()


def _expected_coverage(path, ticker: str, exchange: str) -> dict:
    """Coverage of one file computed from the raw CSV and exchange_calendars."""
    raw = pd.read_csv(path, parse_dates=["Date"]).set_index("Date").sort_index()
    col = "Adj Close" if "Adj Close" in raw.columns else "Close"
    priced = raw.loc[raw[col].notna()]
    if {"Open", "High", "Low", "Close", "Volume"} <= set(raw.columns):
        flat = (priced["Volume"] == 0) & (priced["Open"] == priced["High"]) & (
            priced["High"] == priced["Low"]) & (priced["Low"] == priced["Close"])
    else:  # e.g. a file with Close only: no way to tell a placeholder
        flat = pd.Series(False, index=priced.index)
    calendar = _xcal_sessions(exchange, priced.index.min(), priced.index.max())
    placeholder = priced.index[flat.to_numpy() & priced.index.isin(calendar)
                               & ~priced.index.isin(_xcal_early_closes(exchange))]
    if ticker.startswith("^"):
        placeholder = placeholder[:0]
    valid = priced.index[priced.index.isin(calendar) & ~priced.index.isin(placeholder)]
    span = calendar[(calendar >= valid.min()) & (calendar <= valid.max())]
    return {
        "first_date": f"{priced.index.min():%Y-%m-%d}",
        "last_date": f"{priced.index.max():%Y-%m-%d}",
        "n_sessions": len(span),
        "n_missing_sessions": int((~span.isin(valid)).sum()),
        "n_placeholder": len(placeholder),
    }


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tickers", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _csv(out: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)


# ------------------------------------------------------------------ shared price snapshot
def test_every_universe_row_once_with_coverage_of_the_raw_files(capsys, prices_dir):
    code, out, err = _run(capsys, "--prices-dir", str(prices_dir), "--format", "csv")
    assert code == 0, err
    frame = _csv(out)
    universe = load_universe()
    assert list(frame.columns) == list(TICKERS_COLUMNS)
    assert frame["ticker"].tolist() == universe["ticker"].tolist()  # once each, file order
    for col in ("company", "exchange", "currency", "sector", "industry", "role",
                "cross_listing", "listed", "benchmark"):
        assert frame[col].tolist() == universe[col].tolist(), col
    assert set(frame["status"]) <= set(STATUSES)
    frame = frame.set_index("ticker")
    checked = 0
    for row in universe.itertuples(index=False):
        path = prices_dir / f"{row.ticker}.csv"
        if not path.is_file():
            assert frame.loc[row.ticker, "status"] == "no_price_file"
            assert frame.loc[row.ticker, "first_date"] == ""
            continue
        want = _expected_coverage(path, row.ticker, row.exchange)
        got = frame.loc[row.ticker]
        for key, value in want.items():
            assert got[key] == str(value), (row.ticker, key, got[key], value)
        assert got["source"] == "folder"
        assert got["status"] == ("gaps" if want["n_missing_sessions"] else "ok") or (
            got["status"] == "extra_dates" and not want["n_missing_sessions"])
        checked += 1
    assert checked >= 100
    # the snapshot has Yahoo placeholder gaps in Hong Kong: the check above is not vacuous
    assert (frame["n_placeholder"].astype(int) > 0).sum() >= 10
    assert (frame["status"] == "gaps").any() and (frame["status"] == "ok").any()


@pytest.mark.parametrize(
    ("argv", "column", "values"),
    [
        (["--role", "platform,EV"], "role", {"platform", "ev"}),
        (["--sector", "financials,real estate"], "sector", {"Financials", "Real Estate"}),
        (["--industry", "E-Commerce"], "industry", {"e-commerce"}),
        (["--exchange", "xhkg"], "exchange", {"XHKG"}),
    ],
)
def test_filters_match_a_pandas_filter_of_the_universe(capsys, argv, column, values):
    code, out, err = _run(capsys, *argv, "--no-coverage", "--format", "csv")
    assert code == 0, err
    frame = _csv(out)
    universe = load_universe()
    expected = universe.loc[universe[column].isin(values), "ticker"].tolist()
    assert 0 < len(expected) < len(universe)
    assert frame["ticker"].tolist() == expected
    assert (frame["status"] == "not_checked").all() and (frame["first_date"] == "").all()


def test_filters_combine_with_and(capsys):
    code, out, _ = _run(capsys, "--role", "benchmark_constituent", "--sector", "Financials",
                        "--exchange", "XHKG", "--no-coverage", "--format", "csv")
    assert code == 0
    universe = load_universe()
    mask = ((universe["role"] == "benchmark_constituent") & (universe["sector"] == "Financials")
            & (universe["exchange"] == "XHKG"))
    assert _csv(out)["ticker"].tolist() == universe.loc[mask, "ticker"].tolist()
    assert mask.sum() >= 2


@pytest.mark.parametrize("option", ["--role", "--sector", "--exchange"])
def test_unknown_filter_value_exits_2_with_one_line_naming_the_option(capsys, option):
    code, out, err = _run(capsys, option, "platform,nonsense", "--no-coverage")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("crackdown tickers: error: ") and option in err and "nonsense" in err
    column = option[2:]
    for value in sorted({v for v in load_universe()[column] if v})[:3]:
        assert value in err  # lists the valid values


def test_empty_item_and_missing_folder_are_one_line_errors(capsys, tmp_path):
    code, _, err = _run(capsys, "--role", "platform,", "--no-coverage")
    assert code == 2 and "--role" in err and "empty item" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "--prices-dir", str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


# ------------------------------------------------------------------ small folder built here
def _write(path, frame: pd.DataFrame) -> None:
    out = frame.copy()
    out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d")
    out.index.name = "Date"
    out.to_csv(path)


def _ohlcv(days: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    return pd.DataFrame({"Open": close * 0.995, "High": close * 1.01, "Low": close * 0.98,
                         "Close": close, "Adj Close": close * 0.97,
                         "Volume": rng.integers(1_000, 10_000, len(days)).astype(float)},
                        index=days)


@pytest.fixture
def small_folder(tmp_path):
    """BABA: one session removed; 0700.HK: a placeholder row; SPY: complete; KWEB: a Saturday
    row; JD: an unreadable file; every other universe ticker: no file."""
    folder = tmp_path / "prices"
    folder.mkdir()
    us = _xcal_sessions("XNYS", "2021-03-01", "2021-04-30")
    removed = pd.Timestamp("2021-03-15")
    assert removed in us
    _write(folder / "BABA.csv", _ohlcv(us, 1).drop(index=removed))
    hk = _xcal_sessions("XHKG", "2021-06-01", "2021-07-30")
    frame = _ohlcv(hk, 2)
    hole = pd.Timestamp("2021-06-21")
    assert hole in hk and hole not in _xcal_early_closes("XHKG")
    previous = frame["Close"].shift(1)[hole]
    frame.loc[hole, ["Open", "High", "Low", "Close", "Adj Close"]] = previous
    frame.loc[hole, "Volume"] = 0.0
    _write(folder / "0700.HK.csv", frame)
    _write(folder / "SPY.csv", _ohlcv(us, 3))
    kweb = _ohlcv(us, 4)
    saturday = pd.DataFrame(kweb.iloc[[5]].to_numpy(), columns=kweb.columns,
                            index=pd.DatetimeIndex(["2021-03-13"]))
    _write(folder / "KWEB.csv", pd.concat([kweb, saturday]).sort_index())
    (folder / "JD.csv").write_text("Date,Close\n2021-03-01,abc\n")
    return folder, {"us": us, "hk": hk, "removed": removed, "hole": hole}


def test_small_folder_gaps_placeholders_and_missing_files(capsys, small_folder):
    folder, days = small_folder
    code, out, err = _run(capsys, "--prices-dir", str(folder), "--format", "csv")
    assert code == 0
    frame = _csv(out).set_index("ticker")
    universe = load_universe()
    assert frame.index.tolist() == universe["ticker"].tolist()
    us, hk = days["us"], days["hk"]
    baba = frame.loc["BABA"]
    assert (baba["first_date"], baba["last_date"]) == (f"{us[0]:%Y-%m-%d}", f"{us[-1]:%Y-%m-%d}")
    assert baba["n_sessions"] == str(len(us)) and baba["n_missing_sessions"] == "1"
    assert (baba["n_placeholder"], baba["status"], baba["source"]) == ("0", "gaps", "folder")
    tencent = frame.loc["0700.HK"]
    assert tencent["n_sessions"] == str(len(hk))
    assert (tencent["n_missing_sessions"], tencent["n_placeholder"]) == ("1", "1")
    assert tencent["status"] == "gaps" and tencent["first_date"] == f"{hk[0]:%Y-%m-%d}"
    spy = frame.loc["SPY"]
    assert (spy["n_missing_sessions"], spy["n_placeholder"], spy["status"]) == ("0", "0", "ok")
    assert spy["n_sessions"] == str(len(us))
    kweb = frame.loc["KWEB"]
    assert (kweb["n_missing_sessions"], kweb["status"]) == ("0", "extra_dates")
    assert frame.loc["JD", "status"] == "unreadable"
    assert "JD" in err and "warning" in err and err.count("\n") == 1
    rest = frame.drop(index=["BABA", "0700.HK", "SPY", "KWEB", "JD"])
    assert len(rest) == len(universe) - 5
    assert (rest["status"] == "no_price_file").all()
    assert (rest[["source", "first_date", "last_date", "n_sessions"]] == "").all().all()
    # the same numbers as the raw-file computation used on the shared snapshot
    for ticker, mic in (("BABA", "XNYS"), ("0700.HK", "XHKG"), ("SPY", "XNYS")):
        want = _expected_coverage(folder / f"{ticker}.csv", ticker, mic)
        assert {k: frame.loc[ticker, k] for k in want} == {k: str(v) for k, v in want.items()}


def test_json_and_table_formats(capsys, small_folder):
    folder, days = small_folder
    code, out, _ = _run(capsys, "--prices-dir", str(folder), "--role", "platform",
                        "--format", "json")
    assert code == 0
    records = json.loads(out)
    universe = load_universe()
    assert [r["ticker"] for r in records] == universe.loc[universe["role"] == "platform",
                                                          "ticker"].tolist()
    assert all(list(r) == list(TICKERS_COLUMNS) for r in records)
    by = {r["ticker"]: r for r in records}
    assert by["BABA"]["n_missing_sessions"] == 1 and by["BABA"]["n_sessions"] == len(days["us"])
    assert by["9988.HK"]["status"] == "no_price_file"
    assert by["9988.HK"]["first_date"] is None and by["9988.HK"]["n_sessions"] is None
    capsys.readouterr()
    code, out, _ = _run(capsys, "--prices-dir", str(folder), "--role", "platform")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[0] == "ticker" and len(lines) == len(records) + 2
    n_missing = sum(r["status"] == "no_price_file" for r in records)
    assert lines[-1].startswith(f"{len(records)} tickers: ")
    assert f"{n_missing} no_price_file" in lines[-1] and str(folder) in lines[-1]


def test_valid_filters_with_no_common_row_are_an_error(capsys):
    universe = load_universe()
    assert not ((universe["role"] == "index") & (universe["sector"] == "Financials")).any()
    code, out, err = _run(capsys, "--role", "index", "--sector", "Financials", "--no-coverage")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--sector" in err and "--role" in err
