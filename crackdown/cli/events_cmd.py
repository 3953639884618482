"""``crackdown events``: list and validate the events table, optionally with day 0 per exchange.

Examples
--------
``crackdown events``                          validate events.csv and print it as a table
``crackdown events --category antitrust``     only some categories
``crackdown events --day0 --format csv``      add ``day0_XNYS``, ``day0_XHKG``, ``time_assumed``,
                                              ``day0_uncertain``, ``cluster_id``, ``cluster_size``
``crackdown events --day0 --timing-policy next-session``  unknown times after the HK close
``crackdown events --exchanges XNYS,XSHG``    day 0 on other exchanges (implies ``--day0``)
``crackdown events --coverage``               which events have prices for which listings
``crackdown events --coverage --tickers BABA,9988.HK --estimation -120:-11 --format csv``

Coverage (``--coverage``; contract of ``--format csv|json``, columns :data:`COVERAGE_COLUMNS`)
---------------------------------------------------------------------------------------------
Before running a study: one row per (event, listing), the listings being the event's own
tickers (or ``--tickers``, checked at every event), saying whether the current price source
(read offline as in ``crackdown tickers``, :func:`crackdown.cli.tickers_cmd.coverage_table`,
never yfinance) has a valid price on every session that ``crackdown study`` with the same
``--estimation``/``--window`` (defaults ``-250:-11`` and ``-1:1``) and ``--timing-policy``
needs, on the listing's own exchange calendar:

``event_id, ticker, exchange, day0``
    The listing's day 0 (:func:`crackdown.timeline.calendars.day_zero_table`).
``need_start, need_end``
    First and last session whose price is needed: from the session before the first day of
    the estimation and event windows (its close gives that day its return) to the last day.
``n_sessions``
    Sessions from ``need_start`` to ``need_end``, inclusive.
``source, first_date, last_date``
    As in ``crackdown tickers`` (``folder`` or ``cache``; first and last priced row).
``n_missing``, ``n_missing_event``
    Needed sessions without a valid price (no row, blank, placeholder, invalid or suspect
    price, or outside the file's span), in all and within the event window's span (the
    session before its first day to its last day).
``covered``
    ``True`` when ``n_missing == 0`` (``status == "ok"``).
``status``
    One of :data:`COVERAGE_STATUSES`: ``ok``; ``no_price_file`` (neither folder nor cache has
    the ticker); ``unreadable``; ``no_prices`` (a file without a valid price); ``starts_after``
    (the first valid price is after ``need_start``); ``ends_before`` (the last valid price is
    before ``need_end``); ``gaps`` (inside the file's span, ``n_missing`` sessions lack a
    price); ``no_calendar`` (the needed sessions are outside the exchange calendar).
``why``
    What is missing, ``;``-separated (empty when covered): ``no price file``, ``unreadable
    file (see stderr)``, ``no valid price``, ``prices start YYYY-MM-DD`` (after
    ``need_start``), ``prices end YYYY-MM-DD`` (before ``need_end``), ``K gap session(s)``
    (inside the file's span), ``K missing in the event window``; or the calendar's message.

Only the listings' own prices are checked, not their market proxies (``SPY``, the non-tech
Hong Kong constituents) or factor files. An event that names no listing has no row (the table
summary counts it; pass ``--tickers``).

Loading goes through :func:`crackdown.timeline.events.load_events`, so every validation error (file,
line, column, value) is reported on one line and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from crackdown.cli.common import (
    _NEGATIVE_VALUE,
    TABLE_WIDTH,
    add_events_file_option,
    add_prices_dir_option,
    add_timing_policy_option,
    parse_window,
    print_frame,
    split_list,
    split_tickers,
)
from crackdown.errors import CrackdownError, PriceDataError, StudyConfigError

if TYPE_CHECKING:  # pandas is imported inside the functions (fast CLI start-up)
    import pandas as pd

DEFAULT_EXCHANGES = ("XNYS", "XHKG")

#: Columns of ``crackdown events --coverage --format csv|json`` (module docstring).
COVERAGE_COLUMNS = ("event_id", "ticker", "exchange", "day0", "need_start", "need_end",
                    "n_sessions", "source", "first_date", "last_date", "n_missing",
                    "n_missing_event", "covered", "status", "why")

#: Values of the coverage ``status`` column.
COVERAGE_STATUSES = ("ok", "gaps", "starts_after", "ends_before", "no_prices", "no_price_file",
                     "unreadable", "no_calendar")

#: Columns of the coverage table format (per event; csv/json print :data:`COVERAGE_COLUMNS`).
COVERAGE_TABLE_COLUMNS = ("ticker", "exchange", "day0", "needed", "missing", "covered", "why")

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
        help="list or validate the events table (optionally with day 0 per exchange, or "
        "with --coverage the price coverage of each event's listings)",
        description=(
            "Load and validate the events table, then print it. With --day0, add one column "
            "day0_<MIC> per exchange (first session whose close is strictly after the Beijing "
            "time of the first public information; unknown times follow --timing-policy, "
            "flagged in time_assumed and day0_uncertain) and the event cluster (events sharing "
            "a day 0 and a listing). With --coverage, instead: one row per (event, listing) "
            "saying whether the current price source (read offline) has a price on every "
            "session of the estimation and event windows around the listing's day 0, and if "
            "not why (no file, starts after, ends before, gaps)."
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
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="instead of the events: one row per (event, listing) saying whether the price "
        "source covers the estimation and event windows around the listing's day 0",
    )
    parser.add_argument("--tickers", metavar="T1,T2,...", default=None,
                        help="with --coverage: check these listings at every event (default: "
                        "each event's own tickers)")
    parser.add_argument("--estimation", metavar="LO:HI", default="-250:-11",
                        help="with --coverage: estimation window as in crackdown study "
                        "(default -250:-11)")
    parser.add_argument("--window", metavar="LO:HI", default="-1:1",
                        help="with --coverage: event window as in crackdown study (default -1:1)")
    add_prices_dir_option(parser)
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="with --coverage: cache root consulted for tickers absent from "
                        "the folder (as in crackdown tickers)")

    parser._negative_number_matcher = _NEGATIVE_VALUE  # accept "--estimation -250:-11"
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
    import pandas as pd

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


def _listings(events: pd.DataFrame, tickers: list[str] | None) -> list[tuple[str, str]]:
    """(event_id, ticker) pairs in event order: ``tickers`` at every event, else its own."""
    pairs = []
    for event_id, own in zip(events["event_id"], events["ticker_list"]):
        for ticker in (tickers if tickers is not None else list(own)):
            pairs.append((str(event_id), str(ticker)))
    return list(dict.fromkeys(pairs))


def _valid_sessions(prices: pd.DataFrame) -> dict[str, pd.Series]:
    """Ticker -> price on its exchange sessions (NaN = no valid price), first..last valid."""
    import pandas as pd

    from crackdown.marketdata.returns import align_to_calendar

    out = {}
    for ticker in dict.fromkeys(prices["ticker"]):
        part = prices.loc[prices["ticker"] == ticker].sort_values("date")
        aligned = align_to_calendar(str(ticker), part)
        out[str(ticker)] = pd.Series(aligned.price, index=aligned.sessions, dtype=float)
    return out


def _coverage_row(price: pd.Series | None, file_status: str, exchange: str, day0: pd.Timestamp,
                  span: tuple[int, int], event_span: tuple[int, int]) -> dict[str, object]:
    """n_sessions, need_start/end, n_missing(_event), status and why of one (event, listing)."""
    from crackdown.timeline.calendars import relative_sessions

    try:
        needed = relative_sessions(exchange, day0, *span)
        event_days = relative_sessions(exchange, day0, *event_span)
    except CrackdownError as exc:
        return {"n_sessions": None, "need_start": None, "need_end": None, "n_missing": None,
                "n_missing_event": None, "status": "no_calendar", "why": " ".join(str(exc).split())}
    row: dict[str, object] = {"n_sessions": len(needed), "need_start": needed[0],
                              "need_end": needed[-1]}
    if price is None or not len(price):
        row.update(n_missing=len(needed), n_missing_event=len(event_days))
        row["status"] = file_status if file_status in ("no_price_file", "unreadable") \
            else "no_prices"
        row["why"] = {"no_price_file": "no price file",
                      "unreadable": "unreadable file (see stderr)"}.get(row["status"],
                                                                         "no valid price")
        return row
    have = price.reindex(needed).notna()
    row["n_missing"] = int((~have).sum())
    row["n_missing_event"] = int((~price.reindex(event_days).notna()).sum())
    first, last = price.index[0], price.index[-1]
    before = int((needed < first).sum())
    after = int((needed > last).sum())
    inside = row["n_missing"] - before - after
    reasons = []
    if before:
        reasons.append(f"prices start {first:%Y-%m-%d}")
    if after:
        reasons.append(f"prices end {last:%Y-%m-%d}")
    if inside:
        reasons.append(f"{inside} gap session(s)")
    if row["n_missing_event"]:
        reasons.append(f"{row['n_missing_event']} missing in the event window")
    row["status"] = ("starts_after" if before else "ends_before" if after
                     else "gaps" if inside else "ok")
    row["why"] = "; ".join(reasons)
    return row


def coverage_frame(
    events: pd.DataFrame,
    *,
    tickers: list[str] | None = None,
    estimation: tuple[int, int] = (-250, -11),
    window: tuple[int, int] = (-1, 1),
    timing_policy: str = "span",
    prices_dir: str | None = None,
    cache_dir: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Price coverage of each (event, listing): columns :data:`COVERAGE_COLUMNS`.

    Parameters
    ----------
    events : pandas.DataFrame
        Output of :func:`crackdown.timeline.events.load_events`.
    tickers : list of str, optional
        Listings checked at every event (default: each event's ``ticker_list``).
    estimation, window : (int, int)
        Estimation and event windows in sessions relative to day 0, as in ``crackdown study``.
        The needed prices run from session ``min(estimation[0], window[0]) - 1`` to
        ``max(estimation[1], window[1])``; the event window's from ``window[0] - 1`` to
        ``window[1]``.
    timing_policy : str
        Unknown release times (:data:`crackdown.timeline.calendars.TIMING_POLICIES`).
    prices_dir, cache_dir : str, optional
        Price source, as :func:`crackdown.cli.tickers_cmd.coverage_table` (read offline).

    Returns
    -------
    (frame, unreadable)
        One row per (event, listing) in event order (module docstring), and the tickers whose
        file exists but could not be read, with the reason.

    Raises
    ------
    PriceDataError
        The prices folder of ``prices_dir`` / ``$CRACKDOWN_PRICES_DIR`` does not exist.
    """
    import warnings

    import pandas as pd

    from crackdown.cli.tickers_cmd import coverage_table
    from crackdown.marketdata.prices import load_prices
    from crackdown.timeline.calendars import day_zero_table
    from crackdown.timeline.universe import exchange_for_ticker

    pairs = _listings(events, tickers)
    listed = list(dict.fromkeys(t for _, t in pairs))
    exchange = {t: exchange_for_ticker(t) for t in listed}
    files, unreadable = coverage_table(listed, prices_dir=prices_dir, cache_dir=cache_dir)
    files = files.set_index("ticker")
    found = [t for t in listed if files.loc[t, "status"] not in ("no_price_file", "unreadable")]
    valid: dict[str, pd.Series] = {}
    if found:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prices = load_prices(found, prices_dir=prices_dir, cache_dir=cache_dir,
                                 offline=True, on_missing="report")
        if len(prices):
            valid = _valid_sessions(prices)
    mics = list(dict.fromkeys(exchange.values()))
    day0 = (day_zero_table(events, mics, timing_policy=timing_policy)
            .set_index(["event_id", "exchange"])["day0"] if mics else pd.Series(dtype=object))
    span = (min(estimation[0], window[0]) - 1, max(estimation[1], window[1]))
    event_span = (window[0] - 1, window[1])
    rows = []
    for event_id, ticker in pairs:
        mic = exchange[ticker]
        d0 = pd.Timestamp(day0.loc[(event_id, mic)])
        row = {"event_id": event_id, "ticker": ticker, "exchange": mic, "day0": d0,
               "source": files.loc[ticker, "source"],
               "first_date": files.loc[ticker, "first_date"],
               "last_date": files.loc[ticker, "last_date"]}
        row.update(_coverage_row(valid.get(ticker), str(files.loc[ticker, "status"]), mic, d0,
                                 span, event_span))
        row["covered"] = row["status"] == "ok"
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(COVERAGE_COLUMNS))
    for col in ("day0", "need_start", "need_end"):
        out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d").where(out[col].notna(), None)
    for col in ("n_sessions", "n_missing", "n_missing_event"):
        out[col] = out[col].astype("Int64")
    out["covered"] = out["covered"].astype(bool)
    return out, unreadable


