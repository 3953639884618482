"""Row-aligned estimation and event-window arrays of a study (one row per firm-event).

:func:`build_layout` puts every firm-event of an :class:`crackdown.estimation.study.EventStudy`
on its listing's session grid and gathers, for the estimation offsets ``T`` and the event
offsets ``L``, the stock's return, its benchmark's (also one session earlier and later, for
the thin-trading betas of :mod:`crackdown.estimation.thin_trading`), the other market's return
(the international market model), factors and the risk-free rate. Nothing is filled: a missing
value is NaN and the fit masks it.

Degenerate designs (:func:`own_regressors`, :func:`drop_constant_returns`,
:func:`flag_perfect_fits`) are found on these arrays: a regressor that is the studied ticker
itself, a return that never varies on the usable estimation days, a fit that reproduces the
returns exactly. :meth:`crackdown.estimation.study.EventStudy.fit` excludes them with the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

#: Benchmark shifts gathered for the thin-trading models (sessions relative to the day).
BENCHMARK_SHIFTS = (-1, 1)
#: A fit whose residual variance is below this fraction of the return variance reproduces the
#: returns exactly (a regressor is the stock itself): relative residual sd below 1e-7.
PERFECT_FIT = 1e-14


@dataclass
class Layout:
    """Row-aligned arrays of one fit: row ``n`` is firm-event ``n`` of ``keys``.

    ``*_est`` arrays are ``(N, T)`` over the estimation offsets, ``*_event`` ``(N, L)`` over the
    event window, factor stacks ``(N, T, F)``. ``bench_shift[k]`` holds the benchmark ``k``
    sessions later on the listing's grid (``k = -1`` the previous session, ``+1`` the next), as
    a pair ``(est, event)``; ``world_est``/``world_event`` the other market's news since the
    listing's previous session (:func:`world_market_on_grid`), or ``None``.
    """

    keys: pd.DataFrame
    y_est: np.ndarray
    y_event: np.ndarray
    bench_est: np.ndarray
    bench_event: np.ndarray
    rf_est: np.ndarray | None
    rf_event: np.ndarray | None
    fac_est: np.ndarray | None
    fac_event: np.ndarray | None
    clean_mask: np.ndarray
    dates_est: np.ndarray
    dates_event: np.ndarray
    first_valid: np.ndarray
    has_any: np.ndarray
    day0_note: list[str]
    bench_shift: dict = field(default_factory=dict)
    world_est: np.ndarray | None = None
    world_event: np.ndarray | None = None



def study_grid(study, exchange: str) -> pd.DatetimeIndex:
    if study.session_grid == "data":
        return study.returns.index
    from crackdown.timeline.calendars import CALENDAR_END, CALENDAR_START, sessions

    return sessions(exchange, CALENDAR_START, CALENDAR_END)

def build_layout(study) -> Layout:
    fe = study.firm_events
    n = len(fe)
    e_lo, e_hi = study.estimation
    w_lo, w_hi = study.window
    est_off = np.arange(e_lo, e_hi + 1)
    ev_off = np.arange(w_lo, w_hi + 1)
    t_len, l_len = len(est_off), len(ev_off)
    y_est = np.full((n, t_len), np.nan)
    y_event = np.full((n, l_len), np.nan)
    b_est = np.full((n, t_len), np.nan)
    b_event = np.full((n, l_len), np.nan)
    fac_cols = study._factor_columns()
    nf = len(fac_cols)
    fac_est = np.full((n, t_len, nf), np.nan) if nf else None
    fac_event = np.full((n, l_len, nf), np.nan) if nf else None
    has_rf = study.factors is not None and "rf" in study.factors.columns
    rf_est = np.full((n, t_len), np.nan) if has_rf else None
    rf_event = np.full((n, l_len), np.nan) if has_rf else None
    shifts = BENCHMARK_SHIFTS if study.needs_benchmark_shifts else ()
    bench_shift = {k: (np.full((n, t_len), np.nan), np.full((n, l_len), np.nan)) for k in shifts}
    has_world = "world" in fe.columns and (fe["world"] != "").any()
    world_est = np.full((n, t_len), np.nan) if has_world else None
    world_event = np.full((n, l_len), np.nan) if has_world else None
    clean_mask = np.ones((n, t_len), dtype=bool)
    dates_est = np.full((n, t_len), np.datetime64("NaT"), dtype="datetime64[ns]")
    dates_event = np.full((n, l_len), np.datetime64("NaT"), dtype="datetime64[ns]")
    first_valid = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    has_any = np.zeros(n, dtype=bool)
    day0_note = [""] * n
    day0 = fe["day0"].to_numpy()

    group_key = fe["exchange"] if study.session_grid == "exchange" else pd.Series("", index=fe.index)
    for exchange, idx in fe.groupby(group_key.to_numpy(), sort=False).indices.items():
        grid = study_grid(study, exchange)
        g = len(grid)
        cols = list(dict.fromkeys(list(fe["ticker"].iloc[idx]) + [
            b for b in fe["benchmark"].iloc[idx] if b
        ]))
        if study.session_grid == "exchange":
            off_grid = study.returns.index.difference(grid)
            sub = study.returns.loc[off_grid, [c for c in cols if c in study.returns.columns]]
            stray = sub.columns[sub.notna().any()].tolist()
            if stray:
                warnings.warn(
                    f"returns of {', '.join(stray)} on dates that are not {exchange} sessions "
                    "were ignored (session_grid='exchange')",
                    stacklevel=3,
                )
        # (columns x dates): gathers along the date axis read contiguous memory
        mat = np.ascontiguousarray(
            study.returns.reindex(index=grid, columns=cols).to_numpy(dtype=float).T)
        col_of = {c: j for j, c in enumerate(cols)}
        p0 = grid.searchsorted(day0[idx])
        on_grid = (p0 < g) & (grid.to_numpy()[np.minimum(p0, g - 1)] == day0[idx])
        for j in np.flatnonzero(~on_grid):
            i = idx[j]
            d = pd.Timestamp(day0[i])
            if study.session_grid == "exchange":
                raise StudyConfigError(
                    f"day0 {d:%Y-%m-%d} of event {fe['event_id'].iat[i]} / "
                    f"{fe['ticker'].iat[i]} is not a {exchange} session; map announcement "
                    "dates with crackdown.timeline.calendars.day_zero"
                )
            if p0[j] >= g:
                raise StudyConfigError(
                    f"day0 {d:%Y-%m-%d} of event {fe['event_id'].iat[i]} / "
                    f"{fe['ticker'].iat[i]} is after the last date of the returns"
                )
            day0_note[i] = (
                f"day0 {d:%Y-%m-%d} is not in the returns index; used the next date "
                f"{grid[p0[j]]:%Y-%m-%d}"
            )
        pe = p0[:, None] + est_off[None, :]
        pv = p0[:, None] + ev_off[None, :]
        ok_e = (pe >= 0) & (pe < g)
        ok_v = (pv >= 0) & (pv < g)
        pe_c = np.clip(pe, 0, g - 1)
        pv_c = np.clip(pv, 0, g - 1)
        ycol = np.array([col_of[t] for t in fe["ticker"].iloc[idx]])
        y_est[idx] = np.where(ok_e, mat[ycol[:, None], pe_c], np.nan)
        y_event[idx] = np.where(ok_v, mat[ycol[:, None], pv_c], np.nan)
        bnames = fe["benchmark"].iloc[idx].to_numpy()
        has_b = np.array([bool(b) for b in bnames])
        if has_b.any():
            bcol = np.array([col_of[b] if b else 0 for b in bnames])
            b_est[idx] = np.where(ok_e & has_b[:, None], mat[bcol[:, None], pe_c], np.nan)
            b_event[idx] = np.where(ok_v & has_b[:, None], mat[bcol[:, None], pv_c], np.nan)
            for k in shifts:  # the benchmark k sessions later (thin-trading betas)
                pair = []
                for pos in (pe, pv):
                    pk = pos + k
                    ok_k = (pk >= 0) & (pk < g) & has_b[:, None]
                    pair.append(np.where(ok_k, mat[bcol[:, None], np.clip(pk, 0, g - 1)],
                                         np.nan))
                bench_shift[k][0][idx], bench_shift[k][1][idx] = pair
        if world_est is not None:
            wnames = fe["world"].iloc[idx].to_numpy()
            for w in pd.unique(wnames):
                if not w:
                    continue
                sel = wnames == w
                series = world_market_on_grid(study.returns, w, exchange, grid)
                rows_w = idx[sel]
                world_est[rows_w] = np.where(ok_e[sel], series[pe_c[sel]], np.nan)
                world_event[rows_w] = np.where(ok_v[sel], series[pv_c[sel]], np.nan)
        gd = grid.to_numpy()
        dates_est[idx] = np.where(ok_e, gd[pe_c], np.datetime64("NaT"))
        dates_event[idx] = np.where(ok_v, gd[pv_c], np.datetime64("NaT"))
        # first available return of each ticker on this grid
        valid = np.isfinite(mat)
        any_valid = valid.any(axis=1)
        first_pos = valid.argmax(axis=1)
        has_any[idx] = any_valid[ycol]
        first_valid[idx] = np.where(any_valid[ycol], gd[first_pos[ycol]], np.datetime64("NaT"))
        if nf or has_rf:
            fac = study.factors.reindex(grid)
            if nf:
                fm = fac[fac_cols].to_numpy(dtype=float)
                fac_est[idx] = np.where(ok_e[:, :, None], fm[pe_c], np.nan)
                fac_event[idx] = np.where(ok_v[:, :, None], fm[pv_c], np.nan)
            if has_rf:
                rf = fac["rf"].to_numpy(dtype=float)
                rf_est[idx] = np.where(ok_e, rf[pe_c], np.nan)
                rf_event[idx] = np.where(ok_v, rf[pv_c], np.nan)
        if study.clean_estimation:
            tick = fe["ticker"].iloc[idx].to_numpy()
            extra = study.other_event_days
            for t in pd.unique(tick):
                rows = np.flatnonzero(tick == t)
                # other events' day 0 on this grid: the study's own rows, then the extra ones
                p_other = p0[rows]
                if extra is not None:
                    days = extra.loc[extra["ticker"] == t, "day0"].to_numpy()
                    p_other = np.concatenate([p_other, grid.searchsorted(days)])
                if len(p_other) < 2:
                    continue
                starts = p_other + w_lo  # (m + e,) other events' windows on this grid
                ends = p_other + w_hi
                pos = pe[rows]  # (m, T)
                hit = (pos[:, :, None] >= starts[None, None, :]) & (
                    pos[:, :, None] <= ends[None, None, :])  # (m, T, m + e)
                own = p_other[None, :len(rows)] == p0[rows][:, None]  # the row's own window
                hit[:, :, :len(rows)] &= ~own[:, None, :]
                if extra is not None:  # an extra day equal to the row's own day 0 is itself
                    hit[:, :, len(rows):] &= (p_other[None, None, len(rows):]
                                              != p0[rows][:, None, None])
                clean_mask[idx[rows]] &= ~hit.any(axis=2)
    return Layout(
        keys=fe,
        y_est=y_est,
        y_event=y_event,
        bench_est=b_est,
        bench_event=b_event,
        rf_est=rf_est,
        rf_event=rf_event,
        fac_est=fac_est,
        fac_event=fac_event,
        clean_mask=clean_mask,
        dates_est=dates_est,
        dates_event=dates_event,
        first_valid=first_valid,
        has_any=has_any,
        day0_note=day0_note,
        bench_shift=bench_shift,
        world_est=world_est,
        world_event=world_event,
    )


def _market_exchange(column: str) -> str:
    """Calendar of a world-market column: ``HK_NONTECH_EW*`` is Hong Kong, else the listing's."""
    from crackdown.marketdata.benchmarks import is_constructed_benchmark
    from crackdown.timeline.universe import exchange_for_ticker

    if is_constructed_benchmark(column):
        return "XHKG"
    return exchange_for_ticker(column)


