"""`crackdown fetch` (fill the price cache) and `crackdown data check` (data-quality report).

Examples
--------
``crackdown fetch --tickers BABA,9988.HK --start 2020-01-01 --end 2023-12-31``
``crackdown data check --tickers BABA,DIDI,0700.HK --start 2021-01-01 --end 2021-12-31``
"""

from __future__ import annotations

import argparse
import sys
import warnings

from crackdown import config
from crackdown.cli.common import add_prices_dir_option, print_frame, split_tickers
from crackdown.errors import PriceDataError


def register(subparsers) -> None:
    """Add the ``fetch`` and ``data`` (with ``check``) sub-commands."""
    fetch = subparsers.add_parser(
        "fetch",
        help="download prices from Yahoo Finance into the cache",
        description="Download daily prices with yfinance and store them in the cache "
        "(atomic writes, SHA-256 sidecar). Needs internet access.",
    )
    fetch.add_argument("--tickers", required=True, metavar="T1,T2",
                       help="comma-separated Yahoo symbols, e.g. BABA,9988.HK,^HSI")
    fetch.add_argument("--start", metavar="YYYY-MM-DD", default=None, help="first date")
    fetch.add_argument("--end", metavar="YYYY-MM-DD", default=None,
                       help="last date (inclusive)")
    fetch.add_argument("--cache-dir", metavar="DIR", default=None,
                       help="cache root (default: $CRACKDOWN_CACHE_DIR, data/cache in a "
                       "checkout, else the per-user cache folder)")
    fetch.add_argument("--force", action="store_true",
                       help="download again even when the cache already covers the range")
    fetch.add_argument("--format", choices=("table", "csv"), default="table")
    fetch.set_defaults(func=run_fetch)

    data = subparsers.add_parser("data", help="inspect local price data",
                                 description="Inspect local price data.")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    check = data_sub.add_parser(
        "check",
        help="data-quality report per ticker",
        description="Per ticker: sessions missing vs the exchange calendar, non-session dates, "
        "zero-volume and flat days, large moves, first/last date, price column used.",
    )
    check.add_argument("--tickers", metavar="T1,T2", default=None,
                       help="comma-separated symbols (default: every CSV in the prices folder)")
    check.add_argument("--start", metavar="YYYY-MM-DD", default=None)
    check.add_argument("--end", metavar="YYYY-MM-DD", default=None)
    add_prices_dir_option(check)
    check.add_argument("--cache-dir", metavar="DIR", default=None, help="cache root")
    check.add_argument("--large-move", type=float, default=0.25, metavar="FRACTION",
                       help="list |daily return| above this (default 0.25 = 25%%)")
    check.add_argument("--offline", action="store_true",
                       help="never call yfinance (also $CRACKDOWN_OFFLINE=1)")
    check.add_argument("--format", choices=("table", "csv"), default="table")
    check.set_defaults(func=run_check)


def run_fetch(args: argparse.Namespace) -> int:
    from crackdown.marketdata.prices import fetch_prices

    tickers = split_tickers(args.tickers, "--tickers")
    summary = fetch_prices(tickers, args.start, args.end, cache_dir=args.cache_dir,
                           force=args.force, progress=len(tickers) > 1 and sys.stderr.isatty())
    failed = summary.loc[summary["status"] == "failed"]
    shown = summary.drop(columns=["detail"]) if failed.empty else summary.loc[
        summary["status"] != "failed"].drop(columns=["detail"])
    if len(shown):
        print_frame(shown, args.format)
    if len(failed):
        first = failed.iloc[0]
        raise PriceDataError(
            f"{len(failed)} of {len(summary)} ticker(s) failed "
            f"({', '.join(failed['ticker'])}); first: {first['detail']}"
        )
    return 0


def _folder_ticker_names(names: list[str], folder) -> tuple[list[str], dict[str, str]]:
    """Folder file names as tickers (upper-cased, deduplicated) and the skipped names, why."""
    from crackdown.timeline.tickers import ticker_problem

    tickers: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        problem = ticker_problem(name, normalize=True)
        if problem is not None:
            skipped[name] = (f"{folder}/{name}.csv skipped: {problem}; rename it to "
                             f"<TICKER>.csv or pass --tickers")
        elif name.upper() not in tickers:
            tickers.append(name.upper())
    return tickers, skipped


def run_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from crackdown.marketdata.prices import folder_tickers, load_prices
    from crackdown.marketdata.quality import LIST_COLUMNS, format_report, quality_report

    skipped: dict[str, str] = {}
    if args.tickers is not None:
        tickers = split_tickers(args.tickers, "--tickers")
    else:
        folder = config.prices_dir(args.prices_dir)
        if folder is None or not folder.is_dir():
            raise PriceDataError(
                "no --tickers and no prices folder to list; pass --tickers T1,T2 or "
                "--prices-dir DIR (or set CRACKDOWN_PRICES_DIR)"
            )
        try:
            names = folder_tickers(folder)
        except OSError as exc:
            raise PriceDataError(f"prices folder {folder} cannot be listed "
                                 f"({exc.strerror or exc}); fix its permissions or pass "
                                 f"--prices-dir DIR") from None
        tickers, skipped = _folder_ticker_names(names, folder)
        if not tickers:
            raise PriceDataError(f"no <TICKER>.csv files in {folder}; pass --tickers")
    if not args.large_move > 0:
        raise PriceDataError(f"--large-move {args.large_move} must be > 0, e.g. 0.25")
    with warnings.catch_warnings():
        # tickers without prices are rows of the report; a cache-write warning still shows
        warnings.simplefilter("ignore", UserWarning)
        prices = load_prices(tickers, args.start, args.end, prices_dir=args.prices_dir,
                             cache_dir=args.cache_dir, offline=True if args.offline else None,
                             on_missing="report")
    missing = dict(prices.attrs.get("missing", {}))
    if len(missing) == len(tickers):
        first = next(iter(missing.values()))
        raise PriceDataError(f"no prices for any of {', '.join(tickers)}; first: {first}")
    report = quality_report(prices, large_move=args.large_move, start=args.start, end=args.end)
    missing.update(skipped)  # folder files whose names are not tickers: listed, not dropped
    if missing:
        # tickers without prices in the range stay in the report, with the reason
        extra = pd.DataFrame({"ticker": list(missing),
                              "status": [f"no prices: {m}" for m in missing.values()]})
        report = pd.concat([report, extra], ignore_index=True)
        for col in LIST_COLUMNS:
            report[col] = report[col].map(lambda v: v if isinstance(v, list) else [])
    if args.format == "csv":
        print_frame(format_report(report, max_items=None), "csv")
    else:
        columns = ["ticker", "exchange", "source", "price_column", "first_date", "last_date",
                   "n_rows", "n_missing_sessions", "missing_sessions", "n_extra_dates",
                   "n_invalid_prices", "n_suspect_prices",
                   "n_zero_volume", "n_placeholder", "n_flat", "n_large_moves", "large_moves",
                   "status"]
        print_frame(format_report(report, max_items=3)[columns], "table")
    return 0
