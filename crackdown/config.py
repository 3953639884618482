"""Where the project's files live: events table, offline price folder, cache, shared data.

Resolution rules (first match wins)
-----------------------------------
* Offline price folder: explicit argument > ``CRACKDOWN_PRICES_DIR`` > ``<shared>/data/prices``
  when the shared folder exists (see :func:`shared_dir`) > none (use cache, then yfinance).
* Shared folder (peer data, seeds, price snapshot): ``CRACKDOWN_SHARED_DIR`` > ``../shared``
  beside the repository checkout.
* Cache: ``CRACKDOWN_CACHE_DIR`` > ``<repo>/data/cache`` when running from a checkout >
  the per-user cache folder of :mod:`platformdirs`.
* Events table: explicit argument > ``CRACKDOWN_EVENTS_FILE`` > ``<repo>/events.csv`` from a
  checkout > the copy bundled in the wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """Return the repository checkout that contains this package, or ``None`` when installed."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "events.csv").is_file():
        return candidate
    return None


def shared_dir() -> Path | None:
    """Return the shared data folder (``../shared`` beside the checkout), or ``None`` if absent."""
    env = os.environ.get("CRACKDOWN_SHARED_DIR")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    root = repo_root()
    if root is not None:
        path = root.parent / "shared"
        if path.is_dir():
            return path
    return None


def prices_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the offline price folder to read, or ``None`` to use the cache and yfinance."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("CRACKDOWN_PRICES_DIR")
    if env:
        return Path(env).expanduser()
    shared = shared_dir()
    if shared is not None and (shared / "data" / "prices").is_dir():
        return shared / "data" / "prices"
    return None


def factors_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the folder of Fama-French daily factor files (``<prices>/factors``), if any."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("CRACKDOWN_FACTORS_DIR")
    if env:
        return Path(env).expanduser()
    prices = prices_dir()
    if prices is not None and (prices / "factors").is_dir():
        return prices / "factors"
    return None


def cache_dir() -> Path:
    """Return the on-disk cache folder for downloaded prices (created on first write)."""
    env = os.environ.get("CRACKDOWN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    if root is not None:
        return root / "data" / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("crackdown"))


def events_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the events table to read."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("CRACKDOWN_EVENTS_FILE")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    if root is not None:
        return root / "events.csv"
    return PACKAGE_DIR / "_bundled" / "events.csv"


def holdout_dir() -> Path | None:
    """Return ``<shared>/data/eventstudy_holdout`` (peer examples) when present."""
    shared = shared_dir()
    if shared is None:
        return None
    path = shared / "data" / "eventstudy_holdout"
    return path if path.is_dir() else None
