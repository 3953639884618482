"""Daily prices: offline folder, verified on-disk cache, then yfinance.

Sources, in order, for each ticker
----------------------------------
1. **Folder** -- ``<prices_dir>/<TICKER>.csv`` where ``prices_dir`` is the explicit argument,
   else ``$CRACKDOWN_PRICES_DIR``, else ``../shared/data/prices`` beside a checkout
   (:func:`crackdown.config.prices_dir`). A ticker absent from the folder falls through to 2.
   A folder file that does not cover the requested range is returned as it is (gaps are reported
   by :func:`crackdown.marketdata.quality.quality_report`, never filled). Each file is parsed
   once per process (:func:`crackdown.marketdata.price_files.read_price_csv`).
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

Each source has its module: :mod:`crackdown.marketdata.price_files` (CSV layout, folder
lookup), :mod:`crackdown.marketdata.cache` (verified cache) and :mod:`crackdown.marketdata.yahoo`
(download); this module chains them.

File format (folder and cache): the yfinance CSV layout of
:mod:`crackdown.marketdata.price_files`; the price used for returns is ``Adj Close`` when the
file has that column, else ``Close``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown import config
from crackdown.errors import PriceDataError
from crackdown.marketdata.cache import (
    CacheCorruptError,
    CacheWriteError,
    CacheWriteWarning,
    _cache_covers,
    atomic_write_bytes,
    cache_paths,
    check_cache_writable,
    decode_error_message,
    frame_to_csv_bytes,
    read_cache,
    write_cache,
)
from crackdown.marketdata.price_files import (
    _WHAT_TO_DO,
    CANONICAL_COLUMNS,
    _fmt,
    _range_text,
    _read_memoized,
    folder_file,
    folder_tickers,
    parse_price_csv,
    price_column_of,
    read_price_csv,
)
from crackdown.marketdata.yahoo import download_yfinance, normalize_yfinance_frame
from crackdown.timeline.tickers import check_tickers

LONG_COLUMNS = ("date", "ticker", "price", "price_column", "volume", "source",
                "flat_zero_volume")
SOURCES = ("folder", "cache", "yfinance")
OFFLINE_ENV = "CRACKDOWN_OFFLINE"


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


def normalize_tickers(tickers: str | Iterable[str], source: str = "tickers") -> list[str]:
    """Return tickers stripped, upper-cased and de-duplicated (order kept).

    The one ticker check, :func:`crackdown.timeline.tickers.check_tickers` with
    ``duplicates="drop"``: every name must be a Yahoo symbol (``BABA``, ``9988.HK``, ``^HSI``),
    so it is also a safe file name in the price folder and the cache.

    Raises
    ------
    TickerError
        No ticker, an empty or malformed name (the message names ``source`` and the value; it is
        a :class:`PriceDataError`).
    """
    return check_tickers(tickers, source, duplicates="drop")


def is_offline(offline: bool | None = None) -> bool:
    """Return ``offline`` if given, else whether ``$CRACKDOWN_OFFLINE`` is 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- CSV parsing


def _slice(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None):
    return frame.loc[_range_mask(frame, start, end)]


def _range_mask(frame: pd.DataFrame, start: pd.Timestamp | None,
                end: pd.Timestamp | None) -> np.ndarray:
    """Rows of ``frame`` dated in ``[start, end]`` (inclusive; None: unbounded).

    A naive ``datetime64[ns]`` index is compared as a numpy array with the bounds in
    nanoseconds (the same answers, NaT included: never in range); any other index, or a bound
    outside the nanosecond range, is compared by pandas.
    """
    index = frame.index
    if type(index) is pd.DatetimeIndex and index.dtype == np.dtype("datetime64[ns]"):
        try:
            lo, hi = (None if b is None else b.as_unit("ns").to_datetime64()
                      for b in (start, end))
        except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
            pass
        else:
            day = index.values  # the datetime64[ns] array (to_numpy's, without its overhead)
            mask = np.ones(len(frame), dtype=bool)
            if lo is not None:
                mask &= day >= lo
            if hi is not None:
                mask &= day <= hi
            return mask
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame.index >= start
    if end is not None:
        mask &= frame.index <= end
    return mask


