r"""Grouped statistics: one test per group of rows of ONE panel, in vectorised passes.

A placebo or Westfall-Young null distribution re-tests every event at many pseudo dates
(``event|b``): thousands of small panels. Calling :func:`~crackdown.inference.parametric.
kolari_pynnonen_bmp` once per group spends its time on per-call overhead. The functions here
take the arrays of all groups at once plus a group code per row and return every group's
statistic and p-value, equal to the per-panel function on that group's rows (same degrees of
freedom, missing-data rules, correlation estimate and NaN cases).

Inputs follow :mod:`crackdown.inference.parametric` (``ar_event (N, L)``, ``ar_est (N, T)``,
``window``, ``rel_days``, per-row ``n_params``/``sigma_ddof``/``forecast_var_factor``/
``car_var_factor``), plus

codes : (N,) int array
    Group of each row, ``0 <= codes < n_groups``. Rows of one group are taken in their order in
    the arrays (the order of ``panel.subset(rows)`` with ascending ``rows``).

How the groups are computed
---------------------------
Row-wise quantities (``s_i``, ``CAR_i``, ``SCAR_i``) are computed once for all rows with the
per-panel code (numpy reductions along a row do not depend on the other rows). Sums over the
rows of a group on each day (the portfolio's ``AAR_t``, :func:`grouped_nansum`) and reductions
over a group's firms (the BMP mean and sd of the SCARs, the sd of the ``AAR`` series) and the Kolari-Pynnönen
pair sums run on stacks of the groups that have the same number of members (one pass per size
class, batched matrix products for ``r̄``), so they add the same numbers in the same order as
the per-panel function; ``r̄`` can differ by a few ulps where the matrix products block
differently (the correlation residuals of a group have fewer all-NaN day columns here).

Errors
------
Group-level conditions under which the per-panel function raises a
:class:`~crackdown.errors.CrackdownError` (``+/-inf`` in a group's rows, a forecast-error or CAR
variance factor <= 0, an undefined Kolari-Pynnönen factor) give that group NaN (what
``multiple_testing``'s ``_safe`` returns). Errors of the whole call (an invalid window, arrays of
different numbers of rows, codes out of range) raise :class:`~crackdown.errors.StudyConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crackdown.errors import StudyConfigError
from crackdown.inference.base import centered_variance, resolve_window

__all__ = ["GroupedTest", "grouped_kolari_pynnonen_bmp", "grouped_nansum", "grouped_portfolio_t"]

#: Elements of one batched stack (size class slice) in the pair sums: bounds memory (~32 MB).
_STACK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class GroupedTest:
    """One statistic per group (index = group code).

    Attributes
    ----------
    name : str
        Name of the per-panel test (``TestResult.name``).
    statistic, pvalue, df : (G,) arrays
        As ``TestResult.statistic``, ``.pvalue``, ``.df`` of the per-panel function on the
        group's rows; NaN where it is NaN or where it raises.
    n : (G,) int array
        Firm-events that entered the statistic (``TestResult.n``; 0 where the group raises or
        is empty).
    """

    __test__ = False

    name: str
    statistic: np.ndarray
    pvalue: np.ndarray
    df: np.ndarray
    n: np.ndarray


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _codes(codes, n_rows: int, n_groups: int | None) -> tuple[np.ndarray, int]:
    c = np.asarray(codes)
    if c.shape != (n_rows,) or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise StudyConfigError(
            f"codes must be an integer array of shape ({n_rows},) (one group per row); got "
            f"{c.dtype} {c.shape}.")
    c = c.astype(np.int64)
    g = int(c.max()) + 1 if n_groups is None and c.size else int(n_groups or 0)
    if c.size and (c.min() < 0 or c.max() >= g):
        raise StudyConfigError(f"codes must lie in 0..{g - 1} (n_groups={g}); got "
                               f"{int(c.min())}..{int(c.max())}.")
    return c, g


def _matrix(name: str, values, n_rows: int) -> np.ndarray:
    """Float (N, K) array with +/-inf kept (flagged per group by the caller)."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(f"{name} must be numeric (NaN marks a missing value): {exc}") from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise StudyConfigError(f"{name} must have shape ({n_rows}, K), one row per firm-event; "
                               f"got {arr.shape}.")
    return arr


