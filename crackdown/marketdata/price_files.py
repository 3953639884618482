"""Price CSV files in the yfinance layout: parse, read, pick the return column, find in a folder.

Layout: a ``Date`` column and any of ``Open, High, Low, Close, Adj Close, Volume, Dividends,
Stock Splits``; yfinance's three-row multi-index header (``Price`` / ``Ticker`` / ``Date`` rows)
is accepted too. The price used for returns is ``Adj Close`` when the file has that column, else
``Close``.

Dates
-----
A cell is ``YYYY-MM-DD``, optionally followed by a time of day (``HH:MM[:SS[.f]]``, after a
space or ``T``) and a UTC offset (``Z``, ``+HH:MM``, ``-HHMM``). Anything else after the date is
an error naming the file and line. The date of a row is the **exchange's local calendar date**:

* no offset: the date as written (a naive stamp is exchange-local);
* an offset and a time of exactly midnight (``2021-07-06 00:00:00-04:00``, yfinance's daily
  stamp: the exchange-local midnight of the session; also ``2021-07-06 00:00:00+00:00`` from
  tools that label a date with UTC midnight): the date as written. A midnight stamp labels a
  calendar day; converting it would move a New York session to the previous evening;
* an offset and another time (``2021-04-11 16:00:00+00:00``, a Hong Kong midnight written in
  UTC): the instant is converted to the exchange's time zone
  (:func:`crackdown.timeline.calendars.calendar_tz` of the ticker's exchange,
  :func:`crackdown.timeline.universe.exchange_for_ticker`), then its date is taken
  (2021-04-12 for a Hong Kong listing).

Dates that are not sessions of the exchange are kept here; the returns leave them out and
report them (:mod:`crackdown.marketdata.returns`, :mod:`crackdown.marketdata.quality`).

Invalid values
--------------
A price cell (``Open, High, Low, Close, Adj Close``) that is not finite or not > 0, or a
``Volume`` that is not finite or < 0, is not a price anyone traded at. It is kept in the frame
as read (this module changes no value), reported in one :class:`UserWarning` naming the file,
lines, dates and values, and treated as a **missing price** by the returns
(:func:`crackdown.marketdata.returns.align_to_calendar`), which list it in their own column of
the quality report. A file whose return column has no valid price at all is an error.

Speed
-----
A plain file (``Date`` and canonical columns, ``YYYY-MM-DD`` dates, number cells) is read by
the C parser with the dates decoded from the bytes (:func:`_parse_plain`); anything else goes
through the general parser, which gives the same frame, warnings and errors (it is the
reference, ``tests/test_price_memo.py``). :func:`read_price_csv` parses each file once per
process and hands out copies (shallow under pandas' Copy-on-Write, which protects the memo
as a deep copy does; :func:`clear_price_memo` forgets them); the loaders that only read the
frame (:func:`crackdown.marketdata.prices.load_prices`,
:func:`crackdown.marketdata.wide_returns.study_returns`) read the memoized frame itself.
Across processes, the parsed frame is kept on disk (:func:`crackdown.config.parsed_prices_dir`;
one file per price file: raw arrays and a JSON header, no pickle) and read back while the
file's identity and the parser are unchanged (:func:`_disk_load`;
``tests/test_price_disk_cache.py``).
"""

from __future__ import annotations

import copy
import io
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown.errors import CrackdownError, PriceDataError
from crackdown.timeline.calendars import calendar_tz
from crackdown.timeline.universe import exchange_for_ticker

CANONICAL_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends",
                     "Stock Splits")
_COLUMN_ALIASES = {c.lower().replace(" ", "").replace("_", ""): c for c in CANONICAL_COLUMNS}
#: Columns whose values must be finite and > 0 (Volume: finite and >= 0).
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
#: ``YYYY-MM-DD``, optionally a time of day and a UTC offset (groups: date, time, offset).
_STAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$"
)


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


def _ticker_of(source: str) -> str:
    name = Path(str(source)).name
    return name[:-4] if name.lower().endswith(".csv") else ""


