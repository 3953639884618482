"""Options and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import math
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crackdown.errors import StudyConfigError

if TYPE_CHECKING:  # pandas is imported where a frame is printed (fast `crackdown --version`)
    import pandas as pd

#: Line budget of the table format of the commands that bound it (a 100-column terminal).
TABLE_WIDTH = 100

#: Text columns are not shortened below this many characters (or their header's length).
MIN_TEXT_WIDTH = 24

#: Marks a shortened table cell (the full text is in ``--format csv|json``).
ELLIPSIS = "\u2026"

#: Separator between table columns.
COLUMN_GAP = "  "


#: Normal-return models the commands accept (:data:`crackdown.estimation.models.MODELS`
#: without the user factor set, which needs a DataFrame).
CLI_MODELS = ("constant-mean", "market-adjusted", "market", "ff3", "carhart", "ff5",
              "ff3-asia", "ff5-asia", "carhart-asia", "international", "scholes-williams",
              "dimson", "garch")
_WINDOW = re.compile(r"^\s*([+-]?\d+)\s*:\s*([+-]?\d+)\s*$")
# argparse (Python < 3.13) takes "-250:-11" for an option; also accept LO:HI forms as values
# (any "-<digit or .>...:..." token is a window value, so "-1.5:1" reaches parse_window's message)
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+\s*:.*$")


def parse_window(text: str, option: str) -> tuple[int, int]:
    """Parse ``LO:HI`` (e.g. ``-250:-11``) into a pair of ints, naming ``option`` on error."""
    match = _WINDOW.match(text or "")
    if not match:
        raise StudyConfigError(
            f"{option} {text!r} is not LO:HI with integer day offsets; e.g. {option}=-250:-11"
        )
    lo, hi = int(match.group(1)), int(match.group(2))
    if hi < lo:
        raise StudyConfigError(f"{option} {text} ends before it starts; write LO:HI with LO <= HI")
    from crackdown.estimation.inputs import MAX_WINDOW_OFFSET

    if max(abs(lo), abs(hi)) > MAX_WINDOW_OFFSET:
        raise StudyConfigError(
            f"{option} {text} reaches beyond {MAX_WINDOW_OFFSET} sessions (about ten years) from "
            "day 0; use offsets within that range")
    return lo, hi


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--window``, ``--estimation`` and ``--fallback`` of the study commands.

    Also lets argparse read ``--window -1:1`` / ``--estimation -250:-11`` as values.
    """
    parser._negative_number_matcher = _NEGATIVE_VALUE  # accept "--window -1:1"
    parser.add_argument("--model", choices=CLI_MODELS, default="market")
    parser.add_argument("--window", metavar="LO:HI", default="-1:1")
    parser.add_argument("--estimation", metavar="LO:HI", default="-250:-11")
    parser.add_argument("--fallback", choices=CLI_MODELS, default="market-adjusted",
                        help="model for listings with too little history (flagged)")


def add_prices_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prices-dir",
        metavar="DIR",
        default=None,
        help="folder of per-ticker CSVs (yfinance layout); default: $CRACKDOWN_PRICES_DIR, "
        "then ../shared/data/prices, then the cache and yfinance",
    )


def add_events_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events-file",
        metavar="FILE",
        default=None,
        help="events table (default: $CRACKDOWN_EVENTS_FILE, then the project's events.csv)",
    )


def add_timing_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timing-policy",
        choices=("span", "same-day", "next-session"),
        default="span",
        help="events without a release time: span (default; Hong Kong day 0 on the date's "
        "session, windows must reach day +1 to span both possible sessions), same-day (released "
        "before the Hong Kong close) or next-session (released after it)",
    )


def split_list(text: str | None, option: str) -> list[str]:
    """Split a comma-separated option value; reject empty items with a message naming the option."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise StudyConfigError(f"{option} {text!r} has an empty item; use e.g. {option} A,B")
    return items


def split_tickers(text: str | None, option: str = "--tickers") -> list[str]:
    """Parse a comma-separated ticker option (``None`` -> ``[]``) with the one ticker check.

    Items are stripped and upper-cased (``baba,9988.hk`` -> ``BABA, 9988.HK``); an empty item, a
    malformed symbol (e.g. ``../../X``) or a ticker given twice is a
    :class:`~crackdown.timeline.tickers.TickerError` naming ``option``
    (:func:`crackdown.timeline.tickers.parse_tickers_option`).
    """
    from crackdown.timeline.tickers import parse_tickers_option

    return parse_tickers_option(text, option)


def print_frame(frame: pd.DataFrame, fmt: str, *, float_digits: int = 6,
                width: int | None = None, keys: Sequence[str] | None = None,
                min_text: int = MIN_TEXT_WIDTH) -> None:
    """Print a DataFrame to stdout as an aligned table, CSV or JSON records.

    ``width`` (table format only): lay the table out with :func:`fit_table` so that no line is
    longer than ``width`` characters (text columns shortened at word boundaries, then the
    columns split into blocks that repeat ``keys``); ``None`` prints pandas' unbounded layout.
    csv and json always carry every column and every character.
    """
    import pandas as pd

    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, float_format=f"%.{max(float_digits, 10)}g")
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=1))
        sys.stdout.write("\n")
    elif frame.empty:
        print("(no rows)")
    elif width is not None:
        print(fit_table(frame, width, keys=keys, float_digits=float_digits, min_text=min_text))
    else:
        with pd.option_context(
            "display.max_rows", None,
            "display.max_columns", None,
            "display.width", 200,
            "display.float_format", lambda v: f"{v:.{float_digits}g}",
        ):
            print(frame.to_string(index=False))


def display_width(text: str) -> int:
    """Terminal columns taken by ``text``: combining marks take 0, East Asian wide characters 2."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def shorten_words(text: str, width: int, *, ellipsis: str = ELLIPSIS) -> str:
    """Shorten ``text`` to at most ``width`` characters, cutting at a word boundary.

    A boundary is a space, or the point after a ``;`` or ``,`` (list separators such as
    ``a;b``). The kept text loses trailing spaces and separators and ends in ``ellipsis``; a
    text without a boundary early enough is cut inside its first word. Text that fits is
    returned unchanged.
    """
    text = str(text)
    if len(text) <= width:
        return text
    room = max(width - len(ellipsis), 0)
    cut = 0
    for i in range(1, room + 1):
        if (i < len(text) and text[i] == " ") or text[i - 1] in ";,":
            cut = i
    if not cut:
        return text[:room] + ellipsis
    return (text[:cut].rstrip(" ;,") or text[:cut]) + ellipsis


