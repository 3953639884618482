"""The overview notebook's FWER step: grouped statistics vs one test per pseudo event (not a test).

Builds the campaign exactly as ``notebooks/crackdown_overview.ipynb`` does (every event of
``crackdown.load_events()``, market model, window (-1, 1), estimation (-250, -11),
market-adjusted fallback, ``timing_policy="span"``, ``history="all"``), then runs
``campaign_multiple_testing(campaign, statistic=HEADLINE_TEST, n_draws=...)`` twice in this
process: with ``_per_panel=True`` (the baseline: ``panel.subset`` and the per-panel test for each
(draw, event), as before issue #14) and with the grouped pass of
:mod:`crackdown.inference.grouped` (the default). It asserts that the two frames are identical
(``assert_frame_equal(check_exact=True)``) and prints both times, the load average before and
after, and ``fwer speedup: X`` = per-panel seconds / grouped seconds (best of ``--repeats``,
order alternating). Both runs include the batched re-fits of the pseudo events, which the two
paths share.

Needs the price snapshot (``$CRACKDOWN_PRICES_DIR``). Run::

    python benchmarks/fwer_speed.py                  # 199 draws, the headline test
    python benchmarks/fwer_speed.py --draws 49 --statistic portfolio_t --repeats 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


def main() -> None:
    import pandas as pd

    import crackdown as cd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=199)
    parser.add_argument("--statistic", default=cd.HEADLINE_TEST)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    campaign = cd.run_campaign(cd.load_events(), model="market", window=(-1, 1),
                               estimation=(-250, -11), fallback="market-adjusted",
                               timing_policy="span", history="all", ci=0.95)
    print(f"campaign: {campaign.results.panel.n} firm-events, "
          f"{time.perf_counter() - t0:.1f} s")

    times: dict[bool, list[float]] = {True: [], False: []}
    frames: dict[bool, pd.DataFrame] = {}
    for r in range(args.repeats):
        for per_panel in ((True, False) if r % 2 == 0 else (False, True)):
            t0 = time.perf_counter()
            frames[per_panel] = cd.campaign_multiple_testing(
                campaign, statistic=args.statistic, n_draws=args.draws, _per_panel=per_panel)
            times[per_panel].append(time.perf_counter() - t0)
            label = "per-panel" if per_panel else "grouped"
            print(f"  {label:9s} {times[per_panel][-1]:7.2f} s  "
                  f"(load {os.getloadavg()[0]:.2f})")
    pd.testing.assert_frame_equal(frames[False], frames[True], check_exact=True)
    slow, fast = min(times[True]), min(times[False])
    print(f"{args.statistic}, {args.draws} draws, {len(frames[False])} events: identical frames")
    print(f"per-panel {slow:.2f} s, grouped {fast:.2f} s")
    print(f"fwer speedup: {slow / fast:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