def _zone_of(ticker: str):
    """Time zone of the ticker's exchange, or None when the exchange cannot be told."""
    if not ticker:
        return None
    try:
        return calendar_tz(exchange_for_ticker(ticker))
    except CrackdownError:
        return None


def _parse_dates(cells: pd.Series, source: str, first_line: int, ticker: str) -> np.ndarray:
    """Exchange-local calendar dates of the ``Date`` cells (see the module docstring)."""
    text = cells.astype(str).str.strip().reset_index(drop=True)
    parts = text.str.extract(_STAMP)
    dates = pd.to_datetime(parts[0], format="%Y-%m-%d", errors="coerce")
    has_time = parts[1].notna()
    aware = parts[2].notna()
    valid_time = pd.Series(True, index=text.index)
    if has_time.any():  # the time (and offset) must be a real one: 2021-04-12 25:00 is not
        naive = has_time & ~aware
        if naive.any():
            valid_time[naive] = pd.to_datetime(text[naive], format="ISO8601",
                                               errors="coerce").notna()
        if aware.any():
            stamps = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
            valid_time[aware] = stamps.notna()
    bad = dates.isna() | ~valid_time
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PriceDataError(
            f"{source} line {i + first_line}: date {text.iloc[i]!r} is not YYYY-MM-DD (a time "
            f"and a UTC offset may follow, e.g. 2021-07-06 00:00:00-04:00); fix the row"
        )
    midnight = parts[1].fillna("").str.fullmatch(r"00:00(?::00(?:\.0+)?)?")
    convert = (aware & ~midnight).to_numpy()
    out = dates.to_numpy(dtype="datetime64[ns]")
    if convert.any():
        zone = _zone_of(ticker)
        if zone is None:
            i = int(np.flatnonzero(convert)[0])
            raise PriceDataError(
                f"{source} line {i + first_line}: stamp {text.iloc[i]!r} has a time of day and a "
                f"UTC offset, but the exchange of {ticker or 'this file'!r} is unknown, so its "
                "local date cannot be told; name the file <TICKER>.csv or write the exchange-local "
                "date YYYY-MM-DD"
            )
        local = pd.to_datetime(text[convert], format="ISO8601", utc=True).dt.tz_convert(zone)
        out[convert] = local.dt.tz_localize(None).dt.normalize().to_numpy(dtype="datetime64[ns]")
    return out


def _report_invalid(frame: pd.DataFrame, source: str,
                    first_line: int) -> list[tuple[int, str, str, float]]:
    """Warn about non-finite or non-positive prices and bad volumes (file order, lines)."""
    found: list[tuple[int, str, str, float]] = []
    for col in (*PRICE_COLUMNS, "Volume"):
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(dtype=float)
        present = ~np.isnan(values)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values) & ((values >= 0) if col == "Volume" else (values > 0))
        for i in np.flatnonzero(present & ~ok):
            found.append((int(i) + first_line, col, f"{frame.index[i]:%Y-%m-%d}",
                          float(values[i])))
    if not found:
        return found
    found.sort()
    column = "Adj Close" if "Adj Close" in frame.columns else "Close"
    prices = frame[column].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(prices) & (prices > 0)).any():
            line, col, when, value = next(f for f in found if f[1] == column)
            raise PriceDataError(
                f"{source} line {line}: {col} on {when} is {value!r}; prices must be > 0 and "
                "finite, and the file has no valid price (fix the rows, or leave a cell blank "
                "for a missing price)"
            )
    _warn_invalid(found, source, stacklevel=4)
    return found


def _warn_invalid(found: list[tuple[int, str, str, float]], source: str,
                  stacklevel: int) -> None:
    """The one warning about the invalid cells ``found`` of ``source`` (see
    :func:`_report_invalid`; a memo hit of :func:`read_price_csv` repeats it)."""
    shown = ", ".join(f"line {ln} {c} {d} = {v!r}" for ln, c, d, v in found[:5])
    more = f" (+{len(found) - 5} more)" if len(found) > 5 else ""
    warnings.warn(
        f"{source}: {len(found)} invalid value(s) (prices must be finite and > 0, volumes "
        f"finite and >= 0): {shown}{more}; invalid prices are treated as missing; fix the rows "
        "or leave the cells blank (see `crackdown data check`)",
        stacklevel=stacklevel,
    )


