r"""Size and power of event-study tests by Monte Carlo, for clustered events.

Data-generating process (one simulated sample)
----------------------------------------------
``N`` firms share one calendar and one event date (a clustered event). Over ``D`` days

.. math::

    m_t \sim N(\mu_m, \sigma_m^2),\qquad
    r_{it} = \alpha_i + \beta_i m_t + e_{it},\qquad
    e_{it} = s_i\,v_t\,\big(\sqrt{\rho}\,f_t + \sqrt{1-\rho}\,u_{it}\big),

with ``f_t`` (a common "China-tech" shock, *not* the market) and ``u_it`` iid ``N(0, 1)`` (or,
with ``tail_df = ν``, Student t with ν degrees of freedom scaled to unit variance,
``t_ν sqrt((ν - 2)/ν)``: fat tails), so
the residuals of two firms have correlation ``rho`` (equicorrelated, one-factor structure) and
firm volatility ``s_i``. ``v_t = sqrt(variance_ratio)`` on event-window days and 1 otherwise
(event-induced variance, keeping ``rho``). The true abnormal return on day 0 is ``effect`` for
every firm (added to ``r_i0``). Firm parameters are redrawn for each sample:
``alpha_i ~ N(0, alpha_sd^2)``, ``beta_i ~ U(beta_range)``, ``s_i ~ U(sigma_range)``.

The last ``L`` days are the event window (relative days ``window[0]..window[1]``), the
``n_est`` days immediately before it the estimation window, and, when ``n_history > 0``, extra
earlier days give room for placebo (pseudo) events. The market model is fitted by OLS per firm
on the estimation window (vectorised over simulations and firms); the resulting arrays follow
the inference contract (``ar_event`` (N, L), ``ar_est`` (N, T), ``n_obs``, ``n_params = 2``,
``forecast_var_factor`` = ``1 + 1/T + (m_d - mbar)^2 / S_mm``).

Rejection rates
---------------
A *test* is a callable ``f(sample: EventSample) -> float | Mapping[str, float]`` returning a
two-sided p-value (or several, by name). The rejection rate is the share of samples with
``p < alpha``; its Monte Carlo standard error is ``sqrt(rate (1 - rate) / n_sims)``. All tests of
one design see the same simulated samples (common random numbers). Tests may be evaluated on a
leading subsample only (``subsample={name: n}``) when they are expensive (placebo).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = [
    "EventSample",
    "SimulationDesign",
    "default_tests",
    "inference_tests",
    "placebo_tests",
    "rejection_rates",
    "run_grid",
    "simulate_samples",
    "sur_tests",
]

TestFn = Callable[["EventSample"], "float | Mapping[str, float]"]


@dataclass(frozen=True)
class SimulationDesign:
    """One cell of the Monte Carlo design (see the module docstring for the DGP)."""

    n_firms: int = 30
    n_est: int = 250
    window: tuple[int, int] = (0, 0)
    rho: float = 0.0
    effect: float = 0.0
    variance_ratio: float = 1.0
    n_history: int = 0
    market_mean: float = 0.0005
    market_sd: float = 0.01
    alpha_sd: float = 0.0005
    beta_range: tuple[float, float] = (0.5, 1.5)
    sigma_range: tuple[float, float] = (0.01, 0.03)
    tail_df: float | None = None

    def __post_init__(self) -> None:
        lo, hi = self.window
        if not lo <= 0 <= hi:
            raise StudyConfigError(f"window {self.window} must contain day 0 (lo <= 0 <= hi)")
        if not 0.0 <= self.rho < 1.0:
            raise StudyConfigError(f"rho={self.rho} must be in [0, 1)")
        if self.variance_ratio <= 0:
            raise StudyConfigError(f"variance_ratio={self.variance_ratio} must be positive")
        if self.tail_df is not None and self.tail_df <= 2:
            raise StudyConfigError(f"tail_df={self.tail_df} must be > 2 (finite variance)")
        if self.n_est < 10 or self.n_firms < 2:
            raise StudyConfigError("need n_est >= 10 and n_firms >= 2")

    @property
    def length(self) -> int:
        """``L``, event-window length."""
        return self.window[1] - self.window[0] + 1

    @property
    def n_days(self) -> int:
        """``D = n_history + n_est + L``."""
        return self.n_history + self.n_est + self.length


@dataclass(frozen=True)
class EventSample:
    """One simulated clustered event, in the shapes of the inference contract.

    ``returns``/``market`` cover all ``D`` simulated days; day 0 is column ``event_pos``; the
    estimation window is columns ``est_start .. est_start + n_est - 1``. ``seed`` is a
    per-sample integer drawn from the simulation stream, for tests that randomise (placebo).
    """

    ar_event: np.ndarray
    ar_est: np.ndarray
    n_obs: np.ndarray
    n_params: int
    forecast_var_factor: np.ndarray
    rel_days: np.ndarray
    returns: np.ndarray
    market: np.ndarray
    event_pos: int
    est_start: int
    design: SimulationDesign
    seed: int = 0

    @property
    def event_positions(self) -> np.ndarray:
        """Columns of the event-window days in :attr:`returns`."""
        return self.event_pos + self.rel_days

    def arrays(self) -> dict:
        """Keyword arguments of the inference contract."""
        return {
            "ar_event": self.ar_event,
            "ar_est": self.ar_est,
            "n_obs": self.n_obs,
            "n_params": self.n_params,
            "forecast_var_factor": self.forecast_var_factor,
        }


def _simulate_batch(design: SimulationDesign, n: int, rng: np.random.Generator):
    """Returns (S, N, D) and market (S, D) for ``n`` samples."""
    d, nf = design.n_days, design.n_firms
    m = rng.normal(design.market_mean, design.market_sd, (n, d))
    alpha = rng.normal(0.0, design.alpha_sd, (n, nf, 1))
    beta = rng.uniform(*design.beta_range, (n, nf, 1))
    s = rng.uniform(*design.sigma_range, (n, nf, 1))
    if design.tail_df is None:
        f = rng.standard_normal((n, 1, d))
        u = rng.standard_normal((n, nf, d))
    else:  # unit-variance Student t
        scale = np.sqrt((design.tail_df - 2.0) / design.tail_df)
        f = rng.standard_t(design.tail_df, (n, 1, d)) * scale
        u = rng.standard_t(design.tail_df, (n, nf, d)) * scale
    e = s * (np.sqrt(design.rho) * f + np.sqrt(1.0 - design.rho) * u)
    length = design.length
    if design.variance_ratio != 1.0:
        e[:, :, d - length :] *= np.sqrt(design.variance_ratio)
    y = alpha + beta * m[:, None, :] + e
    if design.effect:
        y[:, :, d - length - design.window[0]] += design.effect  # day 0
    return y, m


def _fit_market_model(design: SimulationDesign, y: np.ndarray, m: np.ndarray):
    """Vectorised OLS market model over (S, N): returns ar_est, ar_event, fvf."""
    d, length, t = design.n_days, design.length, design.n_est
    est = slice(d - length - t, d - length)
    ys, ms = y[:, :, est], m[:, None, est]
    ye, me = y[:, :, d - length :], m[:, None, d - length :]
    mbar = ms.mean(axis=2, keepdims=True)
    ybar = ys.mean(axis=2, keepdims=True)
    dm = ms - mbar
    smm = (dm * dm).sum(axis=2, keepdims=True)
    beta = (dm * (ys - ybar)).sum(axis=2, keepdims=True) / smm
    alpha = ybar - beta * mbar
    ar_est = ys - alpha - beta * ms
    ar_event = ye - alpha - beta * me
    fvf = 1.0 + 1.0 / t + (me - mbar) ** 2 / smm  # (S, 1, L)
    return ar_est, ar_event, np.broadcast_to(fvf, ar_event.shape)


def simulate_samples(
    design: SimulationDesign,
    n_sims: int,
    seed: int | np.random.Generator | None = None,
    *,
    batch_size: int = 250,
) -> Iterator[EventSample]:
    """Yield ``n_sims`` simulated :class:`EventSample` objects (generated in vectorised batches).

    Deterministic given ``seed`` and ``batch_size``.
    """
    rng = np.random.default_rng(seed)
    rel_days = np.arange(design.window[0], design.window[1] + 1)
    d, length = design.n_days, design.length
    event_pos = d - length - design.window[0]
    n_obs = np.full(design.n_firms, design.n_est)
    done = 0
    while done < n_sims:
        n = min(batch_size, n_sims - done)
        y, m = _simulate_batch(design, n, rng)
        ar_est, ar_event, fvf = _fit_market_model(design, y, m)
        seeds = rng.integers(0, 2**63 - 1, size=n)
        for s in range(n):
            yield EventSample(
                ar_event=ar_event[s],
                ar_est=ar_est[s],
                n_obs=n_obs,
                n_params=2,
                forecast_var_factor=np.ascontiguousarray(fvf[s]),
                rel_days=rel_days,
                returns=y[s],
                market=m[s],
                event_pos=event_pos,
                est_start=d - length - design.n_est,
                design=design,
                seed=int(seeds[s]),
            )
        done += n


def rejection_rates(
    tests: Mapping[str, TestFn],
    design: SimulationDesign,
    n_sims: int,
    seed: int | np.random.Generator | None = None,
    *,
    alpha: float = 0.05,
    subsample: Mapping[str, int] | None = None,
    batch_size: int = 250,
) -> pd.DataFrame:
    """Monte Carlo rejection rates of ``tests`` at level ``alpha`` for one design.

    Parameters
    ----------
    tests : mapping of name to callable
        ``f(sample) -> p-value`` or ``-> {name: p-value}`` (several tests from one fit).
    design : SimulationDesign
    n_sims : int
        Samples simulated (shared by all tests).
    seed : int or Generator
    alpha : float
        Nominal level; a test rejects when ``p < alpha``.
    subsample : mapping of name to int, optional
        Evaluate test ``name`` only on the first ``n`` samples (expensive tests).
    batch_size : int
        Samples generated per vectorised batch.

    Returns
    -------
    DataFrame
        One row per (reported) test: ``test, rho, effect, variance_ratio, window_lo,
        window_hi, n_firms, n_est, n_sims, rejections, rejection_rate, mc_se, seconds,
        tail_df`` (NaN for normal residuals).
        A NaN p-value counts as a non-rejection and is reported in ``n_nan``.
    """
    subsample = dict(subsample or {})
    unknown = set(subsample) - set(tests)
    if unknown:
        raise StudyConfigError(f"subsample names {sorted(unknown)} are not among the tests")
    rejections: dict[str, int] = {}
    counts: dict[str, int] = {}
    nans: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for i, sample in enumerate(simulate_samples(design, n_sims, seed, batch_size=batch_size)):
        for name, fn in tests.items():
            if i >= subsample.get(name, n_sims):
                continue
            t0 = time.perf_counter()
            out = fn(sample)
            elapsed = time.perf_counter() - t0
            items = out.items() if isinstance(out, Mapping) else [(name, out)]
            for key, p in items:
                p = float(p)
                counts[key] = counts.get(key, 0) + 1
                nans[key] = nans.get(key, 0) + int(not np.isfinite(p))
                rejections[key] = rejections.get(key, 0) + int(np.isfinite(p) and p < alpha)
                seconds[key] = seconds.get(key, 0.0) + elapsed / len(items)
    rows = []
    for key, n in counts.items():
        rate = rejections[key] / n
        rows.append(
            {
                "test": key,
                "rho": design.rho,
                "effect": design.effect,
                "variance_ratio": design.variance_ratio,
                "window_lo": design.window[0],
                "window_hi": design.window[1],
                "n_firms": design.n_firms,
                "n_est": design.n_est,
                "n_sims": n,
                "rejections": rejections[key],
                "rejection_rate": rate,
                "mc_se": float(np.sqrt(rate * (1.0 - rate) / n)),
                "n_nan": nans[key],
                "seconds": seconds[key],
                "tail_df": np.nan if design.tail_df is None else float(design.tail_df),
            }
        )
    return pd.DataFrame(rows)


def run_grid(
    tests: Mapping[str, TestFn],
    designs: Sequence[SimulationDesign],
    n_sims: int,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    subsample: Mapping[str, int] | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """:func:`rejection_rates` for every design (design ``j`` uses seed ``[seed, j]``).

    ``n_jobs > 1`` runs designs in separate processes (``tests`` must then be picklable, e.g.
    built by :func:`default_tests`). The result does not depend on ``n_jobs``.
    """
    seeds = [np.random.SeedSequence([seed, j]) for j in range(len(designs))]
    args = [(tests, design, n_sims, np.random.default_rng(s), alpha, subsample)
            for design, s in zip(designs, seeds)]
    if n_jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            frames = list(pool.map(_run_one, args))
    else:
        frames = [_run_one(a) for a in args]
    return pd.concat(frames, ignore_index=True)


def _run_one(args) -> pd.DataFrame:
    tests, design, n_sims, rng, alpha, subsample = args
    return rejection_rates(tests, design, n_sims, rng, alpha=alpha, subsample=subsample)


# --------------------------------------------------------------------------------------------
# Ready-made test sets (picklable callables)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InferenceTest:
    """Adapter: call an inference function on the whole event window, return its p-value."""

    module: str
    function: str
    kind: str  # "ar" (ar_event only), "est" (+ar_est), "std" (+n_params, fvf), "patell" (+n_obs)
    kwargs: dict = field(default_factory=dict)

    def __call__(self, sample: EventSample) -> float:
        import importlib

        fn = getattr(importlib.import_module(self.module), self.function)
        if self.kind == "ar":
            res = fn(sample.ar_event, **self.kwargs)
        elif self.kind == "est":
            res = fn(sample.ar_event, sample.ar_est, **self.kwargs)
        elif self.kind == "std":
            res = fn(
                sample.ar_event, sample.ar_est, n_params=sample.n_params,
                forecast_var_factor=sample.forecast_var_factor, **self.kwargs,
            )
        elif self.kind == "patell":
            res = fn(
                sample.ar_event, sample.ar_est, n_obs=sample.n_obs, n_params=sample.n_params,
                forecast_var_factor=sample.forecast_var_factor, **self.kwargs,
            )
        elif self.kind == "lamb":
            res = fn(
                sample.ar_event, sample.ar_est,
                forecast_var_factor=sample.forecast_var_factor, **self.kwargs,
            )
        else:  # pragma: no cover - guarded by inference_tests
            raise StudyConfigError(f"unknown adapter kind {self.kind!r}")
        return res.pvalue


_INFERENCE_SPECS: dict[str, tuple[str, str, str]] = {
    # name: (module, function, adapter kind)
    "cross_sectional_t": ("parametric", "cross_sectional_t", "ar"),
    "brown_warner_1980": ("parametric", "brown_warner_1980", "est"),
    "brown_warner_1985": ("parametric", "brown_warner_1985", "est"),
    "patell_z": ("parametric", "patell_z", "patell"),
    "bmp_t": ("parametric", "bmp_t", "std"),
    "kolari_pynnonen_bmp": ("parametric", "kolari_pynnonen_bmp", "std"),
    "kolari_pynnonen_patell": ("parametric", "kolari_pynnonen_patell", "patell"),
    "lamb": ("parametric", "lamb_test", "lamb"),
    "corrado_rank": ("nonparametric", "corrado_rank_test", "est"),
    "grank_t": ("grank", "grank_t", "std"),
    "generalized_sign": ("nonparametric", "generalized_sign_test", "est"),
    "wilcoxon_signed_rank": ("nonparametric", "wilcoxon_signed_rank_test", "ar"),
}


def inference_tests(names: Sequence[str] | None = None) -> dict[str, TestFn]:
    """Adapters for the statistics of :mod:`crackdown.inference` (parametric/nonparametric).

    Every test is applied to the whole event window (the CAR over ``L`` days; the AR when
    ``L = 1``), with the market-model ``n_params = 2``, ``n_obs`` and forecast-error factors.
    Names: ``cross_sectional_t, brown_warner_1980, brown_warner_1985, patell_z, bmp_t,
    kolari_pynnonen_bmp, kolari_pynnonen_patell, lamb, corrado_rank, grank_t, generalized_sign,
    wilcoxon_signed_rank``.
    """
    names = list(_INFERENCE_SPECS) if names is None else list(names)
    out: dict[str, TestFn] = {}
    for name in names:
        if name not in _INFERENCE_SPECS:
            raise StudyConfigError(f"unknown test {name!r}; choose from {list(_INFERENCE_SPECS)}")
        module, function, kind = _INFERENCE_SPECS[name]
        out[name] = _InferenceTest(f"crackdown.inference.{module}", function, kind)
    return out


@dataclass(frozen=True)
class _SurTests:
    """SUR event-dummy regression (market model) over the estimation + event window."""

    include_all_gamma: bool = True

    def __call__(self, sample: EventSample) -> dict[str, float]:
        from crackdown.inference.dummy_regression import event_dummy_regression

        start = sample.est_start
        res = event_dummy_regression(
            sample.returns[:, start:],
            sample.market[start:],
            sample.event_positions - start,
            rel_days=sample.rel_days,
        )
        out = {"sur_caar": res.tests["caar"].pvalue}
        if self.include_all_gamma:
            out["sur_all_gamma_F"] = res.tests["all_gamma"].pvalue
            out["sur_all_gamma_chi2"] = res.tests["all_gamma"].extra["pvalue_chi2"]
        return out


def sur_tests(include_all_gamma: bool = True) -> dict[str, TestFn]:
    """``sur_caar`` (Wald on the CAAR, F(1, nu)) and optionally the all-gamma tests
    (``sur_all_gamma_F``: Lawley-Hotelling F; ``sur_all_gamma_chi2``: chi-square form)."""
    return {"sur": _SurTests(include_all_gamma)}


@dataclass(frozen=True)
class _PlaceboTest:
    n_draws: int
    stat: str
    buffer: int

    def __call__(self, sample: EventSample) -> float:
        from crackdown.inference.placebo import placebo_from_returns

        design = sample.design
        w0, w1 = design.window
        # pseudo events use the same relative estimation window as the real one
        estimation = (w0 - design.n_est, w0 - 1)
        res = placebo_from_returns(
            sample.returns, sample.market, sample.event_pos, estimation, (w0, w1),
            stat=self.stat, n_draws=self.n_draws, seed=sample.seed, buffer=self.buffer,
            min_estimation_obs=design.n_est,
        )
        return res.pvalue


def placebo_tests(n_draws: int = 99, stat: str = "caar_portfolio", buffer: int = 5) -> dict:
    """Placebo test (pseudo event dates drawn from the ``n_history`` pre-event days).

    Needs a design with ``n_history >= n_draws + buffer + L`` or so; the pseudo event
    windows never touch the real one (``buffer`` days apart).
    """
    return {f"placebo_{stat}": _PlaceboTest(n_draws, stat, buffer)}


def default_tests(
    *, placebo: bool = True, placebo_draws: int = 99, placebo_stat: str = "caar_portfolio"
) -> dict[str, TestFn]:
    """All INFERENCE statistics + the SUR dummy regression (+ placebo)."""
    tests: dict[str, TestFn] = {}
    tests.update(inference_tests())
    tests.update(sur_tests())
    if placebo:
        tests.update(placebo_tests(placebo_draws, placebo_stat))
    return tests


def design_table(designs: Sequence[SimulationDesign]) -> pd.DataFrame:
    """The designs as a DataFrame (for documentation)."""
    return pd.DataFrame([asdict(d) for d in designs])