def flat_zero_volume(frame: pd.DataFrame) -> np.ndarray:
    """Rows with ``Volume == 0`` and ``Open == High == Low == Close`` (all four present).

    On a full session this is Yahoo's placeholder for a day it has no trades for (the close is
    usually the previous close, sometimes stale), or a suspension; on a half day it is a real
    price. :func:`crackdown.marketdata.returns.align_to_calendar` tells the two apart with the
    exchange calendar. Files without Open/High/Low or Volume give all False.
    """
    if not all(c in frame.columns for c in _FLAT_COLUMNS):
        return np.zeros(len(frame), dtype=bool)
    return _flat(*(frame[col].to_numpy(dtype=float) for col in _FLAT_COLUMNS))


_FLAT_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


def _flat(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
          v: np.ndarray) -> np.ndarray:
    """:func:`flat_zero_volume` of the columns as float arrays."""
    return (v == 0) & (o == h) & (h == lo) & (lo == c)


#: :data:`LONG_COLUMNS` that hold one value per ticker (repeated over its rows at the end)
_PER_TICKER = ("ticker", "price_column", "source")


def _to_long(frame: pd.DataFrame, ticker: str, source: str) -> dict:
    """The rows of one ticker's frame as the :data:`LONG_COLUMNS` of :func:`load_prices`:
    arrays of the rows, and the per-ticker values (:data:`_PER_TICKER`) with the row count
    ``n``; stacked once for all tickers by :func:`_stack_long`, not one frame per ticker."""
    column = price_column_of(frame)
    volume = (frame["Volume"].to_numpy(dtype=float) if "Volume" in frame.columns else None)
    return _part(pd.DatetimeIndex(frame.index).astype("datetime64[ns]").to_numpy(), ticker,
                 frame[column].to_numpy(dtype=float), column, volume, source,
                 flat_zero_volume(frame))


def _part(day: np.ndarray, ticker: str, price: np.ndarray, column: str,
          volume: np.ndarray | None, source: str, flat: np.ndarray) -> dict:
    """One ticker's part of the long frame (see :func:`_to_long`); ``volume`` None: NaN."""
    n = len(day)
    return {"n": n, "date": day, "ticker": ticker, "price": price, "price_column": column,
            "volume": np.full(n, np.nan) if volume is None else volume, "source": source,
            "flat_zero_volume": flat}


def _plain(frame: pd.DataFrame) -> np.ndarray | None:
    """The values of the usual parsed file as one float64 ``(rows, columns)`` array, or None.

    The usual file has a naive ``datetime64[ns]`` DatetimeIndex and unique columns that
    numpy reads as one float64 array (float columns, or ints that every reader converts to
    float the same way); anything else (object, bool, extension columns) gives None.
    """
    if not (type(frame.index) is pd.DatetimeIndex
            and frame.index.dtype == np.dtype("datetime64[ns]")
            and frame.columns.is_unique):
        return None
    values = frame.to_numpy()
    return values if values.dtype == np.float64 and values.ndim == 2 else None


def _rows_to_long(frame: pd.DataFrame, mask: np.ndarray | None, ticker: str,
                  source: str) -> dict:
    """``_to_long(frame.loc[mask], ticker, source)`` (``mask`` None: every row).

    A :func:`_plain` frame is read as one float array, its rows taken with ``mask``; no
    sliced frame and no Series per column are built (the same values: each column is the
    float64 conversion ``to_numpy(dtype=float)`` gives, the index is naive nanoseconds). Any
    other frame is sliced and goes through :func:`_to_long`.
    """
    values = _plain(frame)
    if values is None:
        return _to_long(frame if mask is None else frame.loc[mask], ticker, source)
    day = frame.index.to_numpy()
    if mask is not None and not mask.all():
        values, day = values[mask], day[mask]
    names = frame.columns.tolist()
    column = price_column_of(frame)

    def col(name: str) -> np.ndarray:
        return values[:, names.index(name)]

    have = set(names)
    flat = (_flat(*(col(c) for c in _FLAT_COLUMNS)) if have.issuperset(_FLAT_COLUMNS)
            else np.zeros(len(day), dtype=bool))
    return _part(day, ticker, col(column), column, col("Volume") if "Volume" in have else None,
                 source, flat)


def _stack_long(parts: list[dict]) -> pd.DataFrame:
    """The long frame of :func:`load_prices` from the parts of :func:`_to_long`: row arrays
    concatenated, per-ticker values repeated over each ticker's rows."""
    lengths = [part["n"] for part in parts]
    data = {}
    for c in LONG_COLUMNS:
        if c in _PER_TICKER:
            data[c] = np.repeat(np.array([part[c] for part in parts], dtype=object), lengths)
        else:
            data[c] = np.concatenate([part[c] for part in parts])
    return pd.DataFrame(data)


