"""``crackdown study``: abnormal returns of one event for a set of listings.

Contract (other people's scripts depend on it; keep it exact)::

    crackdown study EVENT [--tickers T1,T2,...] [--benchmark B]
        [--model constant-mean|market-adjusted|market|ff3|carhart|ff5] [--returns simple|log]
        (--model also takes ff3-asia, ff5-asia, carhart-asia, international,
        scholes-williams, dimson, garch: crackdown.estimation.models)
        [--estimation LO:HI] [--window LO:HI] [--prices-dir DIR] [--events-file FILE]
        [--fallback MODEL] [--format table|csv|json]
        [--what ar|car|bhar|tests|fit|outcomes] [--verbose]

``EVENT`` is an ``event_id`` of the events table or a Beijing date ``YYYY-MM-DD`` /
``YYYY-MM-DDTHH:MM`` (then ``--tickers`` is required). ``--format csv --what ar`` prints one row
per firm and event-window day starting with the columns
``event_id, ticker, exchange, day0, rel_day, date, ar, car``.
``--format csv --what car`` prints one row per firm-event with the columns
``event_id, ticker, exchange, day0, model, lo, hi, car, se, t, df, pvalue, n_days, flagged``
(:meth:`~crackdown.estimation.results.EventStudyResults.car` over the whole ``--window``:
``CAR = sum AR_t``, ``se = sqrt(Var(CAR))`` from the forecast-error variance, ``t = CAR/se``,
two-sided ``pvalue`` from Student t with ``df`` = the fit's residual degrees of freedom).
``--format csv --what bhar`` prints one row per firm-event with the columns
``event_id, ticker, exchange, day0, model, lo, hi, bhr, bhr_normal, bhar``
(:meth:`~crackdown.estimation.results.EventStudyResults.bhar`: ``bhr = prod(1 + r_t) - 1``,
``bhr_normal = prod(1 + q_t) - 1`` with ``q_t = r_t - AR_t`` the model's normal return,
``bhar = bhr - bhr_normal``; log returns compound as ``exp(sum r) - 1``).

The table format (the default) is for reading in a 100-column terminal: columns that are the
same on every row (``event_id``, ``model``, the window) move to a header line, each ``--what``
shows its main columns (:data:`TABLE_COLUMNS`), long text is shortened at word boundaries and
a table still too wide is split into blocks that repeat the first column
(:func:`crackdown.cli.common.fit_table`). ``--verbose`` prints every column in full, and
``--format csv|json`` always carries every column and every character (e.g. the ``convention``
text of each test).
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from typing import TYPE_CHECKING

from crackdown.cli.common import (
    _NEGATIVE_VALUE,
    CLI_MODELS,
    TABLE_WIDTH,
    add_events_file_option,
    add_prices_dir_option,
    add_timing_policy_option,
    parse_window,
    print_frame,
    split_list,
    split_tickers,
)
from crackdown.errors import StudyConfigError

if TYPE_CHECKING:  # pandas is imported inside the functions (fast CLI start-up)
    import pandas as pd

WHAT = ("ar", "car", "bhar", "tests", "fit", "outcomes")

#: Columns of the table format per ``--what`` (without ``--verbose``), in order; ``fit`` also
#: shows the model's other loadings (``b_<regressor>`` beyond alpha and beta). csv/json and
#: ``--verbose`` print every column.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "ar": ("ticker", "exchange", "rel_day", "date", "ar", "car", "ret", "normal_ret", "flagged"),
    "car": ("ticker", "exchange", "day0", "car", "se", "t", "df", "pvalue", "n_days", "flagged"),
    "bhar": ("ticker", "exchange", "day0", "bhr", "bhr_normal", "bhar"),
    "tests": ("test", "estimate", "statistic", "pvalue", "df", "n", "robust_to"),
    "fit": ("ticker", "exchange", "benchmark", "alpha", "beta", "sigma", "n_obs", "r2",
            "est_start", "est_end"),
    "outcomes": ("ticker", "exchange", "day0", "status", "n_estimation_obs", "timing",
                 "confounded_by", "detail"),
}

#: Significant digits of the table format (csv carries 10, json 8 or more).
TABLE_DIGITS = 4

#: Columns printed once above the table (table format) when every row has the same value.
HEADER_COLUMNS = ("event_id", "model", "window_lo", "window_hi", "lo", "hi")

#: ``b_<regressor>`` columns of ``--what fit`` already shown as ``alpha`` / ``beta``.
_FIT_DUPLICATES = ("b_const", "b_market", "b_mkt_rf")
_DATE_EVENT = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?$")
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
                        help="ar (default): abnormal returns per day; car: CAR per listing over "
                        "--window with se, t, p; bhar: buy-and-hold abnormal return per "
                        "listing; tests: test statistics; fit: model fits; outcomes: what "
                        "happened to each listing")
    parser.add_argument("--verbose", action="store_true",
                        help="table format: every column in full (e.g. each test's convention "
                        "text), however wide; csv/json always carry everything")
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


def _event_frame(args: argparse.Namespace, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The one-row events frame of ``EVENT`` (an id of ``table``, loaded if None, or a date)."""
    import pandas as pd

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
    from crackdown.timeline.events import get_event

    event = get_event(args.event, _all_events(args) if table is None else table)
    return pd.DataFrame([event]).reset_index(drop=True)