def world_market_on_grid(returns: pd.DataFrame, column: str, exchange: str,
                         grid: pd.DatetimeIndex) -> np.ndarray:
    """The other market's return that a listing's session is the first to price.

    A session ``s`` of the other market (``column``'s exchange) is assigned to the first
    session ``t`` of ``exchange`` that opens after ``s`` closes, and the returns assigned to
    ``t`` are summed: Hong Kong closes (08:00 UTC) before New York opens (13:30/14:30 UTC) on
    the same date, and New York closes (20:00/21:00 UTC) after Hong Kong opens (01:30 UTC) of
    the next date, so

    * a New York listing on date ``t`` gets the Hong Kong sessions dated in ``(t_prev, t]``;
    * a Hong Kong listing on date ``t`` gets the New York sessions dated in ``[t_prev, t)``,
      i.e. the previous New York session's return (the news Hong Kong has not yet priced).

    A listing session to which no session of the other market is assigned (that market was
    closed) gets 0, the other market having moved by nothing; a missing return of an assigned
    session makes the sum NaN (never filled). Sums of simple returns approximate the
    compounded return (exact for log returns).

    Parameters
    ----------
    returns : pandas.DataFrame
        Wide returns holding ``column``.
    column : str
        The other market's return column (e.g. ``"SPY"``, ``"HK_NONTECH_EW"``).
    exchange : str
        MIC of the listing whose grid is ``grid``.
    grid : pandas.DatetimeIndex
        The listing's sessions.

    Returns
    -------
    ndarray (len(grid),)
    """
    from crackdown.timeline.calendars import sessions

    if column not in returns.columns:
        raise StudyConfigError(
            f"world market {column!r} is not in the returns columns; add its returns or pass "
            "world_market={exchange: ticker}")
    other = _market_exchange(column)
    if other == exchange:  # same calendar: the contemporaneous return
        return returns[column].reindex(grid).to_numpy(dtype=float)
    own = returns[column].dropna()
    if len(own) == 0:
        return np.full(len(grid), np.nan)
    days = sessions(other, own.index[0], own.index[-1])
    r = returns[column].reindex(days).to_numpy(dtype=float)
    # New York after Hong Kong on the same date: first listing session on or after the date;
    # Hong Kong after New York: first listing session strictly after it
    side = "left" if other == "XHKG" else "right"
    pos = grid.searchsorted(days, side=side)
    out = np.zeros(len(grid))
    inside = pos < len(grid)
    np.add.at(out, pos[inside], np.nan_to_num(r[inside]))
    bad = np.zeros(len(grid), dtype=bool)
    bad[pos[inside & ~np.isfinite(r)]] = True
    out[bad] = np.nan
    # before the other market's first return and after its last: unknown
    out[: min(pos[0], len(grid))] = np.nan
    out[min(pos[-1] + 1, len(grid)):] = np.nan
    return out


