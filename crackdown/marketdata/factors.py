"""Fama-French daily factors from Ken French's data library (CSV), in decimals.

Supported files (looked up in :func:`crackdown.config.factors_dir`, file-name case ignored)
-------------------------------------------------------------------------------------------
* ``ff3``: ``F-F_Research_Data_Factors_daily.CSV`` (original download, text header and copyright
  footer), else ``FF3_daily_2018on.csv`` (plain CSV, ``Date`` as ``YYYY-MM-DD``).
* ``ff5``: ``F-F_Research_Data_5_Factors_2x3_daily.CSV``, else ``FF5_daily_2018on.csv``.
* ``carhart``: the ``ff3`` file plus ``F-F_Momentum_Factor_daily.CSV`` (column ``Mom``).
* ``ff3-asia``, ``ff5-asia``, ``carhart-asia``: Ken French's **Asia Pacific ex Japan** daily
  factors (``Asia_Pacific_ex_Japan_3_Factors_Daily.csv``, ``..._5_Factors_Daily[_202206].csv``,
  momentum ``..._MOM_Factor_Daily[_202206].csv`` whose column ``WML`` becomes ``mom``), for
  Hong Kong listings. They are US-dollar returns on a weekday calendar (every weekday, holidays
  included) and the shipped files end 2023-12-29 (three factors) and 2022-06-30 (five factors,
  momentum): a study whose windows reach past the end is refused with the date
  (:meth:`crackdown.estimation.study.EventStudy.fit`).

Both layouts are parsed by :func:`read_french_csv`: the header row is the first line that has
``Mkt-RF`` or ``Mom`` among its cells; data rows are those whose first cell is a date
(``YYYYMMDD`` or ``YYYY-MM-DD``); the first non-date line after the data ends the table (the
footer). Ken French publishes **percent**; this module divides by 100, so a value of ``0.85`` in
the file is ``0.0085`` here. Ken French's missing-value codes ``-99.99`` and ``-999`` become NaN.

Column names become lower-case snake case: ``Mkt-RF -> mkt_rf``, ``SMB -> smb``, ``HML -> hml``,
``RMW -> rmw``, ``CMA -> cma``, ``RF -> rf``, ``Mom -> mom``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown import config
from crackdown.errors import PriceDataError

FF3_FILES = ("F-F_Research_Data_Factors_daily.CSV", "FF3_daily_2018on.csv")
FF5_FILES = ("F-F_Research_Data_5_Factors_2x3_daily.CSV", "FF5_daily_2018on.csv")
MOMENTUM_FILES = ("F-F_Momentum_Factor_daily.CSV",)
ASIA3_FILES = ("Asia_Pacific_ex_Japan_3_Factors_Daily.csv",)
ASIA5_FILES = ("Asia_Pacific_ex_Japan_5_Factors_Daily.csv",
               "Asia_Pacific_ex_Japan_5_Factors_Daily_202206.csv")
ASIA_MOMENTUM_FILES = ("Asia_Pacific_ex_Japan_MOM_Factor_Daily.csv",
                       "Asia_Pacific_ex_Japan_MOM_Factor_Daily_202206.csv")
#: Base factor file(s) of each kind (first found wins) and its momentum file(s), if any.
BASE_FILES = {"ff3": FF3_FILES, "ff5": FF5_FILES, "carhart": FF3_FILES,
              "ff3-asia": ASIA3_FILES, "ff5-asia": ASIA5_FILES, "carhart-asia": ASIA3_FILES}
MOMENTUM_OF = {"carhart": MOMENTUM_FILES, "carhart-asia": ASIA_MOMENTUM_FILES}
LIBRARY_URL = "https://mba.tuck.dartmouth.edu/pages/faculty/ken.french/data_library.html"
KINDS = {
    "ff3": ("mkt_rf", "smb", "hml", "rf"),
    "ff5": ("mkt_rf", "smb", "hml", "rmw", "cma", "rf"),
    "carhart": ("mkt_rf", "smb", "hml", "mom", "rf"),
    "ff3-asia": ("mkt_rf", "smb", "hml", "rf"),
    "ff5-asia": ("mkt_rf", "smb", "hml", "rmw", "cma", "rf"),
    "carhart-asia": ("mkt_rf", "smb", "hml", "mom", "rf"),
}
MISSING_CODES = (-99.99, -999.0)
_DATE_RE = re.compile(r"^(\d{8}|\d{4}-\d{2}-\d{2})$")


def snake_name(name: str) -> str:
    """``'Mkt-RF' -> 'mkt_rf'``, ``'Mom   ' -> 'mom'`` (lower case, non-alphanumerics -> ``_``)."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def read_french_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one Ken French daily factor CSV (original or header-less), values in decimals.

    Parameters
    ----------
    path
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (datetime64[ns]); one float column per factor (snake-case names), equal
        to the file's percent values / 100.

    Raises
    ------
    PriceDataError
        No header row, an unparsable date or number (naming the line), duplicated dates, or no
        data rows.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise PriceDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    lines = list(csv.reader(io.StringIO(text)))
    header_at = None
    for i, cells in enumerate(lines):
        names = {c.strip().lower() for c in cells}
        if "mkt-rf" in names or "mom" in names or "wml" in names:
            header_at = i
            break
    if header_at is None:
        raise PriceDataError(
            f"{path}: no header row with 'Mkt-RF' or 'Mom'; expected a Ken French daily factor "
            f"file ({LIBRARY_URL})"
        )
    header = [c.strip() for c in lines[header_at]]
    columns = [snake_name(c) for c in header[1:]]
    dates: list[str] = []
    line_numbers: list[int] = []
    values: list[list[float]] = []
    for j in range(header_at + 1, len(lines)):
        cells = [c.strip() for c in lines[j]]
        if not cells or not any(cells):
            if dates:
                break
            continue
        if not _DATE_RE.match(cells[0]):
            if dates:
                break  # footer (copyright) or a following annual table
            raise PriceDataError(
                f"{path} line {j + 1}: {cells[0]!r} is not a date (YYYYMMDD or YYYY-MM-DD)"
            )
        if len(cells) - 1 != len(columns):
            raise PriceDataError(
                f"{path} line {j + 1}: {len(cells) - 1} values for {len(columns)} columns "
                f"{header[1:]}"
            )
        try:
            row = [float(c) for c in cells[1:]]
        except ValueError:
            bad = next(c for c in cells[1:] if not _is_float(c))
            raise PriceDataError(f"{path} line {j + 1}: value {bad!r} is not a number") from None
        dates.append(cells[0].replace("-", ""))
        line_numbers.append(j + 1)
        values.append(row)
    if not dates:
        raise PriceDataError(f"{path}: no data rows after the header (line {header_at + 1})")
    stamps = pd.to_datetime(pd.Series(dates), format="%Y%m%d", errors="coerce")
    if stamps.isna().any():
        k = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise PriceDataError(f"{path} line {line_numbers[k]}: {dates[k]!r} is not a valid date")
    data = np.asarray(values, dtype=float)
    for code in MISSING_CODES:
        data[np.isclose(data, code)] = np.nan
    frame = pd.DataFrame(data / 100.0, index=pd.DatetimeIndex(stamps, name="date"),
                         columns=columns)
    frame.index = frame.index.astype("datetime64[ns]")
    if frame.index.has_duplicates:
        dup = sorted({f"{d:%Y-%m-%d}" for d in frame.index[frame.index.duplicated()]})
        raise PriceDataError(f"{path}: duplicated date(s) {', '.join(dup[:5])}")
    return frame.sort_index()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    try:
        entries = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    except OSError:
        return None
    for name in names:
        hit = entries.get(name.lower())
        if hit is not None:
            return hit
    return None


