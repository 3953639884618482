"""``crackdown spillovers``: does an event move the named firms' rivals?

    crackdown spillovers EVENT[,EVENT...] [--window LO:HI] [--format table|csv|json]
        [--model MODEL] [--estimation LO:HI] [--fallback MODEL] [--rivals A,B] [--others A,B]
        [--no-partners] [--timing-policy P] [--prices-dir DIR] [--events-file FILE]

Prints, per event, one row per group (``target``: the event's tickers and their
cross-listings; ``rival``: tech listings of the targets' sector or industry; ``other``: the
remaining tech listings) with CAAR, mean BHAR and the headline test, and one
``target_minus_rival`` row with the portfolio-of-differences test
(:mod:`crackdown.analyses.spillovers`; columns :data:`SPILLOVER_COLUMNS`).
"""

from __future__ import annotations

import argparse

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

#: Columns of the ``table`` format (csv/json print every column of SPILLOVER_COLUMNS).
TABLE_COLUMNS = ("event_id", "group", "n_listings", "n_firms", "caar", "bhar", "portfolio_car",
                 "test", "stat", "p_value", "df", "note")


def register(subparsers) -> None:
    """Add the ``spillovers`` sub-command."""

    parser = subparsers.add_parser(
        "spillovers",
        help="targets vs rivals vs other tech listings, and the target-minus-rival test",
        description="Split an event's universe into its targets, their rivals (same sector or "
        "industry) and other tech listings; print CAAR, BHAR and the headline test per group "
        "and the portfolio-of-differences test of target minus rival.",
    )
    parser.add_argument("event", metavar="EVENT", help="event id (or several, comma-separated)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_model_options(parser)
    parser.add_argument("--rivals", metavar="A,B", default=None,
                        help="rival tickers instead of the universe's same sector/industry")
    parser.add_argument("--others", metavar="A,B", default=None,
                        help="other tickers instead of the remaining tech listings")
    parser.add_argument("--no-partners", action="store_true",
                        help="do not add the cross-listing of a named firm to the targets")
    add_timing_policy_option(parser)
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the spillover table and print it."""
    from crackdown.analyses.spillovers import SPILLOVER_COLUMNS, spillovers
    from crackdown.timeline.events import get_event, load_events

    window = parse_window(args.window, "--window")
    estimation = parse_window(args.estimation, "--estimation")
    ids = split_list(args.event, "EVENT")
    table = load_events(args.events_file)
    for event_id in ids:
        get_event(event_id, table)  # unknown id: one line naming it and close matches
    events = table.loc[table["event_id"].isin(ids)]
    rivals = split_tickers(args.rivals, "--rivals") if args.rivals is not None else None
    others = split_tickers(args.others, "--others") if args.others is not None else None
    out = spillovers(events, window, rivals=rivals, others=others,
                     include_partners=not args.no_partners, model=args.model,
                     estimation=estimation, fallback=args.fallback, prices_dir=args.prices_dir,
                     timing_policy=args.timing_policy)
    out = out[list(SPILLOVER_COLUMNS)]
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    if args.format == "table":
        print_frame(out[list(TABLE_COLUMNS)], "table", float_digits=3)
        diff = out.loc[out["group"] == "target_minus_rival"]
        n_sig = int((diff["p_value"] < 0.05).sum())
        print(f"window {window[0]}:{window[1]}; group rows: {out['test'].iloc[0]} (headline "
              f"test); target_minus_rival: portfolio of differences, {n_sig} of {len(diff)} "
              "significant at 5%")
    else:
        print_frame(out, args.format)
    return 0
