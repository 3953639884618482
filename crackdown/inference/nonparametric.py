"""Nonparametric event-study tests: sign, generalized sign, Corrado-Zivney sign, rank tests, Wilcoxon.

Array conventions are those of :mod:`crackdown.inference.parametric`: ``ar_event`` (N, L),
``ar_est`` (N, T), NaN = missing, ``window`` = None / int / (lo, hi) in column positions or in
relative days when ``rel_days`` is given.

Rank and Corrado-Zivney tests pool each firm's estimation days with ALL ``L`` event-window
columns (Corrado 1989 ranks the combined estimation + event period); the estimation and event
days must not overlap. Their standard deviation is the time-series dispersion of the daily
cross-sectional statistic over the combined period, so contemporaneous correlation between
firms enters it (``robust_to_clustering=True``, as for the portfolio test).

Options that reproduce estudy2 (R, v0.10.0)
-------------------------------------------
``cross_sum="estudy2_rowmeans"``
    estudy2 forms the daily cross-firm sum as ``rowMeans(x, na.rm=TRUE) * ncol``, which inflates
    the sum on days where some firms are missing. Default ``"available"`` sums the firms present.
``sd_divisor``
    ``"mean_firm_obs"`` (default, as estudy2): ``S = sqrt(Σ_t A_t^2 / mean_i(n_i))`` with
    ``n_i`` the non-missing days of firm i in the combined period (= T + L for a balanced
    panel). ``"days"``: divide by the number of days with at least one firm.
``centering="pooled"`` (rank test)
    estudy2's ``car_rank_test`` centres ranks at the cross-firm mean of ``(n_i + 1)/2`` instead
    of each firm's own ``(n_i + 1)/2``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np

from crackdown.errors import StudyConfigError
from crackdown.inference.base import (
    TestResult,
    as_matrix,
    rank_rows,
    resolve_window,
    two_sided_pvalue,
    window_cars,
)

__all__ = [
    "corrado_rank_test",
    "corrado_zivney_sign_test",
    "generalized_sign_test",
    "modified_rank_test",
    "sign_test",
    "wilcoxon_exact_pvalue",
    "wilcoxon_signed_rank_test",
]

CrossSum = Literal["available", "estudy2_rowmeans"]
SdDivisor = Literal["mean_firm_obs", "days"]

#: Largest sample with an exact Wilcoxon p-value (as scipy's ``method="auto"``).
_WILCOXON_EXACT_MAX_N = 50


def _inputs(ar_event, ar_est):
    ar = as_matrix("ar_event", ar_event)
    e = as_matrix("ar_est", ar_est)
    if e.shape[0] != ar.shape[0]:
        raise StudyConfigError(
            f"ar_est has {e.shape[0]} rows but ar_event has {ar.shape[0]}; "
            "both need one row per firm-event in the same order."
        )
    return ar, e


def _window_cars(ar_event: np.ndarray, cols: np.ndarray):
    """CAR over ``cols`` for firms complete on those days; returns (car, mask, n_excluded)."""
    return window_cars(ar_event, cols)


def _caar(ar, cols) -> float:
    car, ok, _ = _window_cars(ar, cols)
    return float(car[ok].mean()) if ok.any() else float("nan")


def _check_option(name, value, allowed):
    if value not in allowed:
        raise StudyConfigError(f"{name} must be one of {allowed}; got {value!r}.")


def _cross_sum(x: np.ndarray, cross_sum: str) -> tuple[np.ndarray, np.ndarray]:
    """Daily cross-firm sums of ``x`` (N, D) and the number of firms present per day."""
    n_t = np.sum(~np.isnan(x), axis=0)
    s = np.nansum(x, axis=0)
    if cross_sum == "estudy2_rowmeans":
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(n_t > 0, s / np.where(n_t > 0, n_t, 1) * x.shape[0], np.nan)
    else:
        s = np.where(n_t > 0, s, np.nan)
    return s, n_t


def _divisor(full: np.ndarray, n_t: np.ndarray, sd_divisor: str) -> float:
    if sd_divisor == "mean_firm_obs":
        return float(np.mean(np.sum(~np.isnan(full), axis=1)))
    return float(np.sum(n_t > 0))


def _daily_z_window(a_t, T, cols, sd_divisor_value, name, label, n, convention, extra):
    """Σ_{t in w} A_t / (sqrt(L_w) S), S = sqrt(Σ_all A_t^2 / D)."""
    finite = np.isfinite(a_t)
    s = np.sqrt(np.sum(a_t[finite] ** 2) / sd_divisor_value)
    a_w = a_t[T + cols]
    used = np.isfinite(a_w)
    stat = float(a_w[used].sum() / (np.sqrt(used.sum()) * s)) if used.any() and s > 0 else float(
        "nan")
    extra = dict(extra)
    estimate = extra.pop("estimate", float("nan"))
    extra.update({"sd": s, "daily_statistics": a_w / s,
                  "days_without_firms": [int(c) for c, u in zip(cols, used) if not u]})
    return TestResult(
        name=name,
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "normal"),
        distribution="normal",
        estimate=estimate,
        window=label,
        n=n,
        robust_to_clustering=True,
        convention=convention,
        extra=extra,
    )


def sign_test(ar_event, window=None, *, rel_days=None) -> TestResult:
    """Plain sign test: share of positive CARs against 1/2.

    ``Z = (w - N/2) / sqrt(N/4)``, ``w`` = number of firms with ``CAR_i > 0`` (zero counts as
    not positive, as in estudy2), N = firms complete over the window; N(0,1) approximation.
    Assumes independent firms and a median abnormal return of zero.
    """
    ar = as_matrix("ar_event", ar_event)
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    car, ok, n_excl = _window_cars(ar, cols)
    n = int(ok.sum())
    w = int((car[ok] > 0).sum())
    stat = float((w - 0.5 * n) / np.sqrt(0.25 * n)) if n else float("nan")
    return TestResult(
        name="sign",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "normal"),
        distribution="normal",
        estimate=w / n if n else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention="(#CAR>0 - N/2)/sqrt(N/4); N(0,1); p=0.5 null; independent firms",
        extra={"n_positive": w, "n_excluded_missing": n_excl},
    )


def generalized_sign_test(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    p_hat: Literal["firm_average", "pooled"] = "firm_average",
) -> TestResult:
    """Cowan (1992) generalized sign test.

    ``Z = (w - N p̂) / sqrt(N p̂ (1 - p̂))`` with ``w`` the number of positive CARs and ``p̂``
    the share of positive abnormal returns in the estimation window: ``"firm_average"``
    (Cowan 1992, default) = ``mean_i( #{AR_it > 0} / T_i )``; ``"pooled"`` (estudy2) = positives
    over all estimation firm-days. N(0,1), no continuity correction.
    """
    ar, e = _inputs(ar_event, ar_est)
    _check_option("p_hat", p_hat, ("firm_average", "pooled"))
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    car, ok, n_excl = _window_cars(ar, cols)
    pos = np.where(np.isnan(e), np.nan, (e > 0).astype(float))
    if p_hat == "pooled":
        p = float(np.nanmean(pos))
    else:
        t_i = np.sum(~np.isnan(e), axis=1)
        ok &= t_i > 0
        p = float(np.mean(np.nansum(pos[ok], axis=1) / t_i[ok]))
    n = int(ok.sum())
    w = int((car[ok] > 0).sum())
    stat = float((w - n * p) / np.sqrt(n * p * (1 - p))) if n and 0 < p < 1 else float("nan")
    return TestResult(
        name="generalized_sign",
        statistic=stat,
        pvalue=two_sided_pvalue(stat, "normal"),
        distribution="normal",
        estimate=w / n if n else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention=f"(w - N p̂)/sqrt(N p̂(1-p̂)), p̂={p:.6f} ({p_hat}); N(0,1); independent firms",
        extra={"p_hat": p, "n_positive": w, "n_excluded_missing": n_excl},
    )


def corrado_zivney_sign_test(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    cross_sum: CrossSum = "available",
    sd_divisor: SdDivisor = "mean_firm_obs",
) -> TestResult:
    """Corrado & Zivney (1992) sign test.

    ``G_it = sign(AR_it - median_i)``, the median over firm i's combined estimation + event days.
    Daily ``A_t = Σ_i G_it / sqrt(N_t)``; ``S = sqrt(Σ_t A_t^2 / D)`` over the combined period;
    window ``Z = Σ_{t in w} A_t / (sqrt(L_w) S)``; N(0,1).
    """
    ar, e = _inputs(ar_event, ar_est)
    _check_option("cross_sum", cross_sum, ("available", "estudy2_rowmeans"))
    _check_option("sd_divisor", sd_divisor, ("mean_firm_obs", "days"))
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    full = np.concatenate([e, ar], axis=1)
    med = np.nanmedian(full, axis=1)
    g = np.sign(full - med[:, None])
    s_t, n_t = _cross_sum(g, cross_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_t = s_t / np.sqrt(n_t)
    n = int((~np.isnan(ar[:, cols])).any(axis=1).sum())
    return _daily_z_window(
        a_t, e.shape[1], cols, _divisor(full, n_t, sd_divisor), "corrado_zivney_sign", label, n,
        f"G=sign(AR-median); Σ_w(ΣG/sqrt(N_t))/(sqrt(L) S); cross_sum={cross_sum}, "
        f"sd_divisor={sd_divisor}; N(0,1); sd from time series of daily sums",
        {"estimate": _caar(ar, cols)},
    )


def corrado_rank_test(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    cross_sum: CrossSum = "available",
    sd_divisor: SdDivisor = "mean_firm_obs",
    centering: Literal["firm", "pooled"] = "firm",
) -> TestResult:
    """Corrado (1989) rank test; over a window, the Cowan (1992) / Campbell-Wasley (1993) form.

    Ranks ``R_it`` of each firm's abnormal returns over its combined estimation + event days
    (average ranks for ties). ``K_it = R_it - (n_i + 1)/2`` (``centering="firm"``) or minus the
    cross-firm mean of ``(n_i + 1)/2`` (``"pooled"``, estudy2 ``car_rank_test``).
    ``K̄_t = (cross sum of K_it) / N_t``, ``S(K) = sqrt(Σ_t K̄_t^2 / D)`` over the combined period,
    daily ``Z_t = K̄_t / S(K)`` and window ``Z = Σ_{t in w} K̄_t / (sqrt(L_w) S(K))``; N(0,1).

    estudy2 daily ``rank_test``: ``cross_sum="estudy2_rowmeans"``; estudy2 ``car_rank_test``:
    ``cross_sum="available", centering="pooled"``. ``sd_divisor="mean_firm_obs"`` in both.
    """
    ar, e = _inputs(ar_event, ar_est)
    _check_option("cross_sum", cross_sum, ("available", "estudy2_rowmeans"))
    _check_option("sd_divisor", sd_divisor, ("mean_firm_obs", "days"))
    _check_option("centering", centering, ("firm", "pooled"))
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    full = np.concatenate([e, ar], axis=1)
    ranks = rank_rows(full)  # = scipy.stats.rankdata(axis=1, nan_policy='omit')
    n_i = np.sum(~np.isnan(full), axis=1)
    expected = (n_i + 1) / 2.0
    centre = expected if centering == "firm" else np.full_like(expected, expected.mean())
    k = ranks - centre[:, None]
    s_t, n_t = _cross_sum(k, cross_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        kbar = s_t / n_t
    n = int((~np.isnan(ar[:, cols])).any(axis=1).sum())
    return _daily_z_window(
        kbar, e.shape[1], cols, _divisor(full, n_t, sd_divisor), "corrado_rank", label, n,
        f"Σ_w K̄_t/(sqrt(L) S(K)), ranks over estimation+event days; cross_sum={cross_sum}, "
        f"sd_divisor={sd_divisor}, centering={centering}; N(0,1); sd from time series of K̄_t",
        {"estimate": _caar(ar, cols)},
    )


def modified_rank_test(
    ar_event,
    ar_est,
    window=None,
    *,
    rel_days=None,
    cross_sum: CrossSum = "available",
    sd_divisor: SdDivisor = "mean_firm_obs",
) -> TestResult:
    """Standardized ("modified") rank test, Corrado & Zivney (1992) with missing-data ranks.

    ``U_it = R_it / (n_i + 1) - 1/2`` (uniform scores, so firms with different numbers of
    observations are comparable). Daily ``A_t = Σ_i U_it / sqrt(N_t)``,
    ``S = sqrt(Σ_t A_t^2 / D)``, window ``Z = Σ_{t in w} A_t / (sqrt(L_w) S)``; N(0,1).
    """
    ar, e = _inputs(ar_event, ar_est)
    _check_option("cross_sum", cross_sum, ("available", "estudy2_rowmeans"))
    _check_option("sd_divisor", sd_divisor, ("mean_firm_obs", "days"))
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    full = np.concatenate([e, ar], axis=1)
    ranks = rank_rows(full)  # = scipy.stats.rankdata(axis=1, nan_policy='omit')
    n_i = np.sum(~np.isnan(full), axis=1)
    u = ranks / (n_i[:, None] + 1.0) - 0.5
    s_t, n_t = _cross_sum(u, cross_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_t = s_t / np.sqrt(n_t)
    n = int((~np.isnan(ar[:, cols])).any(axis=1).sum())
    return _daily_z_window(
        a_t, e.shape[1], cols, _divisor(full, n_t, sd_divisor), "modified_rank", label, n,
        f"U=R/(n+1)-1/2; Σ_w(ΣU/sqrt(N_t))/(sqrt(L) S); cross_sum={cross_sum}, "
        f"sd_divisor={sd_divisor}; N(0,1); sd from time series of daily sums",
        {"estimate": _caar(ar, cols)},
    )


@cache
def _wilcoxon_cumulative_counts(n: int) -> np.ndarray:
    """``C[w] = #{subsets of {1..n} with sum <= w}``, ``w = 0..n(n+1)/2`` (int64, n <= 50).

    The exact null distribution of ``W+`` without ties or zeros: each of the ``2^n`` sign
    patterns is equally likely, so ``P(W+ <= w) = C[w] / 2^n``. Built by the recursion
    ``c_k(w) = c_{k-1}(w) + c_{k-1}(w - k)`` (rank ``k`` negative or positive); every count is
    below ``2^50``, so the integers and ``C[w] / 2^n`` are exact in int64 / float64.
    """
    if not 0 <= n <= _WILCOXON_EXACT_MAX_N:
        raise StudyConfigError(f"exact Wilcoxon counts need 0 <= n <= 50; got n={n}")
    c = np.ones(1, dtype=np.int64)
    for k in range(1, n + 1):
        nxt = np.zeros(k * (k + 1) // 2 + 1, dtype=np.int64)
        nxt[: c.size] += c
        nxt[k:] += c
        c = nxt
    out = np.cumsum(c)
    out.setflags(write=False)
    return out


def wilcoxon_exact_pvalue(w_plus: float, n: int) -> float:
    """Two-sided exact p-value of the signed-rank statistic ``W+`` of ``n`` untied, non-zero values.

    ``p = min(1, 2 min(P(T >= W+), P(T <= W+)))`` with ``T`` the null distribution of ``W+``
    (:func:`_wilcoxon_cumulative_counts`), the convention of
    ``scipy.stats.wilcoxon(method="exact", alternative="two-sided")`` (which rounds a
    non-integral statistic down for the upper and up for the lower tail). Every term is an
    integer over ``2^n``, so the value equals scipy's exactly. ``n <= 50``.
    """
    cum = _wilcoxon_cumulative_counts(int(n))
    total, top = int(cum[-1]), cum.size - 1  # 2^n subsets, largest W+ = n(n+1)/2
    lo, hi = int(np.ceil(w_plus)), int(np.floor(w_plus))
    below = int(cum[min(lo, top)]) if lo >= 0 else 0  # #{T <= ceil(W+)}
    above = total - (int(cum[min(hi - 1, top)]) if hi >= 1 else 0)  # #{T >= floor(W+)}
    return min(1.0, 2.0 * min(above, below) / total)


def wilcoxon_signed_rank_test(ar_event, window=None, *, rel_days=None) -> TestResult:
    """Wilcoxon (1945) signed-rank test of the CARs against a symmetric-about-zero null.

    Statistic ``W+`` = sum of the ranks of ``|CAR_i|`` (average ranks for ties) over positive
    CARs, zeros dropped (R ``wilcox.test`` / estudy2 convention). Two-sided p-value: exact null
    distribution when N <= 50 with no ties or zeros (:func:`wilcoxon_exact_pvalue`, equal to
    ``scipy.stats.wilcoxon(method="exact")``), else :func:`scipy.stats.wilcoxon`'s normal
    approximation (no continuity correction).
    """
    ar = as_matrix("ar_event", ar_event)
    cols, label = resolve_window(ar.shape[1], window, rel_days)
    car, ok, n_excl = _window_cars(ar, cols)
    x = car[ok]
    n_zero = int((x == 0).sum())
    x = x[x != 0]
    n = x.size
    if n == 0:
        stat, p, method = float("nan"), float("nan"), "exact"
    else:
        absx = np.abs(x)
        ties = np.unique(absx).size < n
        method = "exact" if (n <= _WILCOXON_EXACT_MAX_N and not ties) else "approx"
        if method == "exact":  # untied: the ranks are 1..n in the order of |x|
            ranks = np.empty(n)
            ranks[np.argsort(absx)] = np.arange(1.0, n + 1.0)
            stat = float(ranks[x > 0].sum())
            p = wilcoxon_exact_pvalue(stat, n)
        else:
            from scipy import stats  # ties or n > 50: average ranks and the normal tail

            r = stats.rankdata(absx)
            stat = float(r[x > 0].sum())
            p = float(stats.wilcoxon(x, zero_method="wilcox", correction=False,
                                     alternative="two-sided", method=method).pvalue)
    return TestResult(
        name="wilcoxon_signed_rank",
        statistic=stat,
        pvalue=p,
        distribution="exact" if method == "exact" else "normal",
        estimate=float(np.median(car[ok])) if ok.any() else float("nan"),
        window=label,
        n=n,
        robust_to_clustering=False,
        convention=f"W+ (sum of positive ranks, zeros dropped); {method} two-sided p; "
        "independent firms",
        extra={"n_zero_dropped": n_zero, "n_excluded_missing": n_excl},
    )
