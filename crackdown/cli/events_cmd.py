"""``crackdown events``: list and validate the events table, optionally with day 0 per exchange.

Examples
--------
``crackdown events``                          validate events.csv and print it as a table
``crackdown events --category antitrust``     only some categories
``crackdown events --day0 --format csv``      add ``day0_XNYS``, ``day0_XHKG``, ``time_assumed``,
                                              ``day0_uncertain``, ``cluster_id``, ``cluster_size``
``crackdown events --day0 --timing-policy next-session``  unknown times after the HK close
``crackdown events --exchanges XNYS,XSHG``    day 0 on other exchanges (implies ``--day0``)

Loading goes through :func:`crackdown.timeline.events.load_events`, so every validation error (file,
line, column, value) is reported on one line and the exit code is non-zero.
"""

from __future__ import annotations

import argparse

import pandas as pd

from crackdown.cli.common import (
    add_events_file_option,
    add_timing_policy_option,
    print_frame,
    split_list,
)
from crackdown.errors import StudyConfigError

DEFAULT_EXCHANGES = ("XNYS", "XHKG")

#: Columns shown by the (narrow) table format; csv/json print every column of the file.
TABLE_COLUMNS = (
    "event_id",
    "date",
    "time_beijing",
    "timing",
    "agency",
    "category",
    "direction",
    "tickers",
    "confidence",
)

#: Widest text cell of the table format (longer cells are shortened with "..."; csv/json are
#: never shortened).
TABLE_CELL_WIDTH = 36


def register(subparsers) -> None:
    """Add the ``events`` sub-command to the CLI parser."""
    parser = subparsers.add_parser(
        "events",
        help="list or validate the events table (optionally with day 0 per exchange)",
        description=(
            "Load and validate the events table, then print it. With --day0, add one column "
            "day0_<MIC> per exchange (first session whose close is strictly after the Beijing "
            "time of the first public information; unknown times follow --timing-policy, "
            "flagged in time_assumed and day0_uncertain) and the event cluster (events sharing "
            "a day 0 and a listing)."
        ),
    )
    add_events_file_option(parser)
    parser.add_argument(
        "--category",
        metavar="CAT[,CAT...]",
        default=None,
        help="keep only these categories (comma-separated)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: table; csv/json print every column)",
    )
    parser.add_argument(
        "--day0",
        action="store_true",
        help="add day0_<MIC> columns and time_assumed",
    )
    parser.add_argument(
        "--exchanges",
        metavar="MIC[,MIC...]",
        default=None,
        help=f"exchanges for --day0 (implies --day0; default {','.join(DEFAULT_EXCHANGES)}; "
        "supported XNYS, XHKG, XSHG, XSHE)",
    )
    add_timing_policy_option(parser)
    parser.set_defaults(func=run)


def _shorten(text: str, width: int = TABLE_CELL_WIDTH) -> str:
    """Shorten a table cell to ``width`` characters, ending in '...' when cut."""
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def build_events_frame(
    events: pd.DataFrame, *, exchanges: list[str] | None, full: bool,
    timing_policy: str = "span", cluster_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the frame to print: event columns (dates as YYYY-MM-DD) plus day-0 columns.

    Parameters
    ----------
    events : pandas.DataFrame
        Output of :func:`crackdown.timeline.events.load_events`.
    exchanges : list of str or None
        Exchanges for ``day0_<MIC>`` columns; ``None`` = no day-0 columns.
    full : bool
        Every file column, unshortened (csv/json), instead of :data:`TABLE_COLUMNS` with long
        ``agency``/``tickers`` cells shortened to :data:`TABLE_CELL_WIDTH` characters.
    timing_policy : str
        Unknown release times (:data:`crackdown.timeline.calendars.TIMING_POLICIES`).
    cluster_events : pandas.DataFrame, optional
        The table clusters are computed on (default ``events``; the whole table when
        ``events`` is a category subset, so cluster ids do not depend on the filter).
    """
    from crackdown.timeline.calendars import day_zero_table
    from crackdown.timeline.clusters import event_clusters

    columns = [c for c in events.columns if c != "ticker_list"] if full else [
        c for c in TABLE_COLUMNS if c in events.columns
    ]
    out = events.loc[:, columns].copy()
    if "date" in out.columns:
        out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    if not full:
        for column in ("agency", "tickers"):
            if column in out.columns:
                out[column] = out[column].map(_shorten)
    if exchanges is None:
        return out.reset_index(drop=True)
    table = day_zero_table(events, exchanges, timing_policy=timing_policy)
    for mic in exchanges:
        day0 = table.loc[table["exchange"] == mic, "day0"].reset_index(drop=True)
        out[f"day0_{mic}"] = day0.dt.strftime("%Y-%m-%d").to_numpy()
    if len(exchanges):
        first = table.loc[table["exchange"] == exchanges[0], "time_assumed"]
        out["time_assumed"] = first.to_numpy(dtype=bool)
        uncertain = table.groupby("event_id", sort=False)["day0_uncertain"].any()
        out["day0_uncertain"] = uncertain.reindex(events["event_id"]).to_numpy(dtype=bool)
    clusters = event_clusters(events if cluster_events is None else cluster_events,
                              timing_policy=timing_policy).set_index("event_id")
    out["cluster_id"] = clusters["cluster_id"].reindex(events["event_id"]).to_numpy()
    out["cluster_size"] = clusters["cluster_size"].reindex(events["event_id"]).to_numpy()
    return out.reset_index(drop=True)


def run(args: argparse.Namespace) -> int:
    """Execute ``crackdown events``; return the exit code (errors raise CrackdownError)."""
    from crackdown import config
    from crackdown.timeline.calendars import get_calendar
    from crackdown.timeline.events import load_events

    # Unknown categories -> StudyConfigError from load_events, listing the valid ones.
    categories = split_list(args.category, "--category") or None
    exchanges: list[str] | None = None
    if args.day0 or args.exchanges is not None:
        exchanges = [m.upper() for m in split_list(args.exchanges, "--exchanges")] or list(
            DEFAULT_EXCHANGES
        )
        if len(set(exchanges)) != len(exchanges):
            raise StudyConfigError(f"--exchanges {args.exchanges!r} repeats an exchange")
        for mic in exchanges:
            get_calendar(mic)  # CalendarError naming the supported exchanges

    events = load_events(args.events_file, categories=categories)
    whole = load_events(args.events_file) if categories else None
    frame = build_events_frame(events, exchanges=exchanges, full=args.format != "table",
                               timing_policy=args.timing_policy, cluster_events=whole)
    if args.format == "table":
        path = config.events_file(args.events_file)
        scope = f" in categories {', '.join(categories)}" if categories else ""
        if frame.empty:
            print(f"no events{scope} in {path} (file is valid)")
            return 0
        print_frame(frame, "table")
        noun = "event" if len(frame) == 1 else "events"
        print(f"{len(frame)} {noun}{scope} in {path} (file is valid)")
    else:
        print_frame(frame, args.format)
    return 0
