"""The verified on-disk cache of downloaded prices: ``<cache_dir>/prices/<TICKER>.csv`` + sidecar.

The JSON sidecar ``<TICKER>.json`` holds the row count, the SHA-256 of the CSV bytes and the
requested date range the download covered. Writes are atomic (temporary file in the cache
folder, flushed, fsync'ed, moved over the target with :func:`os.replace`), so an interrupted run
leaves either the old file or none; a file whose checksum, row count, schema or sidecar fields do
not match is never used (:class:`CacheCorruptError`).

Concurrency
-----------
An entry is two files, so a reader must never pair one writer's CSV with another's sidecar. A
writer replaces both files while holding an exclusive :func:`fcntl.flock` lock on the cache
folder (``<cache_dir>/prices``); a reader reads both while holding a shared lock on it. Readers
therefore see either the old or the new complete entry, and two writers of one ticker cannot
leave a mismatched pair. Where ``flock`` is unavailable (Windows, some network file systems) a
reader that finds a mismatch reads the pair again, up to :data:`READ_RETRIES` times.

Permissions and OS errors
-------------------------
New cache files get the user's umask (``0o666 & ~umask``, like any file the user creates), not
the ``0o600`` of :func:`tempfile.mkstemp`. A cache folder that is a file, is read-only or is on
a full disk raises :class:`CacheWriteError` (one line naming the folder and the fix);
:func:`crackdown.marketdata.prices.load_ticker` turns that into a :class:`CacheWriteWarning` and
uses the download all the same.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from crackdown import config
from crackdown.errors import PriceDataError
from crackdown.marketdata.price_files import (  # noqa: F401  (decode_error_message: re-export)
    _fmt,
    decode_error_message,
    parse_price_csv,
)
from crackdown.timeline.tickers import TickerError, is_ticker

CACHE_FORMAT_VERSION = 1
CACHE_SUBDIR = "prices"
#: Extra reads of a mismatched entry when the folder cannot be locked.
READ_RETRIES = 5
_WRITE_CHUNK = 1 << 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CACHE_FIX = ("free disk space, fix the folder's permissions, or point --cache-dir / "
              "CRACKDOWN_CACHE_DIR at a writable folder")


class CacheCorruptError(PriceDataError):
    """A cache file is truncated, altered, unreadable or lacks a valid checksum sidecar."""


class CacheWriteError(PriceDataError, OSError):
    """The cache folder cannot be written (it is a file, read-only, or its disk is full)."""


class CacheWriteWarning(RuntimeWarning):
    """A download succeeded but could not be cached; it is used all the same."""


def cache_paths(ticker: str, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Return ``(csv_path, sidecar_path)`` of a ticker in the cache.

    Raises
    ------
    TickerError
        ``ticker`` is not a valid upper-case Yahoo symbol
        (:func:`crackdown.timeline.tickers.is_ticker`): such a name could point outside the
        cache folder (``../../X``), so it never becomes a path.
    """
    if not is_ticker(ticker):
        raise TickerError(
            f"{ticker!r} is not a valid ticker for a cache file name (upper-case Yahoo symbol "
            f"such as BABA or 9988.HK); check it with crackdown.timeline.tickers.check_ticker"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else config.cache_dir()
    folder = root / CACHE_SUBDIR
    return folder / f"{ticker}.csv", folder / f"{ticker}.json"


def _write_all(handle, data: bytes) -> None:
    """Write ``data`` in chunks (a separate function so tests can interrupt it midway)."""
    for offset in range(0, len(data), _WRITE_CHUNK):
        handle.write(data[offset:offset + _WRITE_CHUNK])


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """Create a new, empty temporary file beside ``name`` with mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))  # pragma: no cover


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a new temporary file in the same folder (mode ``0o666`` less the umask),
    which is flushed, fsync'ed and then moved over ``path`` with :func:`os.replace` (atomic on
    POSIX and Windows). If anything fails or the run is interrupted, the temporary file is
    removed and ``path`` keeps its previous content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _create_temp(path.parent, path.name)
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


@contextmanager
def _folder_lock(folder: Path, *, exclusive: bool) -> Iterator[bool]:
    """Hold a ``flock`` on ``folder`` (exclusive or shared); yield whether it is held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            locked = True
        except OSError:  # pragma: no cover - e.g. ENOLCK on a network file system
            locked = False
        yield locked
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or itself) that is not a folder, if any."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None
    return None  # pragma: no cover


def write_problem(folder: Path, exc: OSError) -> str:
    """One line saying why ``folder`` could not be written and what to do."""
    code = exc.errno
    blocker = _blocking_file(folder)
    if blocker is not None or code in (errno.ENOTDIR, errno.EEXIST):
        where = blocker if blocker is not None else folder
        reason = f"{where} is a file, not a folder"
    elif code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        reason = "the disk (or quota) is full"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied (the folder is not writable)"
    elif code == errno.EROFS:
        reason = "the file system is read-only"
    else:
        reason = exc.strerror or str(exc)
    return f"cannot write the price cache {folder}: {reason}; {_CACHE_FIX}"


