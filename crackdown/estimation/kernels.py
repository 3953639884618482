"""Compiled (numba) kernels of the two-regressor OLS engine: one pass over memory per firm-event.

Imported only by :mod:`crackdown.estimation.ols` when the numba engine runs (a large enough
fit, or ``CRACKDOWN_ENGINE=numba``; see :func:`crackdown.estimation.ols.resolve_engine`), so
``import crackdown``, the CLI and small fits never import numba. The numpy code of
:mod:`crackdown.estimation.ols` is the reference; these kernels compute the same quantities
with the same formulas, in a different summation order (equal to rounding: about 1e-15
relative to each row's scale, up to 1e-13 for a coefficient near 0;
``tests/test_engine_kernel.py``).

For firm-event ``i`` with columns ``a, b`` (the market model: ``a = 1``, ``b = r_m``) and
``u_t`` = row ``t`` used (mask, and ``y, a, b`` finite):

1. one pass over the row accumulates ``n = sum u_t`` and the masked sums ``S_aa, S_ab, S_bb,
   S_ay, S_by, S_yy, S_y``; then the closed form of
   :func:`crackdown.estimation.ols.fit_batched_ols` (``d_j = S_jj^{-1/2}``, ``rho = S_ab d_a
   d_b``, rank deficient when a column is zero or ``1 - |rho| <= 2 rank_tol``,
   ``(X'X)^{-1} = D [[1, -rho], [-rho, 1]] D / ((1 - |rho|)(1 + |rho|))``,
   ``params = (X'X)^{-1} X'y``);
2. a second pass over the same row (in L1 cache) writes the residuals ``y - (b p_b + a p_a)``
   (NaN on unused rows) and sums ``SSR``; ``sigma2 = SSR / (n - 2)``, ``R² = 1 - SSR / TSS``
   with ``TSS = S_yy - n ybar²`` (centred) or ``S_yy``.

Rows that are not ``ok`` (rank deficient or ``n <= 2``) get NaN in every float output, as in
the numpy engine. :func:`event_k2` gives the event-window ``AR = y - (a p_a + b p_b)`` and the
forecast-variance factor ``1 + x'(X'X)^{-1}x`` (NaN where the AR is not finite).

Compilation: ``cache=True`` (the machine code is stored by numba's cache locators: the
``NUMBA_CACHE_DIR`` directory when set, else ``__pycache__`` beside this file, else the user's
cache directory); when none is writable (a read-only install without a home directory) the
kernels are compiled in memory on first use in each process instead. ``fastmath`` is limited to
``reassoc`` (reassociating the sums lets LLVM vectorise them; NaN and infinity semantics are
kept, so the finiteness tests stay exact) and ``error_model="numpy"`` (x / 0 gives inf or NaN as
in numpy, not ZeroDivisionError).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

_OPTIONS = {"nogil": True, "fastmath": {"reassoc"}, "error_model": "numpy"}


def _jit(fn):
    """``numba.njit(cache=True, ...)``, or without the on-disk cache when no cache is writable."""
    try:
        return numba.njit(cache=True, **_OPTIONS)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **_OPTIONS)(fn)


@numba.njit(inline="always", **_OPTIONS)
def _used(yv, av, bv, mask, i, t, use_mask):  # pragma: no cover - compiled
    """Row ``t`` of firm-event ``i`` enters the fit: ``y, a, b`` finite and (if given) masked in."""
    u = math.isfinite(yv) & math.isfinite(av) & math.isfinite(bv)
    return (u & mask[i, t]) if use_mask else u


@_jit
def _fit_k2(y, a, b, mask, use_mask, rank_tol, centered, params, resid, sigma2, n_obs,
            df_resid, xtx_inv, ok, rank_deficient, ssr, r2):  # pragma: no cover - compiled
    n_rows, n_t = y.shape
    nan = np.nan
    for i in range(n_rows):
        n = 0
        saa = 0.0
        sab = 0.0
        sbb = 0.0
        say = 0.0
        sby = 0.0
        syy = 0.0
        sy = 0.0
        for t in range(n_t):
            yv = y[i, t]
            av = a[i, t]
            bv = b[i, t]
            u = _used(yv, av, bv, mask, i, t, use_mask)
            ym = yv if u else 0.0
            am = av if u else 0.0
            bm = bv if u else 0.0
            n += u
            saa += am * am
            sab += am * bm
            sbb += bm * bm
            say += am * ym
            sby += bm * ym
            syy += ym * ym
            sy += ym
        zero_col = (saa <= 0.0) or (sbb <= 0.0)
        da = 1.0 / math.sqrt(saa if saa > 0.0 else 1.0)
        db = 1.0 / math.sqrt(sbb if sbb > 0.0 else 1.0)
        rho = sab * da * db
        abs_rho = abs(rho)
        lam_min = 1.0 - abs_rho  # smallest eigenvalue of [[1, rho], [rho, 1]]
        deficient = zero_col or not (lam_min > 2.0 * rank_tol)
        good = (not deficient) and n > 2
        n_obs[i] = n
        df_resid[i] = n - 2
        ok[i] = good
        rank_deficient[i] = deficient
        if not good:
            params[i, 0] = nan
            params[i, 1] = nan
            xtx_inv[i, 0, 0] = nan
            xtx_inv[i, 0, 1] = nan
            xtx_inv[i, 1, 0] = nan
            xtx_inv[i, 1, 1] = nan
            sigma2[i] = nan
            ssr[i] = nan
            r2[i] = nan
            for t in range(n_t):
                resid[i, t] = nan
            continue
        det = lam_min * (1.0 + abs_rho)
        i_aa = da * da / det
        i_bb = db * db / det
        i_ab = -rho * da * db / det
        p_a = i_aa * say + i_ab * sby
        p_b = i_ab * say + i_bb * sby
        s = 0.0
        for t in range(n_t):
            yv = y[i, t]
            av = a[i, t]
            bv = b[i, t]
            u = _used(yv, av, bv, mask, i, t, use_mask)
            r = yv - (bv * p_b + av * p_a)
            rm = r if u else 0.0
            s += rm * rm
            resid[i, t] = r if u else nan
        params[i, 0] = p_a
        params[i, 1] = p_b
        xtx_inv[i, 0, 0] = i_aa
        xtx_inv[i, 0, 1] = i_ab
        xtx_inv[i, 1, 0] = i_ab
        xtx_inv[i, 1, 1] = i_bb
        ssr[i] = s
        sigma2[i] = s / (n - 2)
        if centered:
            ybar = sy / n
            tss = syy - n * ybar**2
        else:
            tss = syy
        r2[i] = 1.0 - s / tss


@_jit
def _event_k2(y, a, b, params, xtx_inv, ar, fvf):  # pragma: no cover - compiled
    n_rows, n_l = y.shape
    for i in range(n_rows):
        p_a = params[i, 0]
        p_b = params[i, 1]
        i_aa = xtx_inv[i, 0, 0]
        i_ab = xtx_inv[i, 0, 1]
        i_ba = xtx_inv[i, 1, 0]
        i_bb = xtx_inv[i, 1, 1]
        for t in range(n_l):
            av = a[i, t]
            bv = b[i, t]
            e = y[i, t] - (av * p_a + bv * p_b)
            ar[i, t] = e
            f = 1.0 + ((av * i_aa + bv * i_ba) * av + (av * i_ab + bv * i_bb) * bv)
            fvf[i, t] = f if math.isfinite(e) else np.nan


def _f64(x: np.ndarray) -> np.ndarray:
    """C-contiguous float64 (no copy when it already is): one compiled signature per kernel."""
    return np.ascontiguousarray(x, dtype=np.float64)


def fit_k2(y: np.ndarray, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None,
           rank_tol: float, centered_r2: bool, out: Any) -> None:
    """Closed-form two-regressor OLS of every row of ``y`` (N, T) on ``a, b`` (N, T).

    Parameters
    ----------
    y, a, b : ndarray (N, T)
        Dependent variable and the two regressor columns (copied to C-contiguous float64
        only when they are not already).
    mask : ndarray of bool (N, T) or None
        Rows allowed, combined with the finiteness of ``y, a, b``.
    rank_tol, centered_r2
        As in :func:`crackdown.estimation.ols.fit_batched_ols`.
    out : crackdown.estimation.ols.BatchedOLS
        Preallocated (C-contiguous) outputs; every field is written (module docstring). Not
        imported here: ``ols`` imports this module, never the reverse.
    """
    use_mask = mask is not None
    m = np.ascontiguousarray(mask, dtype=np.bool_) if use_mask else np.ones((1, 1), np.bool_)
    _fit_k2(_f64(y), _f64(a), _f64(b), m, use_mask, float(rank_tol), bool(centered_r2),
            out.params, out.resid, out.sigma2, out.n_obs, out.df_resid, out.xtx_inv, out.ok,
            out.rank_deficient, out.ssr, out.r2)


def event_k2(y: np.ndarray, a: np.ndarray, b: np.ndarray, params: np.ndarray,
             xtx_inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event-window ``AR = y - (a p_a + b p_b)`` and ``1 + x'(X'X)^{-1}x`` (N, L) each."""
    y = _f64(y)
    ar = np.empty(y.shape)
    fvf = np.empty(y.shape)
    _event_k2(y, _f64(a), _f64(b), _f64(params), _f64(xtx_inv), ar, fvf)
    return ar, fvf


__all__ = ["event_k2", "fit_k2"]
