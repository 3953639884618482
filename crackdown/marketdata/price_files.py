"""Price CSV files in the yfinance layout: parse, read, pick the return column, find in a folder.

Layout: a ``Date`` column (``YYYY-MM-DD``; a time/zone suffix such as
``2021-07-06 00:00:00-04:00`` is cut to the date) and any of ``Open, High, Low, Close,
Adj Close, Volume, Dividends, Stock Splits``; yfinance's three-row multi-index header
(``Price`` / ``Ticker`` / ``Date`` rows) is accepted too. The price used for returns is
``Adj Close`` when the file has that column, else ``Close``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown.errors import PriceDataError

CANONICAL_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends",
                     "Stock Splits")
_COLUMN_ALIASES = {c.lower().replace(" ", "").replace("_", ""): c for c in CANONICAL_COLUMNS}


_WHAT_TO_DO = (
    "put {ticker}.csv (yfinance layout: Date,Open,High,Low,Close,Adj Close,Volume) in a folder "
    "and pass --prices-dir DIR or set CRACKDOWN_PRICES_DIR, or check the symbol on "
    "finance.yahoo.com (e.g. 0700.HK, ^HSI)"
)


def _fmt(stamp: pd.Timestamp | None, default: str) -> str:
    return default if stamp is None else stamp.strftime("%Y-%m-%d")


def _range_text(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    return f"{_fmt(start, 'earliest')}..{_fmt(end, 'latest')}"


def _canonical_name(name: object) -> str:
    text = str(name).strip()
    return _COLUMN_ALIASES.get(text.lower().replace(" ", "").replace("_", ""), text)


def parse_price_csv(text: str, source: str) -> pd.DataFrame:
    """Parse price CSV text in the yfinance layout.

    Parameters
    ----------
    text
        File contents.
    source
        File name used in error messages.

    Returns
    -------
    pandas.DataFrame
        Index ``Date`` (datetime64[ns], naive, sorted, unique); float columns among
        ``Open, High, Low, Close, Adj Close, Volume, Dividends, Stock Splits`` (others kept as
        they are). Blank cells are NaN.

    Raises
    ------
    PriceDataError
        No date column, no ``Close``/``Adj Close``, an unparsable date or number (naming the
        line, counting the header as line 1), a duplicated date, a price <= 0, or no rows.
    """
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PriceDataError(f"{source}: cannot be read as CSV ({exc}); fix or replace the file")
    first_line = 2  # file line of raw.iloc[0]
    # yfinance multi-index header flattened to CSV: "Price,..." / "Ticker,..." / "Date,,,".
    if (
        len(raw) >= 2
        and str(raw.columns[0]).strip().lower() == "price"
        and str(raw.iloc[0, 0]).strip().lower() == "ticker"
        and str(raw.iloc[1, 0]).strip().lower() in {"date", "datetime"}
    ):
        raw = raw.iloc[2:].reset_index(drop=True)
        raw = raw.rename(columns={raw.columns[0]: "Date"})
        first_line = 4
    raw.columns = [_canonical_name(c) for c in raw.columns]
    date_col = raw.columns[0] if len(raw.columns) else None
    date_ok = date_col is not None and (
        str(date_col).strip().lower() in {"date", "datetime", ""}
        or str(date_col).startswith("Unnamed")
    )
    if not date_ok:
        raise PriceDataError(
            f"{source}: first column is {date_col!r}, expected 'Date' (yfinance layout "
            f"Date,Open,High,Low,Close,Adj Close,Volume)"
        )
    if "Close" not in raw.columns and "Adj Close" not in raw.columns:
        raise PriceDataError(
            f"{source}: no 'Close' or 'Adj Close' column (found {list(raw.columns)}); "
            f"use the yfinance layout Date,Open,High,Low,Close,Adj Close,Volume"
        )
    if raw.empty:
        raise PriceDataError(f"{source}: the file has a header but no rows")
    date_text = raw[date_col].astype(str).str.strip().str.slice(0, 10)
    dates = pd.to_datetime(date_text, format="%Y-%m-%d", errors="coerce")
    bad = dates.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PriceDataError(
            f"{source} line {i + first_line}: date {raw[date_col].iloc[i]!r} is not YYYY-MM-DD"
        )
    out = pd.DataFrame(index=pd.DatetimeIndex(dates.to_numpy(), name="Date").astype(
        "datetime64[ns]"))
    for col in raw.columns[1:]:
        if col not in CANONICAL_COLUMNS:
            out[col] = raw[col].to_numpy()
            continue
        cells = raw[col].astype(str).str.strip()
        values = pd.to_numeric(cells.where(cells != "", None), errors="coerce")
        bad = values.isna() & (cells != "") & (~cells.str.lower().isin({"nan", "null", "none"}))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PriceDataError(
                f"{source} line {i + first_line}: column {col!r} value {cells.iloc[i]!r} is not "
                f"a number"
            )
        out[col] = values.to_numpy(dtype=float)
    dup = out.index.duplicated(keep=False)
    if dup.any():
        dates_dup = sorted({d.strftime("%Y-%m-%d") for d in out.index[dup]})
        raise PriceDataError(
            f"{source}: duplicated date(s) {', '.join(dates_dup[:5])}; keep one row per date"
        )
    if not out.index.is_monotonic_increasing:
        out = out.sort_index()
    for col in ("Adj Close", "Close"):
        if col in out.columns:
            nonpos = out[col] <= 0
            if nonpos.any():
                when = out.index[nonpos.to_numpy()][0].strftime("%Y-%m-%d")
                raise PriceDataError(
                    f"{source}: {col} on {when} is {float(out.loc[nonpos, col].iloc[0])!r}; prices must "
                    f"be > 0 (fix the row or leave the cell blank = missing)"
                )
    return out


def read_price_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one per-ticker price file (yfinance layout); see :func:`parse_price_csv`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PriceDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_price_csv(text, str(path))


def price_column_of(frame: pd.DataFrame) -> str:
    """Return ``'Adj Close'`` when the frame has it, else ``'Close'``."""
    return "Adj Close" if "Adj Close" in frame.columns else "Close"


# --------------------------------------------------------------------------- folder
def folder_file(folder: Path, ticker: str) -> Path | None:
    """Return ``<folder>/<ticker>.csv`` (file-name case ignored) or ``None`` when absent."""
    exact = folder / f"{ticker}.csv"
    if exact.is_file():
        return exact
    wanted = f"{ticker}.csv".lower()
    try:
        for entry in folder.iterdir():
            if entry.name.lower() == wanted and entry.is_file():
                return entry
    except OSError:
        return None
    return None


def folder_tickers(folder: str | os.PathLike[str]) -> list[str]:
    """Return the tickers that have a ``<TICKER>.csv`` file in ``folder`` (sorted)."""
    path = Path(folder)
    return sorted(p.name[:-4] for p in path.iterdir() if p.is_file()
                  and p.name.lower().endswith(".csv"))


# --------------------------------------------------------------------------- cache
