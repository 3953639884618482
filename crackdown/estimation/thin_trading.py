"""Betas for thinly or non-synchronously traded stocks: Scholes–Williams (1977), Dimson (1979).

A stock that trades late in the session (or not at all on some days) reacts to the market with
a lag, so the OLS slope of ``r_t`` on ``r_{m,t}`` is biased towards zero. Both estimators use
the market return one session earlier and one session later on the listing's grid
(:data:`crackdown.estimation.layout.BENCHMARK_SHIFTS`):

Scholes–Williams
    ``beta_SW = (b_{-1} + b_0 + b_{+1}) / (1 + 2 rho_m)``, where ``b_k`` is the slope of the
    simple regression of ``r_t`` on ``r_{m,t+k}`` and ``rho_m`` the first-order
    autocorrelation of the market return (the slope-consistent estimator of Scholes & Williams
    1977, eq. 14).
Dimson
    ``r_t = a + b_{-1} r_{m,t-1} + b_0 r_{m,t} + b_{+1} r_{m,t+1} + e_t`` by OLS and
    ``beta_D = b_{-1} + b_0 + b_{+1}`` (Dimson 1979, aggregated coefficients; one lag and one
    lead).

Conventions (as Eventus's Scholes–Williams and Dimson options)
----------------------------------------------------------------
* Sample: the estimation days where ``r_t``, ``r_{m,t-1}``, ``r_{m,t}`` and ``r_{m,t+1}`` are
  all present (the same days for every ``b_k`` and for ``rho_m``).
* ``alpha = mean(r) - beta * mean(r_m)`` over that sample, and the abnormal return is
  ``AR_t = r_t - alpha - beta r_{m,t}``: the corrected beta replaces the OLS slope of the market
  model.
* ``sigma2 = sum(AR_t^2) / (n - 2)`` over the sample, and the forecast-error factor is the
  market model's ``1 + 1/n + (r_{m,t} - mean r_m)^2 / sum (r_m - mean r_m)^2`` (the estimation
  error of the corrected beta is treated like that of the OLS slope).

Everything is batched over firm-events: the moments are masked sums over ``(N, T)`` arrays and
the Dimson regressions one :func:`crackdown.estimation.models.fit_batched_ols` call.

References
----------
Scholes, M. and Williams, J. (1977). Estimating betas from nonsynchronous data. *Journal of
Financial Economics* 5, 309–327. Dimson, E. (1979). Risk measurement when shares are subject
to infrequent trading. *Journal of Financial Economics* 7, 197–226.
"""

from __future__ import annotations

import numpy as np

THIN_TRADING_METHODS = ("scholes-williams", "dimson")


def _masked_moments(a: np.ndarray, b: np.ndarray, use: np.ndarray):
    """Per-row covariance numerator ``sum (a - abar)(b - bbar)`` over ``use`` and the means."""
    n = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        am = np.where(use, a, 0.0).sum(axis=1) / n
        bm = np.where(use, b, 0.0).sum(axis=1) / n
    ad = np.where(use, a - am[:, None], 0.0)
    bd = np.where(use, b - bm[:, None], 0.0)
    return (ad * bd).sum(axis=1), am, bm


def thin_trading_beta(method: str, y: np.ndarray, m_lag: np.ndarray, m: np.ndarray,
                      m_lead: np.ndarray, use: np.ndarray) -> dict[str, np.ndarray]:
    """Scholes–Williams or Dimson beta of ``N`` firm-events.

    Parameters
    ----------
    method : {"scholes-williams", "dimson"}
    y, m_lag, m, m_lead : ndarray (N, T)
        Stock return and market return one session before, on and after each day.
    use : ndarray of bool (N, T)
        Days allowed (the clean estimation mask); combined with the finiteness of all four.

    Returns
    -------
    dict
        ``beta``, ``alpha``, ``n_obs``, ``use`` (the sample), and the components ``b_lag``,
        ``b_0``, ``b_lead`` (slopes; for Dimson the multiple-regression coefficients) and, for
        Scholes–Williams, ``rho_m``.
    """
    from crackdown.estimation.ols import fit_batched_ols

    use = use & np.isfinite(y) & np.isfinite(m_lag) & np.isfinite(m) & np.isfinite(m_lead)
    n_obs = use.sum(axis=1)
    out: dict[str, np.ndarray] = {"n_obs": n_obs, "use": use}
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "scholes-williams":
            slopes = []
            for x in (m_lag, m, m_lead):
                sxy, _, _ = _masked_moments(y, x, use)
                sxx, _, _ = _masked_moments(x, x, use)
                slopes.append(sxy / sxx)
            # rho_m: correlation of r_m,t and r_m,t-1 on the same days
            s_cross, _, _ = _masked_moments(m, m_lag, use)
            s_mm, _, _ = _masked_moments(m, m, use)
            s_ll, _, _ = _masked_moments(m_lag, m_lag, use)
            rho = s_cross / np.sqrt(s_mm * s_ll)
            beta = (slopes[0] + slopes[1] + slopes[2]) / (1.0 + 2.0 * rho)
            out["rho_m"] = rho
        elif method == "dimson":
            X = np.stack([np.ones_like(y), m_lag, m, m_lead], axis=2)
            ols = fit_batched_ols(y, X, use)
            slopes = [ols.params[:, 1], ols.params[:, 2], ols.params[:, 3]]
            beta = slopes[0] + slopes[1] + slopes[2]
            beta = np.where(ols.ok, beta, np.nan)
        else:
            raise ValueError(f"method must be one of {THIN_TRADING_METHODS}; got {method!r}")
        _, ybar, mbar = _masked_moments(y, m, use)
        alpha = ybar - beta * mbar
    out.update(beta=beta, alpha=alpha, b_lag=slopes[0], b_0=slopes[1], b_lead=slopes[2])
    return out