# --------------------------------------------------------------------------- degenerate designs
def own_regressors(spec, keys: pd.DataFrame) -> list[str]:
    """Per row of ``keys``: ``"benchmark SPY"`` when a regressor of ``spec`` is the row's own
    ticker (``"world market X"`` for the international model), else ``""``."""
    tick = keys["ticker"].astype(str).to_numpy()
    out = np.full(len(keys), "", dtype=object)
    for col, what, needed in (("benchmark", "benchmark", spec.needs_benchmark),
                              ("world", "world market", spec.needs_world)):
        if needed and col in keys.columns:
            same = keys[col].astype(str).to_numpy() == tick
            out[same] = [f"{o + ' and ' if o else ''}{what} {t}"
                         for o, t in zip(out[same], tick[same])]
    return list(out)


def _usable_returns(study, spec, lay: Layout, rows: np.ndarray) -> np.ndarray:
    """The stock's estimation-window returns on the days ``spec`` can use (NaN elsewhere)."""
    _, xe, _, _ = study._design(spec, lay, rows)
    y = lay.y_est[rows]
    use = np.isfinite(y) & np.isfinite(xe).all(axis=2) & lay.clean_mask[rows]
    return np.where(use, y, np.nan)


def drop_constant_returns(study, spec, lay: Layout, rows: np.ndarray, status: np.ndarray,
                          detail: list[str]) -> np.ndarray:
    """Rows of ``rows`` whose return varies; the others get ``insufficient_estimation``.

    A return that is the same on all of at least two usable estimation days (a price that
    never moves) has zero variance: every standardized test would divide by zero and the
    model's fit is undefined. ``status`` and ``detail`` are updated in place.
    """
    if spec is None or len(rows) == 0:
        return rows
    y = _usable_returns(study, spec, lay, rows)
    n_use = np.isfinite(y).sum(axis=1)
    filled_hi = np.where(np.isfinite(y), y, -np.inf).max(axis=1)
    filled_lo = np.where(np.isfinite(y), y, np.inf).min(axis=1)
    constant = (n_use >= 2) & (filled_hi == filled_lo)
    for j in np.flatnonzero(constant):
        status[rows[j]] = "insufficient_estimation"
        detail[rows[j]] = (
            f"zero return variance in the estimation window: the return is "
            f"{float(filled_hi[j]):.6g} on all {n_use[j]} usable days (a price that never moves: "
            "not trading, or a stale series); its tests would be undefined; excluded"
        )
    return rows[~constant]


