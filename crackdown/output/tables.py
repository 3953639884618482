"""Display tables for reports and notebooks: one unit convention per table, fixed decimals.

Conventions
-----------
* **Returns arrive in decimals** (0.012 = 1.2 %), as everywhere in crackdown. Columns listed in
  ``percent`` are multiplied by 100 and their header gets the suffix ``" (%)"``, so the unit of
  every column is stated in its header and a table never mixes a percent column with an
  unlabelled decimal return (e.g. a daily alpha of -0.0004 is shown as ``alpha (%)`` -0.04).
* **Fixed decimals per column**: every value of a column has the same number of decimals
  (``decimals`` per column, else ``percent_decimals`` for percent columns and
  ``default_decimals`` for other float columns; integer columns have none). ``-0.00`` is
  written ``0.00``.
* **p-values** (columns in ``pvalues``) never print as 0: ``p >= 0.001`` has three decimals,
  ``1e-16 <= p < 0.001`` scientific notation with two significant digits (``2.3e-05``), and
  ``p`` below the double-precision epsilon ``2.2e-16`` is written ``< 2.2e-16`` (the convention
  of R's ``format.pval``: such a p is not distinguishable from 0 in floating point).
* **Text** longer than ``text_width`` characters is shortened at a word boundary and ends with
  ``"…"`` (:func:`shorten`), so no cell is cut mid-word; the full text stays in the CSV files.
* Missing values print as ``NA_TEXT``.

The formatted frame holds strings (for display only); write CSVs from the unformatted frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = [
    "EPSILON_TEXT",
    "NA_TEXT",
    "format_number",
    "format_pvalue",
    "format_table",
    "shorten",
]

#: Text of a missing value.
NA_TEXT = "–"
#: p-values below the double-precision machine epsilon (2.22e-16) print as this text.
EPSILON_TEXT = "< 2.2e-16"
_EPS = float(np.finfo(float).eps)
_ELLIPSIS = "…"


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:  # pragma: no cover - exotic scalars
        return False


def format_number(value: object, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals (``NA_TEXT`` when missing, no ``-0.00``)."""
    if _missing(value):
        return NA_TEXT
    text = f"{float(value):.{int(decimals)}f}"
    if re.fullmatch(r"-0(\.0*)?", text):
        text = text[1:]
    return text


def format_pvalue(p: object) -> str:
    """Format a p-value so that it never reads as 0.

    ``p >= 0.001``: three decimals (``0.046``; ``1.000`` for p rounding up to one);
    ``2.2e-16 <= p < 0.001``: two significant digits in scientific notation (``2.3e-05``);
    ``p < 2.2e-16`` (including an exact 0 from a normal tail that underflowed):
    :data:`EPSILON_TEXT`. Missing: :data:`NA_TEXT`. A value outside [0, 1] raises
    :class:`~crackdown.errors.StudyConfigError` (it is not a p-value).
    """
    if _missing(p):
        return NA_TEXT
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise StudyConfigError(f"format_pvalue: {p!r} is not a p-value (it must lie in [0, 1]); "
                               "pass the p column, not a statistic")
    if p < _EPS:
        return EPSILON_TEXT
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"


def shorten(text: object, width: int = 60) -> str:
    """Shorten ``text`` to at most ``width`` characters at a word boundary, ending with "…".

    Whitespace is kept as it is when the text fits. Otherwise the text is cut after the last
    whole word that fits in ``width - 1`` characters (trailing punctuation ``,;:`` and spaces
    removed) and ``"…"`` is appended. Only a first word longer than ``width - 1`` characters is
    cut inside the word. Missing values give ``""``.
    """
    if width < 2:
        raise StudyConfigError(f"shorten: width={width!r} must be at least 2 characters")
    if _missing(text):
        return ""
    text = str(text)
    if len(text) <= width:
        return text
    room = text[: width - 1]
    if text[width - 1].isspace():  # the cut falls on a word boundary
        head = room
    else:
        cut = max(room.rfind(" "), room.rfind("\n"), room.rfind("\t"))
        head = room[:cut] if cut > 0 else room
    return head.rstrip(" \t\n,;:") + _ELLIPSIS