def _folder(factors_dir: str | os.PathLike[str] | None) -> Path:
    folder = config.factors_dir(factors_dir)
    if folder is None or not folder.is_dir():
        where = f"folder {folder}" if folder is not None else "no factors folder"
        raise PriceDataError(
            f"Fama-French factors not found ({where}); download the daily files "
            f"{FF3_FILES[0]} / {FF5_FILES[0]} from {LIBRARY_URL}, unzip them into a folder and "
            f"pass factors_dir or set CRACKDOWN_FACTORS_DIR"
        )
    return folder


def load_factors(
    kind: str = "ff3",
    factors_dir: str | os.PathLike[str] | None = None,
    *,
    start: object = None,
    end: object = None,
) -> pd.DataFrame:
    """Load daily Fama-French factors in decimals.

    Parameters
    ----------
    kind
        ``"ff3"`` (``mkt_rf, smb, hml, rf``), ``"ff5"`` (``mkt_rf, smb, hml, rmw, cma, rf``) or
        ``"carhart"`` (``mkt_rf, smb, hml, mom, rf``: FF3 plus Ken French's momentum factor),
        or the Asia Pacific ex Japan versions ``"ff3-asia"``, ``"ff5-asia"``,
        ``"carhart-asia"`` (same columns).
    factors_dir
        Folder of the CSVs (default :func:`crackdown.config.factors_dir`:
        ``$CRACKDOWN_FACTORS_DIR``, else ``<prices folder>/factors``).
    start, end
        Optional inclusive date range.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (datetime64[ns], the US trading days of the file); columns as above,
        decimals (file percent / 100). ``attrs["files"]`` lists the files read.

    Raises
    ------
    PriceDataError
        Unknown ``kind``; a missing file (the message names the file to download from Ken
        French's data library); for ``carhart``, FF3 and momentum dates that disagree inside
        their common span.
    """
    if kind not in KINDS:
        raise PriceDataError(f"factor model {kind!r} unknown; use one of {', '.join(KINDS)}")
    folder = _folder(factors_dir)
    base_files = BASE_FILES[kind]
    base_path = _find(folder, base_files)
    if base_path is None:
        raise PriceDataError(
            f"no {' or '.join(base_files)} in {folder}; download {base_files[0]} (daily, CSV) "
            f"from Ken French's data library {LIBRARY_URL} and unzip it there"
        )
    frame = read_french_csv(base_path)
    files = [str(base_path)]
    if kind in MOMENTUM_OF:
        mom_files = MOMENTUM_OF[kind]
        mom_path = _find(folder, mom_files)
        if mom_path is None:
            what = ("'Momentum Factor (Mom) [Daily]' (F-F_Momentum_Factor_daily_CSV.zip)"
                    if kind == "carhart" else "'Asia Pacific ex Japan Momentum Factor (Mom) "
                    "[Daily]'")
            raise PriceDataError(
                f"the {kind} model needs the momentum factor: no {mom_files[0]} in "
                f"{folder}; download {what} from Ken French's data library "
                f"{LIBRARY_URL}, unzip {mom_files[0]} into that folder, or use model "
                f"{kind.replace('carhart', 'ff3')}"
            )
        mom = read_french_csv(mom_path).rename(columns={"wml": "mom"})
        if "mom" not in mom.columns:
            raise PriceDataError(f"{mom_path}: no 'Mom' column (found {list(mom.columns)})")
        lo = max(frame.index[0], mom.index[0])
        hi = min(frame.index[-1], mom.index[-1])
        a = frame.index[(frame.index >= lo) & (frame.index <= hi)]
        b = mom.index[(mom.index >= lo) & (mom.index <= hi)]
        differ = a.symmetric_difference(b)
        if len(differ):
            raise PriceDataError(
                f"{base_path.name} and {mom_path.name} disagree on {len(differ)} date(s) inside "
                f"{lo:%Y-%m-%d}..{hi:%Y-%m-%d} (e.g. {differ[0]:%Y-%m-%d}); download both files "
                f"again from {LIBRARY_URL} (same vintage)"
            )
        frame = frame.loc[a].join(mom[["mom"]], how="left")
        files.append(str(mom_path))
    wanted = list(KINDS[kind])
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise PriceDataError(
            f"{base_path}: column(s) {absent} missing (found {list(frame.columns)}); is it the "
            f"right Ken French file?"
        )
    frame = frame.loc[:, wanted]
    if start is not None:
        frame = frame.loc[frame.index >= pd.Timestamp(start)]
    if end is not None:
        frame = frame.loc[frame.index <= pd.Timestamp(end)]
    frame.attrs["files"] = files
    return frame