def flag_perfect_fits(study, spec, lay: Layout, rows: np.ndarray, fit, status: np.ndarray,
                      detail: list[str]) -> None:
    """Mark fits whose residual variance is rounding error as ``degenerate_design``.

    ``sigma2 <= PERFECT_FIT * Var(r)`` over the usable estimation days (Var with ddof 1): the
    regressors reproduce the stock's returns (its own returns under another name). Sets
    ``fit.ok`` to False for them (excluded) and updates ``status`` and ``detail`` in place.
    """
    if len(rows) == 0:
        return
    y = _usable_returns(study, spec, lay, rows)
    n_use = np.isfinite(y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_y = np.nanvar(np.where(n_use[:, None] > 1, y, 0.0), axis=1, ddof=1)
        perfect = fit.ok & (n_use > 1) & np.isfinite(fit.sigma2) & (
            fit.sigma2 <= PERFECT_FIT * var_y)
    for j in np.flatnonzero(perfect):
        fit.ok[j] = False
        status[rows[j]] = "degenerate_design"
        detail[rows[j]] = (
            f"model {spec.name} reproduces the returns exactly in the estimation window "
            f"(residual variance {float(fit.sigma2[j]):.3g}, return variance "
            f"{float(var_y[j]):.3g}): is a regressor the stock itself under another name? Its "
            "tests would be rounding noise; excluded"
        )
