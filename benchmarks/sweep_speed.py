"""The campaign's specification sweep in this process vs on a local Dask cluster (not a test).

Runs the same :func:`crackdown.sweep` twice in one process: ``scheduler="in-process"`` (the
baseline) and ``scheduler="local:N"`` (a :class:`distributed.LocalCluster` of N worker
processes started and closed inside the timing), asserts that the two tables, joint tests and
placebo draws are identical, and prints

* ``sweep speedup: X`` = in-process seconds / cluster seconds (cluster start-up included);
* the peak memory: this process's peak resident set size after the in-process sweep (and
  before it), and the resident set of an idle worker;
* the executor estimate of :func:`crackdown.analyses.sweep._estimated_seconds` next to the
  measured in-process time (the rule that picks in-process or a LocalCluster when no scheduler
  is given: a cluster when the estimate exceeds ``AUTO_CLUSTER_SECONDS``);
* the load average before and after.

Needs the price snapshot (``$CRACKDOWN_PRICES_DIR``). Run::

    python benchmarks/sweep_speed.py                    # every event, the default grid, 19 draws
    python benchmarks/sweep_speed.py --events key --draws 49 --workers 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


def _worker_peak_mb() -> float:
    """Peak resident set size of the calling process in MB (Linux: ru_maxrss in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    import pandas as pd

    import crackdown as cd
    from crackdown.analyses import sweep as sweep_mod

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="all", help="all, key or comma-separated ids")
    parser.add_argument("--draws", type=int, default=19)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    table = cd.load_events()
    if args.events == "key":
        table = table.loc[table["event_id"].isin(cd.KEY_EVENTS)]
    elif args.events != "all":
        table = table.loc[table["event_id"].isin(args.events.split(","))]
    warnings.simplefilter("ignore")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {len(table)} events, default grid "
          f"({len(sweep_mod.DEFAULT_MODELS)} models x {len(sweep_mod.DEFAULT_WINDOWS)} windows x "
          f"{len(sweep_mod.DEFAULT_ESTIMATIONS)} estimation windows x "
          f"{len(sweep_mod.DEFAULT_BENCHMARKS)} benchmarks), {args.draws} pseudo dates")

    os.environ.pop("CRACKDOWN_DASK_SCHEDULER", None)
    before = _worker_peak_mb()
    t0 = time.perf_counter()
    here = cd.sweep(table, n_draws=args.draws, scheduler="in-process")
    t_here = time.perf_counter() - t0
    peak = _worker_peak_mb()  # the process's peak so far: the in-process sweep's
    t0 = time.perf_counter()
    there = cd.sweep(table, n_draws=args.draws, scheduler=f"local:{args.workers}")
    t_there = time.perf_counter() - t0
    pd.testing.assert_frame_equal(here.table, there.table, check_exact=True)
    pd.testing.assert_frame_equal(here.joint, there.joint, check_exact=True)
    pd.testing.assert_frame_equal(here.draws, there.draws, check_exact=True)

    from crackdown.cluster import dask_client

    with dask_client(f"local:{args.workers}") as client:  # a fresh cluster: its idle peak
        idle = max(client.run(_worker_peak_mb).values())
    n_specs = len(here.specifications)
    print(f"{n_specs} specifications x {len(here.joint)} events = {len(here.table)} rows, "
          f"{here.settings['n_tasks']} tasks; results identical (exact)")
    print(f"in-process: {t_here:.1f} s; peak resident set {peak:.0f} MB "
          f"({before:.0f} MB before the sweep)")
    print(f"local:{args.workers}: {t_there:.1f} s (cluster start-up included); an idle worker's "
          f"resident set is about {idle:.0f} MB")
    print(f"executor estimate of the in-process time: "
          f"{sweep_mod._estimated_seconds(*_tasks_and_bases(table, args.draws)):.1f} s "
          f"(cluster above {sweep_mod.AUTO_CLUSTER_SECONDS:.0f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"sweep speedup: {t_here / t_there:.2f}")


def _tasks_and_bases(table, n_draws):
    """The tasks and bases :func:`crackdown.sweep` builds for the default grid."""
    from crackdown.analyses import sweep as s
    from crackdown.timeline.events import load_events

    grid = s._grid(s.DEFAULT_MODELS, s.DEFAULT_WINDOWS, s.DEFAULT_ESTIMATIONS,
                   s.DEFAULT_BENCHMARKS, ("simple",), (False,), ("span",))
    specs = list(grid.values())
    events = table.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)
    bases = s._bases(events, load_events(), specs, n_draws=n_draws, fallback="market-adjusted",
                     min_estimation_obs=100, prices_dir=None)
    ids = [str(e) for e in events["event_id"]]
    canonical = s._canonical_specs(specs, bases, ids)
    return s._tasks(specs, canonical, bases, ids, n_draws, 0.05, s.CHUNK_FIRM_EVENTS), bases


if __name__ == "__main__":
    main()