def _print_coverage_table(frame: pd.DataFrame, events: pd.DataFrame, where: str) -> None:
    """Per event: a header line, then its listings (:data:`COVERAGE_TABLE_COLUMNS`)."""
    import pandas as pd

    shown = frame.assign(
        needed=frame["need_start"].fillna("") + ".." + frame["need_end"].fillna(""),
        missing=frame["n_missing"],
        covered=frame["covered"].map({True: "yes", False: "no"}),
    )
    for event in events.itertuples(index=False):
        part = shown.loc[shown["event_id"] == event.event_id]
        if part.empty:
            continue
        n_ok = int(part["covered"].eq("yes").sum())
        time = f" {event.time_beijing}" if event.time_beijing else ""
        print(f"{event.event_id} ({pd.Timestamp(event.date):%Y-%m-%d}{time} Beijing): "
              f"{n_ok} of {len(part)} listing(s) covered")
        table = _fit_indented(part.loc[:, list(COVERAGE_TABLE_COLUMNS)])
        print(table)
        print()
    n_events = events["event_id"].nunique()
    bare = n_events - frame["event_id"].nunique()
    n_ok = int(frame["covered"].sum())
    full = int(frame.groupby("event_id")["covered"].all().sum()) if len(frame) else 0
    print(f"{n_ok} of {len(frame)} (event, listing) pairs covered; {full} of {n_events} events "
          f"fully covered" + (f"; {bare} name no listing (pass --tickers)" if bare else ""))
    print(where)


