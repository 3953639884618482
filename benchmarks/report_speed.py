"""Batch reports with reused kernels vs a fresh kernel per notebook (not a test).

Runs the same batch twice in one process, on the offline price snapshot
(``$CRACKDOWN_PRICES_DIR``): the per-event notebook for ``--events`` events (default: the first
``--n-events`` of ``events.csv``; ``--n-events 0``: all) and the run-once notebooks
``--run-once`` (default: all five), as one ``run_report`` batch with ``--jobs`` workers, as
``crackdown report --notebook all`` runs it,

1. with reused kernels (the default of ``crackdown report``: one kernel per worker, a clean
   namespace per notebook, :mod:`crackdown.output.kernel_pool`);
2. with ``fresh_kernels=True`` (the baseline: papermill starts and shuts down a kernel for
   every notebook, as ``crackdown report`` did before). Both render each saved figure once.

It asserts that every ``headline.json`` and every CSV file is byte-identical between the two
runs, then prints the wall times, the load average (``os.getloadavg()``) before and after, and
``speedup: X`` = fresh time / reused time. The order of the two runs alternates with
``--repeats`` > 1 and the best time of each mode is used (the machine may be shared)::

    CRACKDOWN_PRICES_DIR=... MPLBACKEND=Agg python benchmarks/report_speed.py --n-events 8 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (p.suffix == ".csv" or p.name == "headline.json")}


def run_batch(root: Path, event_ids: list[str], run_once: list[str], jobs: int,
              fresh: bool) -> float:
    """Run the batch into ``root``; return the wall time in seconds (failures abort)."""
    from crackdown.output import reports

    started = time.perf_counter()
    names = ["event_study", *run_once] if event_ids else run_once
    result = reports.run_report(names, event_ids=event_ids or None, output=root, jobs=jobs,
                                progress=False, fresh_kernels=fresh)
    if result.exit_code:
        raise SystemExit("; ".join(f"{o.label}: {o.error}" for o in result.failures))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default=None, help="comma-separated event ids")
    parser.add_argument("--n-events", type=int, default=6)
    parser.add_argument("--run-once",
                        default="crackdown_overview,cross_listing,methods,robustness,spillovers",
                        help="comma-separated run-once notebooks ('' for none)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    import crackdown as cd

    every = cd.load_events()["event_id"].tolist()
    event_ids = (args.events.split(",") if args.events
                 else every[:args.n_events] if args.n_events else every)
    run_once = [n for n in args.run_once.split(",") if n]
    print(f"batch: event_study x {len(event_ids)} events + {run_once or 'no run-once'}, "
          f"jobs={args.jobs}, {os.cpu_count()} CPUs")
    load_before = os.getloadavg()
    best = {"reused": float("inf"), "fresh": float("inf")}
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        outputs: dict[str, dict[str, bytes]] = {}
        for repeat in range(args.repeats):
            order = ("reused", "fresh") if repeat % 2 == 0 else ("fresh", "reused")
            for mode in order:
                root = Path(tmp) / f"{mode}-{repeat}"
                seconds = run_batch(root, event_ids, run_once, args.jobs, mode == "fresh")
                best[mode] = min(best[mode], seconds)
                print(f"  {mode:6s} run {repeat + 1}: {seconds:7.2f} s  "
                      f"(load {os.getloadavg()[0]:.2f})")
                files = _files(root)
                if mode in outputs and outputs[mode] != files:
                    raise SystemExit(f"{mode}: outputs differ between repeats")
                outputs[mode] = files
        reused, fresh = outputs["reused"], outputs["fresh"]
        assert sorted(reused) == sorted(fresh), "different files"
        differ = [k for k in fresh if reused[k] != fresh[k]]
        assert not differ, f"outputs differ: {differ}"
    load_after = os.getloadavg()
    print(f"identical outputs: {len(fresh)} files (headline.json and CSV)")
    print(f"reused kernels: {best['reused']:.2f} s; fresh kernels: {best['fresh']:.2f} s")
    print("load average (1, 5, 15 min): before " + ", ".join(f"{x:.2f}" for x in load_before)
          + "; after " + ", ".join(f"{x:.2f}" for x in load_after))
    print(f"speedup: {best['fresh'] / best['reused']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