def parse_price_csv(text: str, source: str, *, ticker: str | None = None) -> pd.DataFrame:
    """Parse price CSV text in the yfinance layout.

    Parameters
    ----------
    text
        File contents.
    source
        File name used in error messages.
    ticker
        Symbol whose exchange's time zone converts stamps with a time of day and a UTC offset
        (see the module docstring); default: the file name's stem when ``source`` ends in
        ``.csv`` (``<TICKER>.csv``).

    Returns
    -------
    pandas.DataFrame
        Index ``Date`` (datetime64[ns], naive, sorted, unique); float columns among
        ``Open, High, Low, Close, Adj Close, Volume, Dividends, Stock Splits`` (others kept as
        they are). Blank cells are NaN. Invalid values (non-finite or <= 0 prices, negative
        volumes) are kept as read and reported in a warning; ``attrs["invalid_cells"]`` lists
        them as ``(line, column, YYYY-MM-DD, value)``.

    Warns
    -----
    UserWarning
        Invalid values, naming the file, lines, dates and values (the returns treat such prices
        as missing).

    Raises
    ------
    PriceDataError
        No date column, no ``Close``/``Adj Close``, an unparsable date, time, offset or number
        (naming the line, counting the header as line 1), text after a date, a duplicated date,
        a return column without a single valid price, or no rows.
    """
    out = _parse_plain(text)
    first_line = 2  # file line of the first row
    if out is None:
        out, first_line = _parse_general(text, source, ticker)
    out.attrs["invalid_cells"] = _report_invalid(out, source, first_line)
    dup = out.index.duplicated(keep=False)
    if dup.any():
        dates_dup = sorted({d.strftime("%Y-%m-%d") for d in out.index[dup]})
        raise PriceDataError(
            f"{source}: duplicated date(s) {', '.join(dates_dup[:5])}; keep one row per date"
        )
    if not out.index.is_monotonic_increasing:
        out = out.sort_index()
    return out


#: Bytes a data row of a plain file may hold (digits, sign, decimal point, exponent, comma,
#: line ends): no quote, space, letter of a NaN/inf spelling, time of day or UTC offset.
_PLAIN_BYTES = b"0123456789.-+eE,\r\n"
#: Character positions of the digits of ``YYYY-MM-DD``.
_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9])
#: Days of each month in a common year.
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
#: Years whose dates a datetime64[ns] index holds (others: the general parser's message).
_YEARS = (1678, 2261)


