"""The verified on-disk cache of downloaded prices: ``<cache_dir>/prices/<TICKER>.csv`` + sidecar.

The JSON sidecar ``<TICKER>.json`` holds the row count, the SHA-256 of the CSV bytes and the
requested date range the download covered. Writes are atomic (temporary file in the cache
folder, flushed, fsync'ed, moved over the target with :func:`os.replace`), so an interrupted run
leaves either the old file or none; a file whose checksum, row count or schema does not match is
never used (:class:`CacheCorruptError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from crackdown import config
from crackdown.errors import PriceDataError
from crackdown.marketdata.price_files import _fmt, parse_price_csv

CACHE_FORMAT_VERSION = 1
CACHE_SUBDIR = "prices"
_WRITE_CHUNK = 1 << 16


class CacheCorruptError(PriceDataError):
    """A cache file is truncated, altered or lacks its checksum sidecar."""


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
