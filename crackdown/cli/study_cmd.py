"""``crackdown study``: abnormal returns of one event for a set of listings.

Contract (other people's scripts depend on it; keep it exact)::

    crackdown study EVENT [--tickers T1,T2,...] [--benchmark B]
        [--model constant-mean|market-adjusted|market|ff3|carhart|ff5] [--returns simple|log]
        (--model also takes ff3-asia, ff5-asia, carhart-asia, international,
        scholes-williams, dimson, garch: crackdown.estimation.models)
        [--estimation LO:HI] [--window LO:HI] [--prices-dir DIR] [--events-file FILE]
        [--fallback MODEL] [--format table|csv|json] [--what ar|tests|fit|outcomes]

``EVENT`` is an ``event_id`` of the events table or a Beijing date ``YYYY-MM-DD`` /
``YYYY-MM-DDTHH:MM`` (then ``--tickers`` is required). ``--format csv --what ar`` prints one row
per firm and event-window day starting with the columns
``event_id, ticker, exchange, day0, rel_day, date, ar, car``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings

import pandas as pd

from crackdown.cli.common import (
    add_events_file_option,
    add_prices_dir_option,
    add_timing_policy_option,
    print_frame,
    split_list,
    split_tickers,
)
from crackdown.errors import StudyConfigError

CLI_MODELS = ("constant-mean", "market-adjusted", "market", "ff3", "carhart", "ff5",
              "ff3-asia", "ff5-asia", "carhart-asia", "international", "scholes-williams",
              "dimson", "garch")
WHAT = ("ar", "tests", "fit", "outcomes")
_DATE_EVENT = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?$")
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


def register(subparsers) -> None:
    """Add the ``study`` sub-command."""
    parser = subparsers.add_parser(
        "study",
        help="abnormal returns of one event (market model by default)",
        description="Event study of one event: abnormal returns per listing and event day, "
        "test statistics, model fits or the outcome of each firm-event.",
    )
    parser._negative_number_matcher = _NEGATIVE_VALUE  # accept "--estimation -250:-11"
    parser.add_argument("event", metavar="EVENT",
                        help="event_id from the events table, or a Beijing date YYYY-MM-DD or "
                        "YYYY-MM-DDTHH:MM")
    parser.add_argument("--tickers", metavar="T1,T2,...", default=None,
                        help="listings to study (default: the event's tickers)")
    parser.add_argument("--benchmark", metavar="B", default=None,
                        help="market proxy: one ticker for every listing, or per exchange/ticker "
                        "as XHKG=^HSI,XNYS=SPY (default per listing: SPY for US, HK_NONTECH_EW "
                        "= equal-weighted non-tech Hang Seng constituents for Hong Kong)")
    parser.add_argument("--model", choices=CLI_MODELS, default="market")
    parser.add_argument("--returns", choices=("simple", "log"), default="simple",
                        help="return definition (default simple)")
    parser.add_argument("--estimation", metavar="LO:HI", default="-250:-11",
                        help="estimation window in trading days relative to day 0 (default "
                        "-250:-11)")
    parser.add_argument("--window", metavar="LO:HI", default="-1:1",
                        help="event window in trading days relative to day 0 (default -1:1)")
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    add_timing_policy_option(parser)
    parser.add_argument("--fallback", choices=CLI_MODELS, default=None,
                        help="model for listings with too few estimation days (flagged)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--what", choices=WHAT, default="ar",
                        help="ar (default): abnormal returns; tests: test statistics; fit: "
                        "model fits; outcomes: what happened to each listing")
    parser.add_argument("--min-estimation-obs", metavar="N", type=int, default=100,
                        help="minimum usable estimation days (default 100)")
    parser.add_argument("--clean-estimation", action="store_true",
                        help="drop the firm's other events' windows (all events in the events "
                        "table) from its estimation window")
    parser.add_argument("--placebo", metavar="N", type=int, default=0,
                        help="with --what tests: add a placebo test on N random pseudo dates "
                        "(default 0: none; 199 is a good choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the placebo draw")
    parser.set_defaults(func=run)


def _event_frame(args: argparse.Namespace) -> pd.DataFrame:
    match = _DATE_EVENT.match(args.event)
    if match:
        if args.tickers is None:
            raise StudyConfigError(
                f"EVENT {args.event} is a date: pass the listings with --tickers T1,T2,..."
            )
        try:
            date = pd.Timestamp(match.group(1))
        except ValueError:
            raise StudyConfigError(
                f"EVENT {args.event}: {match.group(1)} is not a valid date; use YYYY-MM-DD or "
                "YYYY-MM-DDTHH:MM (Beijing), or an event_id"
            ) from None
        return pd.DataFrame(
            {
                "event_id": [args.event],
                "date": [date],
                "time_beijing": [match.group(2) or ""],
                "ticker_list": [[]],
            }
        )
    from crackdown.timeline.events import get_event, load_events

    event = get_event(args.event, load_events(args.events_file))
    return pd.DataFrame([event]).reset_index(drop=True)


def _all_events(args: argparse.Namespace) -> pd.DataFrame:
    """The whole events table, whose windows --clean-estimation removes."""
    from crackdown.timeline.events import load_events

    return load_events(args.events_file)


def _stringify_dates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime("%Y-%m-%d").fillna("")
    return frame


def parse_benchmark(value: str | None) -> str | dict[str, str] | None:
    """``--benchmark``: a ticker, or ``KEY=TICKER,...`` (KEY an exchange MIC or a ticker).

    Exchanges not named keep their default (:data:`crackdown.timeline.universe.EXCHANGE_BENCHMARKS`);
    the listings of the universe keep theirs unless named.
    """
    if value is None or "=" not in value:
        return value
    from crackdown.timeline.universe import EXCHANGE_BENCHMARKS

    mapping: dict[str, str] = dict(EXCHANGE_BENCHMARKS)
    for part in split_list(value, "--benchmark"):
        key, sep, ticker = part.partition("=")
        if not sep or not key.strip() or not ticker.strip():
            raise StudyConfigError(
                f"--benchmark {value!r}: write one ticker (SPY) or KEY=TICKER pairs "
                "(XHKG=^HSI,XNYS=SPY)")
        mapping[key.strip()] = ticker.strip()
    return mapping


def run(args: argparse.Namespace) -> int:
    """Run the study and print the requested table."""
    from crackdown.estimation.study import EventStudy

    estimation = parse_window(args.estimation, "--estimation")
    window = parse_window(args.window, "--window")
    if args.placebo and args.what != "tests":
        raise StudyConfigError(f"--placebo {args.placebo} needs --what tests (the placebo is a "
                               "test); add --what tests or drop --placebo")
    if args.placebo < 0:
        raise StudyConfigError(f"--placebo {args.placebo}: give a number of draws >= 0")
    tickers = split_tickers(args.tickers, "--tickers") if args.tickers is not None else None
    events = _event_frame(args)
    with warnings.catch_warnings():
        # tickers without prices become 'no_price_data' outcomes, printed as notes below
        warnings.simplefilter("ignore", UserWarning)
        study = EventStudy.from_events(
            events,
            tickers=tickers,
            benchmark=parse_benchmark(args.benchmark),
            prices_dir=args.prices_dir,
            returns_kind=args.returns,
            model=args.model,
            estimation=estimation,
            window=window,
            fallback=args.fallback,
            min_estimation_obs=args.min_estimation_obs,
            clean_estimation=args.clean_estimation,
            other_events=_all_events(args),  # cleaning (if asked) and confounders
            timing_policy=args.timing_policy,
            history="all" if args.what == "tests" and args.placebo > 0 else None,
        )
    results = study.fit()
    if args.what != "outcomes" and not results.outcomes["included"].any():
        why = "; ".join(f"{r.ticker}: {r.status}" + (f" ({r.detail})" if r.detail else "")
                        for r in results.outcomes.itertuples(index=False))
        raise StudyConfigError(
            f"no listing of {', '.join(dict.fromkeys(results.outcomes['event_id']))} has "
            f"abnormal returns: {why}; see --what outcomes"
            + (", or try --fallback market-adjusted"
               if (results.outcomes["status"] == "insufficient_estimation").any() else ""))
    for row in results.outcomes.itertuples(index=False):
        if row.status != "used":
            print(f"crackdown study: note: {row.event_id} {row.ticker}: {row.status}: {row.detail}",
                  file=sys.stderr)
    if args.what == "ar":
        frame = results.ar
    elif args.what == "tests":
        frame = results.tests()
        clustered = results.clustered_tests(placebo_draws=args.placebo, seed=args.seed)
        for row in clustered.itertuples(index=False):
            note = str(getattr(row, "convention", "") or "")
            if note.startswith("not computed"):  # said on stderr, not only in a table cell
                print(f"crackdown study: note: {row.event_id} {row.test}: {note}",
                      file=sys.stderr)
        if len(clustered):
            frame = pd.concat([frame, clustered], ignore_index=True)
    elif args.what == "fit":
        frame = results.fits
    else:
        frame = results.outcomes
    print_frame(_stringify_dates(frame), args.format)
    return 0
