"""``crackdown report``: run the report notebooks and write HTML, PNGs and an index.

Examples
--------
``crackdown report``                                   every event, notebooks/event_study.ipynb
``crackdown report --events CAC-DIDI-REVIEW --jobs 1`` one event
``crackdown report --notebook crackdown_overview``               a run-once notebook (no event_id parameter)
``crackdown report --jobs 4 --output build/reports``   4 notebooks at a time

Each run writes ``OUTPUT/<notebook>/<label>/`` (executed notebook, HTML, PNGs, headline.json,
status.json) and refreshes ``OUTPUT/index.html``; see :mod:`crackdown.reports`. A failing notebook
does not stop the others: failures are listed at the end (one line each) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from crackdown.cli.common import add_events_file_option, add_prices_dir_option, split_list
from crackdown.errors import StudyConfigError


def register(subparsers) -> None:
    """Add the ``report`` sub-command to the CLI parser."""
    parser = subparsers.add_parser(
        "report",
        help="run the report notebook(s) with papermill and write HTML reports and an index",
        description=(
            "Execute notebooks/NAME.ipynb with papermill, once per event when its parameters "
            "cell defines event_id (otherwise once), convert each executed notebook to HTML, "
            "extract its figures as PNG and write OUTPUT/index.html with every report's "
            "headline numbers."
        ),
    )
    parser.add_argument("--events", metavar="all|ID,ID,...", default=None,
                        help="events to report on (default: all for a per-event notebook)")
    parser.add_argument("--notebook", metavar="NAME", default="event_study",
                        help="notebook in notebooks/ without extension (default: event_study)")
    parser.add_argument("--output", metavar="DIR", default="reports",
                        help="output folder (default: ./reports)")
    parser.add_argument("--jobs", metavar="N", type=int, default=1,
                        help="notebooks run in parallel, each in its own process and kernel "
                        "(default: 1)")
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.add_argument("--notebooks-dir", metavar="DIR", default=None,
                        help="folder holding the notebooks (default: notebooks/ of the checkout)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="per-cell execution timeout (default: none)")
    parser.add_argument("--no-input", action="store_true",
                        help="hide code cells in the HTML reports")
    parser.add_argument("-p", "--parameter", metavar="KEY=VALUE", action="append", default=[],
                        help="extra notebook parameter (VALUE parsed as JSON, else a string); "
                        "repeatable")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def _parse_parameters(items: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise StudyConfigError(f"--parameter {item!r}: use KEY=VALUE with KEY a Python "
                                   "identifier, e.g. --parameter window_hi=5")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def run(args: argparse.Namespace) -> int:
    from crackdown import reports

    if args.jobs < 1:
        raise StudyConfigError(f"--jobs {args.jobs}: must be at least 1")
    extra_parameters = _parse_parameters(args.parameter)
    nb_path = reports.resolve_notebook(args.notebook, args.notebooks_dir)
    per_event = reports.is_per_event(nb_path)
    events_meta = None
    event_ids: list[str] | None = None
    if per_event:
        from crackdown.events import load_events

        wanted = None if args.events in (None, "all") else split_list(args.events, "--events")
        events_meta = load_events(args.events_file, event_ids=wanted)
        if wanted is None:
            event_ids = events_meta["event_id"].tolist()
        else:
            event_ids = wanted
        if not event_ids:
            raise StudyConfigError("the events table has no events to report on")
    elif args.events not in (None, "all"):
        raise StudyConfigError(f"--notebook {args.notebook} has no event_id parameter (it runs "
                               "once); drop --events")

    result = reports.run_report(
        nb_path,
        event_ids=event_ids,
        output=args.output,
        jobs=args.jobs,
        prices_dir=args.prices_dir,
        events_file=args.events_file,
        parameters=extra_parameters,
        events_meta=events_meta,
        execution_timeout=args.timeout,
        exclude_input=args.no_input,
        progress=not args.no_progress,
    )
    n_ok = len(result.outcomes) - len(result.failures)
    print(f"{n_ok} of {len(result.outcomes)} report(s) written; index: {result.index}")
    if result.failures:
        print(f"{len(result.failures)} report(s) failed:", file=sys.stderr)
        for outcome in result.failures:
            print(f"  {outcome.label}: {outcome.error}", file=sys.stderr)
    return result.exit_code
