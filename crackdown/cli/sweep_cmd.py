"""``crackdown sweep``: the specification curve of events over a grid of choices.

    crackdown sweep EVENT[,EVENT...]|key|all [--models M1,M2] [--windows LO:HI,LO:HI]
        [--estimation LO:HI,LO:HI] [--benchmarks auto,^HSI] [--returns simple,log]
        [--clean no,yes] [--timing-policies span,same-day] [--draws N] [--seed S]
        [--alpha A] [--fallback MODEL] [--scheduler ADDRESS] [--format table|csv|json]
        [--output DIR] [--no-figures] [--no-progress] [--prices-dir DIR] [--events-file FILE]

Prints one row per (event, specification) (:data:`crackdown.analyses.sweep.SWEEP_COLUMNS`),
then, in the table format, the joint test of each event's curve. ``--output DIR`` also writes
``sweep.csv``, ``sweep_joint.csv`` and one ``spec_curve_<event>.png`` per event (each file
complete or absent).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from crackdown.cli.common import (
    _NEGATIVE_VALUE,
    CLI_MODELS,
    add_events_file_option,
    add_prices_dir_option,
    parse_window,
    print_frame,
    split_list,
)
from crackdown.errors import StudyConfigError

#: Columns of the ``table`` format (csv/json print every column of SWEEP_COLUMNS).
TABLE_COLUMNS = ("event_id", "model", "window", "estimation", "benchmark", "n_firms", "caar",
                 "headline_p", "status")


def register(subparsers) -> None:
    """Add the ``sweep`` sub-command."""
    from crackdown.timeline.calendars import TIMING_POLICIES

    parser = subparsers.add_parser(
        "sweep",
        help="specification curve: every model/window/benchmark choice of events",
        description="Estimate each event under every combination of the given choices (model, "
        "event window, estimation window, benchmark, returns, clean estimation, timing policy); "
        "print one row per (event, specification) and a joint test of each curve at common "
        "pseudo dates (Simonsohn, Simmons & Nelson 2020).",
    )
    parser._negative_number_matcher = _NEGATIVE_VALUE  # accept "--windows -1:1,0:1"
    parser.add_argument("event", metavar="EVENT",
                        help="event id(s), comma-separated, or 'key' (the key events) or 'all'")
    parser.add_argument("--models", metavar="M1,M2", default="market,market-adjusted,"
                        "scholes-williams,international",
                        help=f"models (default: %(default)s); any of {', '.join(CLI_MODELS)}")
    parser.add_argument("--windows", metavar="LO:HI,...", default="-1:1,0:1,0:2,-1:5",
                        help="event windows (default: %(default)s)")
    parser.add_argument("--estimation", metavar="LO:HI,...", default="-250:-11,-120:-11",
                        help="estimation windows (default: %(default)s)")
    parser.add_argument("--benchmarks", metavar="B1,B2", default="auto,^HSI",
                        help="market proxies: auto (SPY / HK_NONTECH_EW), a ticker for the "
                        "listings of its exchange, or MIC=TICKER (default: %(default)s)")
    parser.add_argument("--returns", metavar="KIND,...", default="simple",
                        help="simple, log or simple,log (default: %(default)s)")
    parser.add_argument("--clean", metavar="no,yes", default="no",
                        help="clean estimation (remove other events' windows): no, yes or "
                        "no,yes (default: %(default)s)")
    parser.add_argument("--timing-policies", metavar="P1,P2", default="span",
                        help=f"events without a release time: any of {', '.join(TIMING_POLICIES)}"
                        " (default: %(default)s)")
    parser.add_argument("--draws", metavar="N", type=int, default=99,
                        help="common pseudo dates per event for the joint test; 0 skips it "
                        "(default: %(default)s)")
    parser.add_argument("--seed", metavar="S", type=int, default=0,
                        help="seed of the pseudo dates (default: %(default)s)")
    parser.add_argument("--alpha", metavar="A", type=float, default=0.05,
                        help="level counted as significant (default: %(default)s)")
    parser.add_argument("--fallback", choices=CLI_MODELS, default="market-adjusted",
                        help="model for listings with too little history (flagged)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="Dask scheduler (tcp://host:port), 'local[:N]' for a LocalCluster "
                        "or 'in-process'; default $CRACKDOWN_DASK_SCHEDULER, else chosen by the "
                        "size of the job")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="also write sweep.csv, sweep_joint.csv and a figure per event here")
    parser.add_argument("--no-figures", action="store_true",
                        help="with --output: write the tables only")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.set_defaults(func=run)


def _choices(text: str, option: str, allowed: dict[str, object]) -> list:
    out = []
    for item in split_list(text, option):
        if item not in allowed:
            raise StudyConfigError(f"{option} {item!r}: use {', '.join(allowed)}")
        out.append(allowed[item])
    return out


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print it, and write the files of ``--output``."""
    from crackdown.analyses.campaign import KEY_EVENTS
    from crackdown.analyses.sweep import SWEEP_COLUMNS, sweep
    from crackdown.timeline.calendars import TIMING_POLICIES
    from crackdown.timeline.events import get_event, load_events

    models = split_list(args.models, "--models")
    for m in models:
        if m not in CLI_MODELS:
            raise StudyConfigError(f"--models {m!r}: use any of {', '.join(CLI_MODELS)}")
    windows = [parse_window(w, "--windows") for w in split_list(args.windows, "--windows")]
    estimations = [parse_window(w, "--estimation")
                   for w in split_list(args.estimation, "--estimation")]
    benchmarks = split_list(args.benchmarks, "--benchmarks")
    returns = _choices(args.returns, "--returns", {"simple": "simple", "log": "log"})
    clean = _choices(args.clean, "--clean", {"no": False, "yes": True})
    timings = _choices(args.timing_policies, "--timing-policies",
                       {p: p for p in TIMING_POLICIES})
    if args.draws < 0:
        raise StudyConfigError(f"--draws {args.draws}: use 0 (no joint test) or more draws")
    output = _check_output(args.output)
    table = load_events(args.events_file)
    if args.event == "all":
        events = table
    else:
        ids = list(KEY_EVENTS) if args.event == "key" else split_list(args.event, "EVENT")
        for event_id in ids:
            get_event(event_id, table)  # unknown id: one line naming it and close matches
        events = table.loc[table["event_id"].isin(ids)]
    res = sweep(events, models=models, windows=windows, estimations=estimations,
                benchmarks=benchmarks, returns=returns, clean_estimation=clean,
                timing_policies=timings, n_draws=args.draws, seed=args.seed, alpha=args.alpha,
                fallback=args.fallback, prices_dir=args.prices_dir,
                events_file=args.events_file, scheduler=args.scheduler,
                progress=not args.no_progress and sys.stderr.isatty())
    if output is not None:
        _write_output(res, output, figures=not args.no_figures)
    out = res.table[list(SWEEP_COLUMNS)]
    if args.format == "table":
        print_frame(out[list(TABLE_COLUMNS)], "table", float_digits=4)
        print()
        print(res.summary())
    else:
        print_frame(out, args.format)
    return 0


def _check_output(text: str | None) -> Path | None:
    """``--output``: a folder (created later) that is not a file and can be written."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise StudyConfigError(f"--output {text}: is a file; choose a folder")
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise StudyConfigError(f"--output {text}: {parent} is not writable; choose another folder")
    return path


def _write_output(res, folder: Path, *, figures: bool) -> None:
    """Tables and figures built in a hidden folder beside, then moved in: complete or absent."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from crackdown.output.plots import plot_specification_curve, save_figure

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".sweep-") as tmp:
        tmp_path = Path(tmp)
        written = list(res.to_csv(tmp_path).values())
        if figures:
            for event_id in res.joint["event_id"]:
                curve = res.curve(event_id)
                if curve.empty:
                    continue
                fig = plot_specification_curve(res.table.loc[res.table["event_id"] == event_id],
                                               event_id=event_id,
                                               joint=res.joint_test(event_id))
                path = tmp_path / f"spec_curve_{event_id}.png"
                save_figure(fig, path)
                plt.close(fig)
                written.append(path)
        for path in written:
            os.replace(path, folder / path.name)