def _fit_indented(frame: pd.DataFrame, indent: str = "  ") -> str:
    from crackdown.cli.common import fit_table

    text = fit_table(frame, TABLE_WIDTH - len(indent), keys=("ticker",))
    return "\n".join(indent + line if line else line for line in text.splitlines())


def _run_coverage(args: argparse.Namespace, events: pd.DataFrame) -> int:
    import sys

    from crackdown import config

    if args.day0 or args.exchanges is not None:
        raise StudyConfigError("--coverage prints each listing's day 0 itself; drop --day0 and "
                               "--exchanges")
    estimation = parse_window(args.estimation, "--estimation")
    window = parse_window(args.window, "--window")
    tickers = split_tickers(args.tickers, "--tickers") if args.tickers is not None else None
    folder = config.prices_dir(args.prices_dir)
    if folder is not None and not folder.is_dir():
        origin = "--prices-dir" if args.prices_dir is not None else "CRACKDOWN_PRICES_DIR"
        raise PriceDataError(f"prices folder {folder} ({origin}) does not exist; point it at a "
                             "folder of <TICKER>.csv files")
    frame, unreadable = coverage_frame(events, tickers=tickers, estimation=estimation,
                                       window=window, timing_policy=args.timing_policy,
                                       prices_dir=args.prices_dir, cache_dir=args.cache_dir)
    for ticker, message in unreadable.items():
        print(f"crackdown events: warning: {ticker}: {' '.join(message.split())}",
              file=sys.stderr)
    if args.format != "table":
        print_frame(frame, args.format)
        return 0
    where = f"prices from {folder if folder is not None else 'the cache'}"
    _print_coverage_table(frame, events, where)
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute ``crackdown events``; return the exit code (errors raise CrackdownError)."""
    from crackdown import config
    from crackdown.timeline.calendars import get_calendar
    from crackdown.timeline.events import load_events

    # Unknown categories -> StudyConfigError from load_events, listing the valid ones.
    categories = split_list(args.category, "--category") or None
    if args.coverage:
        return _run_coverage(args, load_events(args.events_file, categories=categories))
    for option in ("tickers", "estimation", "window", "prices_dir", "cache_dir"):
        default = {"estimation": "-250:-11", "window": "-1:1"}.get(option)
        if getattr(args, option) != default:
            raise StudyConfigError(f"--{option.replace('_', '-')} needs --coverage; add "
                                   "--coverage or drop it")
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
