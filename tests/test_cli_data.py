"""`crackdown fetch` and `crackdown data check` end to end (offline, yfinance stubbed)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import yfinance

from crackdown.cli import main
from crackdown.marketdata.prices import read_cache


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CRACKDOWN_OFFLINE", raising=False)


def _one_line_error(capsys, prefix: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"crackdown {prefix}: error: ")
    return err


def test_data_check_csv_matches_quality(prices_dir, capsys):
    rc = main(["data", "check", "--tickers", "BABA,0700.HK", "--start", "2023-08-01",
               "--end", "2023-09-29", "--prices-dir", str(prices_dir), "--format", "csv"])
    assert rc == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str,
                      keep_default_na=False).set_index("ticker")
    assert out.loc["0700.HK", "missing_sessions"] == ""  # weather closures are holidays
    assert out.loc["0700.HK", "n_missing_sessions"] == "0"
    assert out.loc["BABA", "status"] == "ok" and out.loc["BABA", "price_column"] == "Adj Close"
    assert out.loc["BABA", "first_date"] == "2023-08-01"


def test_data_check_table_lists_every_folder_ticker(prices_dir, capsys):
    rc = main(["data", "check", "--prices-dir", str(prices_dir), "--start", "2022-01-01",
               "--offline"])
    assert rc == 0
    out = capsys.readouterr().out
    for ticker in ("BABA", "^HSI", "0700.HK", "KWEB"):
        assert ticker in out
    # DIDI has no rows after 2021-12-30: reported in the table, not a crash
    assert "no prices:" in out and "DIDI" in out


def test_data_check_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "px").mkdir()
    assert main(["data", "check", "--tickers", "NOPE", "--prices-dir", str(tmp_path / "px"),
                 "--offline"]) == 2
    assert "NOPE" in _one_line_error(capsys, "data")
    assert main(["data", "check", "--tickers", "BABA", "--prices-dir",
                 str(tmp_path / "missing")]) == 2
    assert "does not exist" in _one_line_error(capsys, "data")
    assert main(["data", "check", "--tickers", "BABA,", "--prices-dir", str(tmp_path)]) == 2
    assert "empty item" in _one_line_error(capsys, "data")


def test_fetch_fills_cache_then_reports_cached(tmp_path, monkeypatch, capsys):
    dates = pd.DatetimeIndex(["2021-01-04", "2021-01-05"], name="Date")
    frame = pd.DataFrame({"Close": [1.0, 2.0], "Adj Close": [0.9, 1.8],
                          "Volume": [10.0, 20.0]}, index=dates)
    monkeypatch.setattr(yfinance, "download", lambda ticker, **kw: frame)
    cache = tmp_path / "c"
    rc = main(["fetch", "--tickers", "AAA,BBB", "--start", "2021-01-01", "--end",
               "2021-01-05", "--cache-dir", str(cache), "--format", "csv"])
    assert rc == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert out["status"].tolist() == ["downloaded", "downloaded"]
    cached, meta = read_cache("BBB", cache)
    np.testing.assert_array_equal(cached["Adj Close"], [0.9, 1.8])
    assert meta["requested_end"] == "2021-01-05"
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pytest.fail("re-downloaded"))
    assert main(["fetch", "--tickers", "AAA", "--start", "2021-01-01", "--end", "2021-01-05",
                 "--cache-dir", str(cache)]) == 0
    assert "cached" in capsys.readouterr().out


def test_fetch_offline_fails_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    rc = main(["fetch", "--tickers", "BABA", "--start", "2021-01-01", "--end", "2021-01-31",
               "--cache-dir", str(tmp_path)])
    assert rc == 2
    err = _one_line_error(capsys, "fetch")
    assert "BABA" in err and "2021-01-01..2021-01-31" in err and "CRACKDOWN_PRICES_DIR" in err
    assert main(["fetch", "--tickers", "BABA", "--start", "2021-02-30",
                 "--cache-dir", str(tmp_path)]) == 2
    assert "2021-02-30" in _one_line_error(capsys, "fetch")