def check_cache_writable(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Create the cache's price folder if needed and check that a file can be written in it.

    Returns
    -------
    pathlib.Path
        The folder (``<cache_dir>/prices``).

    Raises
    ------
    CacheWriteError
        The folder is (under) a file, is read-only, or its disk is full.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else config.cache_dir()
    folder = root / CACHE_SUBDIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(folder, "write-check")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CacheWriteError(write_problem(folder, exc)) from None
    return folder


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
    "requested_end", ...}``, both under an exclusive lock on the cache folder (see the module
    docstring), so concurrent readers never see a half-replaced pair. If a run stops between the
    two, the old sidecar's checksum no longer matches the new CSV and :func:`read_cache` rejects
    the pair.

    Raises
    ------
    CacheWriteError
        The cache folder is (under) a file, is read-only, or the disk is full; the message names
        the folder and the fix. (It is also an :class:`OSError`.)
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
    sidecar = (json.dumps(meta, indent=1) + "\n").encode("utf-8")
    folder = csv_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _folder_lock(folder, exclusive=True):
            atomic_write_bytes(csv_path, data)
            atomic_write_bytes(meta_path, sidecar)
    except CacheWriteError:
        raise
    except OSError as exc:
        raise CacheWriteError(write_problem(folder, exc)) from None
    return csv_path


def _meta_problem(meta: object, ticker: str) -> str | None:
    """What is wrong with a sidecar's fields, or ``None``."""
    if not isinstance(meta, dict):
        return f"it holds a JSON {type(meta).__name__}, not an object"
    if meta.get("format") != CACHE_FORMAT_VERSION:
        return f"field 'format' is {meta.get('format')!r}, expected {CACHE_FORMAT_VERSION}"
    if meta.get("ticker") != ticker:
        return f"field 'ticker' is {meta.get('ticker')!r}, expected {ticker!r}"
    rows = meta.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        return f"field 'rows' is {rows!r}, expected a row count >= 0"
    sha = meta.get("sha256")
    if not isinstance(sha, str) or _SHA256.fullmatch(sha) is None:
        return f"field 'sha256' is {sha!r}, expected 64 lower-case hex digits"
    for key in ("requested_start", "requested_end"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or _DATE.fullmatch(value) is None:
            return f"field {key!r} is {value!r}, expected YYYY-MM-DD or null"
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            return f"field {key!r} is {value!r}, not a calendar date"
    for key in ("first_date", "last_date"):
        if not isinstance(meta.get(key, ""), str):
            return f"field {key!r} is {meta.get(key)!r}, expected YYYY-MM-DD"
    return None


def _read_pair(csv_path: Path, meta_path: Path,
               fix: str) -> tuple[bytes, bytes | OSError] | None:
    """The CSV and sidecar bytes (``None`` when the CSV is absent; the sidecar's OS error)."""
    try:
        if not csv_path.exists():
            return None
        data = csv_path.read_bytes()
    except OSError as exc:
        raise CacheCorruptError(
            f"cache file {csv_path} cannot be read ({exc.strerror or exc}): {fix}") from None
    try:
        return data, meta_path.read_bytes()
    except OSError as exc:
        return data, exc


def read_cache(
    ticker: str, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[pd.DataFrame, dict] | None:
    """Read and verify a cached ticker.

    The CSV and its sidecar are read under a shared lock on the cache folder, so a concurrent
    :func:`write_cache` is seen entirely or not at all (see the module docstring).

    Returns
    -------
    (frame, meta) or None
        ``None`` when the ticker is not cached.

    Raises
    ------
    CacheCorruptError
        The CSV cannot be read, the sidecar is missing, unreadable or has an invalid field, or
        the CSV's SHA-256, row count or schema does not match it (truncated/interrupted/edited
        file). The message names both files and the fix.
    """
    csv_path, meta_path = cache_paths(ticker, cache_dir)
    fix = f"delete {csv_path} and {meta_path.name} or run `crackdown fetch --tickers {ticker}`"
    attempts = 1
    while True:
        with _folder_lock(csv_path.parent, exclusive=False) as locked:
            pair = _read_pair(csv_path, meta_path, fix)
        if pair is None:
            return None
        try:
            return _verify(ticker, csv_path, meta_path, *pair, fix)
        except CacheCorruptError:
            # without a lock, a writer may have replaced one file of the pair in between
            if locked or attempts > READ_RETRIES:
                raise
        attempts += 1
        time.sleep(0.01 * attempts)


def _verify(ticker: str, csv_path: Path, meta_path: Path, data: bytes,
            meta_bytes: bytes | OSError, fix: str) -> tuple[pd.DataFrame, dict]:
    """Check a CSV against its sidecar; return ``(frame, meta)`` or raise CacheCorruptError."""
    try:
        if isinstance(meta_bytes, OSError):
            reason = meta_bytes.strerror or str(meta_bytes)
        else:
            meta = json.loads(meta_bytes.decode("utf-8"))
            reason = ""
    except (ValueError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())[:120]
    if reason:
        raise CacheCorruptError(
            f"cache file {csv_path} has no valid checksum sidecar {meta_path.name} "
            f"({reason}); it cannot be verified: {fix}"
        )
    problem = _meta_problem(meta, ticker)
    if problem is not None:
        raise CacheCorruptError(
            f"cache file {csv_path} has no valid checksum sidecar: {meta_path.name} {problem}; "
            f"it cannot be verified: {fix}"
        )
    expected_sha, expected_rows = meta["sha256"], meta["rows"]
    actual_sha = hashlib.sha256(data).hexdigest()
    if actual_sha != expected_sha:
        raise CacheCorruptError(
            f"cache file {csv_path} is corrupt or truncated ({len(data)} bytes; SHA-256 "
            f"{actual_sha[:12]} != {expected_sha[:12]} recorded in {meta_path.name}): {fix}"
        )
    try:
        frame = parse_price_csv(data.decode("utf-8"), str(csv_path))
    except UnicodeDecodeError as exc:
        raise CacheCorruptError(
            f"cache file {csv_path} fails the schema check (byte {exc.start} is not UTF-8): {fix}"
        ) from None
    except PriceDataError as exc:
        raise CacheCorruptError(
            f"cache file {csv_path} fails the schema check ({exc}): {fix}") from None
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
