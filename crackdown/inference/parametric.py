"""Parametric event-study tests on arrays of abnormal returns.

Every function works on plain numpy arrays and returns a :class:`~crackdown.inference.base.TestResult`
with a two-sided p-value.

Inputs (shared by all tests)
----------------------------
ar_event : (N, L) array
    Event-window abnormal returns, one row per firm-event, one column per event day; NaN = missing.
ar_est : (N, T) array
    Estimation-window abnormal returns / regression residuals on the same rows; NaN = missing.
    The estimation and event days must not overlap.
window : None, int or (lo, hi)
    Which event days are tested: ``None`` = all ``L`` columns, an ``int`` = one day, a tuple =
    the inclusive sub-window whose cumulative abnormal return (CAR) is tested. Numbers are
    0-based column positions, or relative event days when ``rel_days`` (shape ``(L,)``) is given.
    See :func:`crackdown.inference.base.resolve_window`.
n_obs : (N,) array, optional
    Estimation observations used to fit each firm's normal-return model (default: the count of
    non-NaN values in the row of ``ar_est``).
n_params : int or (N,) array
    Parameters of the normal-return model ``k`` (2 for the market model, 1 for constant mean,
    0 for market-adjusted returns).
forecast_var_factor : (N, L) array, optional
    ``c_it = 1 + x_t'(X'X)^{-1} x_t``, the forecast-error inflation of the variance of an
    out-of-sample abnormal return (market model: ``1 + 1/T + (m_t - m̄)^2 / Σ(m - m̄)^2``, see
    :func:`market_model_var_factor`). ``None`` means 1 (no correction).
car_var_factor : (N,) array, optional
    Exact variance factor of a firm's CAR over the tested window:
    ``V_i = L_w + 1' X_w (X'X)^{-1} X_w' 1`` (see
    :func:`crackdown.inference.single_firm.ols_forecast_matrix`). When omitted the tests use the
    diagonal sum ``Σ_{t in w} c_it``, which drops the (order 1/T) covariances between the
    forecast errors of different days.

Missing data
------------
Firm-level CAR tests (cross-sectional t, Brown-Warner 1980, Patell, BMP, Kolari-Pynnönen) use
the firms whose abnormal returns are complete over the tested window; the others are counted in
``extra["n_excluded_missing"]``. Portfolio tests (Brown-Warner 1985, Lamb) average over the
firms available on each day, as an equally weighted portfolio would.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from crackdown.errors import StudyConfigError
from crackdown.inference.base import (
    TestResult,
    _array_key,
    _nanmean_safe,
    _remembered,
    as_matrix,
    centered_variance,
    resolve_window,
    two_sided_pvalue,
    window_cars,
)

__all__ = [
    "average_residual_correlation",
    "bmp_t",
    "boehmer_musumeci_poulsen",
    "brown_warner_1980",
    "brown_warner_1985",
    "cross_sectional_t",
    "estimation_sigma",
    "kolari_pynnonen_adjust",
    "kolari_pynnonen_bmp",
    "kolari_pynnonen_factor",
    "kolari_pynnonen_patell",
    "lamb_test",
    "market_model_var_factor",
    "pairwise_residual_correlations",
    "patell_z",
    "portfolio_t",
    "standardized_abnormal_returns",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _check_rows(ar_event: np.ndarray, ar_est: np.ndarray | None) -> None:
    if ar_est is not None and ar_est.shape[0] != ar_event.shape[0]:
        raise StudyConfigError(
            f"ar_est has {ar_est.shape[0]} rows but ar_event has {ar_event.shape[0]}; "
            "both need one row per firm-event in the same order."
        )


def _prepare(ar_event, ar_est, window, rel_days):
    """Validate the event and estimation arrays and resolve the window to column positions."""
    ar = as_matrix("ar_event", ar_event)
    e = as_matrix("ar_est", ar_est)
    _check_rows(ar, e)
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    return ar, e, cols, label


def _per_firm(name: str, value, n: int, *, dtype=float) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype=dtype)
    if arr.shape != (n,):
        raise StudyConfigError(f"{name} must be a scalar or have shape ({n},); got {arr.shape}.")
    return arr


def _window_cars(ar_event: np.ndarray, cols: np.ndarray):
    """CAR over ``cols`` for firms complete on those days; returns (car, mask, n_excluded)."""
    return window_cars(ar_event, cols)


def _n_obs(ar_est: np.ndarray, n_obs) -> np.ndarray:
    if n_obs is None:
        return np.sum(~np.isnan(ar_est), axis=1).astype(float)
    return _per_firm("n_obs", n_obs, ar_est.shape[0])


def _factor(forecast_var_factor, shape) -> np.ndarray:
    if forecast_var_factor is None:
        return np.ones(shape)
    c = as_matrix("forecast_var_factor", forecast_var_factor)
    if c.shape != shape:
        raise StudyConfigError(
            f"forecast_var_factor has shape {c.shape}; it must match ar_event {shape}."
        )
    if np.nanmin(c) <= 0.0:
        raise StudyConfigError(
            "forecast_var_factor must be > 0: it is Var(AR_t) / sigma2 (1 + x'(X'X)^-1 x for "
            "OLS models, h_t / sigma2 for GARCH); got a value "
            f"{np.nanmin(c):.6g}. Pass the variance factor, not its square root."
        )
    return c


def estimation_sigma(ar_est, ddof: int | np.ndarray = 1) -> np.ndarray:
    """Per-firm residual standard deviation over the estimation window.

    ``s_i = sqrt( Σ_t (e_it - ē_i)^2 / (T_i - ddof) )`` over the non-NaN days. For OLS residuals
    ``ē_i = 0`` so this equals the regression standard error when ``ddof = k``.

    Parameters
    ----------
    ar_est : (N, T) array
    ddof : int or (N,) array
        Degrees of freedom removed (1 = sample sd; ``k`` = unbiased regression variance).

    Returns
    -------
    (N,) array; NaN where ``T_i <= ddof``.
    """
    e = as_matrix("ar_est", ar_est)
    return np.sqrt(centered_variance(e, ddof))


def standardized_abnormal_returns(
    ar_event,
    ar_est,
    *,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | np.ndarray | None = None,
    forecast_var_factor=None,
) -> np.ndarray:
    """Patell standardized abnormal returns ``SAR_it = AR_it / (s_i sqrt(c_it))``.

    ``s_i`` is :func:`estimation_sigma` with ``ddof = sigma_ddof`` (default ``max(n_params, 1)``,
    the unbiased regression variance; ``s_i`` is centred, so market-adjusted returns with k = 0
    still lose one degree of freedom; estudy2 uses 1) and ``c_it`` the forecast-error factor
    (1 when ``forecast_var_factor`` is None).

    Returns
    -------
    (N, L) array (NaN where the AR is missing).
    """
    ar = as_matrix("ar_event", ar_event)
    e = as_matrix("ar_est", ar_est)
    _check_rows(ar, e)
    k = np.maximum(_per_firm("n_params", n_params, ar.shape[0]), 1)
    ddof = k if sigma_ddof is None else _per_firm("sigma_ddof", sigma_ddof, ar.shape[0])
    s = np.sqrt(centered_variance(e, ddof))
    c = _factor(forecast_var_factor, ar.shape)
    return ar / (s[:, None] * np.sqrt(c))


def _scar(ar, e, cols, *, n_params, sigma_ddof, forecast_var_factor, car_var_factor):
    """Standardized CARs over ``cols``: CAR_i / (s_i sqrt(V_i))."""
    n = ar.shape[0]
    # s_i is taken around the sample mean, so at least one degree of freedom is used even for
    # market-adjusted returns (k = 0): k_eff = max(k, 1).
    k = np.maximum(_per_firm("n_params", n_params, n), 1)
    ddof = k if sigma_ddof is None else _per_firm("sigma_ddof", sigma_ddof, n)
    s = np.sqrt(centered_variance(e, ddof))
    c = _factor(forecast_var_factor, ar.shape)
    car, complete, n_excl = _window_cars(ar, cols)
    if car_var_factor is None:
        v = c[:, cols].sum(axis=1)
    else:
        v = _per_firm("car_var_factor", car_var_factor, n)
        if np.nanmin(v) <= 0.0:
            raise StudyConfigError(
                "car_var_factor must be > 0: it is Var(CAR) / sigma2 (L + 1'X_w(X'X)^-1 X_w'1 "
                "for OLS models, sum h_t / sigma2 for GARCH)."
            )
    complete &= np.isfinite(s) & (s > 0)
    scar = car / (s * np.sqrt(v))
    return scar, complete, n_excl, k


def _describe_variance(sigma_ddof, forecast_var_factor, car_var_factor) -> str:
    if sigma_ddof is None:
        sd = "s_i with ddof=max(k,1)"
    elif np.ndim(sigma_ddof) == 0:
        sd = f"s_i with ddof={int(sigma_ddof)}"
    else:
        vals = np.unique(np.asarray(sigma_ddof))
        sd = f"s_i with ddof={int(vals[0])}" if vals.size == 1 else "s_i with per-firm ddof"
    if forecast_var_factor is None and car_var_factor is None:
        fe = "no forecast-error correction"
    elif car_var_factor is not None:
        fe = "exact CAR forecast-error factor"
    else:
        fe = "forecast-error factor Σ_t c_it (diagonal)"
    return f"{sd}; {fe}"


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


def cross_sectional_t(ar_event, window=None, *, rel_days=None) -> TestResult:
    """Cross-sectional t-test of the mean CAR (Boehmer et al. 1991 "ordinary cross-sectional").

    ``t = mean(CAR_i) / (sd(CAR_i) / sqrt(N))`` with ``sd`` using ddof=1, compared with
    Student t(N-1). For a single day ``CAR_i = AR_it``. Uses only the event window, so it is
    robust to event-induced variance but assumes cross-sectionally independent firms.

    Returns
    -------
    TestResult ``name="cross_sectional_t"``; ``estimate`` = CAAR.
    """
    ar = as_matrix("ar_event", ar_event)
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    car, ok, n_excl = _window_cars(ar, cols)
    x = car[ok]
    n = x.size
    sd = np.std(x, ddof=1) if n > 1 else np.nan
    stat = float(x.mean() / (sd / np.sqrt(n))) if n > 1 and sd > 0 else float("nan")
    df = n - 1
    return TestResult(
        name="cross_sectional_t",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "t", df),
        distribution="t",
        df=df,
        estimate=float(x.mean()) if n else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention="mean CAR / (sd ddof=1 / sqrt(N)); t(N-1); assumes independent firms",
        extra={"n_excluded_missing": n_excl},
    )


def brown_warner_1980(
    ar_event, ar_est, window=None, *, rel_days=None, ddof: int = 1, df: float | None = None
) -> TestResult:
    """Brown & Warner (1980) test with firm-specific estimation-window variances.

    ``t = CAAR / (sqrt(L_w Σ_i s_i^2) / N)``, ``s_i^2`` the estimation-window variance of firm
    i's abnormal returns (``ddof``, default 1), ``L_w`` the window length. Reference
    distribution Student t with ``df`` (default ``mean(T_i) - 1``, T_i the non-NaN estimation
    days; estudy2 reports significance with ``qt(., mean(T_i))``). Assumes independent firms.
    """
    ar, e, cols, label = _prepare(ar_event, ar_est, window, rel_days)
    car, ok, n_excl = _window_cars(ar, cols)
    var = centered_variance(e, ddof)
    ok &= np.isfinite(var)
    n = int(ok.sum())
    caar = float(car[ok].mean()) if n else float("nan")
    se = np.sqrt(len(cols) * var[ok].sum()) / n if n else np.nan
    stat = float(caar / se) if n and se > 0 else float("nan")
    t_i = np.sum(~np.isnan(e[ok]), axis=1)
    dof = float(t_i.mean() - 1) if df is None else float(df)
    return TestResult(
        name="brown_warner_1980",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "t", dof),
        distribution="t",
        df=dof,
        estimate=caar,
        window=label,
        n=n,
        robust_to_clustering=False,
        convention=f"CAAR / (sqrt(L Σ s_i^2)/N), s_i^2 estimation-window AR variance ddof={ddof}; "
        f"t(df={dof:g}); assumes independent firms",
        extra={"n_excluded_missing": n_excl},
    )


def portfolio_t(
    ar_event, ar_est, window=None, *, rel_days=None, ddof: int = 1, df: float | None = None
) -> TestResult:
    """Portfolio test, Brown & Warner (1985) "crude dependence adjustment".

    ``AAR_t`` = mean abnormal return over the firms available on day t. The standard error is
    the time-series sd (``ddof``, default 1) of ``AAR_t`` over the estimation window, so any
    contemporaneous correlation between firms is reflected: the test is robust to clustered
    (same-date) events. ``t = Σ_{t in w} AAR_t / (sqrt(L_w) sd(AAR_est))`` against Student
    t(T_p - 1), ``T_p`` the estimation days with at least one firm (override with ``df``).
    estudy2's CAR version (``car_brown_warner_1985``) sums the daily statistics and divides by
    sqrt(L), which is the same number when every day has data.
    """
    ar, e, cols, label = _prepare(ar_event, ar_est, window, rel_days)
    aar_est = _nanmean_safe(e, axis=0)
    aar_est = aar_est[np.isfinite(aar_est)]
    t_p = aar_est.size
    sd = np.std(aar_est, ddof=ddof) if t_p > ddof else np.nan
    aar = _nanmean_safe(ar[:, cols], axis=0)
    empty_days = [int(c) for c, a in zip(cols, aar) if not np.isfinite(a)]
    used = np.isfinite(aar)
    caar = float(aar[used].sum())
    l_w = int(used.sum())
    stat = float(caar / (sd * np.sqrt(l_w))) if l_w and sd > 0 else float("nan")
    dof = float(t_p - 1) if df is None else float(df)
    n = int((~np.isnan(ar[:, cols])).any(axis=1).sum())
    return TestResult(
        name="brown_warner_1985",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "t", dof),
        distribution="t",
        df=dof,
        estimate=caar,
        window=label,
        n=n,
        robust_to_clustering=True,
        convention=f"portfolio (crude dependence adjustment): Σ AAR / (sqrt(L) sd_ts(AAR_est), "
        f"ddof={ddof}); t(df={dof:g})",
        extra={"days_without_firms": empty_days, "n_estimation_days": t_p, "sd_portfolio": sd},
    )


brown_warner_1985 = portfolio_t


def patell_z(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_obs=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
) -> TestResult:
    """Patell (1976) standardized-residual Z test.

    ``SCAR_i = CAR_i / (s_i sqrt(V_i))`` with ``V_i = Σ_{t in w} c_it`` (or ``car_var_factor``);
    ``Z = Σ_i SCAR_i / sqrt(Σ_i (T_i - k)/(T_i - k - 2))``, standard normal under H0. The
    ``(T-k)/(T-k-2)`` term is the variance of a t(T-k) variable, exact when ``s_i`` has ``T_i - k``
    degrees of freedom (``sigma_ddof=None``); ``k`` here is ``max(n_params, 1)`` because ``s_i``
    is centred at the sample mean. For one day this is the classic daily Patell test.
    estudy2 convention: ``sigma_ddof=1``, ``k=2``, leverage term from
    ``market_model_var_factor(..., leverage="all_index_days")``. Assumes independent firms and no
    event-induced variance.
    """
    ar, e, cols, label = _prepare(ar_event, ar_est, window, rel_days)
    scar, ok, n_excl, k = _scar(
        ar, e, cols, n_params=n_params, sigma_ddof=sigma_ddof,
        forecast_var_factor=forecast_var_factor, car_var_factor=car_var_factor,
    )
    t_i = _n_obs(e, n_obs)
    dof = t_i - k
    if np.any(dof[ok] <= 2):
        bad = np.flatnonzero(ok & (dof <= 2))
        raise StudyConfigError(
            f"Patell test needs T_i - k > 2 estimation observations; rows {bad.tolist()} have "
            f"T_i={t_i[bad].tolist()} with k={k[bad].tolist()}. Lengthen the estimation window."
        )
    n = int(ok.sum())
    denom = np.sqrt(np.sum(dof[ok] / (dof[ok] - 2)))
    stat = float(scar[ok].sum() / denom) if n else float("nan")
    car, _, _ = _window_cars(ar, cols)
    return TestResult(
        name="patell_z",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "normal"),
        distribution="normal",
        estimate=float(car[ok].mean()) if n else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention="Σ SCAR / sqrt(Σ (T-k)/(T-k-2)); "
        + _describe_variance(sigma_ddof, forecast_var_factor, car_var_factor)
        + "; N(0,1); assumes independent firms",
        extra={"n_excluded_missing": n_excl, "scar": scar},
    )


def bmp_t(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
) -> TestResult:
    """Boehmer, Musumeci & Poulsen (1991) standardized cross-sectional test.

    ``t = mean(SCAR_i) / (sd(SCAR_i) / sqrt(N))`` (sd ddof=1) against Student t(N-1), with
    ``SCAR_i`` as in :func:`patell_z`. Robust to event-induced variance, assumes independent
    firms (see :func:`kolari_pynnonen_bmp` for the correlation adjustment).
    """
    ar, e, cols, label = _prepare(ar_event, ar_est, window, rel_days)
    scar, ok, n_excl, _ = _scar(
        ar, e, cols, n_params=n_params, sigma_ddof=sigma_ddof,
        forecast_var_factor=forecast_var_factor, car_var_factor=car_var_factor,
    )
    x = scar[ok]
    n = x.size
    sd = np.std(x, ddof=1) if n > 1 else np.nan
    stat = float(x.mean() / (sd / np.sqrt(n))) if n > 1 and sd > 0 else float("nan")
    car, _, _ = _window_cars(ar, cols)
    return TestResult(
        name="bmp_t",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "t", n - 1),
        distribution="t",
        df=n - 1,
        estimate=float(car[ok].mean()) if n else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention="mean SCAR / (sd ddof=1 / sqrt(N)); "
        + _describe_variance(sigma_ddof, forecast_var_factor, car_var_factor)
        + "; t(N-1); assumes independent firms",
        extra={"n_excluded_missing": n_excl, "scar": scar},
    )


boehmer_musumeci_poulsen = bmp_t


def pairwise_residual_correlations(ar_est, *, min_overlap: int = 30) -> np.ndarray:
    """Pearson correlations of estimation-window residuals over each pair's overlapping days.

    Pairs with fewer than ``min_overlap`` common non-NaN days get NaN. Same definition as
    ``pandas.DataFrame.corr(min_periods=min_overlap)`` on the transposed array.

    Returns
    -------
    (N, N) array with ones on the diagonal (where the firm has data).
    """
    e = as_matrix("ar_est", ar_est)
    m = (~np.isnan(e)).astype(float)
    x = np.where(np.isnan(e), 0.0, e)
    n = m @ m.T
    s_i = x @ m.T  # sum of x_i over days where j is present
    s_ii = (x * x) @ m.T
    s_ij = x @ x.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = s_ij - s_i * s_i.T / n
        var_i = s_ii - s_i**2 / n
        var_j = var_i.T
        r = cov / np.sqrt(var_i * var_j)
    r[n < max(min_overlap, 2)] = np.nan
    return np.clip(r, -1.0, 1.0)


def average_residual_correlation(ar_est, *, min_overlap: int = 30) -> float:
    """Average pairwise correlation ``r̄`` of estimation-window residuals (Kolari-Pynnönen 2010).

    Mean of the off-diagonal entries of :func:`pairwise_residual_correlations` that are defined
    (pairs with at least ``min_overlap`` overlapping days). NaN when no pair qualifies.
    """
    r = pairwise_residual_correlations(ar_est, min_overlap=min_overlap)
    iu = np.triu_indices(r.shape[0], k=1)
    vals = r[iu]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def kolari_pynnonen_factor(
    mean_correlation: float, n: int, *, cross_sectional_variance: bool = True
) -> float:
    """Kolari-Pynnönen (2010) adjustment factor for an equicorrelation ``r̄`` among N SARs.

    With unit-variance SARs whose pairwise correlation is ``r̄``,
    ``Var(Σ_i SAR_i) = N (1 + (N - 1) r̄)`` instead of N, and the cross-sectional sample variance
    of the SARs has expectation ``1 - r̄`` instead of 1. Hence:

    * statistics that divide by the **cross-sectional** sd (BMP):
      ``sqrt((1 - r̄) / (1 + (N - 1) r̄))`` (``cross_sectional_variance=True``, KP 2010 eq. 11);
    * statistics that use the **known** (time-series) variance (Patell):
      ``1 / sqrt(1 + (N - 1) r̄)`` (``cross_sectional_variance=False``; KP 2010, the adjusted
      Patell test, as in Stata's ``estudy``).
    """
    r = float(mean_correlation)
    denom = 1.0 + (n - 1) * r
    if not np.isfinite(r) or denom <= 0 or r >= 1:
        raise StudyConfigError(
            f"Kolari-Pynnönen adjustment undefined for r̄={r!r} with N={n} "
            "(needs -1/(N-1) < r̄ < 1); check the estimation-window residuals."
        )
    numerator = (1.0 - r) if cross_sectional_variance else 1.0
    return float(np.sqrt(numerator / denom))


def _rbar_of_rows(e: np.ndarray, rows, min_overlap: int) -> tuple[float, int, int]:
    """``(r̄, pairs used, pairs skipped)`` of the residuals ``e[rows]`` (0 when no pair)."""
    r = pairwise_residual_correlations(e[rows], min_overlap=min_overlap)
    iu = np.triu_indices(r.shape[0], k=1)
    vals = r[iu]
    n_pairs = int(np.isfinite(vals).sum())
    rbar = float(vals[np.isfinite(vals)].mean()) if n_pairs else 0.0
    return rbar, n_pairs, int(vals.size - n_pairs)


def _kp(base: TestResult, ar_est, mean_correlation, min_overlap, name: str, rows,
        *, cross_sectional_variance: bool) -> TestResult:
    e = as_matrix("ar_est", ar_est)
    if mean_correlation is None:
        rbar, n_pairs, n_skipped = _remembered(
            "kp_rbar", e, (_array_key(rows), int(min_overlap)),
            lambda: _rbar_of_rows(e, rows, min_overlap))
        source = f"r̄ from {n_pairs} residual pairs (>= {min_overlap} overlapping days)"
    else:
        rbar, n_pairs, n_skipped = float(mean_correlation), None, None
        source = "r̄ supplied"
    factor = (kolari_pynnonen_factor(rbar, base.n,
                                     cross_sectional_variance=cross_sectional_variance)
              if base.n > 1 else 1.0)
    formula = "sqrt((1-r̄)/(1+(N-1)r̄))" if cross_sectional_variance else "1/sqrt(1+(N-1)r̄)"
    stat = base.statistic * factor
    extra = dict(base.extra)
    extra.update({"mean_correlation": rbar, "adjustment": factor, "n_pairs": n_pairs,
                  "n_pairs_skipped": n_skipped, "unadjusted_statistic": base.statistic})
    return TestResult(
        name=name,
        statistic=stat,
        pvalue=two_sided_pvalue(stat, base.distribution, base.df),
        distribution=base.distribution,
        df=base.df,
        estimate=base.estimate,
        window=base.window,
        n=base.n,
        robust_to_clustering=True,
        convention=f"{base.name} x {formula}, r̄={rbar:.4f} ({source}); "
        + base.convention.split("; assumes")[0],
        extra=extra,
    )


def kolari_pynnonen_bmp(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
    mean_correlation: float | None = None,
    min_overlap: int = 30,
    corr_residuals=None,
) -> TestResult:
    """Kolari & Pynnönen (2010) correlation-adjusted BMP test (ADJ-BMP).

    ``t_adj = t_BMP sqrt((1 - r̄) / (1 + (N - 1) r̄))``, ``r̄`` the average pairwise correlation
    of the estimation-window residuals of the firms in the test (overlapping days, pairs with at
    least ``min_overlap`` of them), unless ``mean_correlation`` is given. For a CAR window the
    same ``r̄`` is used, following KP (2010, section on cumulative abnormal returns), where the
    correlation of cumulated standardized residuals equals that of daily ones when residuals
    are serially uncorrelated. Reference distribution t(N-1). Robust to clustered events under
    equicorrelation.
    ``corr_residuals`` (N, K), when given, are the residuals on which ``r̄`` is estimated instead
    of ``ar_est`` (which still gives each firm's variance): the estimation residuals of listings
    on several calendars paired in information time
    (:meth:`crackdown.estimation.panel.EventPanel.aligned_residuals`).
    """
    ar = as_matrix("ar_event", ar_event)
    base = bmp_t(ar, ar_est, window, rel_days=rel_days, n_params=n_params,
                 sigma_ddof=sigma_ddof, forecast_var_factor=forecast_var_factor,
                 car_var_factor=car_var_factor)
    return kolari_pynnonen_adjust(base, ar_est if corr_residuals is None else corr_residuals,
                                  mean_correlation=mean_correlation, min_overlap=min_overlap)


def kolari_pynnonen_patell(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_obs=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
    mean_correlation: float | None = None,
    min_overlap: int = 30,
    corr_residuals=None,
) -> TestResult:
    """Kolari & Pynnönen (2010) correlation-adjusted Patell test (ADJ-PATELL).

    ``Z_adj = Z_Patell / sqrt(1 + (N - 1) r̄)``; ``r̄`` as in :func:`kolari_pynnonen_bmp`.
    Patell's Z divides by the known sum of SAR variances, so only the covariance terms are
    missing from its denominator; unlike BMP there is no ``(1 - r̄)`` bias of a cross-sectional
    variance to undo. Standard normal under H0. ``corr_residuals`` as in
    :func:`kolari_pynnonen_bmp`.
    """
    ar = as_matrix("ar_event", ar_event)
    base = patell_z(ar, ar_est, window, rel_days=rel_days, n_obs=n_obs, n_params=n_params,
                    sigma_ddof=sigma_ddof, forecast_var_factor=forecast_var_factor,
                    car_var_factor=car_var_factor)
    return kolari_pynnonen_adjust(base, ar_est if corr_residuals is None else corr_residuals,
                                  mean_correlation=mean_correlation, min_overlap=min_overlap)


def kolari_pynnonen_adjust(base: TestResult, corr_residuals, *,
                           mean_correlation: float | None = None,
                           min_overlap: int = 30) -> TestResult:
    """The Kolari-Pynnönen adjustment of a :func:`bmp_t` or :func:`patell_z` result.

    ``kolari_pynnonen_bmp(...) == kolari_pynnonen_adjust(bmp_t(...), residuals)`` and likewise
    for Patell (``sqrt((1 - r̄)/(1 + (N - 1) r̄))`` for BMP, ``1/sqrt(1 + (N - 1) r̄)`` for
    Patell), ``r̄`` from ``corr_residuals`` (the ``ar_est`` of the base test, or the residuals
    paired in information time) over the firms with a finite ``SCAR_i``: a battery that
    reports the unadjusted test too computes it once.
    """
    kinds = {"bmp_t": ("kolari_pynnonen_bmp", True),
             "patell_z": ("kolari_pynnonen_patell", False)}
    if base.name not in kinds:
        raise StudyConfigError(
            f"kolari_pynnonen_adjust needs a bmp_t or patell_z result; got {base.name!r}")
    name, cross_sectional = kinds[base.name]
    rows = np.isfinite(base.extra["scar"])
    return _kp(base, corr_residuals, mean_correlation, min_overlap, name, rows,
               cross_sectional_variance=cross_sectional)


def lamb_test(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    portfolio_var_factor=None,
    forecast_var_factor=None,
    ddof: int = 1,
    aggregate: Literal["caar", "sum_daily_z"] = "caar",
) -> TestResult:
    """Lamb (1995) portfolio test with a forecast-error correction.

    Daily: ``Z_t = AAR_t / (sd(AAR_est) sqrt(c_t))``, i.e. the Brown-Warner 1985 portfolio test
    whose variance is inflated by the portfolio's forecast-error factor ``c_t``.

    Parameters
    ----------
    portfolio_var_factor : (L,) array, optional
        ``c_t`` of the portfolio. estudy2 uses ``1 + 1/mean(T_i) + (m_t - m̄)^2 / Σ(m - m̄)^2``
        with m̄ over all index days of the estimation window
        (``market_model_var_factor(m_est, m_event, n_obs=[mean(T_i)], leverage="all_index_days")[0]``).
    forecast_var_factor : (N, L) array, optional
        Used when ``portfolio_var_factor`` is None: ``c_t`` = mean of ``c_it`` over the firms
        available on day t (an approximation of the portfolio factor). One of the two is required.
    ddof : int
        For ``sd(AAR_est)`` (default 1).
    aggregate : {"caar", "sum_daily_z"}
        Window statistic. ``"caar"`` (default): ``Σ_w AAR_t / (sd sqrt(Σ_w c_t))``.
        ``"sum_daily_z"``: ``Σ_w Z_t / sqrt(L_w)`` (estudy2 ``car_lamb``). Identical for one day.

    Standard normal reference (as Lamb 1995 and estudy2). Robust to cross-sectional correlation
    (portfolio variance).
    """
    ar, e, cols, label = _prepare(ar_event, ar_est, window, rel_days)
    if portfolio_var_factor is not None:
        c_p = np.asarray(portfolio_var_factor, dtype=float).reshape(-1)
        if c_p.shape != (ar.shape[1],):
            raise StudyConfigError(
                f"portfolio_var_factor must have shape ({ar.shape[1]},); got {c_p.shape}."
            )
        source = "portfolio factor supplied"
    elif forecast_var_factor is not None:
        c = _factor(forecast_var_factor, ar.shape)
        c_p = _nanmean_safe(np.where(np.isnan(ar), np.nan, c), axis=0)
        source = "c_t = cross-sectional mean of c_it"
    else:
        raise StudyConfigError(
            "lamb_test needs portfolio_var_factor (L,) or forecast_var_factor (N, L); without a "
            "forecast-error factor use portfolio_t (Brown-Warner 1985)."
        )
    if aggregate not in ("caar", "sum_daily_z"):
        raise StudyConfigError(f"aggregate must be 'caar' or 'sum_daily_z'; got {aggregate!r}.")
    aar_est = _nanmean_safe(e, axis=0)
    aar_est = aar_est[np.isfinite(aar_est)]
    sd = np.std(aar_est, ddof=ddof) if aar_est.size > ddof else np.nan
    aar = _nanmean_safe(ar[:, cols], axis=0)
    cw = c_p[cols]
    used = np.isfinite(aar)
    if aggregate == "caar":
        stat = float(aar[used].sum() / (sd * np.sqrt(cw[used].sum())))
    else:
        stat = float(np.sum(aar[used] / (sd * np.sqrt(cw[used]))) / np.sqrt(used.sum()))
    n = int((~np.isnan(ar[:, cols])).any(axis=1).sum())
    return TestResult(
        name="lamb",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "normal"),
        distribution="normal",
        estimate=float(aar[used].sum()),
        window=label,
        n=n,
        robust_to_clustering=True,
        convention=f"portfolio sd_ts(AAR_est) ddof={ddof} x sqrt(c_t) ({source}); "
        f"window aggregate={aggregate}; N(0,1)",
        extra={"days_without_firms": [int(c) for c, u in zip(cols, used) if not u]},
    )


def market_model_var_factor(
    market_est,
    market_event,
    *,
    ar_est=None,
    n_obs=None,
    leverage: Literal["complete_cases", "all_index_days"] = "complete_cases",
) -> np.ndarray:
    """Market-model forecast-error factor ``c_it = 1 + 1/T_i + (m_t - m̄_i)^2 / Σ_s (m_s - m̄_i)^2``.

    This is ``1 + x_t'(X'X)^{-1}x_t`` for ``x_t = (1, m_t)`` when the sums run over the days the
    firm's regression used.

    Parameters
    ----------
    market_est : (T,) array
        Market returns on the estimation days (same columns as ``ar_est``); NaN = missing.
    market_event : (L,) array
        Market returns on the event days.
    ar_est : (N, T) array, optional
        Estimation residuals; their non-NaN pattern defines each firm's complete cases.
    n_obs : (N,) array, optional
        ``T_i``. Default: the complete-case count (``ar_est`` and market both non-NaN).
    leverage : {"complete_cases", "all_index_days"}
        ``"complete_cases"`` (default, exact OLS leverage): m̄_i and Σ(m - m̄_i)^2 over the days
        firm i has data. ``"all_index_days"``: over every non-NaN market day of the estimation
        window, for every firm (estudy2 quirk 1: differs for firms with gaps, e.g. after IPOs).

    Returns
    -------
    (N, L) array (N = rows of ``ar_est``, or of ``n_obs``, else 1).
    """
    m = np.asarray(market_est, dtype=float).reshape(-1)
    me = np.asarray(market_event, dtype=float).reshape(-1)
    if leverage not in ("complete_cases", "all_index_days"):
        raise StudyConfigError(
            f"leverage must be 'complete_cases' or 'all_index_days'; got {leverage!r}."
        )
    if ar_est is not None:
        e = as_matrix("ar_est", ar_est)
        if e.shape[1] != m.size:
            raise StudyConfigError(
                f"market_est has {m.size} days but ar_est has {e.shape[1]} columns."
            )
        mask = ~np.isnan(e) & ~np.isnan(m)[None, :]
    else:
        n_rows = 1 if n_obs is None else np.atleast_1d(n_obs).size
        mask = np.repeat((~np.isnan(m))[None, :], n_rows, axis=0)
    if leverage == "complete_cases":
        if ar_est is None:
            raise StudyConfigError("leverage='complete_cases' needs ar_est to know each firm's days.")
        mm = np.where(mask, m[None, :], np.nan)
    else:
        mm = np.repeat(np.where(np.isnan(m), np.nan, m)[None, :], mask.shape[0], axis=0)
    mbar = _nanmean_safe(mm, axis=1)
    ss = np.nansum((mm - mbar[:, None]) ** 2, axis=1)
    t_i = mask.sum(axis=1).astype(float) if n_obs is None else _per_firm(
        "n_obs", n_obs, mask.shape[0])
    return 1.0 + 1.0 / t_i[:, None] + (me[None, :] - mbar[:, None]) ** 2 / ss[:, None]