def _plain_dates(data: np.ndarray, starts: np.ndarray) -> np.ndarray | None:
    """``YYYY-MM-DD,`` at each line start of ``data`` as datetime64[ns], or None.

    ``data`` holds the rows (bytes), ``starts`` the offset of each line; None when some line
    does not begin with exactly a date and a comma, or the date is not a day (2021-02-30;
    Gregorian leap years: divisible by 4, centuries only by 400).
    """
    if len(data) - starts.max() < 11:
        return None
    block = data[starts[:, None] + np.arange(11)]
    digits = block[:, _DIGIT_AT] - np.uint8(48)  # below "0" wraps around to >= 208
    if not ((digits <= 9).all() and (block[:, 4] == 45).all() and (block[:, 7] == 45).all()
            and (block[:, 10] == 44).all()):
        return None
    d = digits.astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    if not ((year >= _YEARS[0]) & (year <= _YEARS[1]) & (month >= 1) & (month <= 12)
            & (day >= 1)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if (day > _MONTH_DAYS[month - 1] + (leap & (month == 2))).any():
        return None
    first = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    return (first.astype("datetime64[D]") + (day - 1)).astype("datetime64[ns]")


def _parse_plain(text: str) -> pd.DataFrame | None:
    """Fast path of :func:`parse_price_csv` for a plain file, or ``None`` (general parser).

    Plain: a header ``Date`` (or ``Datetime``) followed by distinct columns of
    :data:`CANONICAL_COLUMNS` (``Close`` or ``Adj Close`` among them), then at least one line,
    every line made only of :data:`_PLAIN_BYTES`, holding exactly one cell per column and
    beginning with a date ``YYYY-MM-DD`` (a real day, read here from the bytes). The number
    cells are read by the C parser of :func:`pandas.read_csv`, which converts a cell exactly as
    the general parser's :func:`pandas.to_numeric` does (the same string-to-double routine;
    integer columns are converted to float as there); a blank cell is NaN in both. Anything
    else (a blank line, a ragged row, a quote, a time of day, a column the C parser does not
    read as numbers) returns ``None``, and the general parser gives the frame or the error
    naming the line. The frame is returned before the checks of :func:`parse_price_csv`
    (invalid values, duplicated dates, order).
    """
    nl = text.find("\n")
    if nl < 0:
        return None
    header = text[:nl].rstrip("\r")
    if '"' in header:
        return None
    names = [_canonical_name(c) for c in header.split(",")]
    values = names[1:]
    if (names[0].lower() not in {"date", "datetime"} or not values
            or len(set(values)) != len(values)
            or not all(c in CANONICAL_COLUMNS for c in values)
            or ("Close" not in values and "Adj Close" not in values)):
        return None
    body = text[nl + 1:]
    if not body.isascii():
        return None
    raw_bytes = body.encode("ascii")
    if not raw_bytes or raw_bytes.translate(None, _PLAIN_BYTES):
        return None
    data = np.frombuffer(raw_bytes, dtype=np.uint8)
    # one row per line, each with exactly len(names) cells (blank or ragged: general parser)
    ends = np.flatnonzero(data == 10)
    if data[-1] != 10:
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1] + 1])
    commas = np.flatnonzero(data == 44)
    per_line = np.diff(np.searchsorted(commas, np.concatenate([[0], ends])))
    if (per_line != len(values)).any():
        return None
    dates = _plain_dates(data, starts)
    if dates is None:
        return None
    try:
        raw = pd.read_csv(io.BytesIO(raw_bytes), header=None, names=names,
                          usecols=list(range(1, len(names))), index_col=False, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if len(raw) != len(dates) or not all(t.kind in "fiu" for t in raw.dtypes.tolist()):
        return None  # a cell that is not a number makes its column text
    table = raw.to_numpy(dtype=float)  # integer columns (Volume) converted as to_numeric's are
    index = pd.DatetimeIndex(dates, name="Date")
    return pd.DataFrame({c: np.ascontiguousarray(table[:, j]) for j, c in enumerate(values)},
                        index=index)


def _parse_general(text: str, source: str, ticker: str | None) -> tuple[pd.DataFrame, int]:
    """Any layout of the module docstring: the frame (before the checks of
    :func:`parse_price_csv`) and the file line of its first row, or the error naming the
    line."""
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
    dates = _parse_dates(raw[date_col], source, first_line,
                         _ticker_of(source) if ticker is None else ticker)
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="Date").astype("datetime64[ns]"))
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
    return out, first_line


def decode_error_message(path: str | os.PathLike[str], exc: UnicodeDecodeError) -> str:
    """One line naming the file, line and byte that is not UTF-8, and the fix."""
    path = Path(path)
    position, data = exc.start, exc.object
    try:
        data = path.read_bytes()
        data.decode("utf-8")  # a BOM is valid UTF-8: positions stay those of the file
    except UnicodeDecodeError as full:
        position = full.start
    except OSError:
        pass
    line = bytes(data[:position]).count(b"\n") + 1 if isinstance(data, bytes | bytearray) else "?"
    byte = data[position] if isinstance(data, bytes | bytearray) and position < len(data) else 0
    return (f"{path} line {line}: byte 0x{byte:02x} is not UTF-8 (the file is in another "
            f"encoding, e.g. Latin-1 or Windows-1252); save it as UTF-8 (e.g. "
            f"`iconv -f latin1 -t utf-8`) and retry")