def _all_events(args: argparse.Namespace) -> pd.DataFrame:
    """The whole events table, whose windows --clean-estimation removes."""
    from crackdown.timeline.events import load_events

    return load_events(args.events_file)


def _stringify_dates(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

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
    import pandas as pd

    from crackdown.estimation.study import EventStudy

    estimation = parse_window(args.estimation, "--estimation")
    window = parse_window(args.window, "--window")
    if args.placebo and args.what != "tests":
        raise StudyConfigError(f"--placebo {args.placebo} needs --what tests (the placebo is a "
                               "test); add --what tests or drop --placebo")
    if args.placebo < 0:
        raise StudyConfigError(f"--placebo {args.placebo}: give a number of draws >= 0")
    tickers = split_tickers(args.tickers, "--tickers") if args.tickers is not None else None
    # an event id: the events table is read (and validated) once, for the event and the others
    table = None if _DATE_EVENT.match(args.event) else _all_events(args)
    events = _event_frame(args, table)
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
            other_events=_all_events(args) if table is None else table,  # cleaning, confounders
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
    elif args.what == "car":
        frame = results.car()
    elif args.what == "bhar":
        frame = results.bhar()
    elif args.what == "tests":
        frame = results.tests()
        clustered = results.clustered_tests(placebo_draws=args.placebo, seed=args.seed)
        if len(clustered):
            frame = pd.concat([frame, clustered], ignore_index=True)
        for row in frame.itertuples(index=False):
            note = str(getattr(row, "convention", "") or "")
            if note.startswith("not computed"):  # said on stderr, not only in a table cell
                where = getattr(row, "exchange", None)
                where = f" ({where})" if isinstance(where, str) and where not in ("", "all") else ""
                print(f"crackdown study: note: {row.event_id} {row.test}{where}: {note}",
                      file=sys.stderr)
    elif args.what == "fit":
        frame = results.fits
    else:
        frame = results.outcomes
    frame = _stringify_dates(frame)
    if args.format != "table" or args.verbose:
        print_frame(frame, args.format)
        return 0
    header, shown = table_view(frame, args.what)
    if header:
        print(header)
    print_frame(shown, "table", width=TABLE_WIDTH, float_digits=TABLE_DIGITS)
    hidden = [c for c in frame.columns if c not in shown.columns and c not in HEADER_COLUMNS]
    if hidden:
        print(f"({len(hidden)} more column(s) and the full text: --verbose or --format csv|json)")
    return 0


def table_view(frame: pd.DataFrame, what: str) -> tuple[str, pd.DataFrame]:
    """The table format of ``--what``: a header line and the columns to show.

    Columns of :data:`HEADER_COLUMNS` with one value on every row move to the header line
    (``event_id: ...; model: ...; window: LO..HI``); the others shown are
    :data:`TABLE_COLUMNS` ``[what]`` (plus a ``fit``'s own loadings) that have a value on some
    row (an all-empty ``detail`` is left out). In ``tests``, a row
    computed per exchange (``sur_caar``) names it in the ``test`` cell: ``sur_caar (XHKG)``.
    """
    import pandas as pd

    parts = []
    constant = {c for c in HEADER_COLUMNS
                if c in frame.columns and len(frame) and frame[c].nunique(dropna=False) == 1}
    for lo, hi in (("window_lo", "window_hi"), ("lo", "hi")):
        if not {lo, hi} <= constant:  # a window moves to the header whole or not at all
            constant -= {lo, hi}
    if "event_id" in constant:
        parts.append(f"event_id: {frame['event_id'].iloc[0]}")
    if "model" in constant:
        parts.append(f"model: {frame['model'].iloc[0]}")
    for lo, hi in (("window_lo", "window_hi"), ("lo", "hi")):
        if lo in constant:
            parts.append(f"window: {int(frame[lo].iloc[0])}..{int(frame[hi].iloc[0])}")
    columns = list(TABLE_COLUMNS[what])
    if what == "fit":
        columns[5:5] = [c for c in frame.columns
                        if str(c).startswith("b_") and c not in _FIT_DUPLICATES]
    keep = [c for c in HEADER_COLUMNS if c in frame.columns and c not in constant]
    columns = [c for c in [*columns[:1], *keep, *columns[1:]] if c in frame.columns
               and not frame[c].map(lambda v: v == "" or bool(pd.isna(v))).all()]
    shown = frame.loc[:, columns].copy()
    if what == "tests" and "exchange" in frame.columns:
        per_exchange = frame["exchange"].map(lambda x: isinstance(x, str) and x not in ("", "all"))
        shown.loc[per_exchange, "test"] = (shown.loc[per_exchange, "test"] + " ("
                                           + frame.loc[per_exchange, "exchange"] + ")")
    return "; ".join(parts) if parts else "", shown
