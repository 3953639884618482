r"""Generalized rank test GRANK-T (Kolari & Pynnönen 2011, *J. Empirical Finance* 18(5)).

A rank test of the cumulative (or one-day) abnormal return that is robust to event-induced
volatility, to cross-sectional correlation (it uses the time series of mean ranks, like
Corrado's test) and to non-normal returns.

Definition (KP 2011, eqs. 9-15), for the ``n`` firms with a complete event window:

1. Standardized estimation residuals ``SAR_it = AR_it / s_i`` (``s_i`` the estimation-window
   residual sd with ``ddof = sigma_ddof``), and the standardized CAR over the tested window
   ``SCAR_i = CAR_i / (s_i sqrt(V_i))`` (``V_i`` the forecast-error factor of the CAR, as in
   :func:`crackdown.inference.parametric.bmp_t`).
2. Re-standardize for event-induced variance: ``SCAR*_i = SCAR_i / S_SCAR``, ``S_SCAR`` the
   cross-sectional sd (ddof 1) of the ``SCAR_i``.
3. Generalized SARs: ``GSAR_it = SAR_it`` on the estimation days and ``GSAR_i0 = SCAR*_i`` on
   the (collapsed) event day 0.
4. Demeaned standardized ranks ``U_it = Rank(GSAR_it) / (T_i + 1) - 1/2`` over firm ``i``'s
   ``T_i`` non-missing GSARs (average ranks for ties).
5. ``Ū_t = (1/n_t) Σ_i U_it`` over the ``n_t`` firms present on day ``t``;
   ``S_Ū = sqrt( (1/T) Σ_{t∈𝒯} (n_t / n) Ū_t² )`` over the ``T`` days of 𝒯 = estimation days
   with data ∪ {0};
   ``Z = Ū_0 / S_Ū`` and

   .. math:: t_{grank} = Z \left(\frac{T - 2}{T - 1 - Z^2}\right)^{1/2} \sim t(T - 2).

Columns of ``ar_est`` are days: rows of one event must be aligned in time (pass the residuals
paired in information time for listings on several calendars; firm-level ``s_i`` are computed
from each row's own values, so re-gridding only moves cells).
"""

from __future__ import annotations

import numpy as np

from crackdown.errors import StudyConfigError
from crackdown.inference.base import (
    TestResult,
    as_matrix,
    centered_variance,
    rank_rows,
    resolve_window,
    two_sided_pvalue,
)
from crackdown.inference.parametric import _describe_variance, _per_firm, _scar

__all__ = ["grank_t"]


def grank_t(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | np.ndarray | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
    rank_residuals=None,
) -> TestResult:
    """Kolari & Pynnönen (2011) GRANK-T test of the CAR over ``window`` (module docstring).

    Parameters
    ----------
    ar_event, ar_est, window, rel_days, n_params, sigma_ddof, forecast_var_factor, car_var_factor
        As in :mod:`crackdown.inference.parametric` (``ar_est`` gives each firm's ``s_i``).
    rank_residuals : (N, K) array, optional
        Estimation residuals on a common day grid for the mean-rank series (default
        ``ar_est``): the residuals paired in information time when the rows trade on several
        calendars.

    Returns
    -------
    TestResult
        ``statistic`` = t_grank, t(T - 2); ``extra``: ``z``, ``T``, ``u_bar_0``, ``s_u``,
        ``scar_star`` and ``n_excluded_missing``.
    """
    ar = as_matrix("ar_event", ar_event)
    e = as_matrix("ar_est", ar_est)
    if e.shape[0] != ar.shape[0]:
        raise StudyConfigError(
            f"ar_est has {e.shape[0]} rows but ar_event has {ar.shape[0]}; both need one row "
            "per firm-event in the same order.")
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    scar, complete, n_excl, k = _scar(ar, e, cols, n_params=n_params, sigma_ddof=sigma_ddof,
                                      forecast_var_factor=forecast_var_factor,
                                      car_var_factor=car_var_factor)
    rows = np.flatnonzero(complete & np.isfinite(scar))
    n = len(rows)
    if n < 2:
        raise StudyConfigError(f"GRANK-T needs at least two firms with a complete window; got {n}")
    # the ddof of _scar (float per firm): the same s_i, remembered inside shared_results()
    ddof = k if sigma_ddof is None else _per_firm("sigma_ddof", sigma_ddof, ar.shape[0])
    s = np.sqrt(centered_variance(e, ddof))  # the s_i of SCAR_i
    grid = e if rank_residuals is None else as_matrix("rank_residuals", rank_residuals)
    if grid.shape[0] != ar.shape[0]:
        raise StudyConfigError("rank_residuals needs one row per firm-event, like ar_est")
    sd_scar = float(np.std(scar[rows], ddof=1))
    if not np.isfinite(sd_scar) or sd_scar <= 0:
        raise StudyConfigError("GRANK-T: the standardized CARs have no cross-sectional spread")
    scar_star = scar[rows] / sd_scar
    gsar = np.column_stack([grid[rows] / s[rows, None], scar_star])
    ranks = rank_rows(gsar)  # = scipy.stats.rankdata(axis=1, nan_policy='omit')
    t_i = np.sum(np.isfinite(gsar), axis=1)
    u = ranks / (t_i[:, None] + 1.0) - 0.5
    n_t = np.sum(np.isfinite(u), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        u_bar = np.where(n_t > 0, np.nansum(u, axis=0) / np.maximum(n_t, 1), np.nan)
    days = n_t > 0
    big_t = int(days.sum())
    s_u = float(np.sqrt(np.sum((n_t[days] / n) * u_bar[days] ** 2) / big_t))
    z = float(u_bar[-1] / s_u)
    denom = big_t - 1 - z * z
    stat = z * np.sqrt((big_t - 2) / denom) if denom > 0 else float(np.sign(z) * np.inf)
    df = float(big_t - 2)
    return TestResult(
        name="grank_t",
        statistic=float(stat),
        pvalue=two_sided_pvalue(float(stat), "t", df),
        distribution="t",
        df=df,
        estimate=float(np.mean(ar[rows][:, cols].sum(axis=1))),
        window=label,
        n=n,
        robust_to_clustering=True,
        convention=("Z=Ū_0/S_Ū, ranks of GSAR (estimation SARs and SCAR/sd(SCAR)) per firm, "
                    "S_Ū=sqrt(Σ_t (n_t/n) Ū_t²/T); t=Z sqrt((T-2)/(T-1-Z²)) ~ t(T-2); "
                    + _describe_variance(sigma_ddof, forecast_var_factor, car_var_factor)),
        extra={"z": z, "T": big_t, "u_bar_0": float(u_bar[-1]), "s_u": s_u,
               "scar_star": scar_star, "n_excluded_missing": n_excl},
    )