def _columns(frame: pd.DataFrame, names: Iterable[str] | None, option: str) -> list[str]:
    names = [] if names is None else ([names] if isinstance(names, str) else list(names))
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise StudyConfigError(f"format_table: {option} names column(s) {missing} that the frame "
                               f"does not have; it has {list(frame.columns)}")
    return names


def format_table(
    frame: pd.DataFrame,
    *,
    percent: Iterable[str] | None = None,
    pvalues: Iterable[str] | None = None,
    decimals: Mapping[str, int] | None = None,
    default_decimals: int = 3,
    percent_decimals: int = 2,
    text_width: int | None = 60,
    flags: Mapping[str, object] | None = None,
    flag_mark: str = " †",
) -> pd.DataFrame:
    """Return a display copy of ``frame``: units in the headers, fixed decimals, readable p.

    Parameters
    ----------
    frame
        Table in crackdown's units (returns in decimals).
    percent
        Columns holding returns (or differences of returns) in decimals: shown ``x 100`` with
        the header ``"<name> (%)"`` (unchanged when the name already contains ``%``).
    pvalues
        Columns of p-values (or q-values): :func:`format_pvalue`.
    decimals
        Decimals of particular columns (after the percent scaling), e.g. ``{"beta": 2}``.
    default_decimals, percent_decimals
        Decimals of the other float columns and of the percent columns.
    text_width
        Text cells longer than this are shortened at a word boundary (:func:`shorten`); None
        keeps them whole.
    flags
        ``{column: boolean mask aligned with the rows}``: cells where the mask is true get
        ``flag_mark`` after the number (e.g. CARs below -100 %); explain the mark next to the
        table.

    Returns
    -------
    pandas.DataFrame
        Same index and row order, every column as strings (dates as ``YYYY-MM-DD``, booleans and
        other objects unchanged except for shortening), percent columns renamed.
    """
    if not isinstance(frame, pd.DataFrame):
        raise StudyConfigError(f"format_table: expected a pandas DataFrame, got "
                               f"{type(frame).__name__}")
    percent = _columns(frame, percent, "percent")
    pvalues = _columns(frame, pvalues, "pvalues")
    decimals = dict(decimals or {})
    _columns(frame, decimals, "decimals")
    flags = dict(flags or {})
    _columns(frame, flags, "flags")
    both = set(percent) & set(pvalues)
    if both:
        raise StudyConfigError(f"format_table: column(s) {sorted(both)} cannot be both percent "
                               "and p-values")
    out = {}
    names = {}
    for column in frame.columns:
        series = frame[column]
        if column in pvalues:
            cells = series.map(format_pvalue)
        elif column in percent or (pd.api.types.is_numeric_dtype(series)
                                   and not pd.api.types.is_bool_dtype(series)):
            values = pd.to_numeric(series, errors="raise")
            scale = 100.0 if column in percent else 1.0
            if column in decimals:
                digits = decimals[column]
            elif column in percent:
                digits = percent_decimals
            elif pd.api.types.is_integer_dtype(series):
                digits = 0
            else:
                digits = default_decimals
            cells = (values * scale).map(lambda v, d=digits: format_number(v, d))
        elif pd.api.types.is_datetime64_any_dtype(series):
            cells = series.map(lambda v: NA_TEXT if _missing(v) else f"{v:%Y-%m-%d}")
        elif text_width is not None and (pd.api.types.is_object_dtype(series)
                                         or pd.api.types.is_string_dtype(series)):
            cells = series.map(lambda v: shorten(v, text_width) if isinstance(v, str) else v)
        else:
            cells = series
        if column in flags:
            mask = np.asarray(flags[column], dtype=bool)
            if mask.shape != (len(frame),):
                raise StudyConfigError(f"format_table: flags[{column!r}] has {mask.size} values "
                                       f"for {len(frame)} rows")
            cells = cells.astype(str).where(~mask, cells.astype(str) + flag_mark)
        out[column] = cells
        if column in percent and "%" not in str(column):
            names[column] = f"{column} (%)"
    table = pd.concat([out[c] for c in frame.columns], axis=1) if len(frame.columns) else (
        pd.DataFrame(index=frame.index))
    # keep the frame's column index (a MultiIndex of a pivot table stays one)
    table.columns = frame.columns if not names else pd.Index(
        [names.get(c, c) for c in frame.columns], name=frame.columns.name)
    return table
