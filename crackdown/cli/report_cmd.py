"""``crackdown report``: run the report notebooks and write HTML, PNGs and an index.

Examples
--------
``crackdown report``                                   every event, notebooks/event_study.ipynb
``crackdown report --events cac_onsite_didi_review --jobs 1`` one event
``crackdown report --notebook crackdown_overview``    a run-once notebook (no event_id parameter)
``crackdown report --notebook all``                   every notebook, all in one pool
``crackdown report --fresh-kernels``                  a new kernel per notebook (full isolation)
``crackdown report --jobs 4 --output build/reports``  4 notebooks at a time
``crackdown report --show-input``                     HTML with the code cells (hidden by default)
``crackdown report --scheduler tcp://10.0.0.5:8786``   each notebook run a task on a Dask cluster
``crackdown report --scheduler local:4``              a local Dask cluster of 4 worker processes

Each run writes ``OUTPUT/<notebook>/<event>/`` (per-event notebook) or ``OUTPUT/<notebook>/``
(run-once notebook): executed notebook, HTML (code cells hidden unless ``--show-input``), PNGs,
headline.json, status.json; and it refreshes ``OUTPUT/index.html`` (sortable tables); see
:mod:`crackdown.output.reports`. A failing notebook
does not stop the others: failures are listed at the end (one line each) and the exit code is 1.

Each report is built in a hidden folder and renamed into place when complete (a failed or
interrupted run never leaves a half-written report). Ctrl-C (SIGINT) or SIGTERM stops the batch:
the kernels are killed, the finished reports stay in the index, one line says so and the exit
code is 130 (SIGINT) or 143 (SIGTERM). ``--output`` that is a file, lies under a file or is not
writable, a full disk, and ``--timeout`` <= 0 are one-line errors (exit 2).

``--scheduler ADDRESS`` (default ``$CRACKDOWN_DASK_SCHEDULER``) runs each notebook run as a task
on a Dask cluster (:mod:`crackdown.output.report_cluster`): ``tcp://HOST:PORT`` of a running
``dask scheduler``, ``local`` / ``local:N`` for a local cluster, or ``in-process`` for the local
path (the ``--jobs`` pool, as without the option). With a Dask scheduler ``--jobs`` is ignored,
with a one-line note on stderr: the workers decide how many notebooks run at once. A bad value
or an unreachable scheduler is a one-line error (exit 2) before anything is written.

Each worker keeps one kernel for all its notebooks and gives every notebook a clean namespace
(:mod:`crackdown.output.kernel_pool`); ``--fresh-kernels`` starts a new kernel per notebook.
Several notebooks (``--notebook all``) run as one batch in one pool: the run-once notebooks
start first, the per-event ones fill the other workers.

Trust boundary: the notebooks are programs, executed with your rights; ``--notebooks-dir`` runs
whatever notebooks that folder holds, so point it only at notebooks you trust.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from crackdown import cluster
from crackdown.cli.common import add_events_file_option, add_prices_dir_option, split_list
from crackdown.errors import StudyConfigError
from crackdown.output.report_io import ReportInterrupted, check_timeout, handle_signals


def register(subparsers) -> None:
    """Add the ``report`` sub-command to the CLI parser."""
    parser = subparsers.add_parser(
        "report",
        help="run the report notebook(s) with papermill and write HTML reports and an index",
        description=(
            "Execute notebooks/NAME.ipynb with papermill, once per event when its parameters "
            "cell defines event_id (otherwise once), convert each executed notebook to HTML, "
            "extract its figures as PNG and write OUTPUT/index.html with every report's "
            "headline numbers. Each report is renamed into place only when complete; Ctrl-C or "
            "SIGTERM stops the batch (exit 130/143) and keeps the finished reports. Trust "
            "boundary: a notebook is a program, run with your rights; --notebooks-dir executes "
            "whatever notebooks that folder holds, so use only notebooks you trust."
        ),
    )
    parser.add_argument("--events", metavar="all|ID,ID,...", default=None,
                        help="events to report on (default: all for a per-event notebook)")
    parser.add_argument("--notebook", metavar="NAME[,NAME...]|all", default="event_study",
                        help="notebook(s) in notebooks/ without extension, or 'all' for every "
                        "notebook there (default: event_study)")
    parser.add_argument("--output", metavar="DIR", default="reports",
                        help="output folder (default: ./reports)")
    parser.add_argument("--jobs", metavar="N", type=int, default=None,
                        help="notebooks run in parallel, in N worker processes that each keep "
                        "one kernel for all their notebooks (default: the number of CPUs, at "
                        "most 4); ignored with --scheduler")
    parser.add_argument("--fresh-kernels", action="store_true",
                        help="start a new kernel for every notebook (full process isolation, "
                        "slower); by default a worker's kernel is reused with a clean namespace "
                        "per notebook")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run each notebook as a task on a Dask cluster: tcp://HOST:PORT of "
                        "a running `dask scheduler` (workers must see the notebooks, prices and "
                        "--output at the same paths), 'local' or 'local:N' (a local cluster of N "
                        "worker processes), or 'in-process' (no Dask: the --jobs pool); default: "
                        f"${cluster.SCHEDULER_ENV}, else no Dask")
    add_prices_dir_option(parser)
    add_events_file_option(parser)
    parser.add_argument("--notebooks-dir", metavar="DIR", default=None,
                        help="folder holding the notebooks (default: notebooks/ of the checkout); "
                        "its notebooks are executed as code: use only a folder you trust")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="per-cell execution timeout in seconds, > 0 (default: none)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--show-input", dest="show_input", action="store_true", default=False,
                       help="show the code cells (and In/Out prompts) in the HTML reports; by "
                       "default they are hidden: the reports are for readers, the code is in "
                       "the executed .ipynb beside each report")
    shown.add_argument("--no-input", dest="show_input", action="store_false",
                       help="hide the code cells (the default; kept for older scripts)")
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


def _notebook_names(text: str, folder) -> list[str]:
    """``all`` -> every notebook in the folder (event_study first), else the listed names."""
    from crackdown.output import reports

    if text != "all":
        return split_list(text, "--notebook")
    names = sorted(p.stem for p in reports.notebooks_dir(folder).glob("*.ipynb"))
    if not names:
        raise StudyConfigError(f"--notebook all: no notebooks in {reports.notebooks_dir(folder)}")
    return sorted(names, key=lambda n: (n != "event_study", n))


def run(args: argparse.Namespace) -> int:
    """Run the batch; SIGINT/SIGTERM end it with one line and exit 130/143."""
    done: list = []
    try:
        with handle_signals():
            return _run(args, done)
    except ReportInterrupted as exc:
        finished = len(done) + len(exc.finished)
        where = f"index: {exc.index}" if exc.index else "index not rewritten"
        print(f"crackdown: interrupted ({exc.signal_name}); {finished} report(s) finished and "
              f"kept, unfinished ones removed; {where}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace, outcomes: list) -> int:
    from crackdown.output import reports

    scheduler = cluster.resolve_scheduler(args.scheduler)
    jobs = args.jobs if args.jobs is not None else max(1, min(4, os.cpu_count() or 1))
    if jobs < 1:
        raise StudyConfigError(f"--jobs {args.jobs}: must be at least 1")
    if cluster.is_dask(scheduler) and args.jobs is not None:
        print(f"crackdown: --jobs {args.jobs} ignored: the Dask workers of {scheduler} decide "
              "how many notebooks run at once", file=sys.stderr)
    check_timeout(args.timeout, "--timeout")
    extra_parameters = _parse_parameters(args.parameter)
    names = _notebook_names(args.notebook, args.notebooks_dir)
    paths = [reports.resolve_notebook(name, args.notebooks_dir) for name in names]
    per_event = [reports.is_per_event(path) for path in paths]
    if args.events not in (None, "all") and not any(per_event):
        raise StudyConfigError(f"--notebook {args.notebook} has no event_id parameter (it runs "
                               "once); drop --events")
    events_meta = None
    event_ids: list[str] | None = None
    if any(per_event):
        from crackdown.timeline.events import load_events

        wanted = None if args.events in (None, "all") else split_list(args.events, "--events")
        events_meta = load_events(args.events_file, event_ids=wanted)
        event_ids = events_meta["event_id"].tolist() if wanted is None else wanted
        if not event_ids:
            raise StudyConfigError("the events table has no events to report on")

    cluster.check_scheduler(scheduler)  # an unreachable address fails before any output
    result = reports.run_report(
        paths,
        event_ids=event_ids,
        output=args.output,
        jobs=jobs,
        prices_dir=args.prices_dir,
        events_file=args.events_file,
        parameters=extra_parameters,
        events_meta=events_meta,
        execution_timeout=args.timeout,
        exclude_input=not args.show_input,
        progress=not args.no_progress,
        scheduler=scheduler or "",
        fresh_kernels=args.fresh_kernels,
    )
    outcomes += list(result.outcomes)
    failures, index = list(result.failures), result.index
    print(f"{len(outcomes) - len(failures)} of {len(outcomes)} report(s) written; index: {index}")
    if failures:
        print(f"{len(failures)} report(s) failed:", file=sys.stderr)
        for outcome in failures:
            print(f"  {outcome.label}: {outcome.error}", file=sys.stderr)
        return 1
    return 0
