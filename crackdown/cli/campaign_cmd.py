"""``crackdown campaign``: every event at once, with p, q and family-wise adjusted p per event.

    crackdown campaign [--model MODEL] [--window LO:HI] [--estimation LO:HI]
        [--fallback MODEL] [--test TEST] [--draws N] [--seed S] [--timing-policy P]
        [--prices-dir DIR] [--events-file FILE] [--format table|csv|json]

One row per event: its cluster, timing, CAAR with the portfolio interval, the p-value of the
headline test (:data:`crackdown.inference.headline.HEADLINE_TEST` unless ``--test``), the
Benjamini-Hochberg q-value computed over distinct event clusters and the Westfall-Young
step-down family-wise adjusted p-value from ``--draws`` common shifts of all events
(:mod:`crackdown.analyses.multiple_testing`). Market confounds are printed with empty q and
FWER p: they are not part of the family.
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
)

#: Columns of ``crackdown campaign --format csv|json`` (the table shows the main ones; an empty
#: cluster there means the event is its own cluster).
CAMPAIGN_COLUMNS = ("event_id", "date", "category", "direction", "anticipated", "timing",
                    "cluster_id", "n_firms", "caar", "ci_lo", "ci_hi", "test", "p", "q_bh",
                    "p_fwer", "title", "note")


def register(subparsers) -> None:
    """Add the ``campaign`` sub-command."""
    from crackdown.analyses.multiple_testing import STATISTICS
    from crackdown.inference.headline import HEADLINE_TEST

    parser = subparsers.add_parser(
        "campaign",
        help="every event at once: p, cluster q-value and FWER-adjusted p per event",
        description="Run one batched event study over the events table and print one row per "
        "event with the headline test's p-value, the Benjamini-Hochberg q-value over event "
        "clusters and the Westfall-Young step-down family-wise adjusted p-value.",
    )
    add_model_options(parser)
    parser.add_argument("--test", choices=tuple(STATISTICS), default=HEADLINE_TEST,
                        help=f"per-event test (default: the headline test, {HEADLINE_TEST})")
    parser.add_argument("--draws", type=int, default=199, metavar="N",
                        help="common shifts for the family-wise adjusted p (default 199)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_timing_policy_option(parser)
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the campaign and print the table."""
    from crackdown.analyses.campaign import run_campaign
    from crackdown.analyses.multiple_testing import campaign_multiple_testing
    from crackdown.timeline.events import load_events

    window = parse_window(args.window, "--window")
    estimation = parse_window(args.estimation, "--estimation")
    events = load_events(args.events_file)
    fallback = None if args.fallback == args.model else args.fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        campaign = run_campaign(events, model=args.model, window=window, estimation=estimation,
                                fallback=fallback, prices_dir=args.prices_dir,
                                timing_policy=args.timing_policy, history="all")
    adjusted = campaign_multiple_testing(campaign, statistic=args.test, n_draws=args.draws,
                                         seed=args.seed).set_index("event_id")
    table = campaign.event_table.set_index("event_id")
    out = table.reindex(columns=[c for c in CAMPAIGN_COLUMNS if c in table.columns])
    out["test"] = args.test
    out["p"] = adjusted["pvalue"].reindex(out.index)
    out["q_bh"] = adjusted["q_bh"].reindex(out.index)
    out["p_fwer"] = adjusted["p_fwer"].reindex(out.index)
    out = out.reset_index()[list(CAMPAIGN_COLUMNS)]
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    if args.format == "table":
        shown = out[["event_id", "date", "direction", "timing", "cluster_id", "n_firms", "caar",
                     "p", "q_bh", "p_fwer"]].copy()
        shown["cluster_id"] = shown["cluster_id"].where(shown["cluster_id"] != shown["event_id"],
                                                        "")
        print_frame(shown, "table", float_digits=3)
        fam = out.loc[out["q_bh"].notna()]
        print(f"{len(fam)} events in {fam['cluster_id'].nunique()} clusters tested jointly "
              f"({args.test}, window {window[0]}:{window[1]}, {args.draws} common shifts); "
              f"{fam.loc[fam['q_bh'] < 0.10, 'cluster_id'].nunique()} clusters at FDR 10%, "
              f"{fam.loc[fam['p_fwer'] < 0.05, 'cluster_id'].nunique()} at FWER 5%")
    else:
        print_frame(out, args.format)
    return 0
