"""Daily prices: offline folder, verified on-disk cache, then yfinance.

Sources, in order, for each ticker
----------------------------------
1. **Folder** -- ``<prices_dir>/<TICKER>.csv`` where ``prices_dir`` is the explicit argument,
   else ``$CRACKDOWN_PRICES_DIR``, else ``../shared/data/prices`` beside a checkout
   (:func:`crackdown.config.prices_dir`). A ticker absent from the folder falls through to 2.
   A folder file that does not cover the requested range is returned as it is (gaps are reported
   by :func:`crackdown.marketdata.quality.quality_report`, never filled).
2. **Cache** -- ``<cache_dir>/prices/<TICKER>.csv`` with a JSON sidecar ``<TICKER>.json`` holding
   the row count, the SHA-256 of the CSV bytes and the requested date range the download covered
   (:func:`crackdown.config.cache_dir`: ``$CRACKDOWN_CACHE_DIR``, else ``data/cache`` in a
   checkout, else the per-user cache folder). A cache file whose checksum, row count or schema
   does not match is *never used*: it is re-downloaded, or reported if that is impossible.
3. **yfinance** -- ``yfinance.download(ticker, start, end + 1 day, auto_adjust=False,
   actions=False, progress=False, multi_level_index=False)`` (yfinance's ``end`` is exclusive;
   this module's ``end`` is inclusive). The result is written to the cache atomically: bytes go
   to a temporary file in the cache folder, which is flushed, fsync'ed and moved over the target
   with :func:`os.replace`, so an interrupted run leaves either the old file or none.

File format (folder and cache)
------------------------------
The yfinance CSV layout: a ``Date`` column (``YYYY-MM-DD``; a time/zone suffix such as
``2021-07-06 00:00:00-04:00`` is cut to the date) and any of ``Open, High, Low, Close,
Adj Close, Volume, Dividends, Stock Splits``. yfinance's three-row multi-index header
(``Price`` / ``Ticker`` / ``Date`` rows) is accepted too. The price used for returns is
``Adj Close`` when the file has that column, else ``Close`` (which yfinance already adjusts when
``auto_adjust=True``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown import config
from crackdown.errors import PriceDataError

LONG_COLUMNS = ("date", "ticker", "price", "price_column", "volume", "source")
SOURCES = ("folder", "cache", "yfinance")
CANONICAL_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends",
                     "Stock Splits")
_COLUMN_ALIASES = {c.lower().replace(" ", "").replace("_", ""): c for c in CANONICAL_COLUMNS}
CACHE_FORMAT_VERSION = 1
CACHE_SUBDIR = "prices"
OFFLINE_ENV = "CRACKDOWN_OFFLINE"
_WRITE_CHUNK = 1 << 16

_WHAT_TO_DO = (
    "put {ticker}.csv (yfinance layout: Date,Open,High,Low,Close,Adj Close,Volume) in a folder "
    "and pass --prices-dir DIR or set CRACKDOWN_PRICES_DIR, or check the symbol on "
    "finance.yahoo.com (e.g. 0700.HK, ^HSI)"
)


class CacheCorruptError(PriceDataError):
    """A cache file is truncated, altered or lacks its checksum sidecar."""


# --------------------------------------------------------------------------- small helpers
def _to_timestamp(value: object, option: str) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise PriceDataError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2021-07-06"
        ) from None
    if stamp is pd.NaT:
        raise PriceDataError(f"{option} {value!r} is not a date; use YYYY-MM-DD")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def _fmt(stamp: pd.Timestamp | None, default: str) -> str:
    return default if stamp is None else stamp.strftime("%Y-%m-%d")


def _range_text(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    return f"{_fmt(start, 'earliest')}..{_fmt(end, 'latest')}"


def normalize_tickers(tickers: str | Iterable[str]) -> list[str]:
    """Return tickers stripped, upper-cased and de-duplicated (order kept).

    Raises
    ------
    PriceDataError
        No ticker, or an empty ticker name.
    """
    items = [tickers] if isinstance(tickers, str) else list(tickers)
    result: list[str] = []
    for item in items:
        name = str(item).strip().upper()
        if not name:
            raise PriceDataError(f"empty ticker in {items!r}; pass symbols such as BABA,9988.HK")
        if name not in result:
            result.append(name)
    if not result:
        raise PriceDataError("no tickers given; pass symbols such as BABA,9988.HK")
    return result


def is_offline(offline: bool | None = None) -> bool:
    """Return ``offline`` if given, else whether ``$CRACKDOWN_OFFLINE`` is 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- CSV parsing
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
def cache_paths(ticker: str, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Return ``(csv_path, sidecar_path)`` of a ticker in the cache."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else config.cache_dir()
    folder = root / CACHE_SUBDIR
    return folder / f"{ticker}.csv", folder / f"{ticker}.json"


def _write_all(handle, data: bytes) -> None:
    """Write ``data`` in chunks (a separate function so tests can interrupt it midway)."""
    for offset in range(0, len(data), _WRITE_CHUNK):
        handle.write(data[offset:offset + _WRITE_CHUNK])


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, which is flushed, fsync'ed and then
    moved over ``path`` with :func:`os.replace` (atomic on POSIX and Windows). If anything fails
    or the run is interrupted, the temporary file is removed and ``path`` keeps its previous
    content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def frame_to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a price frame (index ``Date``) to yfinance-layout CSV bytes, full precision."""
    out = frame.copy()
    out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d")
    out.index.name = "Date"
    return out.to_csv(lineterminator="\n").encode("utf-8")


def write_cache(
    ticker: str,
    frame: pd.DataFrame,
    *,
    requested_start: pd.Timestamp | None,
    requested_end: pd.Timestamp | None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a downloaded frame and its checksum sidecar to the cache (both atomically).

    The CSV is written first, then the sidecar ``{"rows", "sha256", "requested_start",
    "requested_end", ...}``. If a run stops between the two, the old sidecar's checksum no
    longer matches the new CSV and :func:`read_cache` rejects the pair.
    """
    csv_path, meta_path = cache_paths(ticker, cache_dir)
    data = frame_to_csv_bytes(frame)
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "ticker": ticker,
        "rows": len(frame),
        "sha256": hashlib.sha256(data).hexdigest(),
        "columns": [str(c) for c in frame.columns],
        "first_date": _fmt(frame.index.min() if len(frame) else None, ""),
        "last_date": _fmt(frame.index.max() if len(frame) else None, ""),
        "requested_start": _fmt(requested_start, "") or None,
        "requested_end": _fmt(requested_end, "") or None,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": "yfinance",
        "auto_adjust": False,
    }
    try:
        import yfinance

        meta["yfinance_version"] = getattr(yfinance, "__version__", "")
    except ImportError:  # pragma: no cover
        pass
    atomic_write_bytes(csv_path, data)
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=1) + "\n").encode("utf-8"))
    return csv_path


