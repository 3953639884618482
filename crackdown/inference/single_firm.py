"""Single firm, single event: AR and CAR t-tests with the OLS forecast-error correction.

Model: ``R_t = x_t'b + e_t`` fitted by OLS on T estimation days (``X`` is T x k). For the event
days ``X_e`` (L x k) the abnormal returns ``AR = R_e - X_e b`` have, under H0,

    Var(AR) = σ² (I_L + H),            H = X_e (X'X)^{-1} X_e'      (L x L)

so a single day has ``Var(AR_t) = σ² (1 + H_tt) = σ² c_t`` and a CAR over the days ``w`` has

    Var(CAR_w) = σ² (L_w + 1_w' H_ww 1_w)

(the off-diagonal entries of ``H`` are the covariances created by the shared estimation error of
``b``). ``σ²`` is estimated by ``Σ (e_t - ē)² / (T - ddof)`` over the estimation residuals
(``ddof = k`` by default: the unbiased OLS variance; OLS residuals have ``ē = 0``).
``t = CAR / SE`` is compared with Student t(``df``), default ``T - k``.

Lemaire's Python ``eventstudy`` package (peer ``lemaire_aapl_iphone_2007``) uses
``ddof=0``, ``forecast_error=False`` (``Var(CAR_τ) = τ σ²``) and ``df = T - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.inference.base import TestResult, resolve_window, two_sided_pvalue

__all__ = [
    "SingleFirmPath",
    "ols_forecast_matrix",
    "single_firm_car_test",
    "single_firm_path",
]


def ols_forecast_matrix(X_est, X_event) -> np.ndarray:
    """Return ``H = X_e (X'X)^{-1} X_e'`` (L x L), the forecast-error covariance of OLS predictions.

    Parameters
    ----------
    X_est : (T, k) array
        Estimation-window regressors including the constant column; rows with any NaN are
        dropped (they were not in the fit).
    X_event : (L, k) array
        Event-window regressors.

    Notes
    -----
    ``1 + diag(H)`` is the per-day ``forecast_var_factor`` of :mod:`crackdown.inference`, and
    ``L_w + 1'H_ww 1`` the ``car_var_factor`` of a window ``w``.
    """
    X = np.asarray(X_est, dtype=float)
    Xe = np.asarray(X_event, dtype=float)
    if X.ndim != 2 or Xe.ndim != 2 or X.shape[1] != Xe.shape[1]:
        raise StudyConfigError(
            f"X_est {X.shape} and X_event {Xe.shape} must be 2-D with the same number of columns."
        )
    X = X[~np.isnan(X).any(axis=1)]
    if np.isnan(Xe).any():
        raise StudyConfigError("X_event contains NaN; every event day needs its regressors.")
    if X.shape[0] <= X.shape[1]:
        raise StudyConfigError(
            f"X_est has {X.shape[0]} complete rows for {X.shape[1]} regressors; need more rows."
        )
    xtx_inv = np.linalg.inv(X.T @ X)
    return Xe @ xtx_inv @ Xe.T


@dataclass(frozen=True)
class SingleFirmPath:
    """Day-by-day AR and cumulative CAR statistics of one firm-event (arrays of length L).

    ``car[j]`` cumulates the ARs of columns ``0..j``; ``se_car[j]`` is its standard error.
    """

    rel_days: np.ndarray
    ar: np.ndarray
    se_ar: np.ndarray
    t_ar: np.ndarray
    p_ar: np.ndarray
    car: np.ndarray
    se_car: np.ndarray
    t_car: np.ndarray
    p_car: np.ndarray
    sigma: float
    df: float
    convention: str

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: rel_day, ar, se_ar, t_ar, p_ar, car, se_car, t_car, p_car."""
        return pd.DataFrame({
            "rel_day": self.rel_days, "ar": self.ar, "se_ar": self.se_ar, "t_ar": self.t_ar,
            "p_ar": self.p_ar, "car": self.car, "se_car": self.se_car, "t_car": self.t_car,
            "p_car": self.p_car,
        })


def _prepare(ar_event, resid_est, n_params, ddof, forecast_matrix, forecast_error):
    ar = np.asarray(ar_event, dtype=float).reshape(-1)
    if np.isnan(ar).any():
        bad = np.flatnonzero(np.isnan(ar)).tolist()
        raise StudyConfigError(
            f"single-firm ar_event has missing values at columns {bad}; the CAR path is undefined. "
            "Shorten the window or fix the price data (missing data are never interpolated)."
        )
    e = np.asarray(resid_est, dtype=float).reshape(-1)
    e = e[~np.isnan(e)]
    T = e.size
    k = int(n_params)
    dd = k if ddof is None else int(ddof)
    if T <= dd:
        raise StudyConfigError(f"{T} estimation residuals are too few for ddof={dd}.")
    sigma2 = float(np.sum((e - e.mean()) ** 2) / (T - dd))
    L = ar.size
    if forecast_error:
        if forecast_matrix is None:
            raise StudyConfigError(
                "forecast_error=True needs forecast_matrix = ols_forecast_matrix(X_est, X_event); "
                "pass it, or forecast_error=False for the τσ² convention."
            )
        H = np.asarray(forecast_matrix, dtype=float)
        if H.shape != (L, L):
            raise StudyConfigError(f"forecast_matrix must be ({L}, {L}); got {H.shape}.")
    else:
        H = np.zeros((L, L))
    return ar, T, k, dd, sigma2, H


def single_firm_path(
    ar_event,
    resid_est,
    *,
    n_params: int = 2,
    ddof: int | None = None,
    forecast_matrix=None,
    forecast_error: bool = True,
    df: float | None = None,
    rel_days=None,
) -> SingleFirmPath:
    """AR_t and CAR_{0..j} t-statistics along the event window of one firm-event.

    Parameters
    ----------
    ar_event : (L,) array
        Event-window abnormal returns (no NaN).
    resid_est : (T,) array
        Estimation-window residuals (NaN entries are ignored).
    n_params : int
        ``k``, regressors of the normal-return model (2 = market model).
    ddof : int, optional
        Divisor ``T - ddof`` for σ²; default ``n_params``. Lemaire: 0.
    forecast_matrix : (L, L) array, optional
        ``H`` from :func:`ols_forecast_matrix`; required when ``forecast_error`` is True.
    forecast_error : bool
        True: ``Var(AR_t) = σ²(1 + H_tt)``, ``Var(CAR_j) = σ²(j+1 + 1'H_[0..j]1)``.
        False: ``σ²`` and ``(j+1) σ²``.
    df : float, optional
        Student t degrees of freedom; default ``T - n_params``. Lemaire: ``T - 1``.
    rel_days : (L,) array, optional
        Labels for the columns (default 0..L-1).
    """
    ar, T, k, dd, sigma2, H = _prepare(ar_event, resid_est, n_params, ddof, forecast_matrix,
                                       forecast_error)
    L = ar.size
    dof = float(T - k) if df is None else float(df)
    var_ar = sigma2 * (1.0 + np.diag(H))
    cum_h = np.array([H[: j + 1, : j + 1].sum() for j in range(L)])
    var_car = sigma2 * (np.arange(1, L + 1) + cum_h)
    se_ar, se_car = np.sqrt(var_ar), np.sqrt(var_car)
    car = np.cumsum(ar)
    t_ar, t_car = ar / se_ar, car / se_car
    p = np.vectorize(lambda s: two_sided_pvalue(s, "t", dof))
    rel = np.arange(L) if rel_days is None else np.asarray(rel_days)
    return SingleFirmPath(
        rel_days=rel, ar=ar, se_ar=se_ar, t_ar=t_ar, p_ar=p(t_ar), car=car, se_car=se_car,
        t_car=t_car, p_car=p(t_car), sigma=float(np.sqrt(sigma2)), df=dof,
        convention=_convention(dd, forecast_error, dof),
    )


def _convention(dd, forecast_error, dof) -> str:
    fe = ("Var(CAR)=σ²(L + 1'X_e(X'X)^-1X_e'1)" if forecast_error else "Var(CAR)=Lσ²")
    return f"σ² = Σe²/(T-{dd}); {fe}; t(df={dof:g}); two-sided p"


def single_firm_car_test(
    ar_event,
    resid_est,
    window=None,
    *,
    rel_days=None,
    n_params: int = 2,
    ddof: int | None = None,
    forecast_matrix=None,
    forecast_error: bool = True,
    df: float | None = None,
) -> TestResult:
    """t-test of one firm's CAR over ``window`` (None = all L days; see ``resolve_window``).

    ``t = CAR_w / (σ sqrt(L_w + 1'H_ww 1))`` (or ``σ sqrt(L_w)`` without forecast error),
    Student t(``df``, default ``T - k``). Options as in :func:`single_firm_path`.
    """
    ar, T, k, dd, sigma2, H = _prepare(ar_event, resid_est, n_params, ddof, forecast_matrix,
                                       forecast_error)
    cols, label = resolve_window(ar.size, window, rel_days)
    car = float(ar[cols].sum())
    var = sigma2 * (cols.size + H[np.ix_(cols, cols)].sum())
    stat = car / np.sqrt(var)
    dof = float(T - k) if df is None else float(df)
    return TestResult(
        name="single_firm_car_t",
        statistic=float(stat),
        pvalue=two_sided_pvalue(stat, "t", dof),
        distribution="t",
        df=dof,
        estimate=car,
        window=label,
        n=1,
        robust_to_clustering=False,
        convention=_convention(dd, forecast_error, dof),
        extra={"se": float(np.sqrt(var)), "sigma": float(np.sqrt(sigma2)), "n_est": T},
    )
