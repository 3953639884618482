"""``crackdown tickers``: the study universe with each ticker's price coverage.

    crackdown tickers [--sector S1,S2] [--industry I1,I2] [--role R1,R2] [--exchange MIC,...]
        [--prices-dir DIR] [--cache-dir DIR] [--no-coverage] [--format table|csv|json]

Lists ``crackdown/timeline/universe.csv`` (:func:`crackdown.timeline.universe.load_universe`),
one row per listing in file order, with what the current price source holds for it. Prices are
read offline (:func:`crackdown.marketdata.prices.load_prices`: the folder of ``--prices-dir`` /
``$CRACKDOWN_PRICES_DIR`` / ``../shared/data/prices``, then the verified cache; yfinance is never
called) and the coverage comes from :func:`crackdown.marketdata.quality.quality_report` on the
ticker's own exchange calendar, so this command and ``crackdown data check`` always agree.

Filters
-------
``--sector``, ``--industry``, ``--role`` and ``--exchange`` take comma-separated values matched
case-insensitively and exactly (no substrings) against the universe columns ``sector``,
``industry``, ``role`` and ``exchange``; a row is kept when it matches any value of an option
and every option given. An unknown value is an error naming the option and listing the valid
values. Funds and indices have an empty sector: select them with ``--role etf,index``.

Output columns (contract of ``--format csv|json``; stable, in this order)
--------------------------------------------------------------------------
``ticker, company, exchange, currency, sector, industry, role, cross_listing, listed,
benchmark``
    Copied from the universe table ('' = not applicable / not recorded).
``source``
    Where the prices came from: ``folder`` or ``cache``; empty without prices or with
    ``--no-coverage``.
``first_date``, ``last_date``
    First and last dated row with a price cell (``YYYY-MM-DD``; empty / JSON ``null`` without
    prices); as in ``crackdown data check``, a placeholder row counts here.
``n_sessions``
    Exchange sessions from the first to the last *valid* price, inclusive (placeholder rows at
    either end are not valid prices, so they lie outside this span).
``n_missing_sessions``
    Sessions of that span without a valid price: no row, a blank price, or a placeholder row.
``n_placeholder``
    Placeholder rows of the file: full sessions with Volume 0 and Open = High = Low = Close
    (Yahoo's rows for days without trades, or suspensions); half-day sessions with Volume 0
    are real prices and are not counted. Those inside the span are also counted in
    ``n_missing_sessions``; those at either end are not (e.g. an ETF whose first two rows are
    placeholders has ``n_placeholder`` 2 more than its placeholder gaps).
``status``
    One of :data:`STATUSES`: ``ok`` (no missing session, no date off the calendar), ``gaps``
    (``n_missing_sessions > 0``), ``extra_dates`` (no gap, but priced dates that are not
    sessions of the exchange, see ``crackdown data check``), ``no_prices`` (the file has no
    valid price), ``no_price_file`` (neither the folder nor the cache has the ticker),
    ``unreadable`` (a file exists but cannot be read; the reason goes to stderr),
    ``not_checked`` (``--no-coverage``).

The count columns are empty (JSON ``null``) when there is no coverage to count. A universe ticker
without prices is always listed (status ``no_price_file``), never dropped. The table format
shows the main columns and a one-line summary; csv/json print exactly :data:`TICKERS_COLUMNS`.

Examples
--------
``crackdown tickers --role platform,rival``
``crackdown tickers --sector financials --exchange XHKG --format csv``
``crackdown tickers --no-coverage --format json``
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TYPE_CHECKING

from crackdown import config
from crackdown.cli.common import add_prices_dir_option, print_frame, split_list
from crackdown.errors import PriceDataError, StudyConfigError

if TYPE_CHECKING:  # pandas is imported inside the functions (fast CLI start-up)
    import pandas as pd

#: Universe columns copied to the output, in order.
UNIVERSE_OUTPUT_COLUMNS = ("ticker", "company", "exchange", "currency", "sector", "industry",
                           "role", "cross_listing", "listed", "benchmark")

#: Coverage columns, in order (see the module docstring).
COVERAGE_COLUMNS = ("source", "first_date", "last_date", "n_sessions", "n_missing_sessions",
                    "n_placeholder", "status")

#: Columns of ``crackdown tickers --format csv|json``.
TICKERS_COLUMNS = UNIVERSE_OUTPUT_COLUMNS + COVERAGE_COLUMNS

#: Values of the ``status`` column.
STATUSES = ("ok", "gaps", "extra_dates", "no_prices", "no_price_file", "unreadable",
            "not_checked")

#: Columns shown by the table format.
TABLE_COLUMNS = ("ticker", "company", "exchange", "role", "sector", "source", "first_date",
                 "last_date", "n_sessions", "n_missing_sessions", "n_placeholder", "status")

#: Widest company cell of the table format (csv/json are never shortened).
TABLE_CELL_WIDTH = 30

#: Filter option -> universe column.
FILTERS = {"--sector": "sector", "--industry": "industry", "--role": "role",
           "--exchange": "exchange"}

_COUNT_COLUMNS = ("n_sessions", "n_missing_sessions", "n_placeholder")


def register(subparsers) -> None:
    """Add the ``tickers`` sub-command."""
    parser = subparsers.add_parser(
        "tickers",
        help="list the study universe with each ticker's price coverage",
        description="List crackdown/timeline/universe.csv, one row per listing, with the first "
        "and last priced date, the exchange sessions in between, the missing ones (no row, "
        "blank price or Yahoo placeholder row) and a status, read offline from the current "
        "price source. Filters match case-insensitively; values are comma-separated.",
    )
    parser.add_argument("--sector", metavar="S1,S2", default=None,
                        help="GICS sectors, e.g. 'Financials,Real Estate'")
    parser.add_argument("--industry", metavar="I1,I2", default=None,
                        help="industries as written in the universe, e.g. e-commerce,banking")
    parser.add_argument("--role", metavar="R1,R2", default=None,
                        help="roles, e.g. platform,rival,ev,benchmark_constituent,index,etf")
    parser.add_argument("--exchange", metavar="MIC,...", default=None,
                        help="calendar MICs, e.g. XNYS,XHKG")
    add_prices_dir_option(parser)
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="cache root consulted for tickers absent from the folder "
                        "(default: $CRACKDOWN_CACHE_DIR, data/cache in a checkout, else the "
                        "per-user cache folder)")
    parser.add_argument("--no-coverage", action="store_true",
                        help="skip reading prices (coverage columns empty, status not_checked)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format (default: table; csv/json print every column)")
    parser.set_defaults(func=run)


def filter_universe(universe: pd.DataFrame, option: str, text: str | None) -> pd.DataFrame:
    """Keep the rows whose column of ``option`` (:data:`FILTERS`) equals one of the values.

    Parameters
    ----------
    universe
        Universe table (:func:`crackdown.timeline.universe.load_universe`) or a subset of it.
    option
        ``--sector``, ``--industry``, ``--role`` or ``--exchange``.
    text
        Comma-separated values (``None`` keeps every row); matched case-insensitively and
        exactly.

    Raises
    ------
    StudyConfigError
        An empty item, or a value that no row of the full universe has (the message names the
        option and lists the valid values).
    """
    from crackdown.timeline.universe import load_universe

    values = split_list(text, option)
    if not values:
        return universe
    column = FILTERS[option]
    valid = sorted({v for v in load_universe()[column] if v}, key=str.casefold)
    lookup = {v.casefold(): v for v in valid}
    unknown = [v for v in values if v.casefold() not in lookup]
    if unknown:
        raise StudyConfigError(
            f"{option} {', '.join(unknown)}: unknown {column}; valid values: "
            f"{', '.join(valid)}"
        )
    wanted = {lookup[v.casefold()] for v in values}
    return universe.loc[universe[column].isin(wanted)]


def _status(row: pd.Series) -> str:
    import pandas as pd

    if row["n_sessions"] == 0 or pd.isna(row["first_date"]):
        return "no_prices"
    if row["n_missing_sessions"] > 0:
        return "gaps"
    if row["n_extra_dates"] > 0 or row["n_outside_calendar"] > 0:
        return "extra_dates"
    return "ok"


def coverage_table(
    tickers: list[str],
    *,
    prices_dir: str | None = None,
    cache_dir: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Coverage columns (:data:`COVERAGE_COLUMNS`) of ``tickers`` in the current price source.

    Returns
    -------
    (table, unreadable)
        ``table`` has one row per ticker (given order) with a ``ticker`` column and the
        coverage columns; ``unreadable`` maps each ticker whose folder file exists but could
        not be read to the reason.

    Raises
    ------
    PriceDataError
        The prices folder named by ``prices_dir`` / ``$CRACKDOWN_PRICES_DIR`` does not exist.
    """
    import pandas as pd

    from crackdown.marketdata.price_files import folder_file
    from crackdown.marketdata.prices import load_prices
    from crackdown.marketdata.quality import quality_report

    folder = config.prices_dir(prices_dir)
    if folder is not None and not folder.is_dir():
        origin = "--prices-dir" if prices_dir is not None else "CRACKDOWN_PRICES_DIR"
        raise PriceDataError(
            f"prices folder {folder} ({origin}) does not exist; point it at a folder of "
            f"<TICKER>.csv files, or pass --no-coverage to list the universe only"
        )
    out = pd.DataFrame({"ticker": tickers})
    for col in COVERAGE_COLUMNS:
        out[col] = None
    for col in _COUNT_COLUMNS:
        out[col] = pd.array([pd.NA] * len(out), dtype="Int64")
    if not tickers:
        return out, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prices = load_prices(tickers, prices_dir=prices_dir, cache_dir=cache_dir, offline=True,
                             on_missing="report")
    missing = prices.attrs.get("missing", {})
    unreadable = {t: msg for t, msg in missing.items()
                  if folder is not None and folder_file(folder, t) is not None}
    out = out.set_index("ticker")
    # load_prices upper-cases symbols; universe symbols already are
    out.loc[[t for t in missing if t in out.index], "status"] = "no_price_file"
    out.loc[[t for t in unreadable if t in out.index], "status"] = "unreadable"
    if len(prices):
        report = quality_report(prices).set_index("ticker")
        found = report.index.intersection(out.index)
        report = report.loc[found]
        out.loc[found, "source"] = report["source"]
        for col in ("first_date", "last_date"):
            out.loc[found, col] = report[col].dt.strftime("%Y-%m-%d").where(
                report[col].notna(), None)
        for col in _COUNT_COLUMNS:
            out.loc[found, col] = report[col].astype("Int64")
        out.loc[found, "status"] = report.apply(_status, axis=1)
    return out.reset_index(), unreadable