def read_cache(
    ticker: str, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[pd.DataFrame, dict] | None:
    """Read and verify a cached ticker.

    Returns
    -------
    (frame, meta) or None
        ``None`` when the ticker is not cached.

    Raises
    ------
    CacheCorruptError
        The sidecar is missing or unreadable, or the CSV's SHA-256, row count or schema does not
        match it (truncated/interrupted/edited file). The message names both files.
    """
    csv_path, meta_path = cache_paths(ticker, cache_dir)
    if not csv_path.exists():
        return None
    fix = f"delete {csv_path} and {meta_path.name} or run `crackdown fetch --tickers {ticker}`"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        expected_sha = str(meta["sha256"])
        expected_rows = int(meta["rows"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheCorruptError(
            f"cache file {csv_path} has no valid checksum sidecar {meta_path.name} ({exc}); "
            f"it cannot be verified: {fix}"
        ) from None
    data = csv_path.read_bytes()
    actual_sha = hashlib.sha256(data).hexdigest()
    if actual_sha != expected_sha:
        raise CacheCorruptError(
            f"cache file {csv_path} is corrupt or truncated ({len(data)} bytes; SHA-256 "
            f"{actual_sha[:12]} != {expected_sha[:12]} recorded in {meta_path.name}): {fix}"
        )
    try:
        frame = parse_price_csv(data.decode("utf-8"), str(csv_path))
    except (PriceDataError, UnicodeDecodeError) as exc:
        raise CacheCorruptError(f"cache file {csv_path} fails the schema check ({exc}): {fix}")
    if len(frame) != expected_rows:
        raise CacheCorruptError(
            f"cache file {csv_path} has {len(frame)} rows, sidecar says {expected_rows}: {fix}"
        )
    return frame, meta


def _cache_covers(meta: dict, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
    """Whether a cached download's requested range contains ``[start, end]``.

    A download made with no start covers any start; one made with no end covers any end (the
    cache is then as of its ``fetched_at`` date: use ``crackdown fetch --force`` to refresh).
    """
    got_start = meta.get("requested_start")
    got_end = meta.get("requested_end")
    if got_start is not None and (start is None or start < pd.Timestamp(got_start)):
        return False
    return not (got_end is not None and end is not None and end > pd.Timestamp(got_end))


# --------------------------------------------------------------------------- yfinance
def normalize_yfinance_frame(raw: pd.DataFrame | None, ticker: str) -> pd.DataFrame:
    """Turn a ``yfinance.download`` result into the file layout (index ``Date``, naive dates).

    Copes with both column shapes: flat (``multi_level_index=False``) and MultiIndex, either
    ``("Close", "BABA")`` (``group_by="column"``) or ``("BABA", "Close")``
    (``group_by="ticker"``). Timezone-aware indexes are converted to their local calendar date.
    Rows whose prices are all NaN are dropped (yfinance's own ``keepna=False`` convention).
    """
    if raw is None or len(raw) == 0:
        return pd.DataFrame()
    frame = raw.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        fields = {c.lower().replace(" ", "") for c in CANONICAL_COLUMNS}
        field_level = None
        for level in range(frame.columns.nlevels):
            values = {str(v).lower().replace(" ", "") for v in frame.columns.get_level_values(level)}
            if values & fields:
                field_level = level
                break
        if field_level is None:
            raise PriceDataError(
                f"yfinance returned unexpected columns for {ticker}: {list(frame.columns)[:6]}"
            )
        for level in range(frame.columns.nlevels):
            if level == field_level:
                continue
            labels = frame.columns.get_level_values(level)
            if ticker in set(labels):
                frame = frame.loc[:, labels == ticker]
        frame.columns = frame.columns.get_level_values(field_level)
    frame.columns = [_canonical_name(c) for c in frame.columns]
    frame = frame.loc[:, ~pd.Index(frame.columns).duplicated()]
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize().astype("datetime64[ns]")
    frame.index.name = "Date"
    keep = [c for c in CANONICAL_COLUMNS if c in frame.columns]
    frame = frame.loc[:, keep].apply(pd.to_numeric, errors="coerce").astype(float)
    price_cols = [c for c in ("Open", "High", "Low", "Close", "Adj Close") if c in frame.columns]
    if price_cols:
        frame = frame.loc[frame[price_cols].notna().any(axis=1)]
    frame = frame.loc[~frame.index.duplicated(keep="last")].sort_index()
    return frame


class _CaptureYfinanceLog(logging.Handler):
    """Collect yfinance's log records during one download (it reports failures only there)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - trivial
        try:
            text = " ".join(record.getMessage().split())
        except Exception:  # noqa: BLE001 - a broken log record must not break a download
            return
        if text:
            self.messages.append(text)


@contextmanager
def _captured_yfinance_log():
    """Route the ``yfinance`` logger to a collector (not the console) for the duration."""
    logger = logging.getLogger("yfinance")
    handler = _CaptureYfinanceLog()
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers = [handler]
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate = saved


_NETWORK_HINTS = ("resolve host", "dnserror", "connection", "timed out", "timeout",
                  "network is unreachable", "ssl")


def _explain_empty(ticker: str, messages: list[str]) -> str:
    """Say why yfinance returned nothing, from its log messages."""
    relevant = [m for m in messages if ticker.lower() in m.lower() and "failed download" not in
                m.lower()] or messages
    text = relevant[-1] if relevant else ""
    lowered = " ".join(messages).lower()
    if any(hint in lowered for hint in _NETWORK_HINTS):
        reason = "this machine cannot reach Yahoo Finance (no internet connection)"
    elif any(h in lowered for h in ("delisted", "not found", "no data found", "no price data",
                                    "no timezone", "404")):
        reason = f"Yahoo Finance does not know {ticker!r} or has no data for it in the range"
    else:
        reason = (f"either this machine cannot reach Yahoo Finance (offline) or {ticker!r} is "
                  f"not a Yahoo symbol with data in the range")
    if text:
        reason += f" (yfinance: {text[:200]})"
    return reason


def download_yfinance(
    ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Download one ticker's daily prices from Yahoo Finance.

    ``end`` is inclusive here; yfinance's ``end`` is exclusive, so ``end + 1 day`` is passed.
    With no ``start`` the request starts at 1970-01-01 (the whole history).

    Raises
    ------
    PriceDataError
        yfinance raised, or returned an empty frame (no internet connection, unknown or delisted
        symbol, or no trading in the range); the message names the ticker, the range and what to
        do.
    """
    import yfinance

    span = _range_text(start, end)
    kwargs = {
        "start": _fmt(start, "1970-01-01"),
        "end": None if end is None else _fmt(end + pd.Timedelta(days=1), ""),
        "auto_adjust": False,
        "actions": False,
        "progress": False,
        "threads": False,
        "multi_level_index": False,
    }
    try:
        with _captured_yfinance_log() as log, warnings.catch_warnings():
            # yfinance's own pandas deprecation warnings are not the user's concern
            warnings.simplefilter("ignore")
            try:
                raw = yfinance.download(ticker, **kwargs)
            except TypeError as exc:  # yfinance < 0.2.48 has no multi_level_index
                if "multi_level_index" not in str(exc):
                    raise
                kwargs.pop("multi_level_index")
                raw = yfinance.download(ticker, **kwargs)
    except AssertionError:  # the test suite's network guard: let it surface
        raise
    except Exception as exc:  # noqa: BLE001 - any yfinance failure becomes a user error
        raise PriceDataError(
            f"yfinance failed for {ticker} {span} ({type(exc).__name__}: {exc}); "
            + _WHAT_TO_DO.format(ticker=ticker)
        ) from None
    frame = normalize_yfinance_frame(raw, ticker)
    if frame.empty:
        raise PriceDataError(
            f"no prices for {ticker} {span}: yfinance returned an empty frame: "
            f"{_explain_empty(ticker, log.messages)}. What to do: "
            + _WHAT_TO_DO.format(ticker=ticker)
        )
    if "Close" not in frame.columns and "Adj Close" not in frame.columns:
        raise PriceDataError(
            f"yfinance returned no Close column for {ticker} {span} (columns {list(frame.columns)})"
        )
    return frame


# --------------------------------------------------------------------------- public API
def _slice(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None):
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame.index >= start
    if end is not None:
        mask &= frame.index <= end
    return frame.loc[mask]


def _to_long(frame: pd.DataFrame, ticker: str, source: str) -> pd.DataFrame:
    column = price_column_of(frame)
    volume = frame["Volume"].to_numpy(dtype=float) if "Volume" in frame.columns else np.nan
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(frame.index).astype("datetime64[ns]"),
            "ticker": ticker,
            "price": frame[column].to_numpy(dtype=float),
            "price_column": column,
            "volume": volume,
            "source": source,
        }
    )


def _resolve_folder(prices_dir: str | os.PathLike[str] | None) -> Path | None:
    folder = config.prices_dir(prices_dir)
    if folder is None:
        return None
    if not folder.is_dir():
        origin = "--prices-dir/prices_dir" if prices_dir is not None else "CRACKDOWN_PRICES_DIR"
        raise PriceDataError(
            f"prices folder {folder} ({origin}) does not exist; point it at a folder of "
            f"<TICKER>.csv files or unset it to use the cache and yfinance"
        )
    return folder


def load_ticker(
    ticker: str,
    start: object = None,
    end: object = None,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
) -> tuple[pd.DataFrame, str]:
    """Load one ticker's price frame (file layout) from folder, cache or yfinance.

    Returns
    -------
    (frame, source)
        ``frame`` restricted to ``[start, end]`` (inclusive); ``source`` is one of
        ``'folder', 'cache', 'yfinance'``.
    """
    ticker = normalize_tickers([ticker])[0]
    start_ts, end_ts = _to_timestamp(start, "start"), _to_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise PriceDataError(
            f"start {_fmt(start_ts, '')} is after end {_fmt(end_ts, '')}; swap the dates"
        )
    span = _range_text(start_ts, end_ts)
    folder = _resolve_folder(prices_dir)
    if folder is not None:
        path = folder_file(folder, ticker)
        if path is not None:
            full = read_price_csv(path)
            frame = _slice(full, start_ts, end_ts)
            if frame.empty:
                raise PriceDataError(
                    f"{path} covers {_fmt(full.index.min(), '')}..{_fmt(full.index.max(), '')}, "
                    f"no rows in the requested range {span} for {ticker}; change --start/--end "
                    f"or add the missing rows to the file"
                )
            return frame, "folder"
    problem = ""
    try:
        cached = read_cache(ticker, cache_dir)
    except CacheCorruptError as exc:
        cached, problem = None, str(exc)
    if cached is not None and _cache_covers(cached[1], start_ts, end_ts):
        frame = _slice(cached[0], start_ts, end_ts)
        if frame.empty:
            raise PriceDataError(
                f"no prices for {ticker} {span} in the cache ({cache_paths(ticker, cache_dir)[0]}"
                f" covers {cached[1].get('first_date')}..{cached[1].get('last_date')}); change "
                f"the dates or " + _WHAT_TO_DO.format(ticker=ticker)
            )
        return frame, "cache"
    if is_offline(offline):
        where = f"no file in {folder}" if folder is not None else "no prices folder set"
        extra = f" {problem}." if problem else ""
        raise PriceDataError(
            f"no prices for {ticker} {span}: {where}, not in the cache"
            f"{' (corrupt)' if problem else ''}, and offline mode forbids yfinance.{extra} "
            f"What to do: " + _WHAT_TO_DO.format(ticker=ticker)
        )
    if problem:
        warnings.warn(f"{problem}; downloading {ticker} again", stacklevel=3)
    try:
        frame = download_yfinance(ticker, start_ts, end_ts)
    except PriceDataError as exc:
        if problem:
            raise PriceDataError(f"{exc} Also: {problem}") from None
        raise
    write_cache(ticker, frame, requested_start=start_ts, requested_end=end_ts,
                cache_dir=cache_dir)
    return _slice(frame, start_ts, end_ts), "yfinance"


def load_prices(
    tickers: str | Sequence[str],
    start: str | date | pd.Timestamp | None = None,
    end: str | date | pd.Timestamp | None = None,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    progress: bool = False,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """Load daily prices of several tickers as one tidy (long) frame.

    Parameters
    ----------
    tickers
        Yahoo symbols (``"BABA"``, ``["BABA", "9988.HK", "^HSI"]``); upper-cased, de-duplicated.
    start, end
        Inclusive date range (``YYYY-MM-DD``); ``None`` = from the first / to the last row.
    prices_dir
        Offline folder of ``<TICKER>.csv`` files (default :func:`crackdown.config.prices_dir`).
    cache_dir
        Cache root (default :func:`crackdown.config.cache_dir`); files live in ``<root>/prices``.
    offline
        Never call yfinance (default: ``$CRACKDOWN_OFFLINE``).
    progress
        Show a tqdm progress bar over tickers.
    on_missing
        ``"raise"`` (default): the first ticker without prices raises :class:`PriceDataError`.
        ``"report"``: such tickers are left out, each with a warning, and listed in
        ``result.attrs["missing"]`` (``{ticker: message}``).

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64[ns], naive), ``ticker``, ``price`` (``Adj Close`` if the
        source has it, else ``Close``; NaN where the row has no price), ``price_column``,
        ``volume`` (float, NaN when the source has none), ``source`` (``'folder'``, ``'cache'``
        or ``'yfinance'``); sorted by ticker (in the order given) then date. Nothing is filled
        or interpolated: rows are exactly the source's rows within the range.

    Raises
    ------
    PriceDataError
        A ticker has no prices in the range from any source (message names ticker, range and
        what to do), or a source file is malformed.
    """
    if on_missing not in {"raise", "report"}:
        raise PriceDataError(f"on_missing={on_missing!r}; use 'raise' or 'report'")
    names = normalize_tickers(tickers)
    iterator: Iterable[str] = names
    if progress and len(names) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc="prices", unit="ticker")
    parts: list[pd.DataFrame] = []
    missing: dict[str, str] = {}
    for ticker in iterator:
        try:
            frame, source = load_ticker(ticker, start, end, prices_dir=prices_dir,
                                        cache_dir=cache_dir, offline=offline)
        except PriceDataError as exc:
            if on_missing == "raise":
                raise
            missing[ticker] = str(exc)
            warnings.warn(str(exc), stacklevel=2)
            continue
        parts.append(_to_long(frame, ticker, source))
    if parts:
        result = pd.concat(parts, ignore_index=True)
    else:
        result = pd.DataFrame({c: pd.Series(dtype=float) for c in LONG_COLUMNS})
        result["date"] = result["date"].astype("datetime64[ns]")
    result = result.loc[:, list(LONG_COLUMNS)]
    result.attrs["missing"] = missing
    return result


def price_matrix(prices_long: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long price frame to wide: index ``date``, one column per ticker (``price``).

    Dates missing for a ticker are NaN (not filled).
    """
    wide = prices_long.pivot(index="date", columns="ticker", values="price")
    order = list(dict.fromkeys(prices_long["ticker"]))
    wide = wide.loc[:, order]
    wide.columns.name = "ticker"
    return wide.sort_index()


def fetch_prices(
    tickers: str | Sequence[str],
    start: object = None,
    end: object = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Fill the cache from yfinance (the offline folder is not consulted).

    A ticker whose verified cache entry already covers ``[start, end]`` is skipped unless
    ``force``; a corrupt entry is replaced. Failures do not stop the other tickers.

    Returns
    -------
    pandas.DataFrame
        One row per ticker: ``ticker, status`` (``'downloaded'``, ``'cached'``, ``'failed'``),
        ``rows, first_date, last_date, path, detail``.
    """
    names = normalize_tickers(tickers)
    start_ts, end_ts = _to_timestamp(start, "start"), _to_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise PriceDataError(f"start {_fmt(start_ts, '')} is after end {_fmt(end_ts, '')}")
    iterator: Iterable[str] = names
    if progress and len(names) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc="fetch", unit="ticker")
    rows = []
    for ticker in iterator:
        path = cache_paths(ticker, cache_dir)[0]
        row = {"ticker": ticker, "status": "failed", "rows": 0, "first_date": "",
               "last_date": "", "path": str(path), "detail": ""}
        try:
            cached = None
            try:
                cached = read_cache(ticker, cache_dir)
            except CacheCorruptError as exc:
                row["detail"] = f"replaced corrupt cache ({exc})"
            if cached is not None and not force and _cache_covers(cached[1], start_ts, end_ts):
                frame, row["status"] = _slice(cached[0], start_ts, end_ts), "cached"
            else:
                frame = download_yfinance(ticker, start_ts, end_ts)
                write_cache(ticker, frame, requested_start=start_ts, requested_end=end_ts,
                            cache_dir=cache_dir)
                row["status"] = "downloaded"
            row["rows"] = len(frame)
            if len(frame):
                row["first_date"] = _fmt(frame.index.min(), "")
                row["last_date"] = _fmt(frame.index.max(), "")
        except PriceDataError as exc:
            row["detail"] = str(exc)
        rows.append(row)
    return pd.DataFrame(rows)