def _per_row(name: str, value, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(n, arr.item())
    if arr.shape != (n,):
        raise StudyConfigError(f"{name} must be a scalar or have shape ({n},); got {arr.shape}.")
    return arr


def _any_by_group(flag: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(codes[flag], minlength=n_groups) > 0


def _size_classes(rows: np.ndarray, codes: np.ndarray, n_groups: int):
    """Yield ``(groups, members)``: groups with ``n`` selected rows and their (G_n, n) rows.

    ``rows`` are selected row positions; members keep the order of ``rows`` within a group.
    """
    order = rows[np.argsort(codes[rows], kind="stable")]
    sizes = np.bincount(codes[order], minlength=n_groups)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for n in np.unique(sizes[sizes > 0]):
        groups = np.flatnonzero(sizes == n)
        yield groups, order[starts[groups][:, None] + np.arange(n)]


def _compact_reduce(values: np.ndarray, keep: np.ndarray, fn, min_count: int = 1) -> np.ndarray:
    """``fn`` of each row's kept values (in column order), by classes of equal counts.

    ``fn(stack)`` reduces a (G_c, c) stack along axis 1; rows keeping fewer than ``min_count``
    values get NaN.
    """
    counts = keep.sum(axis=1)
    out = np.full(values.shape[0], np.nan)
    for c in np.unique(counts[counts >= max(min_count, 1)]):
        sel = np.flatnonzero(counts == c)
        out[sel] = fn(values[sel][keep[sel]].reshape(len(sel), c))
    return out


def _two_sided_t(stat: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``2 stdtr(df, -|stat|)``; NaN for non-finite ``stat`` or ``df`` <= 0 (two_sided_pvalue)."""
    from scipy import special

    ok = np.isfinite(stat) & np.isfinite(df) & (df > 0)
    out = np.full(stat.shape, np.nan)
    out[ok] = 2.0 * special.stdtr(df[ok], -np.abs(stat[ok]))
    return out


# ---------------------------------------------------------------------------------------------
# Kolari-Pynnönen BMP
# ---------------------------------------------------------------------------------------------


def _grouped_bmp(scar: np.ndarray, ok: np.ndarray, codes: np.ndarray, n_groups: int):
    """BMP ``t = mean(SCAR) / (sd(SCAR, ddof=1) / sqrt(N))`` over each group's ``ok`` rows."""
    n = np.bincount(codes[ok], minlength=n_groups)
    stat = np.full(n_groups, np.nan)
    for groups, members in _size_classes(np.flatnonzero(ok), codes, n_groups):
        if members.shape[1] < 2:
            continue
        x = scar[members]
        sd = np.std(x, axis=1, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = x.mean(axis=1) / (sd / np.sqrt(members.shape[1]))
        stat[groups] = np.where(sd > 0, t, np.nan)
    return stat, n


def _grouped_rbar(corr: np.ndarray, rows: np.ndarray, codes: np.ndarray, n_groups: int,
                  min_overlap: int) -> np.ndarray:
    """``r̄`` of :func:`~crackdown.inference.parametric._kp` per group (0 without pairs).

    Pearson correlations over each pair's overlapping days (pairs with fewer than
    ``max(min_overlap, 2)`` get NaN, values clipped to [-1, 1]), averaged over the defined
    pairs ``i < j`` of the group's ``rows``.
    """
    rbar = np.zeros(n_groups)
    for groups, members in _size_classes(rows, codes, n_groups):
        n = members.shape[1]
        if n < 2:
            continue
        iu = np.triu_indices(n, k=1)
        step = max(1, _STACK_ELEMENTS // (n * max(n, corr.shape[1])))
        for lo in range(0, len(groups), step):
            mem = members[lo:lo + step]
            e = corr[mem]  # (G, n, K)
            days = ~np.isnan(e).all(axis=(0, 1))
            e = e[:, :, days]
            m = (~np.isnan(e)).astype(float)
            x = np.where(np.isnan(e), 0.0, e)
            mt, xt = np.swapaxes(m, 1, 2), np.swapaxes(x, 1, 2)
            nn = m @ mt
            s_i = x @ mt
            s_ii = (x * x) @ mt
            s_ij = x @ xt
            with np.errstate(invalid="ignore", divide="ignore"):
                cov = s_ij - s_i * np.swapaxes(s_i, 1, 2) / nn
                var_i = s_ii - s_i**2 / nn
                r = cov / np.sqrt(var_i * np.swapaxes(var_i, 1, 2))
            r[nn < max(min_overlap, 2)] = np.nan
            vals = np.clip(r, -1.0, 1.0)[:, iu[0], iu[1]]
            fin = np.isfinite(vals)
            n_pairs = fin.sum(axis=1)
            total = np.where(fin, vals, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rbar[groups[lo:lo + step]] = np.where(n_pairs > 0, total / n_pairs, 0.0)
    return rbar


def grouped_kolari_pynnonen_bmp(
    ar_event,
    ar_est,
    codes,
    window=None,
    *,
    n_groups: int | None = None,
    rel_days=None,
    n_params: int | np.ndarray = 2,
    sigma_ddof: int | np.ndarray | None = None,
    forecast_var_factor=None,
    car_var_factor=None,
    min_overlap: int = 30,
    corr_residuals=None,
) -> GroupedTest:
    """:func:`~crackdown.inference.parametric.kolari_pynnonen_bmp` of every group of rows.

    Per group ``g`` (its rows in array order), with the rows' ``s_i`` (``ddof = sigma_ddof``,
    default ``max(n_params, 1)``), ``SCAR_i = CAR_i / (s_i sqrt(V_i))`` (``V_i`` =
    ``car_var_factor`` or ``Σ_{t in w} c_it``) and ``N_g`` firms complete on the window with
    ``s_i > 0``: ``t_BMP = mean(SCAR) / (sd(SCAR, ddof=1) / sqrt(N_g))`` (NaN for ``N_g < 2``
    or ``sd = 0``), ``r̄_g`` the mean pairwise correlation of the rows' ``corr_residuals``
    (default ``ar_est``) with at least ``min_overlap`` overlapping days (0 without such pairs),
    ``t = t_BMP sqrt((1 - r̄_g) / (1 + (N_g - 1) r̄_g))`` against t(N_g - 1).

    NaN for a group when the per-panel function raises on it: ``+/-inf`` in its rows of
    ``ar_event``, ``ar_est``, ``forecast_var_factor`` or ``corr_residuals``; a non-NaN
    ``forecast_var_factor`` or ``car_var_factor`` <= 0; ``N_g > 1`` with ``r̄_g >= 1`` or
    ``1 + (N_g - 1) r̄_g <= 0``.

    Parameters
    ----------
    ar_event, ar_est, window, rel_days, n_params, sigma_ddof, forecast_var_factor,
    car_var_factor, min_overlap, corr_residuals
        As in :func:`~crackdown.inference.parametric.kolari_pynnonen_bmp`, for all rows.
    codes : (N,) int array
        Group of each row (module docstring).
    n_groups : int, optional
        Number of groups (default ``max(codes) + 1``); groups without rows get NaN.

    Returns
    -------
    GroupedTest
        ``name="kolari_pynnonen_bmp"``, ``df = N_g - 1``.
    """
    ar = _matrix("ar_event", ar_event, np.shape(np.atleast_2d(ar_event))[0])
    n_rows = ar.shape[0]
    e = _matrix("ar_est", ar_est, n_rows)
    corr = e if corr_residuals is None else _matrix("corr_residuals", corr_residuals, n_rows)
    codes, g = _codes(codes, n_rows, n_groups)
    cols, _ = resolve_window(ar.shape[1], window, rel_days)
    bad = _any_by_group(np.isinf(ar).any(axis=1) | np.isinf(e).any(axis=1)
                        | np.isinf(corr).any(axis=1), codes, g)
    k = np.maximum(_per_row("n_params", n_params, n_rows), 1)
    ddof = k if sigma_ddof is None else _per_row("sigma_ddof", sigma_ddof, n_rows)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = np.sqrt(centered_variance(np.where(np.isinf(e), np.nan, e), ddof))
    if forecast_var_factor is None:
        c = np.ones(ar.shape)
    else:
        c = _matrix("forecast_var_factor", forecast_var_factor, n_rows)
        if c.shape != ar.shape:
            raise StudyConfigError(f"forecast_var_factor has shape {c.shape}; it must match "
                                   f"ar_event {ar.shape}.")
        with np.errstate(invalid="ignore"):
            bad |= _any_by_group(np.isinf(c).any(axis=1) | (c <= 0).any(axis=1), codes, g)
    if car_var_factor is None:
        v = c[:, cols].sum(axis=1)
    else:
        v = _per_row("car_var_factor", car_var_factor, n_rows)
        with np.errstate(invalid="ignore"):
            bad |= _any_by_group(v <= 0, codes, g)
    sub = ar[:, cols]
    complete = ~np.isnan(sub).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scar = sub.sum(axis=1) / (s * np.sqrt(v))
    ok = complete & np.isfinite(s) & (s > 0) & ~bad[codes]
    base, n = _grouped_bmp(scar, ok, codes, g)
    rows = np.flatnonzero(np.isfinite(scar) & ~bad[codes])
    rbar = _grouped_rbar(corr, rows, codes, g, min_overlap)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 1.0 + (n - 1) * rbar
        undefined = (n > 1) & (~np.isfinite(rbar) | (denom <= 0) | (rbar >= 1))
        factor = np.where(n > 1, np.sqrt((1.0 - rbar) / denom), 1.0)
    stat = base * factor
    bad |= undefined
    stat[bad] = np.nan
    df = (n - 1).astype(float)
    df[bad] = np.nan
    pvalue = _two_sided_t(stat, df)
    return GroupedTest("kolari_pynnonen_bmp", stat, pvalue, df, np.where(bad, 0, n))


# ---------------------------------------------------------------------------------------------
# portfolio (Brown-Warner 1985)
# ---------------------------------------------------------------------------------------------


def grouped_nansum(x, codes, n_groups: int | None = None, *,
                   column_major: bool = False) -> np.ndarray:
    """``(G, K)`` sums over each group's rows of ``x (N, K)``, NaN as 0 (``np.nansum(axis=0)``).

    Equal bit for bit to ``np.nansum(y, axis=0)`` with ``y`` the group's rows in order, laid
    out in memory as C order (``column_major=False``: ``y = x[rows]``, numpy adds the rows one
    after another) or Fortran order (``column_major=True``: ``y = x[rows][:, cols]``, which
    numpy's advanced indexing returns column-major, so it adds each column's values pairwise).
    Computed on stacks of the groups with the same number of rows. Groups without rows get 0.
    """
    x = np.asarray(x, dtype=float)
    codes, g = _codes(codes, x.shape[0], n_groups)
    out = np.zeros((g, x.shape[1]))
    for groups, members in _size_classes(np.arange(len(codes)), codes, g):
        stack = x[members]  # (G_n, n, K), each group's rows in order
        if column_major:
            out[groups] = np.nansum(np.ascontiguousarray(np.swapaxes(stack, 1, 2)), axis=2)
        else:
            out[groups] = np.nansum(stack, axis=1)
    return out


def _group_day_means(x: np.ndarray, codes: np.ndarray, n_groups: int, *,
                     column_major: bool = False) -> np.ndarray:
    """(G, K) NaN-aware means over each group's rows per column (``_nanmean_safe(axis=0)``)."""
    total = grouped_nansum(x, codes, n_groups, column_major=column_major)
    count = np.zeros((n_groups, x.shape[1]))
    np.add.at(count, codes, ~np.isnan(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def grouped_portfolio_t(
    ar_event,
    ar_est,
    codes,
    window=None,
    *,
    n_groups: int | None = None,
    rel_days=None,
    ddof: int = 1,
    df: float | None = None,
) -> GroupedTest:
    """:func:`~crackdown.inference.parametric.portfolio_t` of every group of rows.

    Per group: ``AAR_t`` the mean over its rows available on day ``t``; on the estimation days
    with at least one row (``T_p``), ``sd`` the time-series sd (``ddof``) of ``AAR`` (NaN for
    ``T_p <= ddof``); ``t = Σ_{t in w} AAR_t / (sd sqrt(L_w))`` over the ``L_w`` window days with
    a row (NaN when ``L_w = 0`` or ``sd`` is not > 0), against t(T_p - 1) (or ``df``).
    NaN for a group with ``+/-inf`` in its rows of ``ar_event`` or ``ar_est`` (the per-panel
    function raises).

    Parameters
    ----------
    ar_event, ar_est, window, rel_days, ddof, df
        As in :func:`~crackdown.inference.parametric.portfolio_t` (``ar_est``: the residuals of
        the portfolio's estimation series, e.g. aligned in information time).
    codes, n_groups
        As in :func:`grouped_kolari_pynnonen_bmp`.

    Returns
    -------
    GroupedTest
        ``name="brown_warner_1985"``; ``n`` = rows with an abnormal return in the window.
    """
    ar = _matrix("ar_event", ar_event, np.shape(np.atleast_2d(ar_event))[0])
    n_rows = ar.shape[0]
    e = _matrix("ar_est", ar_est, n_rows)
    codes, g = _codes(codes, n_rows, n_groups)
    cols, _ = resolve_window(ar.shape[1], window, rel_days)
    bad = _any_by_group(np.isinf(ar).any(axis=1) | np.isinf(e).any(axis=1), codes, g)
    aar_est = _group_day_means(e, codes, g)
    est_days = np.isfinite(aar_est)
    t_p = est_days.sum(axis=1)
    sd = _compact_reduce(aar_est, est_days, lambda a: np.std(a, axis=1, ddof=ddof),
                         min_count=ddof + 1)  # NaN for T_p <= ddof
    aar = _group_day_means(ar[:, cols], codes, g, column_major=True)  # as ar[:, cols]
    used = np.isfinite(aar)
    l_w = used.sum(axis=1)
    caar = np.where(l_w > 0, _compact_reduce(aar, used, lambda a: a.sum(axis=1)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = np.where((l_w > 0) & (sd > 0), caar / (sd * np.sqrt(l_w)), np.nan)
    dof = (t_p - 1).astype(float) if df is None else np.full(g, float(df))
    n = np.bincount(codes[(~np.isnan(ar[:, cols])).any(axis=1)], minlength=g)
    stat[bad] = np.nan
    dof[bad] = np.nan
    return GroupedTest("brown_warner_1985", stat, _two_sided_t(stat, dof), dof,
                       np.where(bad, 0, n))