def _read_folder_csv(path: Path, shared: bool = False) -> pd.DataFrame:
    """:func:`read_price_csv`, with undecodable bytes reported as file, line and fix.

    ``shared``: the memoized frame itself, not a copy (the same warnings and errors), for a
    caller that only reads it (:func:`load_prices` copies the rows it keeps).
    """
    try:
        return _read_memoized(path, False, 2) if shared else read_price_csv(path)
    except UnicodeDecodeError as exc:
        raise PriceDataError(decode_error_message(path, exc)) from None


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
    frame, mask, source = _load_one(ticker, _request(start, end, prices_dir),
                                    cache_dir=cache_dir, offline=offline)
    return (frame if mask is None else frame.loc[mask]), source


def _request(start: object, end: object, prices_dir) -> tuple:
    """The ticker-independent part of :func:`load_ticker`: ``(start, end, span text, folder)``
    (the errors of a bad range or a missing folder are the same for every ticker)."""
    start_ts, end_ts = _to_timestamp(start, "start"), _to_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise PriceDataError(
            f"start {_fmt(start_ts, '')} is after end {_fmt(end_ts, '')}; swap the dates"
        )
    return start_ts, end_ts, _range_text(start_ts, end_ts), _resolve_folder(prices_dir)


def _load_one(ticker: str, request: tuple, *, cache_dir, offline, shared: bool = False
              ) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """:func:`load_ticker` of a normalized ticker and a :func:`_request`:
    ``(frame, mask, source)``, the rows in range being ``frame.loc[mask]`` (a folder file:
    the whole parsed file and the mask of its rows in range) or ``frame`` itself (``mask``
    None: the cache and yfinance frames are sliced already). ``shared``: a folder file's
    frame is the memoized one (read it, never change it; :func:`_read_folder_csv`)."""
    start_ts, end_ts, span, folder = request
    if folder is not None:
        path = folder_file(folder, ticker)
        if path is not None:
            full = _read_folder_csv(path, shared)
            mask = _range_mask(full, start_ts, end_ts)
            if not mask.any() or not len(full.columns):  # full.loc[mask].empty
                raise PriceDataError(
                    f"{path} covers {_fmt(full.index.min(), '')}..{_fmt(full.index.max(), '')}, "
                    f"no rows in the requested range {span} for {ticker} (the dates a study's "
                    f"estimation and event windows need, or fetch's --start/--end); choose "
                    f"events or dates inside the file's coverage or add the missing rows"
                )
            return full, mask, "folder"
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
        return frame, None, "cache"
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
    try:
        write_cache(ticker, frame, requested_start=start_ts, requested_end=end_ts,
                    cache_dir=cache_dir)
    except CacheWriteError as exc:  # the download is good: use it, say it was not kept
        warnings.warn(f"{ticker}: downloaded but not cached: {exc}; the download is used for "
                      f"this run only", CacheWriteWarning, stacklevel=3)
    return _slice(frame, start_ts, end_ts), None, "yfinance"


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
        ``"raise"`` (default): tickers without prices raise one :class:`PriceDataError`
        naming every one of them.
        ``"report"``: such tickers are left out, each with a warning, and listed in
        ``result.attrs["missing"]`` (``{ticker: message}``).

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64[ns], naive), ``ticker``, ``price`` (``Adj Close`` if the
        source has it, else ``Close``; NaN where the row has no price), ``price_column``,
        ``volume`` (float, NaN when the source has none), ``source`` (``'folder'``, ``'cache'``
        or ``'yfinance'``), ``flat_zero_volume`` (bool: Volume 0 and O=H=L=C, see
        :func:`flat_zero_volume`); sorted by ticker (in the order given) then date. Nothing is
        filled or interpolated: rows are exactly the source's rows within the range.

    Raises
    ------
    PriceDataError
        A ticker has no prices in the range from any source (message names ticker, range and
        what to do), or a source file is malformed.
    """
    loaded, missing = _load_frames(tickers, start, end, prices_dir=prices_dir,
                                   cache_dir=cache_dir, offline=offline, progress=progress,
                                   on_missing=on_missing, stacklevel=3)
    return _long_frame([_rows_to_long(frame, mask, ticker, source)
                        for ticker, frame, mask, source in loaded], missing)


def _load_frames(tickers, start, end, *, prices_dir, cache_dir, offline, progress: bool,
                 on_missing: str, stacklevel: int
                 ) -> tuple[list[tuple[str, pd.DataFrame, np.ndarray | None, str]],
                            dict[str, str]]:
    """What :func:`load_prices` loads: ``([(ticker, frame, mask, source), ...], missing)``
    (:func:`_load_one` of each ticker, in order, a folder file's frame being the memoized one:
    read it, never change it), with the same checks, warnings (``stacklevel`` frames up:
    3 is the caller of the caller) and errors."""
    if on_missing not in {"raise", "report"}:
        raise PriceDataError(f"on_missing={on_missing!r}; use 'raise' or 'report'")
    names = normalize_tickers(tickers)
    iterator: Iterable[str] = names
    if progress and len(names) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc="prices", unit="ticker")
    loaded: list[tuple[str, pd.DataFrame, np.ndarray | None, str]] = []
    missing: dict[str, str] = {}
    request: tuple | PriceDataError | None = None  # the range and folder, checked once
    for ticker in iterator:  # (names are normalized: load_ticker's check would not change them)
        if request is None:
            try:
                request = _request(start, end, prices_dir)
            except PriceDataError as exc:
                request = exc
        try:
            if isinstance(request, PriceDataError):  # every ticker fails as in load_ticker
                raise PriceDataError(str(request))
            frame, mask, source = _load_one(ticker, request, cache_dir=cache_dir,
                                            offline=offline, shared=True)
        except PriceDataError as exc:
            missing[ticker] = str(exc)
            if on_missing == "raise":
                continue  # raised below, naming every ticker without prices
            warnings.warn(str(exc), stacklevel=stacklevel)
            continue
        loaded.append((ticker, frame, mask, source))
    if on_missing == "raise" and missing:
        if len(missing) == 1:
            raise PriceDataError(next(iter(missing.values())))
        raise PriceDataError(
            f"no prices for {len(missing)} tickers ({', '.join(missing)}): "
            + "; ".join(f"{t}: {m}" for t, m in missing.items()))
    return loaded, missing


def _long_frame(parts: list[dict], missing: dict[str, str]) -> pd.DataFrame:
    """The frame :func:`load_prices` returns from the parts of :func:`_rows_to_long` (the
    empty frame of its columns when there is none) and the ``missing`` tickers."""
    if parts:
        result = _stack_long(parts)
    else:
        result = pd.DataFrame({c: pd.Series(dtype=float) for c in LONG_COLUMNS})
        result["flat_zero_volume"] = result["flat_zero_volume"].astype(bool)
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
    ``force``; a corrupt entry is replaced. Failures do not stop the other tickers, except that a
    cache folder that cannot be written (a file, read-only, full disk:
    :class:`~crackdown.marketdata.cache.CacheWriteError`) fails every ticker still to download,
    with its reason, without downloading.

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
    unwritable: CacheWriteError | None = None
    writable = False
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
                if unwritable is None and not writable:
                    try:  # before the first download: a cache that cannot be written fails
                        check_cache_writable(cache_dir)  # every ticker, downloading nothing
                        writable = True
                    except CacheWriteError as exc:
                        unwritable = exc
                if unwritable is not None:
                    raise unwritable
                frame = download_yfinance(ticker, start_ts, end_ts)
                try:
                    write_cache(ticker, frame, requested_start=start_ts, requested_end=end_ts,
                                cache_dir=cache_dir)
                except CacheWriteError as exc:
                    unwritable = exc
                    raise
                row["status"] = "downloaded"
            row["rows"] = len(frame)
            if len(frame):
                row["first_date"] = _fmt(frame.index.min(), "")
                row["last_date"] = _fmt(frame.index.max(), "")
        except PriceDataError as exc:
            row["detail"] = str(exc)
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "CANONICAL_COLUMNS",
    "LONG_COLUMNS",
    "OFFLINE_ENV",
    "SOURCES",
    "CacheCorruptError",
    "CacheWriteError",
    "CacheWriteWarning",
    "atomic_write_bytes",
    "cache_paths",
    "download_yfinance",
    "fetch_prices",
    "flat_zero_volume",
    "folder_file",
    "folder_tickers",
    "frame_to_csv_bytes",
    "is_offline",
    "load_prices",
    "load_ticker",
    "normalize_tickers",
    "normalize_yfinance_frame",
    "parse_price_csv",
    "price_column_of",
    "price_matrix",
    "read_cache",
    "read_price_csv",
    "write_cache",
]