#: Parsed, validated frames of :func:`read_price_csv`, by file identity (see there).
_MEMO: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_MEMO_LOCK = threading.Lock()
#: Files kept in the memo (least recently used dropped first; about 0.1 MB per file).
MEMO_MAX_FILES = 1024
#: A file modified less than this long before it is read is parsed but not memoized: file
#: times tick coarsely (a few ms), so a rewrite of the same size within one tick would look
#: unchanged (the "racy" case of git's index).
MEMO_MIN_AGE_NS = 2_000_000_000


def clear_price_memo(*, disk: bool = True) -> None:
    """Forget every frame memoized by :func:`read_price_csv` (the next reads parse again).

    Parameters
    ----------
    disk : bool
        Also ignore, in this process, the frames the disk cache holds from before this call
        (default; files are then parsed and cached again). ``False`` forgets the in-process
        memo only: the next reads are those of a fresh process (from the disk cache when it
        holds the file).
    """
    with _MEMO_LOCK:
        _MEMO.clear()
        _GENERATION[0] += 1
        if disk:
            _DISK_NOT_BEFORE[0] = time.time_ns()


#: incremented by every :func:`clear_price_memo` (memos derived from price files key on it)
_GENERATION = [0]


def memo_generation() -> int:
    """How many times :func:`clear_price_memo` ran in this process: a memo of values derived
    from price files (e.g. :func:`crackdown.marketdata.benchmarks.benchmark_returns`) includes
    it in its keys, so clearing the price memo clears those too."""
    return _GENERATION[0]


def file_identity(path: str | os.PathLike[str]) -> tuple | None:
    """``(resolved path, st_mtime_ns, st_size, st_ino, st_dev)`` of a price file (the key of
    the memo of :func:`read_price_csv`); None when it cannot be stat'ed."""
    return _memo_key(Path(path))


