"""Market model with GARCH(1,1) errors, estimated with the ``arch`` package.

Model (per firm-event, on the estimation window)::

    r_t = alpha + beta r_{m,t} + e_t,    e_t = sqrt(h_t) z_t,  z_t ~ N(0, 1)
    h_t = omega + a e_{t-1}^2 + b h_{t-1}

fitted by Gaussian maximum likelihood (``arch.arch_model(..., mean="LS", vol="GARCH", p=1,
q=1)``; returns are scaled by 100 for the optimiser and the results scaled back). The abnormal
return of an event day is ``AR_t = r_t - alpha - beta r_{m,t}`` and its variance the GARCH
forecast made at the last estimation day ``T`` (only estimation-window information)::

    h_{T+1} = omega + a e_T^2 + b h_T,     h_{T+s} = omega + (a + b) h_{T+s-1}  (s >= 2)

with ``s`` the number of sessions between ``T`` and the event day on the listing's grid. In the
:class:`crackdown.estimation.panel.EventPanel` the forecast enters as
``sigma2 * forecast_var_factor = h_{T+s}``, so every standardized test (Patell, BMP,
Kolari–Pynnönen, GRANK) standardizes by the conditional variance, and ``Var(CAR) = sum h_{T+s}``
over the CAR's days (the estimation error of ``alpha, beta`` is ignored, as in
EventStudyTools' and R EventStudy's GARCH options). ``sigma2`` itself is the residual variance
``SSR / (n - 2)`` of the mean equation.

Conventions
-----------
* Missing days (and days removed by ``clean_estimation``) are dropped and the remaining days
  treated as consecutive by the variance recursion.
* A fit that does not converge (``convergence_flag != 0``), or whose variance is not
  stationary (``a + b >= 1``), is reported as not estimable for that firm-event (no silent
  fallback; use ``fallback="market"`` to keep it).
* Not batched: one ``arch`` fit per firm-event (about 20 ms each).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Returns are multiplied by this before the optimiser sees them (arch recommends |r| ~ 1-1000).
SCALE = 100.0


def fit_garch(y_est: np.ndarray, m_est: np.ndarray, use: np.ndarray, y_event: np.ndarray,
              m_event: np.ndarray, steps: np.ndarray) -> dict[str, np.ndarray]:
    """Fit the GARCH(1,1) market model of ``N`` firm-events.

    Parameters
    ----------
    y_est, m_est : ndarray (N, T)
        Stock and market returns on the estimation days.
    use : ndarray of bool (N, T)
        Days allowed (combined with finiteness).
    y_event, m_event : ndarray (N, L)
        Event-window returns.
    steps : ndarray of int (N, L)
        Sessions between each row's last estimation day and each event day (>= 1).

    Returns
    -------
    dict of arrays
        ``alpha, beta, omega, arch_a, garch_b`` (N,), ``h_event`` (N, L) variance forecasts,
        ``sigma2`` (SSR / (n - 2) of the mean equation), ``n_obs``, ``ok``, ``reason`` (str per
        row, "" when ok), ``resid`` (N, T) mean-equation residuals, ``loglik``.
    """
    from arch import arch_model

    n, t = y_est.shape
    use = use & np.isfinite(y_est) & np.isfinite(m_est)
    out = {k: np.full(n, np.nan) for k in ("alpha", "beta", "omega", "arch_a", "garch_b",
                                            "sigma2", "loglik")}
    out["n_obs"] = use.sum(axis=1)
    out["ok"] = np.zeros(n, dtype=bool)
    out["reason"] = np.array([""] * n, dtype=object)
    out["resid"] = np.full((n, t), np.nan)
    out["h_event"] = np.full(y_event.shape, np.nan)
    for i in range(n):
        k = int(out["n_obs"][i])
        if k < 20:
            out["reason"][i] = f"GARCH(1,1) needs at least 20 estimation days; {k} available"
            continue
        y = y_est[i, use[i]] * SCALE
        x = m_est[i, use[i]] * SCALE
        model = arch_model(y, x=x[:, None], mean="LS", vol="GARCH", p=1, q=1, dist="normal",
                           rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(disp="off", show_warning=False)
        const, slope, omega, a, b = (float(v) for v in res.params.to_numpy()[:5])
        if res.convergence_flag != 0:
            out["reason"][i] = (f"GARCH(1,1) likelihood did not converge "
                                f"(arch convergence flag {res.convergence_flag})")
            continue
        if a + b >= 1:
            out["reason"][i] = f"GARCH(1,1) variance not stationary (a + b = {a + b:.3f})"
            continue
        e = np.asarray(res.resid, dtype=float)
        h = np.asarray(res.conditional_volatility, dtype=float) ** 2
        h_next = omega + a * e[-1] ** 2 + b * h[-1]
        s_max = int(np.nanmax(steps[i])) if np.isfinite(steps[i]).any() else 1
        path = np.empty(max(s_max, 1))
        path[0] = h_next
        for s in range(1, len(path)):
            path[s] = omega + (a + b) * path[s - 1]
        st = steps[i].astype(int)
        out["h_event"][i] = np.where(st >= 1, path[np.clip(st - 1, 0, len(path) - 1)],
                                     np.nan) / SCALE**2
        out["alpha"][i] = const / SCALE
        out["beta"][i] = slope
        out["omega"][i] = omega / SCALE**2
        out["arch_a"][i] = a
        out["garch_b"][i] = b
        out["loglik"][i] = float(res.loglikelihood)
        resid = y_est[i] - const / SCALE - slope * m_est[i]
        out["resid"][i] = np.where(use[i], resid, np.nan)
        out["sigma2"][i] = float(np.nansum(out["resid"][i] ** 2) / (k - 2))
        out["ok"][i] = True
    return out
