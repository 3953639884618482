r"""Event-dummy regression with SUR/GLS joint tests for clustered events.

When one announcement hits every firm on the same calendar day (a *clustered* event), the
abnormal returns of the firms are cross-sectionally correlated and tests that treat them as
independent over-reject. The event-dummy regression of Schipper and Thompson (1983) and
Binder (1985) fits, for every firm ``i = 1..N``, over the estimation window *and* the event
window jointly,

.. math::

    r_{it} = a_i + b_i' x_t + \sum_{d=1}^{L} \gamma_{id} D_{dt} + e_{it},

where :math:`D_{dt} = 1` on the ``d``-th event day and 0 otherwise, and estimates the system of
``N`` equations by seemingly unrelated regressions (SUR/GLS) with
:math:`\operatorname{Cov}(e_{\cdot t}) = \Sigma` (``N x N``), independent over ``t``.

Because every equation has the same regressors ``Z = [1, x, D]`` (the same calendar dates: a
clustered event), GLS equals OLS equation by equation (Zellner 1962), so the point estimates are
per-firm OLS. Each :math:`\hat\gamma_{id}` equals the out-of-sample prediction error of the
market (factor) model fitted on the estimation days only. The joint covariance is

.. math::

    \operatorname{Cov}(\operatorname{vec}\hat G) = \Sigma \otimes C,\qquad
    C = [(Z'Z)^{-1}]_{\gamma\gamma} = I_L + X_e (X_s'X_s)^{-1} X_e',

with ``G`` the ``N x L`` matrix of :math:`\gamma_{id}`, ``X_s`` the ``(T_s, p)`` estimation-window
design ``[1, x]`` (``p = 1 + k``) and ``X_e`` the ``(L, p)`` event-window design. The diagonal of
``C`` is the usual forecast-error variance factor ``1 + x_d'(X_s'X_s)^{-1}x_d``; its off-diagonal
terms are the covariance induced by the common parameter estimation error.

Estimate of :math:`\Sigma`
    :math:`\hat\Sigma = \hat E'\hat E / \nu` with :math:`\hat E` the ``(T_s, N)``
    estimation-window residuals (the event-day residuals are identically zero because of the
    dummies) and :math:`\nu = T_s - p` (``sigma_ddof="unbiased"``, the default; identical to
    ``linearmodels`` SUR with ``debiased=True``). ``sigma_ddof="ml"`` divides by the full
    sample size ``T_s + L`` instead (``linearmodels`` with ``debiased=False``); the F reference
    distributions below are exact only for the unbiased divisor. :math:`\hat\Sigma` must be
    non-singular, which requires ``nu > N``: more estimation dates than firms.

Unbalanced panels
    SUR with a full :math:`\Sigma` needs one common sample. With ``missing="listwise"`` (the
    default) every estimation-window date on which *any* firm's return or any regressor is
    missing is removed for *all* firms (a balanced common sample; the removed positions are
    reported in :attr:`DummyRegressionResult.dropped_positions` and in every test's ``extra``).
    A missing value on an event day is never dropped: it raises :class:`StudyConfigError` naming
    the firm and the day, because it would change the hypothesis (drop the firm or the day
    explicitly instead). ``missing="raise"`` raises on any missing value. Pairwise-complete
    covariance estimates are deliberately not offered: they are not guaranteed positive definite
    and break the exact finite-sample distributions below.

Wald tests (all are linear hypotheses :math:`L_h B M_h = 0` in the multivariate regression)
    (a) ``sur_all_gamma``: all :math:`\gamma_{id} = 0` (``q = N L`` restrictions).
        Chi-square form :math:`W = \operatorname{tr}(\hat\Sigma^{-1}\hat G C^{-1}\hat G')
        \sim \chi^2_{NL}` (asymptotic; treats :math:`\hat\Sigma` as known). F form: the
        Lawley-Hotelling trace :math:`U = W/\nu` with McKeon's (1974) F approximation (the one
        used by SAS and statsmodels' ``mv_test``); it is *exact* when ``L = 1``, where it is
        Hotelling's :math:`T^2`: :math:`F = (\nu - N + 1) W / (\nu N) \sim F(N, \nu-N+1)`.
        With ``N`` not small relative to ``nu`` the chi-square form over-rejects; prefer the F.
    (b) ``sur_caar``: the average cumulative effect
        :math:`\theta = N^{-1}\sum_i\sum_{d\in[a,b]} \gamma_{id} = 0` (one restriction).
        :math:`\widehat{\operatorname{Var}}(\hat\theta) = (1'\hat\Sigma 1/N^2)(c'Cc)` with
        ``c`` the indicator of the sub-window; :math:`W = \hat\theta^2/\widehat{Var}`,
        :math:`W\sim\chi^2_1` asymptotically and :math:`W \sim F(1, \nu)` *exactly* under
        normal errors (``t = sign * sqrt(W)`` is Student-t with ``nu`` df), because
        :math:`1'\hat\Sigma 1 \sim 1'\Sigma 1\,\chi^2_\nu/\nu`.
    (c) ``sur_daily_aar``: the per-day averages :math:`\bar\gamma_{\cdot d} = 0` jointly for
        all ``L`` days: :math:`W = \bar g' C^{-1}\bar g / (1'\hat\Sigma 1/N^2)`,
        :math:`\chi^2_L` asymptotically, :math:`W/L \sim F(L, \nu)` exactly under normality;
        plus one single-day test ``sur_aar`` per event day (``F(1, nu)``).

    All returned :class:`~crackdown.inference.base.TestResult` objects use the F form as
    ``statistic``/``pvalue`` (``distribution="F"``, ``df=(df1, df2)``) and carry the chi-square
    form in ``extra`` (``wald_chi2``, ``pvalue_chi2``, ``df_chi2``). They are marked
    ``robust_to_clustering=True``: the full cross-firm covariance enters every test.

References
----------
Binder, J. J. (1985). Measuring the effects of regulation with stock price data. *RAND Journal
of Economics* 16(2), 167-183.
Schipper, K. and Thompson, R. (1983). The impact of merger-related regulations on the
shareholders of acquiring firms. *Journal of Accounting Research* 21(1), 184-221.
McKeon, J. J. (1974). F approximations to the distribution of Hotelling's T0^2.
*Biometrika* 61(2), 381-383.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.inference.base import TestResult, chi2_sf, f_sf, t_sf

__all__ = [
    "DummyRegressionResult",
    "event_dummy_regression",
    "lawley_hotelling_f",
]


def lawley_hotelling_f(
    trace: float, n_dims: int, n_hypothesis: int, df_error: float
) -> tuple[float, float, float]:
    """F approximation of the Lawley-Hotelling trace ``U = tr(H E^{-1})`` (McKeon 1974).

    Parameters
    ----------
    trace : float
        ``U = tr(H E^{-1})`` where ``E`` is the error SSCP (``nu * Sigma_hat``) and ``H`` the
        hypothesis SSCP.
    n_dims : int
        ``p``, the dimension of the response (number of columns of ``B M``).
    n_hypothesis : int
        ``q``, the number of rows of the contrast (hypothesis degrees of freedom).
    df_error : float
        ``nu``, the error degrees of freedom.

    Returns
    -------
    (F, df1, df2) : tuple of float
        With ``n = (nu - p - 1)/2 > 0``: ``b = (p+2n)(q+2n) / (2(2n+1)(n-1))``,
        ``df1 = p q``, ``df2 = 4 + (p q + 2)/(b - 1)``, ``c = (df2 - 2)/(2n)`` and
        ``F = (df2/df1) U / c``. Exact when ``min(p, q) = 1``: then ``F = (nu - p + 1) U / p`` on
        ``(p, nu - p + 1)`` for ``q = 1`` and ``F = nu U / q`` on ``(q, nu)`` for ``p = 1``.
    """
    p, q, nu = int(n_dims), int(n_hypothesis), float(df_error)
    if q == 1:  # Hotelling's T^2, exact (McKeon's formula reduces to this)
        df1, df2 = float(p), nu - p + 1.0
        return df2 / df1 * trace, df1, df2
    if p == 1:  # univariate F, exact
        return nu * trace / q, float(q), nu
    n = (nu - p - 1.0) / 2.0
    if n <= 1.0:
        raise StudyConfigError(
            f"Lawley-Hotelling F approximation needs error df nu > p + 3 (nu={nu:g}, p={p}): "
            "use a longer estimation window or fewer firms"
        )
    b = (p + 2 * n) * (q + 2 * n) / (2 * (2 * n + 1) * (n - 1))
    df1 = float(p * q)
    df2 = 4.0 + (p * q + 2.0) / (b - 1.0)
    c = (df2 - 2.0) / (2.0 * n)
    return df2 / df1 * trace / c, df1, df2


@dataclass(frozen=True)
class DummyRegressionResult:
    """Fitted event-dummy SUR system.

    Attributes
    ----------
    gamma : ndarray, shape (N, L)
        Event-day dummy coefficients (abnormal returns), firm x event day.
    gamma_se : ndarray, shape (N, L)
        ``sqrt(Sigma_hat_ii * C_dd)``.
    coefficients : ndarray, shape (N, p)
        Intercept and regressor slopes per firm (``p = 1 + k``).
    sigma : ndarray, shape (N, N)
        Residual covariance estimate (divisor ``sigma_divisor``).
    forecast_cov : ndarray, shape (L, L)
        ``C = I_L + X_e (X_s'X_s)^{-1} X_e'``.
    df_resid : int
        ``nu = T_s - p``: error degrees of freedom of every equation.
    sigma_divisor : float
        Divisor used for ``sigma`` (``nu`` for ``"unbiased"``, ``T_s + L`` for ``"ml"``).
    rel_days : ndarray of int, shape (L,)
        Labels of the event days (relative day numbers).
    firm_labels : list of str
    n_estimation : int
        ``T_s``, estimation dates used (after listwise deletion).
    dropped_positions : ndarray of int
        Row positions of estimation dates removed by listwise deletion.
    tests : dict of str to TestResult
        ``"all_gamma"``, ``"caar"``, ``"daily_aar"`` and ``"aar_<d>"`` per event day.
    """

    gamma: np.ndarray
    gamma_se: np.ndarray
    coefficients: np.ndarray
    sigma: np.ndarray
    forecast_cov: np.ndarray
    df_resid: int
    sigma_divisor: float
    rel_days: np.ndarray
    firm_labels: list[str]
    n_estimation: int
    dropped_positions: np.ndarray
    tests: dict[str, TestResult] = field(default_factory=dict)

    @property
    def n_firms(self) -> int:
        return self.gamma.shape[0]

    @property
    def coefficient_table(self) -> pd.DataFrame:
        """Tidy table ``firm, rel_day, gamma, se, t, pvalue`` (t with ``nu`` df, two-sided)."""
        n, length = self.gamma.shape
        t = self.gamma / self.gamma_se
        p = 2.0 * t_sf(np.abs(t), self.df_resid)
        return pd.DataFrame(
            {
                "firm": np.repeat(np.asarray(self.firm_labels, dtype=object), length),
                "rel_day": np.tile(self.rel_days, n),
                "gamma": self.gamma.ravel(),
                "se": self.gamma_se.ravel(),
                "t": t.ravel(),
                "pvalue": p.ravel(),
            }
        )

    def _sigma_bar(self) -> float:
        """``1' Sigma_hat 1 / N^2``: variance of the equally weighted portfolio residual."""
        n = self.n_firms
        return float(self.sigma.sum()) / n**2

    def _extra(self) -> dict:
        return {
            "n_estimation": self.n_estimation,
            "n_dropped_estimation_dates": int(self.dropped_positions.size),
            "df_resid": self.df_resid,
        }

    def caar_test(self, lo: int | None = None, hi: int | None = None) -> TestResult:
        """Wald test of ``(1/N) sum_i sum_{d in [lo, hi]} gamma_id = 0`` (hypothesis (b)).

        ``F = W ~ F(1, nu)`` exactly under normal errors; chi-square(1) form in ``extra``.
        """
        days = self.rel_days
        lo = int(days[0]) if lo is None else int(lo)
        hi = int(days[-1]) if hi is None else int(hi)
        sel = (days >= lo) & (days <= hi)
        if lo > hi or not sel.any():
            raise StudyConfigError(
                f"CAAR window ({lo}, {hi}) covers none of the event days {days.tolist()}: "
                "choose lo <= hi inside the fitted event window"
            )
        c = sel.astype(float)
        theta = float(self.gamma[:, sel].sum(axis=1).mean())
        var = self._sigma_bar() * float(c @ self.forecast_cov @ c)
        wald = theta**2 / var
        nu = self.df_resid
        p_f = float(f_sf(wald, 1, nu))
        return TestResult(
            name="sur_caar",
            statistic=wald,
            pvalue=p_f,
            distribution="F",
            df=(1.0, float(nu)),
            estimate=theta,
            window=(lo, hi),
            n=self.n_firms,
            robust_to_clustering=True,
            convention=(
                "SUR event-dummy Wald, Var = (1'S1/N^2)(c'Cc), S = E'E/"
                f"{self.sigma_divisor:g}; F(1, nu={nu}) exact under normality"
            ),
            extra={
                **self._extra(),
                "wald_chi2": wald,
                "pvalue_chi2": float(chi2_sf(wald, 1)),
                "df_chi2": 1,
                "t": float(np.sign(theta) * np.sqrt(wald)),
                "se": float(np.sqrt(var)),
            },
        )

    def daily_aar_test(self) -> TestResult:
        """Joint Wald test that every per-day average ``gamma_.d`` is zero (hypothesis (c)).

        ``W = gbar' C^{-1} gbar / (1'S1/N^2)``; ``W/L ~ F(L, nu)`` exactly under normality.
        """
        gbar = self.gamma.mean(axis=0)
        length = gbar.size
        wald = float(gbar @ np.linalg.solve(self.forecast_cov, gbar)) / self._sigma_bar()
        nu = self.df_resid
        f_stat = wald / length
        return TestResult(
            name="sur_daily_aar",
            statistic=f_stat,
            pvalue=float(f_sf(f_stat, length, nu)),
            distribution="F",
            df=(float(length), float(nu)),
            estimate=float(np.abs(gbar).max()),
            window=(int(self.rel_days[0]), int(self.rel_days[-1])),
            n=self.n_firms,
            robust_to_clustering=True,
            convention=(
                "SUR event-dummy Wald on the L daily averages jointly; F = W/L ~ "
                f"F(L={length}, nu={nu}) exact under normality; estimate = max |AAR_d|"
            ),
            extra={
                **self._extra(),
                "wald_chi2": wald,
                "pvalue_chi2": float(chi2_sf(wald, length)),
                "df_chi2": length,
                "aar": gbar.tolist(),
            },
        )

    def all_gamma_test(self) -> TestResult:
        """Joint Wald test that all ``N x L`` dummy coefficients are zero (hypothesis (a)).

        ``W = tr(S^{-1} G C^{-1} G')`` (chi-square ``NL`` in ``extra``); the reported F is the
        Lawley-Hotelling trace ``W/nu`` with McKeon's approximation (exact Hotelling T^2 when
        ``L = 1``).
        """
        n, length = self.gamma.shape
        h = self.gamma @ np.linalg.solve(self.forecast_cov, self.gamma.T)  # (N, N)
        wald = float(np.trace(np.linalg.solve(self.sigma, h)))
        nu = self.df_resid
        # Lawley-Hotelling trace tr(H E^{-1}) with E = resid'resid = sigma_divisor * sigma.
        trace = wald / self.sigma_divisor
        f_stat, df1, df2 = lawley_hotelling_f(trace, n, length, nu)
        return TestResult(
            name="sur_all_gamma",
            statistic=f_stat,
            pvalue=float(f_sf(f_stat, df1, df2)),
            distribution="F",
            df=(df1, df2),
            estimate=float(self.gamma.mean()),
            window=(int(self.rel_days[0]), int(self.rel_days[-1])),
            n=n,
            robust_to_clustering=True,
            convention=(
                "SUR event-dummy Wald, all gamma_id = 0; Lawley-Hotelling trace F "
                "(McKeon 1974; exact Hotelling T^2 when L = 1); chi2(NL) form in extra "
                "(over-rejects when N is not small vs nu); estimate = mean gamma"
            ),
            extra={
                **self._extra(),
                "wald_chi2": wald,
                "pvalue_chi2": float(chi2_sf(wald, n * length)),
                "df_chi2": n * length,
                "lawley_hotelling_trace": trace,
            },
        )

    def aar_test(self, day: int) -> TestResult:
        """Single-day test of ``gamma_.d = 0`` (``F(1, nu)``), a special case of :meth:`caar_test`."""
        return replace(self.caar_test(day, day), name="sur_aar")

    def tests_frame(self) -> pd.DataFrame:
        """Tidy table of :attr:`tests` (one row per test; F form)."""
        from crackdown.inference.base import results_frame

        return results_frame(list(self.tests.values()))


def _as_2d(name: str, arr, ndim: int) -> np.ndarray:
    out = np.asarray(arr, dtype=float)
    if out.ndim == 1 and ndim == 2:
        out = out[:, None]
    if out.ndim != ndim:
        raise StudyConfigError(f"{name} must be a {ndim}-D array, got shape {out.shape}")
    return out


def event_dummy_regression(
    returns: np.ndarray,
    regressors: np.ndarray | None,
    event_positions: Sequence[int],
    *,
    rel_days: Sequence[int] | None = None,
    firm_labels: Sequence[str] | None = None,
    missing: Literal["listwise", "raise"] = "listwise",
    sigma_ddof: Literal["unbiased", "ml"] = "unbiased",
) -> DummyRegressionResult:
    """Fit the event-dummy SUR system for a clustered event and run the joint Wald tests.

    Parameters
    ----------
    returns : array, shape (N, T_total)
        Firm returns over the estimation window plus the event window (same calendar dates for
        all firms). NaN = missing (see "Unbalanced panels" in the module docstring).
    regressors : array, shape (T_total, k) or (T_total,), or None
        Shared regressors ``x_t`` (market return, factors). ``None`` or ``k = 0`` gives the
        constant-only (mean-adjusted) model. A constant is always added; do not include one.
    event_positions : sequence of int
        Column positions (into ``returns``) of the ``L`` event days, each receiving a dummy.
        Every other column is an estimation date.
    rel_days : sequence of int, optional
        Labels (relative day numbers) of the event days, default ``0..L-1``; pass e.g.
        ``range(-1, 2)`` for a (-1, +1) window.
    firm_labels : sequence of str, optional
        Names used in the coefficient table and error messages (default ``firm0..``).
    missing : {"listwise", "raise"}
        Listwise deletion of estimation dates with any missing value (reported), or raise.
    sigma_ddof : {"unbiased", "ml"}
        Divisor of ``Sigma_hat``: ``nu = T_s - p`` (default) or ``T_s + L`` (the full-sample
        ``T``; ML-style). The reference F distributions assume ``"unbiased"``.

    Returns
    -------
    DummyRegressionResult
        Coefficients, covariance pieces and the tests (a) ``all_gamma``, (b) ``caar`` over the
        whole window, (c) ``daily_aar`` jointly and ``aar_<d>`` per day.

    Raises
    ------
    StudyConfigError
        Shape mismatch, bad event positions, missing event-day data, or too few estimation
        dates (``nu`` must exceed ``N`` for a non-singular ``Sigma_hat``).
    """
    y = _as_2d("returns", returns, 2)
    n_firms, t_total = y.shape
    if regressors is None:
        x = np.empty((t_total, 0))
    else:
        x = _as_2d("regressors", regressors, 2)
        if x.shape[0] != t_total:
            raise StudyConfigError(
                f"regressors has {x.shape[0]} rows but returns has {t_total} dates (columns): "
                "pass regressors of shape (T_total, k) on the same dates"
            )
    pos = np.asarray(list(event_positions), dtype=int)
    if pos.ndim != 1 or pos.size == 0:
        raise StudyConfigError("event_positions must be a non-empty 1-D sequence of ints")
    if np.unique(pos).size != pos.size:
        raise StudyConfigError(f"event_positions has duplicates: {pos.tolist()}")
    if pos.min() < -t_total or pos.max() >= t_total:
        raise StudyConfigError(
            f"event_positions {pos.tolist()} out of range for {t_total} dates"
        )
    pos = np.where(pos < 0, pos + t_total, pos)
    length = pos.size
    labels = (
        [f"firm{i}" for i in range(n_firms)] if firm_labels is None else list(firm_labels)
    )
    if len(labels) != n_firms:
        raise StudyConfigError(
            f"firm_labels has {len(labels)} names for {n_firms} firms (rows of returns)"
        )
    days = np.arange(length) if rel_days is None else np.asarray(list(rel_days), dtype=int)
    if days.size != length:
        raise StudyConfigError(
            f"rel_days has {days.size} labels for {length} event positions"
        )
    if missing not in ("listwise", "raise"):
        raise StudyConfigError(f"missing={missing!r}: choose 'listwise' or 'raise'")
    if sigma_ddof not in ("unbiased", "ml"):
        raise StudyConfigError(f"sigma_ddof={sigma_ddof!r}: choose 'unbiased' or 'ml'")

    # Event days: no deletion allowed.
    y_e, x_e = y[:, pos], x[pos]
    bad_firm, bad_day = np.nonzero(~np.isfinite(y_e))
    if bad_firm.size:
        i, d = bad_firm[0], bad_day[0]
        raise StudyConfigError(
            f"return of {labels[i]} is missing on event day {days[d]} (position {pos[d]}); "
            f"{bad_firm.size} event-day values missing in total: drop the firm or the day "
            "explicitly before the SUR dummy regression"
        )
    if not np.isfinite(x_e).all():
        d = int(np.nonzero(~np.isfinite(x_e).all(axis=1))[0][0])
        raise StudyConfigError(
            f"a regressor is missing on event day {days[d]} (position {pos[d]}): "
            "supply complete regressors for the event window"
        )

    est_mask = np.ones(t_total, dtype=bool)
    est_mask[pos] = False
    complete = np.isfinite(y).all(axis=0) & np.isfinite(x).all(axis=1)
    dropped = np.nonzero(est_mask & ~complete)[0]
    if dropped.size and missing == "raise":
        raise StudyConfigError(
            f"{dropped.size} estimation dates have missing returns or regressors (first at "
            f"position {dropped[0]}): pass missing='listwise' to drop them for all firms"
        )
    est_mask &= complete
    y_s = y[:, est_mask].T  # (T_s, N)
    x_s = np.column_stack([np.ones(est_mask.sum()), x[est_mask]])  # (T_s, p)
    xe = np.column_stack([np.ones(length), x_e])  # (L, p)
    t_s, p = x_s.shape
    nu = t_s - p
    if nu <= n_firms:
        raise StudyConfigError(
            f"only {t_s} complete estimation dates for {n_firms} firms and {p} parameters "
            f"(error df nu={nu} must exceed N={n_firms} for an invertible residual covariance): "
            "lengthen the estimation window, reduce the firm set, or fix missing data"
        )

    if np.linalg.matrix_rank(x_s) < p:
        raise StudyConfigError(
            "the estimation-window design [1, regressors] is rank deficient (a constant or "
            "collinear regressor column?): drop the redundant regressor"
        )
    xtx_inv = np.linalg.inv(x_s.T @ x_s)
    coef = xtx_inv @ x_s.T @ y_s  # (p, N)
    resid = y_s - x_s @ coef  # (T_s, N)
    gamma = (y_e - (xe @ coef).T)  # (N, L): event-day prediction errors = dummy coefficients
    forecast_cov = np.eye(length) + xe @ xtx_inv @ xe.T
    divisor = float(nu) if sigma_ddof == "unbiased" else float(t_s + length)
    sigma = resid.T @ resid / divisor
    gamma_se = np.sqrt(np.outer(np.diag(sigma), np.diag(forecast_cov)))

    result = DummyRegressionResult(
        gamma=gamma,
        gamma_se=gamma_se,
        coefficients=coef.T.copy(),
        sigma=sigma,
        forecast_cov=forecast_cov,
        df_resid=int(nu),
        sigma_divisor=divisor,
        rel_days=days,
        firm_labels=labels,
        n_estimation=int(t_s),
        dropped_positions=dropped,
    )
    tests = result.tests
    tests["all_gamma"] = result.all_gamma_test()
    tests["caar"] = result.caar_test()
    tests["daily_aar"] = result.daily_aar_test()
    for d in days:
        tests[f"aar_{int(d)}"] = result.aar_test(int(d))
    return result