def _memo_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
        return (str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
    except OSError:
        return None


def _copy_on_write() -> bool:
    """Whether pandas' Copy-on-Write is on (always from pandas 3; an option in pandas 2)."""
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


def _handed_out(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a memoized frame, attrs included: the caller may change it freely.

    Under Copy-on-Write a shallow copy protects the memo as a deep one does (a change to the
    copy's values copies them first; its axes are views, so renaming them leaves the memo's);
    without it the values are copied.
    """
    out = frame.copy(deep=not _copy_on_write())
    out.attrs = copy.deepcopy(frame.attrs)
    return out


def read_price_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one per-ticker price file (yfinance layout); see :func:`parse_price_csv`.

    Each file is parsed once per process: the validated frame is memoized under the file's
    identity ``(resolved path, st_mtime_ns, st_size, st_ino, st_dev)``, so a file that is
    replaced or rewritten is parsed again, and every call returns a copy (changing it cannot
    change a later read; :func:`_handed_out`). A hit repeats the warning about invalid values.
    Files modified less than :data:`MEMO_MIN_AGE_NS` before the read are not memoized; errors
    never are. :func:`clear_price_memo` empties the memo.
    """
    return _read_memoized(path, True, 3)


def _read_memoized(path: str | os.PathLike[str], hand_out: bool, stacklevel: int
                   ) -> pd.DataFrame:
    """:func:`read_price_csv`; ``hand_out`` False returns the memoized frame itself (no copy:
    the caller only reads it, as :func:`crackdown.marketdata.wide_returns.study_returns`
    does); the warning of a memo or disk hit is attributed ``stacklevel`` frames up from
    :func:`_warn_invalid` (3: :func:`read_price_csv`, 2: this function)."""
    path = Path(path)
    key = _memo_key(path)
    with _MEMO_LOCK:
        hit = _MEMO.get(key) if key is not None else None
        if hit is not None:
            _MEMO.move_to_end(key)
    if hit is not None:
        if hit.attrs.get("invalid_cells"):
            _warn_invalid(hit.attrs["invalid_cells"], str(path), stacklevel=stacklevel)
        return _handed_out(hit) if hand_out else hit
    frame = _disk_load(key) if key is not None else None
    if frame is not None:
        if frame.attrs.get("invalid_cells"):
            _warn_invalid(frame.attrs["invalid_cells"], str(path), stacklevel=stacklevel)
        _memoize(key, _handed_out(frame) if hand_out else frame)
        return frame
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PriceDataError(decode_error_message(path, exc)) from None
    except OSError as exc:
        raise PriceDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    frame = parse_price_csv(text, str(path))
    if key is not None and time.time_ns() - key[1] >= MEMO_MIN_AGE_NS and key == _memo_key(path):
        _disk_store(key, frame)
        _memoize(key, _handed_out(frame) if hand_out else frame)
    return frame


def _memoize(key: tuple, frame: pd.DataFrame) -> None:
    """Keep ``frame`` in the memo under ``key`` (least recently used files dropped)."""
    with _MEMO_LOCK:
        _MEMO[key] = frame
        while len(_MEMO) > MEMO_MAX_FILES:
            _MEMO.popitem(last=False)


# --------------------------------------------------------------------------- disk cache
#: Format of the disk cache files (bump to ignore every file written before).
DISK_FORMAT = 1
#: Cache files kept in the folder: when a process first writes one and the folder holds more,
#: the least recently written ones are deleted (about 0.1 MB per file).
DISK_MAX_FILES = 4096
_DISK_TAG: list[str] = []  # the parser's fingerprint, computed once per process
_DISK_NOT_BEFORE = [0]  # cache files written before this time (ns) are ignored (clear_price_memo)
_DISK_PRUNED: list[bool] = []  # the folder was pruned by this process


def _disk_tag() -> str:
    """Fingerprint of what a parsed frame depends on besides the file: this module's source
    (the parser), the universe table (exchanges, hence time zones of stamps with an offset),
    the numpy and pandas versions and :data:`DISK_FORMAT`. Any change makes every cached
    frame a miss."""
    if not _DISK_TAG:
        import hashlib

        from crackdown.timeline import universe

        digest = hashlib.sha256(f"{DISK_FORMAT}|{np.__version__}|{pd.__version__}|".encode())
        for source in (Path(__file__), Path(universe.UNIVERSE_FILE)):
            try:
                digest.update(source.read_bytes())
            except OSError:
                digest.update(b"?")
        _DISK_TAG.append(digest.hexdigest()[:16])
    return _DISK_TAG[0]


def _disk_file(key: tuple) -> Path | None:
    """Cache file of the price file of identity ``key`` (see :func:`_memo_key`): one per
    resolved path and parser fingerprint; None when the cache is turned off."""
    import hashlib

    from crackdown import config

    folder = config.parsed_prices_dir()
    if folder is None:
        return None
    name = hashlib.sha256(f"{key[0]}|{_disk_tag()}".encode()).hexdigest()[:32]
    return folder / f"{name}.prices"


#: First bytes of a cache file. Layout: this magic, the header length (8 bytes, little
#: endian), a JSON header (format, parser fingerprint, the price file's identity, column
#: names, invalid cells, rows), then the index (int64 nanoseconds, n rows) and the columns
#: (float64, one after the other, n rows each), little endian. No pickle.
_DISK_MAGIC = b"CRACKDOWN-PRICES\n"


def _disk_store(key: tuple, frame: pd.DataFrame) -> None:
    """Write ``frame`` to the disk cache: atomically (a temporary file in the same folder,
    then a rename); only frames that round-trip exactly (a ``Date`` datetime64[ns] index,
    unique string column names, float64 columns, no attrs but ``invalid_cells``); a folder that
    cannot be written is skipped silently."""
    import json
    import tempfile

    target = _disk_file(key)
    if target is None or not _storable(frame):
        return
    header = json.dumps({
        "format": DISK_FORMAT, "tag": _disk_tag(), "file": list(key),
        "columns": [str(c) for c in frame.columns], "rows": len(frame),
        "invalid_cells": [list(f) for f in frame.attrs.get("invalid_cells", [])],
    }).encode()
    index = frame.index.to_numpy().view(np.int64).astype("<i8", copy=False)
    values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64).T).astype("<f8", copy=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_DISK_MAGIC + len(header).to_bytes(8, "little") + header)
                fh.write(index.tobytes())
                fh.write(values.tobytes())
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        if not _DISK_PRUNED:
            _DISK_PRUNED.append(True)
            _disk_prune(target.parent)
    except OSError:
        pass


