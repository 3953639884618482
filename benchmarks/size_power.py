"""Size and power of event-study tests under event clustering (Monte Carlo).

Design (see :mod:`crackdown.inference.simulation` for the DGP): N = 30 firms with one COMMON
event date, market model with beta ~ U(0.5, 1.5), residual sd ~ U(1%, 3%), market sd 1%,
T_est = 250 estimation days, equicorrelated residuals (one common non-market factor) with
correlation rho in {0, 0.1, 0.3}; event windows (0, 0) and (-1, +1) (the CAR over the window is
tested); effect 0 (size) or +1% abnormal return on day 0 for every firm (power); and an
event-induced-variance block (event-window residual variance x 2) for rho in {0, 0.3}.

Each test is two-sided at the 5% level. mc_se = sqrt(rate (1 - rate) / n_sims). The placebo
test (pseudo dates from 150 pre-estimation days, common to all firms, B = 99 draws, statistic =
Brown-Warner 1985 portfolio t of the CAAR) is run on the first ``--placebo-sims`` samples of
each design only, because each placebo p-value needs B re-estimations.

Two calendars (``scenario = two_calendars``, :mod:`crackdown.inference.two_calendars`): 6 New
York and 6 Hong Kong listings of one event on the real XNYS/XHKG calendars, a common factor
priced by New York first and by Hong Kong one session later, rho in {0, 0.1, 0.3}, event
variance x1 and x2, windows (0, 0) and (-1, +1), no effect. The pooled portfolio and
Kolari-Pynnönen tests are computed with the estimation residuals paired by relative trading day
and in information time (``alignment``); ``rbar_mean`` is the average estimated r̄ (truth: rho).

Run:  python benchmarks/size_power.py                  (about 20 min on 2 cores)
      python benchmarks/size_power.py --quick          (smoke run, not written)
      python benchmarks/size_power.py --two-calendars  (only the two-calendar rows, merged
                                                        into the existing CSV; ~1 min)
Factorial (``scenario = factorial``, #13): day-0 window, N in {2, 3, 9, 30}, rho in {0, 0.1,
0.3}, event variance x1, x2, x3, normal or Student t(4) residuals (``tail_df``), effect 0 or
+1%; every inference test and SUR, no placebo (144 designs).

Writes benchmarks/results/size_power.csv. The first 13 columns are the original layout;
``scenario``, ``alignment``, ``rbar_mean`` and ``tail_df`` (empty = normal) follow.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# one BLAS thread per worker process: the designs are spread over processes instead
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd

from crackdown.inference.simulation import SimulationDesign, default_tests, run_grid
from crackdown.inference.two_calendars import TwoCalendarDesign, two_calendar_rejection_rates

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "size_power.csv"
COLUMNS = [
    "test", "rho", "effect", "n_firms", "n_sims", "rejection_rate", "mc_se",
    "variance_ratio", "window_lo", "window_hi", "n_est", "rejections", "n_nan",
    "scenario", "alignment", "rbar_mean", "tail_df",
]


def factorial_designs() -> list[SimulationDesign]:
    """The crackdown's situation (#13): N = 2..30 listings, clustering, event variance, fat tails.

    Day-0 window, every combination of N in {2, 3, 9, 30}, rho in {0, 0.1, 0.3}, event
    variance x1, x2, x3, normal or t(4) residuals, effect 0 (size) or +1% (power).
    """
    return [SimulationDesign(n_firms=n, n_est=250, window=(0, 0), rho=rho, effect=effect,
                             variance_ratio=vr, tail_df=tail)
            for n in (2, 3, 9, 30) for rho in (0.0, 0.1, 0.3) for vr in (1.0, 2.0, 3.0)
            for tail in (None, 4.0) for effect in (0.0, 0.01)]


def designs(n_history: int) -> list[SimulationDesign]:
    out = []
    for window in ((0, 0), (-1, 1)):
        for rho in (0.0, 0.1, 0.3):
            for effect in (0.0, 0.01):
                out.append(SimulationDesign(
                    n_firms=30, n_est=250, window=window, rho=rho, effect=effect,
                    n_history=n_history,
                ))
        for rho in (0.0, 0.3):
            for effect in (0.0, 0.01):
                out.append(SimulationDesign(
                    n_firms=30, n_est=250, window=window, rho=rho, effect=effect,
                    variance_ratio=2.0, n_history=n_history,
                ))
    return out


def two_calendar_table(n_sims: int, seed: int) -> pd.DataFrame:
    """The two-calendar block of the CSV (effect 0: size only)."""
    frames = []
    k = 0
    for window in ((0, 0), (-1, 1)):
        for variance_ratio in (1.0, 2.0):
            for rho in (0.0, 0.1, 0.3):
                design = TwoCalendarDesign(n_ny=6, n_hk=6, rho=rho, window=window,
                                           variance_ratio=variance_ratio)
                frames.append(two_calendar_rejection_rates(design, n_sims, seed=seed + k))
                k += 1
    table = pd.concat(frames, ignore_index=True)
    table["effect"] = 0.0
    table["scenario"] = "two_calendars"
    return table.reindex(columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sims", type=int, default=2000)
    parser.add_argument("--placebo-sims", type=int, default=400)
    parser.add_argument("--placebo-draws", type=int, default=99)
    parser.add_argument("--seed", type=int, default=20210724)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200 sims, 40 placebo; no CSV")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--two-calendars", action="store_true",
                        help="run only the two-calendar block and merge it into --out")
    args = parser.parse_args(argv)
    n_sims, placebo_sims = args.n_sims, args.placebo_sims
    if args.quick:
        n_sims, placebo_sims = 200, 40
    if args.two_calendars:
        t0 = time.perf_counter()
        two = two_calendar_table(n_sims, args.seed)
        print_two_calendars(two, n_sims, time.perf_counter() - t0)
        if not args.quick:
            old = pd.read_csv(args.out) if args.out.is_file() else pd.DataFrame(columns=COLUMNS)
            old = old.reindex(columns=COLUMNS)
            scenario = old["scenario"].astype(object)
            old["scenario"] = scenario.where(scenario.notna(), "one_calendar")
            old = old.loc[old["scenario"] != "two_calendars"]
            merged = pd.concat([old, two], ignore_index=True)
            merged.to_csv(args.out, index=False, float_format="%.6g")
            print(f"wrote {args.out}")
        return 0

    tests = default_tests(placebo=placebo_sims > 0, placebo_draws=args.placebo_draws)
    subsample = {"placebo_caar_portfolio": placebo_sims} if placebo_sims > 0 else None
    grid = designs(n_history=args.placebo_draws + 51)
    t0 = time.perf_counter()
    table = run_grid(tests, grid, n_sims, args.seed, subsample=subsample, n_jobs=args.jobs)
    table["scenario"] = "one_calendar"
    factorial = factorial_designs()
    if args.quick:
        factorial = factorial[::12]
    fact = run_grid(default_tests(placebo=False), factorial, n_sims, args.seed + 1,
                    n_jobs=args.jobs)
    fact["scenario"] = "factorial"
    print_factorial(fact)
    table = pd.concat([table, fact], ignore_index=True).reindex(columns=COLUMNS)
    two = two_calendar_table(n_sims, args.seed)
    elapsed = time.perf_counter() - t0

    pd.set_option("display.width", 200)
    for (lo, hi, vr), block in table.groupby(["window_lo", "window_hi", "variance_ratio"]):
        wide = block.pivot_table(
            index="test", columns=["rho", "effect"], values="rejection_rate", sort=False
        )
        print(f"\nwindow ({lo}, {hi}), event variance x{vr:g}: rejection rate at 5% "
              f"(effect 0 = size, 0.01 = power); n_sims={n_sims}, placebo {placebo_sims}")
        print((100 * wide).round(1).to_string())
    print(f"\n{len(grid)} designs in {elapsed:.0f} s with {args.jobs} process(es)")
    print_two_calendars(two, n_sims, elapsed)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([table, two], ignore_index=True).to_csv(args.out, index=False,
                                                          float_format="%.6g")
        print(f"wrote {args.out}")
    return 0


def print_factorial(fact: pd.DataFrame) -> None:
    size = fact.loc[fact["effect"] == 0.0].assign(tail=fact["tail_df"].fillna(0))
    wide = size.pivot_table(index="test", columns=["n_firms", "variance_ratio", "tail", "rho"],
                            values="rejection_rate", sort=False)
    worst = (100 * (wide - 0.05).abs()).max(axis=1).sort_values()
    print("\nfactorial (day 0): worst |size - 5%| in pp over all N, rho, variance, tails")
    print(worst.round(1).to_string())


def print_two_calendars(two: pd.DataFrame, n_sims: int, elapsed: float) -> None:
    wide = two.pivot_table(index=["test", "alignment"],
                           columns=["window_lo", "window_hi", "variance_ratio", "rho"],
                           values="rejection_rate", sort=False)
    print(f"\ntwo calendars (6 NY + 6 HK listings), size at 5% in %, n_sims={n_sims}")
    print((100 * wide).round(1).to_string())
    rbar = two.dropna(subset=["rbar_mean"]).groupby(["alignment", "rho"])["rbar_mean"].mean()
    print("\nmean estimated rbar (truth = rho):")
    print(rbar.round(3).to_string())
    print(f"({elapsed:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
