"""Batched event-study engine vs a per-firm-event loop of statsmodels OLS (not a test).

Market model, T = 240 estimation days (about 2% missing at random), L = 3 event days, on
synthetic data. For each size the script

1. times the batched engine (:func:`crackdown.estimation.models.fit_normal_model`: one batched solve for
   every firm-event, then event-window abnormal returns and forecast-variance factors),
   best of ``--repeats`` runs;
2. times the baseline: a Python loop over firm-events, each ``statsmodels.OLS(y, X).fit()`` on
   its complete cases, residuals and ``predict`` on the event window (the full loop, no
   extrapolation);
3. checks that both give the same abnormal returns (max |diff| < 1e-10, estimation residuals
   and event window);
4. reports the peak memory of the batched engine (tracemalloc).

It ends with ``speedup: X`` for the largest size. Run single-threaded::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        /work/venv/bin/python benchmarks/engine_speed.py
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time
import tracemalloc

import numpy as np
import statsmodels.api as sm

from crackdown.estimation.models import fit_normal_model, model_spec

T_EST, L_EVENT = 240, 3


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    m_est = rng.normal(0.0004, 0.012, (n, T_EST))
    m_ev = rng.normal(0.0004, 0.012, (n, L_EVENT))
    alpha = rng.normal(0.0, 0.001, (n, 1))
    beta = rng.normal(1.0, 0.4, (n, 1))
    y_est = alpha + beta * m_est + rng.normal(0, 0.02, (n, T_EST))
    y_ev = alpha + beta * m_ev + rng.normal(0, 0.03, (n, L_EVENT))
    y_est[rng.random((n, T_EST)) < 0.02] = np.nan  # missing days
    # (N, T, k) arrays laid out regressor-major, as crackdown.estimation.study builds them
    X_est = np.moveaxis(np.stack([np.ones((n, T_EST)), m_est]), 0, 2)
    X_ev = np.moveaxis(np.stack([np.ones((n, L_EVENT)), m_ev]), 0, 2)
    mask = np.ones((n, T_EST), dtype=bool)
    return y_est, X_est, mask, y_ev, X_ev


def batched(spec, y_est, X_est, mask, y_ev, X_ev):
    return fit_normal_model(spec, y_est, X_est, mask, y_ev, X_ev)


def statsmodels_loop(y_est, X_est, y_ev, X_ev):
    n = y_est.shape[0]
    ar_ev = np.empty((n, L_EVENT))
    resid = np.full((n, T_EST), np.nan)
    for i in range(n):
        use = np.isfinite(y_est[i])
        res = sm.OLS(y_est[i, use], X_est[i, use]).fit()
        resid[i, use] = res.resid
        ar_ev[i] = y_ev[i] - res.predict(X_ev[i])
    return ar_ev, resid


def run(sizes: list[int], repeats: int) -> float:
    spec = model_spec("market")
    speedup = float("nan")
    print(f"market model, T={T_EST}, L={L_EVENT}, threads: "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, numpy {np.__version__}")
    print(f"{'firm-events':>12} {'batched s':>10} {'statsmodels s':>14} {'speedup':>8} "
          f"{'max|dAR|':>10} {'peak MiB':>9}")
    for n in sizes:
        data = synthetic(n)
        batched(spec, *data)  # warm-up
        best = min(_timed(lambda d=data: batched(spec, *d)) for _ in range(repeats))
        t0 = time.perf_counter()
        ar_ref, resid_ref = statsmodels_loop(data[0], data[1], data[3], data[4])
        loop_s = time.perf_counter() - t0
        fit = batched(spec, *data)
        diff = max(np.nanmax(np.abs(fit.ar_event - ar_ref)),
                   np.nanmax(np.abs(fit.ar_est - resid_ref)))
        assert np.array_equal(np.isnan(fit.ar_est), np.isnan(resid_ref))
        assert diff < 1e-10, f"batched and statsmodels ARs differ by {diff:g}"
        tracemalloc.start()
        batched(spec, *data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        speedup = loop_s / best
        print(f"{n:>12,} {best:>10.4f} {loop_s:>14.3f} {speedup:>8.1f} {diff:>10.2e} "
              f"{peak / 2**20:>9.1f}")
    return speedup


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000",
                        help="comma-separated numbers of firm-events (default 1000,10000)")
    parser.add_argument("--repeats", type=int, default=5, help="batched timing: best of N")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    speedup = run(sizes, args.repeats)
    print(f"speedup: {speedup:.1f}")


if __name__ == "__main__":
    main()
