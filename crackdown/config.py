"""Where the project's files live: events table, offline price folder, cache, shared data.

Resolution rules (first match wins)
-----------------------------------
* Offline price folder: explicit argument > ``CRACKDOWN_PRICES_DIR`` > ``<shared>/data/prices``
  when the shared folder exists (see :func:`shared_dir`) > none (use cache, then yfinance).
* Shared folder (peer data, seeds, price snapshot): ``CRACKDOWN_SHARED_DIR`` > ``../shared``
  beside the repository checkout.
* Cache: ``CRACKDOWN_CACHE_DIR`` > ``<repo>/data/cache`` when running from a checkout >
  the per-user cache folder of :mod:`platformdirs`.
* Parsed price files (:func:`parsed_prices_dir`): ``CRACKDOWN_PARSED_CACHE`` (a folder, or
  ``off`` / ``0`` / ``no`` / ``false`` for none) > ``<cache>/parsed-prices``.
* Events table: explicit argument > ``CRACKDOWN_EVENTS_FILE`` > ``<repo>/events.csv`` from a
  checkout > the copy bundled in the wheel.
* Notebook output (:func:`output_folder`): the notebook's ``output_dir`` parameter > the report
  folder under ``crackdown report`` (``CRACKDOWN_REPORT_DIR``) > none: a run by hand writes
  nothing.
* Other project files a plain (non-editable) install needs (:data:`BUNDLED_FILES`, the report
  notebooks): ``<repo>/<path>`` from a checkout > ``crackdown/_bundled/<path>`` in the wheel
  (:func:`project_file`, :func:`project_notebooks_dir`). The wheel ships them through
  ``[tool.hatch.build.targets.wheel.force-include]`` of ``pyproject.toml`` under the same
  relative path; ``tests/test_install.py`` checks that table and installs the wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

from crackdown.errors import StudyConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where a wheel keeps the project files of :data:`BUNDLED_FILES` and the notebooks.
BUNDLED_DIR = PACKAGE_DIR / "_bundled"
#: Files of the checkout (relative paths) that the wheel ships under :data:`BUNDLED_DIR`; the
#: notebooks read only these (:func:`project_file` refuses any other path).
BUNDLED_FILES = ("benchmarks/results/size_power.csv", "events.csv")
#: Folder of the report notebooks, relative to the checkout and to :data:`BUNDLED_DIR`.
NOTEBOOKS_FOLDER = "notebooks"
#: Set by ``crackdown report`` for each notebook kernel: the folder of the report being built.
REPORT_DIR_ENV = "CRACKDOWN_REPORT_DIR"


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


#: Environment variable of :func:`parsed_prices_dir`.
PARSED_CACHE_ENV = "CRACKDOWN_PARSED_CACHE"


def parsed_prices_dir() -> Path | None:
    """Folder of the on-disk cache of parsed price files, or ``None`` when it is turned off.

    :func:`crackdown.marketdata.price_files.read_price_csv` keeps there the frame parsed from
    each price CSV, keyed by the file's identity, so a fresh process reads it instead of
    parsing again. ``CRACKDOWN_PARSED_CACHE``: a folder, or ``off``/``0``/``no``/``false``
    (none); default ``<cache_dir()>/parsed-prices``. Created on first write; a folder that
    cannot be written or read is skipped silently.
    """
    env = os.environ.get(PARSED_CACHE_ENV, "").strip()
    if env.lower() in ("off", "0", "no", "false", "none"):
        return None
    if env:
        return Path(env).expanduser()
    return cache_dir() / "parsed-prices"


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
    return BUNDLED_DIR / "events.csv"


def project_file(relative: str) -> Path | None:
    """Return a project file that works the same from a checkout and from a plain install.

    Parameters
    ----------
    relative
        Path relative to the checkout, one of :data:`BUNDLED_FILES`, e.g.
        ``"benchmarks/results/size_power.csv"``.

    Returns
    -------
    pathlib.Path or None
        ``<repo>/<relative>`` when running from a checkout, else the copy the wheel ships in
        ``crackdown/_bundled/<relative>``; ``None`` when that file does not exist.

    Raises
    ------
    StudyConfigError
        ``relative`` is not in :data:`BUNDLED_FILES`: a file the wheel does not ship would be
        found in a checkout and missing after ``pip install``, so it is refused everywhere.
    """
    if relative not in BUNDLED_FILES:
        raise StudyConfigError(
            f"project_file({relative!r}): not a file the package ships; bundled files are "
            f"{', '.join(BUNDLED_FILES)} (add it to crackdown.config.BUNDLED_FILES and to the "
            "wheel's force-include table in pyproject.toml)"
        )
    root = repo_root()
    path = (root if root is not None else BUNDLED_DIR) / relative
    return path if path.is_file() else None


def project_notebooks_dir() -> Path | None:
    """Return ``<repo>/notebooks`` from a checkout, else the notebooks the wheel ships.

    ``None`` when that folder does not exist (an install that ships no notebooks).
    """
    root = repo_root()
    path = (root if root is not None else BUNDLED_DIR) / NOTEBOOKS_FOLDER
    return path if path.is_dir() else None


def holdout_dir() -> Path | None:
    """Return ``<shared>/data/eventstudy_holdout`` (peer examples) when present."""
    shared = shared_dir()
    if shared is None:
        return None
    path = shared / "data" / "eventstudy_holdout"
    return path if path.is_dir() else None


def output_folder(output_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the folder a notebook writes its tables and figures to, or ``None``: write nothing.

    Parameters
    ----------
    output_dir
        The notebook's ``output_dir`` parameter; ``None`` or ``""`` when not set.

    Returns
    -------
    pathlib.Path or None
        First match wins: ``output_dir`` when set > the report folder when running under
        ``crackdown report`` (:data:`REPORT_DIR_ENV`, set for every kernel) > ``None`` for an
        interactive run (JupyterLab), which must write no file. A returned folder exists
        (created with its parents).

    Raises
    ------
    StudyConfigError
        The folder cannot be created (a file of that name, no permission, read-only disk).
    """
    chosen = output_dir if output_dir not in (None, "") else os.environ.get(REPORT_DIR_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyConfigError(f"output_dir {str(path)!r}: cannot create the folder "
                               f"({exc.strerror or exc}); pass a writable folder") from None
    return path
