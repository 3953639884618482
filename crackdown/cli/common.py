"""Options and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from crackdown.errors import StudyConfigError


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


def print_frame(frame: pd.DataFrame, fmt: str, *, float_digits: int = 6) -> None:
    """Print a DataFrame to stdout as an aligned table, CSV or JSON records."""
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, float_format=f"%.{max(float_digits, 10)}g")
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=1))
        sys.stdout.write("\n")
    elif frame.empty:
        print("(no rows)")
    else:
        with pd.option_context(
            "display.max_rows", None,
            "display.max_columns", None,
            "display.width", 200,
            "display.float_format", lambda v: f"{v:.{float_digits}g}",
        ):
            print(frame.to_string(index=False))
