"""Plant statistic-level bugs one at a time and check that the test suite catches each.

Usage (from the repository root, in the project's virtual environment; not part of CI)::

    python benchmarks/mutation_check.py                 # every mutation, targeted test files
    python benchmarks/mutation_check.py --full          # the whole suite per mutation (slow)
    python benchmarks/mutation_check.py --only lamb_ct,kp_rbar_rows --jobs 2

Each mutation replaces one exact snippet of one library file in a temporary copy of the
repository (``crackdown/``, ``tests/``, ``pyproject.toml``, ``events.csv``); the copy is put first
on ``PYTHONPATH`` so the editable install of the checkout is shadowed, and pytest runs in the copy.
A control run first checks that the targeted tests pass on an unmutated copy (exit 2 if not). A
mutation is **killed** when pytest fails, **survived** when it passes, and **stale** when its
snippet is no longer found exactly once (the code changed: update the list). The script exits 1
when any mutation survives or is stale.

The list holds the four bugs of issue #18 that once survived the whole suite (the exact CAR factor
behind Patell, Kolari–Pynnönen r̄ over excluded firms, the market-adjusted sigma ddof, Lamb's
``c_t``), and the other estimators' central formulas.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


ORACLE = "tests/test_tests_oracle.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation("patell_car_factor", "crackdown/inference/parametric.py",
             "    if car_var_factor is None:\n        v = c[:, cols].sum(axis=1)",
             "    if True:\n        v = c[:, cols].sum(axis=1)",
             (ORACLE, "tests/test_inference_parametric.py"),
             "standardized CARs ignore the exact CAR forecast-variance factor"),
    Mutation("kp_rbar_rows", "crackdown/inference/parametric.py",
             "r = pairwise_residual_correlations(e[rows], min_overlap=min_overlap)",
             "r = pairwise_residual_correlations(e, min_overlap=min_overlap)",
             (ORACLE, "tests/test_inference_parametric.py"),
             "Kolari-Pynnönen r̄ over firms excluded from the statistic"),
    Mutation("ma_sigma_ddof", "crackdown/estimation/panel.py",
             '"sigma_ddof": self.n_obs - self.df_resid',
             '"sigma_ddof": self.n_params',
             (ORACLE, "tests/test_results.py"),
             "standardization ddof k (0 for market-adjusted)"),
    Mutation("lamb_ct", "crackdown/inference/parametric.py",
             "stat = float(aar[used].sum() / (sd * np.sqrt(cw[used].sum())))",
             "stat = float(aar[used].sum() / (sd * np.sqrt(used.sum())))",
             (ORACLE, "tests/test_inference_parametric.py"),
             "Lamb's window statistic without its c_t factor"),
    Mutation("kp_numerator", "crackdown/inference/parametric.py",
             "numerator = (1.0 - r) if cross_sectional_variance else 1.0",
             "numerator = 1.0",
             (ORACLE, "tests/test_inference_parametric.py"),
             "Kolari-Pynnönen BMP adjustment without (1 - r̄)"),
    Mutation("bw85_ddof", "crackdown/inference/parametric.py",
             "    sd = np.std(aar_est, ddof=ddof) if t_p > ddof else np.nan",
             "    sd = np.std(aar_est, ddof=0) if t_p > ddof else np.nan",
             (ORACLE, "tests/test_inference_parametric.py"),
             "Brown-Warner 1985 time-series sd with ddof 0"),
    Mutation("car_leverage", "crackdown/estimation/models.py",
             "        return self.sigma2 * (n_days + lev)",
             "        return self.sigma2 * n_days",
             (ORACLE, "tests/test_models.py", "tests/test_results.py"),
             "Var(CAR) without the parameter-estimation term s'(X'X)^-1 s"),
    Mutation("forecast_factor", "crackdown/estimation/ols.py",
             "        return 1.0 + ((X @ self.xtx_inv) * X).sum(axis=2)",
             "        return np.ones(X.shape[:2])",
             (ORACLE, "tests/test_models.py"),
             "daily forecast-error factor 1 + x'(X'X)^-1 x replaced by 1"),
    Mutation("battery_car_factor", "crackdown/estimation/panel.py",
             '"car_var_factor": np.where(np.isfinite(factor), factor, len(cols))}',
             '"car_var_factor": None}',
             (ORACLE,), "the battery passes no exact CAR factor to Patell/BMP/KP"),
    Mutation("battery_lamb_factor", "crackdown/estimation/battery.py",
             "forecast_var_factor=panel.forecast_var_factor)",
             "forecast_var_factor=np.where(np.isnan(panel.forecast_var_factor), np.nan, 1.0))",
             (ORACLE,), "the battery passes c_t = 1 to Lamb"),
    Mutation("patell_k_eff", "crackdown/inference/parametric.py",
             '    k = np.maximum(_per_firm("n_params", n_params, n), 1)\n    ddof = k if',
             '    k = _per_firm("n_params", n_params, n)\n    ddof = k if',
             (ORACLE,), "Patell's k without max(k, 1) (market-adjusted: k = 0)"),
    Mutation("bw80_df", "crackdown/inference/parametric.py",
             "dof = float(t_i.mean() - 1) if df is None else float(df)",
             "dof = float(t_i.mean()) if df is None else float(df)",
             (ORACLE,), "Brown-Warner 1980 df = mean T instead of mean T - 1"),
    Mutation("gsign_pooled", "crackdown/inference/nonparametric.py",
             'p_hat: Literal["firm_average", "pooled"] = "firm_average",',
             'p_hat: Literal["firm_average", "pooled"] = "pooled",',
             (ORACLE,), "generalized sign with the pooled share of positive ARs"),
    Mutation("corrado_centering", "crackdown/inference/nonparametric.py",
             'centering: Literal["firm", "pooled"] = "firm",',
             'centering: Literal["firm", "pooled"] = "pooled",',
             (ORACLE,), "Corrado ranks centred on the pooled mean"),
    Mutation("corrado_divisor", "crackdown/inference/nonparametric.py",
             'sd_divisor: SdDivisor = "mean_firm_obs",\n    centering',
             'sd_divisor: SdDivisor = "days",\n    centering',
             (ORACLE,), "Corrado rank sd over days instead of the mean firm observations"),
    Mutation("wilcoxon_approx", "crackdown/inference/nonparametric.py",
             'method = "exact" if (n <= 50 and not ties) else "approx"',
             'method = "approx"', (ORACLE,), "Wilcoxon always by the normal approximation"),
    Mutation("grank_T", "crackdown/inference/grank.py",
             "    stat = z * np.sqrt((big_t - 2) / denom) if denom > 0",
             "    stat = z * np.sqrt((big_t - 1) / denom) if denom > 0",
             (ORACLE, "tests/test_grank.py"), "GRANK-T with T - 1 degrees of freedom"),
    Mutation("sign_count", "crackdown/inference/nonparametric.py",
             "    w = int((car[ok] > 0).sum())\n    stat = float((w - 0.5 * n)",
             "    w = int((car[ok] >= 0).sum()) + 1\n    stat = float((w - 0.5 * n)",
             (ORACLE,), "sign test counts one positive too many"),
    Mutation("sw_denominator", "crackdown/estimation/thin_trading.py",
             "/ (1.0 + 2.0 * rho)", "/ (1.0 + rho)",
             ("tests/test_models_peer.py",),
             "Scholes-Williams beta divided by 1 + rho instead of 1 + 2 rho"),
    Mutation("dimson_lead", "crackdown/estimation/thin_trading.py",
             "            beta = slopes[0] + slopes[1] + slopes[2]\n            beta = np.where",
             "            beta = slopes[0] + slopes[1]\n            beta = np.where",
             ("tests/test_models_peer.py",),
             "Dimson beta without the lead coefficient"),
    Mutation("garch_horizon", "crackdown/estimation/garch.py",
             "            path[s] = omega + (a + b) * path[s - 1]",
             "            path[s] = path[s - 1]",
             ("tests/test_models_peer.py",),
             "GARCH multi-step variance forecast frozen at one step"),
    Mutation("world_side", "crackdown/estimation/layout.py",
             'side = "left" if other == "XHKG" else "right"',
             'side = "right" if other == "XHKG" else "left"',
             ("tests/test_models_peer.py",),
             "international model: the other market's sessions assigned one session off"),
    Mutation("bh_monotone", "crackdown/analyses/multiple_testing.py",
             "q[order] = np.minimum(1.0, np.minimum.accumulate(raw[::-1])[::-1])",
             "q[order] = np.minimum(1.0, raw)",
             ("tests/test_multiple_testing.py",),
             "Benjamini-Hochberg q-values without the step-up minimum"),
    Mutation("spillover_sd", "crackdown/analyses/spillovers.py",
             "np.std(p_est, ddof=1) * np.sqrt(used.sum())",
             "np.std(p_est, ddof=0) * np.sqrt(used.sum())",
             ("tests/test_spillovers.py",),
             "portfolio-of-differences sd with ddof 0"),
    Mutation("grank_sd", "crackdown/inference/grank.py",
             "    sd_scar = float(np.std(scar[rows], ddof=1))",
             "    sd_scar = float(np.std(scar[rows], ddof=0))",
             (ORACLE, "tests/test_grank.py"),
             "GRANK: cross-sectional sd of the SCARs with ddof 0"),
)


def _copy_repo(dest: Path) -> None:
    for name in ("crackdown", "tests", "benchmarks"):
        shutil.copytree(ROOT / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results"))
    for name in ("pyproject.toml", "events.csv", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    if (ROOT / "notebooks").is_dir():
        shutil.copytree(ROOT / "notebooks", dest / "notebooks")


def run_one(m: Mutation, full: bool, workers: int) -> tuple[str, str]:
    """Apply ``m`` in a temporary copy and run the tests; return (outcome, detail)."""
    with tempfile.TemporaryDirectory(prefix=f"mut_{m.name}_") as tmp:
        dest = Path(tmp)
        _copy_repo(dest)
        if m.path:  # the control run (no path) leaves the copy as it is
            target = dest / m.path
            text = target.read_text(encoding="utf-8")
            if text.count(m.old) != 1:
                return "stale", f"snippet found {text.count(m.old)} times in {m.path}"
            target.write_text(text.replace(m.old, m.new), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(dest), MPLBACKEND="Agg")
        tests = ["tests"] if full else [t for t in m.tests if (dest / t).exists()]
        if not tests:
            return "stale", f"none of {m.tests} exists"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               *([] if m.name == "control" else ["-x"]),
               *(["-n", str(workers)] if workers > 1 else ["-p", "no:xdist"]), *tests]
        check = subprocess.run(
            [sys.executable, "-c", "import crackdown, sys; print(crackdown.__file__)"],
            cwd=dest, env=env, capture_output=True, text=True, check=False)
        if not check.stdout.strip().startswith(str(dest)):
            return "error", f"the copy is not imported ({check.stdout.strip()})"
        proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, check=False)
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        return ("killed" if proc.returncode != 0 else "survived"), last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated mutation names")
    parser.add_argument("--full", action="store_true", help="run the whole suite per mutation")
    parser.add_argument("--jobs", type=int, default=1, help="mutations run in parallel")
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers each")
    args = parser.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
        chosen = tuple(m for m in MUTATIONS if m.name in names)
    # control: the targeted tests must pass on the unmutated copy, else a "killed" means nothing
    control = Mutation("control", "", "", "", tuple(dict.fromkeys(
        t for m in chosen for t in m.tests)), "no mutation")
    outcome, detail = run_one(control, args.full, args.workers)
    if outcome != "survived":
        print(f"control run failed ({outcome}): {detail}; fix the suite first")
        return 2
    print(f"control   the unmutated copy passes the targeted tests  [{detail}]")
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        results = list(pool.map(lambda m: run_one(m, args.full, args.workers), chosen))
    bad = 0
    for m, (outcome, detail) in zip(chosen, results):
        bad += outcome != "killed"
        print(f"{outcome:9s} {m.name:18s} {m.what}  [{detail}]")
    print(f"{len(chosen) - bad} of {len(chosen)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