def _cell(value: object, float_digits: int) -> str:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{float_digits}g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    return str(value)


def _render_columns(frame: pd.DataFrame, float_digits: int) -> dict[str, tuple[list[str], bool]]:
    """Column -> (cells as text, right-aligned?); numbers and booleans are right-aligned."""
    import pandas as pd

    out = {}
    for col in frame.columns:
        series = frame[col]
        numeric = (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
        cells = [_cell(v, float_digits) for v in series.astype(object)]
        out[str(col)] = (cells, bool(numeric))
    return out


def _budget(header: str, cells: list[str]) -> int:
    """Characters a column may take on a line: its widest display plus its combining marks."""
    texts = [header, *cells]
    return max(display_width(t) for t in texts) + max(len(t) - display_width(t) for t in texts)


def _is_prose(cells: list[str]) -> bool:
    return any(" " in c or ";" in c or "," in c for c in cells)


def _lay_out(columns: dict[str, tuple[list[str], bool]], names: list[str], n_rows: int) -> list[str]:
    widths = {c: max(display_width(t) for t in [c, *columns[c][0]]) for c in names}

    def pad(text: str, col: str) -> str:
        fill = " " * (widths[col] - display_width(text))
        return fill + text if columns[col][1] else text + fill

    lines = [COLUMN_GAP.join(pad(c, c) for c in names).rstrip()]
    for i in range(n_rows):
        lines.append(COLUMN_GAP.join(pad(columns[c][0][i], c) for c in names).rstrip())
    return lines


def fit_table(frame: pd.DataFrame, width: int = TABLE_WIDTH, *,
              keys: Sequence[str] | None = None, float_digits: int = 6,
              min_text: int = MIN_TEXT_WIDTH) -> str:
    """Lay ``frame`` out as a text table whose lines are at most ``width`` characters.

    Numbers (``float_digits`` significant digits) and booleans are right-aligned, text
    left-aligned, columns separated by two spaces; missing values print as ``NaN`` (floats) or
    blank. When the table is wider than ``width``:

    1. text columns whose cells contain words (a space, ``;`` or ``,``) are shortened at word
       boundaries (:func:`shorten_words`, ending in an ellipsis), the widest first, but not
       below ``min_text`` characters or their header;
    2. if it is still too wide, the columns are split into blocks, separated by a blank line,
       each repeating the ``keys`` columns (default: the first column) at its left.

    A line can exceed ``width`` only when the keys and a single other column do not fit.
    Identifiers (cells without spaces or separators) are never shortened. ``--format
    csv|json`` is where the full text goes.
    """
    frame = frame.reset_index(drop=True)
    columns = _render_columns(frame, float_digits)
    names = list(columns)
    n_rows = len(frame)
    gap = len(COLUMN_GAP)

    def total(cols: list[str]) -> int:
        return sum(_budget(c, columns[c][0]) for c in cols) + gap * (len(cols) - 1)

    prose = [c for c in names if not columns[c][1] and _is_prose(columns[c][0])]
    while total(names) > width:
        budgets = {c: _budget(c, columns[c][0]) for c in prose}
        room = {c: b - max(min_text, len(c)) for c, b in budgets.items()}
        candidates = [c for c in prose if room[c] > 0]
        if not candidates:
            break
        col = max(candidates, key=lambda c: budgets[c])
        cap = budgets[col] - min(room[col], total(names) - width)
        cells, right = columns[col]
        columns[col] = ([shorten_words(t, cap) for t in cells], right)
        if _budget(col, columns[col][0]) >= budgets[col]:  # wide characters: cannot gain
            prose.remove(col)
    if total(names) <= width:
        return "\n".join(_lay_out(columns, names, n_rows))
    key_cols = [c for c in (keys if keys is not None else names[:1]) if c in columns]
    rest = [c for c in names if c not in key_cols]
    blocks: list[list[str]] = []
    current: list[str] = []
    for col in rest:
        if current and total(key_cols + current + [col]) > width:
            blocks.append(current)
            current = []
        current.append(col)
    if current:
        blocks.append(current)
    return "\n\n".join("\n".join(_lay_out(columns, key_cols + block, n_rows))
                        for block in blocks)
