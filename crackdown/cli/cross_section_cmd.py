"""``crackdown cross-section``: regress firm-event CARs on listing characteristics.

    crackdown cross-section [FORMULA] [--events all|ID,ID,...] [--category C,...]
        [--tickers T,...] [--role R,...] [--window LO:HI] [--estimation LO:HI]
        [--model MODEL] [--fallback MODEL] [--cluster event_cluster|event_cluster,ticker|none]
        [--timing-policy P] [--prices-dir DIR] [--events-file FILE] [--format table|csv|json]

``FORMULA`` is a statsmodels formula on the columns of
:func:`crackdown.estimation.cross_section.firm_event_characteristics` (default
:data:`DEFAULT_FORMULA`). The listings are ``--tickers``, else the universe's listings of the
``--role`` roles (default: the tech roles of :data:`crackdown.analyses.spillovers.TECH_ROLES`),
studied at every selected event. ``--format table`` prints the regression summary;
``csv``/``json`` print the coefficient table, columns :data:`COEFFICIENT_COLUMNS`, one row per
term (a stable contract).
"""

from __future__ import annotations

import argparse
import warnings

from crackdown.cli.common import (
    add_events_file_option,
    add_model_options,
    add_prices_dir_option,
    add_timing_policy_option,
    parse_window,
    print_frame,
    split_list,
    split_tickers,
)
from crackdown.errors import StudyConfigError

DEFAULT_FORMULA = "car ~ target + hk_listing + C(role) + beta + log_dollar_volume_usd"

#: Columns of ``--format csv|json``.
COEFFICIENT_COLUMNS = ("term", "coef", "se", "t", "p", "ci_low", "ci_high", "nobs",
                       "n_clusters", "cov_type", "formula", "window")


def register(subparsers) -> None:
    """Add the ``cross-section`` sub-command."""

    parser = subparsers.add_parser(
        "cross-section",
        help="regress firm-event CARs on characteristics (clustered by event cluster)",
        description="Study the chosen listings at the chosen events and regress their CARs on "
        "characteristics (target, hk_listing, role, sector, beta, volatility, listing age, log "
        "dollar volume) with Cameron-Gelbach-Miller clustered standard errors.",
    )
    parser.add_argument("formula", nargs="?", default=DEFAULT_FORMULA,
                        help=f"statsmodels formula (default: {DEFAULT_FORMULA!r})")
    parser.add_argument("--events", default="all", metavar="all|ID,ID",
                        help="events to study (default all)")
    parser.add_argument("--category", default=None, metavar="C,C",
                        help="only events of these categories (e.g. antitrust,platform_rules)")
    parser.add_argument("--tickers", default=None, metavar="T,T",
                        help="listings to study at every event (default: the --role listings)")
    parser.add_argument("--role", default=None, metavar="R,R",
                        help="universe roles of the listings (default: the tech roles)")
    add_model_options(parser)
    parser.add_argument("--cluster", default="event_cluster",
                        help="cluster column(s), comma-separated (two-way), or 'none'")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_timing_policy_option(parser)
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.set_defaults(func=run)


def _listings(args: argparse.Namespace) -> list[str]:
    from crackdown.analyses.spillovers import TECH_ROLES
    from crackdown.timeline.universe import load_universe

    if args.tickers is not None:
        if args.role is not None:
            raise StudyConfigError("give --tickers or --role, not both")
        return split_tickers(args.tickers, "--tickers")
    universe = load_universe()
    roles = split_list(args.role, "--role") if args.role is not None else list(TECH_ROLES)
    unknown = sorted(set(roles) - set(universe["role"]))
    if unknown:
        raise StudyConfigError(
            f"--role {', '.join(unknown)} unknown; roles in universe.csv: "
            f"{', '.join(sorted(set(universe['role'])))}")
    return universe.loc[universe["role"].isin(roles), "ticker"].tolist()


def run(args: argparse.Namespace) -> int:
    """Fit the regression and print it."""
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.events import get_event, load_events

    window = parse_window(args.window, "--window")
    estimation = parse_window(args.estimation, "--estimation")
    table = load_events(args.events_file)
    if args.events != "all":
        ids = split_list(args.events, "--events")
        for event_id in ids:
            get_event(event_id, table)  # unknown id: one line naming it
        table = table.loc[table["event_id"].isin(ids)]
    if args.category is not None:
        cats = split_list(args.category, "--category")
        table = table.loc[table["category"].isin(cats)]
        if table.empty:
            raise StudyConfigError(f"--category {args.category}: no selected event has it")
    cluster = None if args.cluster == "none" else tuple(split_list(args.cluster, "--cluster"))
    if cluster is not None and len(cluster) == 1:
        cluster = cluster[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # the listings enter as each event's tickers, so one without prices around an event
        # (listed later) is a reported outcome, not an error; `target` still comes from the
        # events table (events=table below)
        listings = _listings(args)
        studied = table.assign(ticker_list=[listings] * len(table))
        res = EventStudy.from_events(studied, model=args.model,
                                     estimation=estimation, window=window,
                                     fallback=None if args.fallback == args.model
                                     else args.fallback, prices_dir=args.prices_dir,
                                     timing_policy=args.timing_policy).fit()
        cs = res.cross_section(args.formula, window, cluster=cluster,
                               prices_dir=args.prices_dir, events=table)
    if args.format == "table":
        print(cs.summary())
        return 0
    out = cs.table()
    out["nobs"] = int(cs.nobs)
    out["n_clusters"] = ";".join(f"{k}={v}" for k, v in cs.n_clusters.items())
    out["cov_type"] = cs.cov_type
    out["formula"] = args.formula
    out["window"] = f"{window[0]}:{window[1]}"
    print_frame(out[list(COEFFICIENT_COLUMNS)], args.format)
    return 0