def _disk_prune(folder: Path, keep: int | None = None) -> None:
    """Delete the least recently written cache files beyond ``keep`` (default
    :data:`DISK_MAX_FILES`) from ``folder``; files another process removes first are skipped."""
    keep = DISK_MAX_FILES if keep is None else keep
    entries = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.endswith(".prices"):
                try:
                    entries.append((entry.stat().st_mtime_ns, entry.path))
                except OSError:
                    continue
    if len(entries) <= keep:
        return
    entries.sort()
    for _, path in entries[:len(entries) - keep]:
        try:
            os.unlink(path)
        except OSError:
            continue


def _storable(frame: pd.DataFrame) -> bool:
    cols = list(frame.columns)
    return (isinstance(frame.index, pd.DatetimeIndex) and frame.index.dtype == "datetime64[ns]"
            and frame.index.name == "Date" and frame.index.freq is None
            and all(isinstance(c, str) for c in cols) and len(set(cols)) == len(cols)
            and all(str(d) == "float64" for d in frame.dtypes)
            and set(frame.attrs) <= {"invalid_cells"})


#: ``pd.Index`` of each list of column names the disk cache has read (building one from the
#: strings is most of a frame's construction); each frame gets its own view of it.
_COLUMN_INDEXES: dict[tuple, pd.Index] = {}


def _column_index(columns: list) -> pd.Index:
    """``pd.Index(columns)``, as a new view (renaming it leaves the other frames' alone)."""
    names = tuple(columns)
    cached = _COLUMN_INDEXES.get(names)
    if cached is None:
        if len(_COLUMN_INDEXES) > 64:  # a few layouts in practice; never grows without bound
            _COLUMN_INDEXES.clear()
        cached = _COLUMN_INDEXES[names] = pd.Index(list(names))
    return cached.view()


def _disk_load(key: tuple) -> pd.DataFrame | None:
    """The frame cached for the price file of identity ``key``, or None: no cache folder, no
    file, a file written for another identity (the price file was changed, replaced or
    moved) or by another parser, or a damaged file (never an error)."""
    import json

    target = _disk_file(key)
    if target is None:
        return None
    try:
        if _DISK_NOT_BEFORE[0] and target.stat().st_mtime_ns < _DISK_NOT_BEFORE[0]:
            return None  # written before clear_price_memo(): parse again
        data = target.read_bytes()
        m = len(_DISK_MAGIC)
        if data[:m] != _DISK_MAGIC:
            return None
        h_len = int.from_bytes(data[m:m + 8], "little")
        meta = json.loads(data[m + 8:m + 8 + h_len])
        if meta.get("format") != DISK_FORMAT or meta.get("tag") != _disk_tag() or (
                meta.get("file") != list(key)):
            return None
        columns, n = meta["columns"], int(meta["rows"])
        body = memoryview(data)[m + 8 + h_len:]
        if len(body) != 8 * n * (len(columns) + 1):
            return None  # truncated or padded: damaged
        index = np.frombuffer(body, dtype="<i8", count=n).astype(np.int64)
        values = np.frombuffer(body, dtype="<f8", offset=8 * n).astype(np.float64)
        frame = pd.DataFrame(values.reshape(len(columns), n).T, columns=_column_index(columns),
                             index=pd.DatetimeIndex(index.view("datetime64[ns]"), name="Date"))
        frame.attrs["invalid_cells"] = [(int(ln), str(c), str(d), float(v))
                                        for ln, c, d, v in meta["invalid_cells"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # damaged: parse instead
        return None
    return frame


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
