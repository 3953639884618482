"""Normal-return models: what each regresses on, and the abnormal returns of a fit.

:func:`model_spec` says what a model regresses on (:class:`ModelSpec`), and
:func:`fit_normal_model` estimates it for ``N`` firm-events at once and returns their abnormal
returns and forecast-error variances (:class:`NormalModelFit`). OLS models use the batched
engine :func:`crackdown.estimation.ols.fit_batched_ols` (two-regressor models, e.g. the market
model, on numpy or the compiled kernel: :func:`crackdown.estimation.ols.resolve_engine`,
``CRACKDOWN_ENGINE``); the thin-trading betas
(:mod:`crackdown.estimation.thin_trading`) are batched moments; GARCH
(:mod:`crackdown.estimation.garch`) is one ``arch`` fit per firm-event.

Conventions
-----------
* ``sigma2 = SSR / (n_obs - k)`` (ddof = k, the unbiased OLS residual variance, as
  ``statsmodels.OLS(...).fit().scale``).
* ``xtx_inv = (X'X)^{-1}`` over the unmasked rows; the forecast-error variance factor of an
  out-of-sample day with regressors ``x_t`` is ``1 + x_t' (X'X)^{-1} x_t``.
* ``'market-adjusted'`` estimates nothing: ``AR = r - r_m``; its ``sigma2`` is the variance of
  the estimation-window ARs with ddof = 1 and its forecast factor is 1.

Model names (:data:`MODELS`)
----------------------------
``constant-mean``  ``r_t = mu + e_t``
``market-adjusted`` ``AR_t = r_t - r_{m,t}`` (no estimation)
``market``          ``r_t = alpha + beta r_{m,t} + e_t``
``ff3``             ``r_t - rf_t = a + b mkt_rf + s smb + h hml + e_t``
``carhart``         ``ff3`` plus ``mom``
``ff5``             ``ff3`` plus ``rmw``, ``cma``
``factors``         a user factor set: any DataFrame of factors (column ``rf``, if present, is
                    subtracted from the return and is not a regressor)
``ff3-asia``        ``ff3`` with Ken French's Asia Pacific ex Japan factors (Hong Kong listings;
                    the factor files end 2023-12-29, ``ff5-asia``/``carhart-asia`` 2022-06-30)
``ff5-asia``, ``carhart-asia``  the five-factor and momentum (``WML``) Asia Pacific versions
``international``   ``r_t = alpha + beta r_{m,t} + gamma w_t + e_t``: the local market plus the
                    other market's news the listing has not priced yet (for a Hong Kong
                    listing the previous New York session's SPY return; for a New York
                    listing the Hong Kong market of the sessions since its previous close;
                    :func:`crackdown.estimation.layout.world_market_on_grid`)
``scholes-williams`` market model with the Scholes–Williams (1977) beta
``dimson``          market model with the Dimson (1979) one-lag-one-lead beta
                    (both: :mod:`crackdown.estimation.thin_trading`)
``garch``           market model with GARCH(1,1) errors; ARs standardized by the conditional
                    variance forecast (:mod:`crackdown.estimation.garch`, the ``arch`` package)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crackdown.errors import StudyConfigError
from crackdown.estimation.ols import (  # noqa: F401  (RANK_TOL, BatchedOLS: old import path)
    RANK_TOL,
    BatchedOLS,
    _broadcast_X,
    fit_batched_ols,
)

MODELS: tuple[str, ...] = (
    "constant-mean",
    "market-adjusted",
    "market",
    "ff3",
    "carhart",
    "ff5",
    "factors",
    "ff3-asia",
    "ff5-asia",
    "carhart-asia",
    "international",
    "scholes-williams",
    "dimson",
    "garch",
)

#: Factor columns (as returned by :func:`crackdown.marketdata.factors.load_factors`) of each factor model.
FACTOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "ff3": ("mkt_rf", "smb", "hml"),
    "carhart": ("mkt_rf", "smb", "hml", "mom"),
    "ff5": ("mkt_rf", "smb", "hml", "rmw", "cma"),
    "ff3-asia": ("mkt_rf", "smb", "hml"),
    "carhart-asia": ("mkt_rf", "smb", "hml", "mom"),
    "ff5-asia": ("mkt_rf", "smb", "hml", "rmw", "cma"),
}


@dataclass(frozen=True)
class ModelSpec:
    """What a normal-return model regresses on.

    Attributes
    ----------
    name : str
        One of :data:`MODELS`.
    regressors : tuple of str
        Names of the columns of ``X`` in order. ``"const"`` is the intercept, ``"market"`` the
        benchmark return, other names are factor columns.
    excess : bool
        ``True`` when the dependent variable is ``r - rf`` (factor models).
    estimated : bool
        ``False`` only for ``market-adjusted``.
    factor_kind : str or None
        ``"ff3"``/``"carhart"``/``"ff5"`` (and their ``-asia`` versions) when the factors come
        from :func:`crackdown.marketdata.factors.load_factors`, ``"factors"`` for a user set,
        else ``None``.
    method : {"ols", "scholes-williams", "dimson", "garch"}
        How the coefficients are estimated (OLS on ``regressors`` unless stated).
    design : tuple of str
        Columns of the design matrix handed to the fit, when they differ from ``regressors``
        (the thin-trading betas also need ``market_lag1`` and ``market_lead1``).
    """

    name: str
    regressors: tuple[str, ...]
    excess: bool = False
    estimated: bool = True
    factor_kind: str | None = None
    method: str = "ols"
    design: tuple[str, ...] = ()

    @property
    def design_columns(self) -> tuple[str, ...]:
        """Columns of ``X`` the fit receives (``regressors`` unless ``design`` is set)."""
        return self.design or self.regressors

    @property
    def n_params(self) -> int:
        """Number of estimated coefficients (0 for market-adjusted)."""
        return len(self.regressors) if self.estimated else 0

    @property
    def needs_benchmark(self) -> bool:
        return "market" in self.regressors

    @property
    def needs_benchmark_shifts(self) -> bool:
        """The design uses the benchmark one session before and after (thin-trading betas)."""
        return "market_lag1" in self.design_columns

    @property
    def needs_world(self) -> bool:
        return "world" in self.regressors

    @property
    def factor_columns(self) -> tuple[str, ...]:
        return tuple(r for r in self.regressors if r not in ("const", "market", "world"))


def model_spec(model: str, factor_columns: list[str] | tuple[str, ...] | None = None) -> ModelSpec:
    """Return the :class:`ModelSpec` of a model name.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    factor_columns : sequence of str, optional
        Columns of the user factor DataFrame; required for ``model="factors"``. A column ``rf``
        is taken as the risk-free rate (subtracted from returns, not a regressor).

    Raises
    ------
    StudyConfigError
        Unknown model name, or ``"factors"`` without factor columns.
    """
    if model == "constant-mean":
        return ModelSpec(model, ("const",))
    if model == "market-adjusted":
        return ModelSpec(model, ("market",), estimated=False)
    if model == "market":
        return ModelSpec(model, ("const", "market"))
    if model == "international":
        return ModelSpec(model, ("const", "market", "world"))
    if model in ("scholes-williams", "dimson"):
        return ModelSpec(model, ("const", "market"), method=model,
                         design=("const", "market", "market_lag1", "market_lead1"))
    if model == "garch":
        return ModelSpec(model, ("const", "market"), method="garch")
    if model in FACTOR_COLUMNS:
        return ModelSpec(model, ("const", *FACTOR_COLUMNS[model]), excess=True, factor_kind=model)
    if model == "factors":
        cols = [str(c) for c in (factor_columns or ()) if str(c) != "rf"]
        if not cols:
            raise StudyConfigError(
                "model 'factors' needs a factors DataFrame with at least one factor column "
                "(pass factors=DataFrame indexed by date)"
            )
        excess = "rf" in [str(c) for c in factor_columns or ()]
        return ModelSpec(model, ("const", *cols), excess=excess, factor_kind="factors")
    raise StudyConfigError(
        f"unknown model {model!r}; choose one of {', '.join(MODELS)}"
    )


@dataclass(frozen=True)
class NormalModelFit:
    """Abnormal returns of ``N`` firm-events under one normal-return model.

    Attributes
    ----------
    spec : ModelSpec
    params : ndarray (N, k)
        Coefficients in the order of ``spec.regressors`` (``k = 0`` for market-adjusted).
    ar_est : ndarray (N, T)
        Estimation-window abnormal returns (OLS residuals; ``r - r_m`` for market-adjusted);
        NaN on days not used.
    ar_event : ndarray (N, L)
        Event-window abnormal returns ``y - x'params`` (NaN where data are missing).
    sigma2 : ndarray (N,)
        Residual variance, ddof = k (ddof = 1 for market-adjusted).
    n_obs, df_resid : ndarray of int (N,)
        Estimation days used and ``n_obs - k`` (``n_obs - 1`` for market-adjusted).
    forecast_var_factor : ndarray (N, L)
        ``1 + x_t'(X'X)^{-1}x_t`` (1 for market-adjusted).
    xtx_inv : ndarray (N, k, k)
    x_event : ndarray (N, L, k)
        Event-window regressors (for the variance of a CAR, see :meth:`car_variance`).
    ok : ndarray of bool (N,)
    r2 : ndarray (N,)
    h_event : ndarray (N, L) or None
        Conditional variance forecasts of the event days (``garch``); ``sigma2 *
        forecast_var_factor`` equals them and :meth:`car_variance` sums them.
    extra : dict of str -> ndarray (N,)
        Further estimates reported by :meth:`EventStudyResults.fits` (e.g. the thin-trading
        beta's components, the GARCH parameters).
    fail_reason : ndarray of str (N,) or None
        Why a row is not ``ok`` when it is not a collinear design (e.g. GARCH not converged).
    """

    spec: ModelSpec
    params: np.ndarray
    ar_est: np.ndarray
    ar_event: np.ndarray
    sigma2: np.ndarray
    n_obs: np.ndarray
    df_resid: np.ndarray
    forecast_var_factor: np.ndarray
    xtx_inv: np.ndarray
    x_event: np.ndarray
    ok: np.ndarray
    r2: np.ndarray
    h_event: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    fail_reason: np.ndarray | None = None

    def car_variance(self, day_mask: np.ndarray) -> np.ndarray:
        """Forecast-error variance of the CAR summed over the selected event days.

        ``Var(CAR) = sigma2 * (L' + s'(X'X)^{-1}s)`` with ``L'`` the number of selected,
        non-missing days and ``s = sum_t x_t`` over them (the exact variance of a sum of
        out-of-sample prediction errors, including their covariance through the estimated
        coefficients). For market-adjusted it is ``sigma2 * L'``.

        Parameters
        ----------
        day_mask : ndarray of bool (N, L) or (L,)
            Days included in the CAR.
        """
        day_mask = np.broadcast_to(np.asarray(day_mask, dtype=bool), self.ar_event.shape)
        sel = day_mask & np.isfinite(self.ar_event)
        n_days = sel.sum(axis=1)
        if self.h_event is not None:  # GARCH: sum of the conditional variance forecasts
            return np.where(sel, self.h_event, 0.0).sum(axis=1)
        if self.params.shape[1] == 0:
            return self.sigma2 * n_days
        s = np.einsum("nlk,nl->nk", np.where(sel[:, :, None], self.x_event, 0.0), sel)
        lev = np.einsum("nk,nkj,nj->n", s, self.xtx_inv, s)
        return self.sigma2 * (n_days + lev)


def fit_normal_model(
    spec: ModelSpec,
    y_est: np.ndarray,
    X_est: np.ndarray,
    est_mask: np.ndarray,
    y_event: np.ndarray,
    X_event: np.ndarray,
    steps: np.ndarray | None = None,
    *,
    engine: str | None = None,
    rows: np.ndarray | None = None,
) -> NormalModelFit:
    """Estimate a normal-return model for ``N`` firm-events and compute abnormal returns.

    Parameters
    ----------
    spec : ModelSpec
    y_est : ndarray (N, T)
        Estimation-window dependent variable (``r`` or ``r - rf`` for excess models); or an
        object read by rows (:class:`crackdown.estimation.layout.EstimationRows`, as the
        columns of ``X_est`` may be: :func:`crackdown.estimation.layout.estimation_design`),
        which OLS models read block by block and the others take whole.
    X_est : ndarray (N, T, k), or a sequence of k columns
        Regressors in the order of ``spec.design_columns``; for market-adjusted the single
        column is the market return. As a sequence, each column is an ``(N, T)`` array or a
        number (a constant column, ``1.0`` for ``"const"``), as in
        :func:`crackdown.estimation.ols.fit_batched_ols`: OLS models then fit without a stacked
        ``(N, T, k)`` design (the other methods stack it).
    est_mask : ndarray of bool (N, T)
        Days allowed in the estimation (NaN days are dropped in any case).
    y_event, X_event : ndarray (N', L) and (N', L, k)
        Event-window counterparts, of the fitted rows only (``N' = len(rows)`` with ``rows``).
    steps : ndarray of int (N, L), optional
        Sessions from each row's last estimation day to each event day (``garch`` only).
    engine : {"auto", "numpy", "numba"} or None
        Engine of two-regressor OLS models (:func:`crackdown.estimation.ols.resolve_engine`;
        ``None`` = ``CRACKDOWN_ENGINE``, default ``"auto"``).
    rows : ndarray of int, optional
        Fit only these rows of ``y_est``, ``X_est`` and ``est_mask`` (in this order; the event
        arrays hold these rows only): the same fit as on ``y_est[rows]``, ... (OLS models
        gather the rows block by block instead of copying them).

    Returns
    -------
    NormalModelFit
    """
    by_rows = hasattr(y_est, "take_rows")  # read by rows (layout.EstimationRows): OLS only
    if not (by_rows and spec.method == "ols" and spec.estimated):
        y_est = np.asarray(y_est, dtype=float)
    y_event = np.asarray(y_event, dtype=float)
    n = y_event.shape[0]
    X_event = _broadcast_X(X_event, n)
    if spec.method == "ols" and spec.estimated:
        has_const = "const" in spec.regressors
        ols = fit_batched_ols(y_est, X_est, est_mask, centered_r2=has_const, engine=engine,
                              rows=rows)
        ar_event, fvf = ols.out_of_sample(y_event, X_event)  # fvf NaN where the AR is
        r2 = (ols.r2 if len(spec.regressors) > 1 or not has_const
              else np.where(ols.ok, 0.0, np.nan))
        return NormalModelFit(
            spec=spec,
            params=ols.params,
            ar_est=ols.resid,
            ar_event=ar_event,
            sigma2=ols.sigma2,
            n_obs=ols.n_obs,
            df_resid=ols.df_resid,
            forecast_var_factor=fvf,
            xtx_inv=ols.xtx_inv,
            x_event=np.array(X_event),
            ok=ols.ok,
            r2=r2,
        )
    if rows is not None:
        y_est, est_mask = y_est[rows], np.asarray(est_mask)[rows]
    X_est = _broadcast_X(_stacked(X_est, y_est.shape, rows), n)
    if not spec.estimated:
        market_est = X_est[:, :, 0]
        use = est_mask & np.isfinite(y_est) & np.isfinite(market_est)
        ar_est = np.where(use, y_est - market_est, np.nan)
        n_obs = use.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(ar_est, axis=1) / n_obs
            sigma2 = np.nansum((ar_est - mean[:, None]) ** 2, axis=1) / (n_obs - 1)
        sigma2 = np.where(n_obs >= 2, sigma2, np.nan)
        ar_event = y_event - X_event[:, :, 0]
        return NormalModelFit(
            spec=spec,
            params=np.empty((n, 0)),
            ar_est=ar_est,
            ar_event=ar_event,
            sigma2=sigma2,
            n_obs=n_obs,
            df_resid=np.maximum(n_obs - 1, 0),
            forecast_var_factor=np.where(np.isfinite(ar_event), 1.0, np.nan),
            xtx_inv=np.empty((n, 0, 0)),
            x_event=np.empty((n, y_event.shape[1], 0)),
            ok=np.ones(n, dtype=bool),
            r2=np.full(n, np.nan),
        )
    if spec.method in ("scholes-williams", "dimson"):
        return _fit_thin_trading(spec, y_est, X_est, est_mask, y_event, X_event)
    if spec.method == "garch":
        return _fit_garch(spec, y_est, X_est, est_mask, y_event, X_event, steps)
    raise StudyConfigError(f"model {spec.name!r}: unknown estimation method {spec.method!r}")


def _stacked(X, shape: tuple[int, int], rows: np.ndarray | None) -> np.ndarray:
    """Rows ``rows`` (all when None) of ``X`` as an ``(N, T, k)`` array (``shape = (N, T)``):
    a column sequence (arrays or constants) is stacked regressor-major, so each column is
    contiguous."""
    sel = slice(None) if rows is None else rows
    if not isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=float)
        return X if X.ndim == 2 or rows is None else X[rows]
    return np.moveaxis(np.stack([np.full(shape, float(c)) if np.ndim(c) == 0 else
                                 np.asarray(c, dtype=float)[sel] for c in X]), 0, 2)


def _market_model_inverse(m: np.ndarray, use: np.ndarray) -> np.ndarray:
    """``(X'X)^{-1}`` of ``X = [1, r_m]`` over the days ``use`` (N, 2, 2)."""
    n_obs = use.sum(axis=1).astype(float)
    s1 = np.where(use, m, 0.0).sum(axis=1)
    s2 = np.where(use, m * m, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = n_obs * s2 - s1 * s1
        inv = np.stack([np.stack([s2, -s1], axis=1), np.stack([-s1, n_obs], axis=1)], axis=1)
        return inv / det[:, None, None]


def _corrected_beta_fit(spec, alpha, beta, use, y_est, m_est, y_event, X_event, extra,
                        fail_reason=None, h_event=None, resid=None, sigma2=None):
    """A :class:`NormalModelFit` of ``AR = r - alpha - beta r_m`` (market-model conventions)."""
    n_obs = use.sum(axis=1)
    ok = np.isfinite(alpha) & np.isfinite(beta) & (n_obs > 2)
    if resid is None:
        resid = np.where(use, y_est - alpha[:, None] - beta[:, None] * m_est, np.nan)
    if sigma2 is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma2 = np.nansum(resid**2, axis=1) / (n_obs - 2)
    x_event = np.array(X_event[:, :, :2])
    params = np.stack([alpha, beta], axis=1)
    ar_event = y_event - alpha[:, None] - beta[:, None] * x_event[:, :, 1]
    xtx_inv = _market_model_inverse(m_est, use)
    fvf = 1.0 + ((x_event @ xtx_inv) * x_event).sum(axis=2)
    if h_event is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            fvf = h_event / sigma2[:, None]
    fvf = np.where(np.isfinite(ar_event), fvf, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ym = np.where(use, y_est, np.nan)
        tss = np.nansum((ym - np.nanmean(ym, axis=1, keepdims=True)) ** 2, axis=1)
        r2 = 1.0 - np.nansum(resid**2, axis=1) / tss
    bad = ~ok
    params[bad] = np.nan
    return NormalModelFit(
        spec=spec, params=params, ar_est=np.where(ok[:, None], resid, np.nan),
        ar_event=np.where(ok[:, None], ar_event, np.nan),
        sigma2=np.where(ok, sigma2, np.nan), n_obs=n_obs, df_resid=np.maximum(n_obs - 2, 0),
        forecast_var_factor=fvf, xtx_inv=xtx_inv, x_event=x_event, ok=ok,
        r2=np.where(ok, r2, np.nan), h_event=h_event,
        extra={k: np.where(ok, v, np.nan) for k, v in extra.items()}, fail_reason=fail_reason)


def _fit_thin_trading(spec, y_est, X_est, est_mask, y_event, X_event) -> NormalModelFit:
    from crackdown.estimation.thin_trading import thin_trading_beta

    cols = spec.design_columns
    m_lag, m, m_lead = (X_est[:, :, cols.index(c)] for c in
                        ("market_lag1", "market", "market_lead1"))
    est = thin_trading_beta(spec.method, y_est, m_lag, m, m_lead, est_mask)
    extra = {"b_market_lag1": est["b_lag"], "b_market_0": est["b_0"],
             "b_market_lead1": est["b_lead"]}
    if "rho_m" in est:
        extra["rho_market"] = est["rho_m"]
    return _corrected_beta_fit(spec, est["alpha"], est["beta"], est["use"], y_est, m, y_event,
                               X_event, extra)


def _fit_garch(spec, y_est, X_est, est_mask, y_event, X_event, steps) -> NormalModelFit:
    from crackdown.estimation.garch import fit_garch

    if steps is None:
        raise ValueError("the garch model needs steps (sessions from the estimation end)")
    m_est = X_est[:, :, 1]
    g = fit_garch(y_est, m_est, est_mask, y_event, X_event[:, :, 1], steps)
    use = est_mask & np.isfinite(y_est) & np.isfinite(m_est)
    extra = {"garch_omega": g["omega"], "garch_a": g["arch_a"], "garch_b": g["garch_b"],
             "garch_persistence": g["arch_a"] + g["garch_b"]}
    alpha = np.where(g["ok"], g["alpha"], np.nan)
    return _corrected_beta_fit(spec, alpha, g["beta"], use, y_est, m_est, y_event, X_event,
                               extra, fail_reason=g["reason"], h_event=g["h_event"],
                               resid=g["resid"], sigma2=g["sigma2"])