def _table_view(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.loc[:, list(TABLE_COLUMNS)].astype(object)
    shown = shown.where(shown.notna(), "")
    shown["company"] = shown["company"].map(
        lambda s: s if len(s) <= TABLE_CELL_WIDTH else s[:TABLE_CELL_WIDTH - 3] + "...")
    return shown


def run(args: argparse.Namespace) -> int:
    """List the (filtered) universe with coverage and print it."""
    import pandas as pd

    from crackdown.timeline.universe import load_universe

    universe = load_universe()
    for option in FILTERS:
        universe = filter_universe(universe, option, getattr(args, option[2:]))
    if universe.empty:
        raise StudyConfigError(
            "no universe row matches all of the filters given; drop one of "
            + ", ".join(opt for opt in FILTERS if getattr(args, opt[2:]) is not None)
        )
    listed = universe.loc[:, list(UNIVERSE_OUTPUT_COLUMNS)].reset_index(drop=True)
    tickers = listed["ticker"].tolist()
    if args.no_coverage:
        coverage = pd.DataFrame({"ticker": tickers})
        for col in COVERAGE_COLUMNS:
            coverage[col] = None
        for col in _COUNT_COLUMNS:
            coverage[col] = pd.array([pd.NA] * len(coverage), dtype="Int64")
        coverage["status"] = "not_checked"
        unreadable: dict[str, str] = {}
    else:
        coverage, unreadable = coverage_table(tickers, prices_dir=args.prices_dir,
                                              cache_dir=args.cache_dir)
    out = listed.merge(coverage, on="ticker", how="left", validate="one_to_one")
    out = out.loc[:, list(TICKERS_COLUMNS)]
    for ticker, message in unreadable.items():
        print(f"crackdown tickers: warning: {ticker}: {' '.join(message.split())}",
              file=sys.stderr)
    if args.format == "table":
        print_frame(_table_view(out), "table")
        counts = out["status"].value_counts()
        parts = [f"{int(counts[s])} {s}" for s in STATUSES if s in counts.index]
        where = ""
        if not args.no_coverage:
            folder = config.prices_dir(args.prices_dir)
            where = f"; prices from {folder if folder is not None else 'the cache'}"
        print(f"{len(out)} tickers: {', '.join(parts)}{where}")
    else:
        print_frame(out, args.format)
    return 0


__all__ = [
    "COVERAGE_COLUMNS",
    "FILTERS",
    "STATUSES",
    "TABLE_COLUMNS",
    "TICKERS_COLUMNS",
    "UNIVERSE_OUTPUT_COLUMNS",
    "coverage_table",
    "filter_universe",
    "register",
    "run",
]
