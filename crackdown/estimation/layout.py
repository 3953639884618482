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
from numpy.lib.stride_tricks import sliding_window_view

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
    #: ``(date_rows, group_of, starts)``: the padded grid dates of each exchange, each row's
    #: exchange and its estimation window's start on the padded grid (see
    #: :meth:`deferred_dates_est`)
    date_windows: tuple | None = field(default=None, repr=False)

    def deferred_dates_est(self, rows: np.ndarray | None = None):
        """``dates_est[rows]`` (every row when None) as a :class:`Deferred`: gathered from
        the grid dates on first read, without gathering the other rows' dates."""
        if self.date_windows is None:
            return self.dates_est if rows is None else self.dates_est[rows]
        date_rows, group_of, starts = self.date_windows
        sel = slice(None) if rows is None else rows
        return Deferred(_window_rows, date_rows, group_of[sel], starts[sel],
                        self.y_est.shape[1])


class Deferred:
    """An array computed on first read: ``make(*args)``.

    A field of :class:`Layout` or :class:`crackdown.estimation.panel.EventPanel` installed
    with :func:`deferred_fields` may hold one; reading the field computes the array once and
    keeps it (the same values as computing it up front). Pickled as the computed array.
    ``make`` must be a module-level function (so that the object can be pickled).
    """

    __slots__ = ("args", "make")

    def __init__(self, make, *args) -> None:
        self.make, self.args = make, args

    def value(self) -> np.ndarray:
        return self.make(*self.args)

    def __reduce__(self):
        return (_identity, (self.value(),))


def _identity(value):
    return value


class _DeferredField:
    """Data descriptor of a field that may hold a :class:`Deferred` (see there)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name]
        if isinstance(value, Deferred):
            value = obj.__dict__[self.name] = value.value()
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value


def deferred_fields(cls, names: tuple[str, ...]):
    """Let the dataclass fields ``names`` of ``cls`` hold a :class:`Deferred` (computed on
    first read). Install after ``@dataclass`` (the fields keep no default)."""
    for name in names:
        setattr(cls, name, _DeferredField(name))
    return cls


deferred_fields(Layout, ("dates_est",))


def _window_rows(series: np.ndarray, which: np.ndarray, starts: np.ndarray,
                 width: int) -> np.ndarray:
    """``out[n] = series[which[n], starts[n]:starts[n] + width]``: one gather of contiguous
    slices (:func:`numpy.lib.stride_tricks.sliding_window_view`)."""
    return sliding_window_view(series, width, axis=1)[which, starts]



def study_grid(study, exchange: str) -> pd.DatetimeIndex:
    if study.session_grid == "data":
        return study.returns.index
    from crackdown.timeline.calendars import CALENDAR_END, CALENDAR_START, sessions

    return sessions(exchange, CALENDAR_START, CALENDAR_END)

def _padded(values: np.ndarray, pad: int, width: int, fill) -> np.ndarray:
    """``values`` (along axis 0) at positions ``pad .. pad + len - 1`` of ``width`` rows of
    ``fill``: windows that reach past the ends read ``fill`` without a mask."""
    out = np.full((width,) + values.shape[1:], fill, dtype=values.dtype)
    out[pad:pad + len(values)] = values
    return out


def build_layout(study) -> Layout:
    """Row-aligned arrays of ``study`` (:class:`Layout`; module docstring).

    Every exchange's columns (the listings and benchmarks of its firm-events, plus an all-NaN
    row for "no benchmark") are copied once into one matrix, each grid padded with ``pad``
    NaN sessions on both sides (``pad`` beyond the farthest window offset), so the window of
    firm-event ``n`` is the contiguous slice ``[p0_n + pad + lo, p0_n + pad + hi]`` of its
    column's row (``p0_n`` its day 0's position on the grid) and every ``(N, T)`` array is one
    gather of ``N`` slices (:func:`numpy.lib.stride_tricks.sliding_window_view`); positions
    off the grid read NaN (NaT for dates), as if masked.
    """
    fe = study.firm_events
    n = len(fe)
    e_lo, e_hi = study.estimation
    w_lo, w_hi = study.window
    est_off = np.arange(e_lo, e_hi + 1)
    ev_off = np.arange(w_lo, w_hi + 1)
    t_len, l_len = len(est_off), len(ev_off)
    fac_cols = study._factor_columns()
    nf = len(fac_cols)
    fac_est = np.full((n, t_len, nf), np.nan) if nf else None
    fac_event = np.full((n, l_len, nf), np.nan) if nf else None
    has_rf = study.factors is not None and "rf" in study.factors.columns
    rf_est = np.full((n, t_len), np.nan) if has_rf else None
    rf_event = np.full((n, l_len), np.nan) if has_rf else None
    shifts = BENCHMARK_SHIFTS if study.needs_benchmark_shifts else ()
    has_world = "world" in fe.columns and (fe["world"] != "").any()
    world_est = np.full((n, t_len), np.nan) if has_world else None
    world_event = np.full((n, l_len), np.nan) if has_world else None
    clean_mask = np.ones((n, t_len), dtype=bool)
    first_valid = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    has_any = np.zeros(n, dtype=bool)
    day0_note = [""] * n
    day0 = fe["day0"].to_numpy()
    tickers = fe["ticker"].to_numpy(dtype=object)
    benchmarks = fe["benchmark"].to_numpy(dtype=object)
    pad = max(abs(e_lo), abs(e_hi), abs(w_lo), abs(w_hi)) + max(BENCHMARK_SHIFTS) + 1
    group_key = fe["exchange"] if study.session_grid == "exchange" else pd.Series("", index=fe.index)
    groups = list(fe.groupby(group_key.to_numpy(), sort=False).indices.items())
    grids = {exchange: study_grid(study, exchange) for exchange, _ in groups}
    width = max(len(g) for g in grids.values()) + 2 * pad
    blocks: list[np.ndarray] = []  # per exchange: (columns + 1, width), padded
    date_rows = np.full((len(groups), width), np.datetime64("NaT"), dtype="datetime64[ns]")
    row_of = np.zeros(n, dtype=np.intp)  # row of the firm-event's return in the blocks
    bench_row = np.zeros(n, dtype=np.intp)  # its benchmark's row (the NaN row if none)
    start = np.zeros(n, dtype=np.intp)  # padded grid position of day 0
    group_of = np.zeros(n, dtype=np.intp)
    offset = 0
    for gi, (exchange, idx) in enumerate(groups):
        grid = grids[exchange]
        g = len(grid)
        cols = list(dict.fromkeys(list(tickers[idx]) + [b for b in benchmarks[idx] if b]))
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
        block = np.full((len(cols) + 1, width), np.nan)  # last row: no benchmark
        block[:len(cols), pad:pad + g] = mat
        blocks.append(block)
        gd = grid.to_numpy()
        date_rows[gi, pad:pad + g] = gd
        col_index = pd.Index(cols)
        ycol = col_index.get_indexer(tickers[idx])
        bcol = col_index.get_indexer(benchmarks[idx])  # "" (no benchmark): -1
        row_of[idx] = offset + ycol
        bench_row[idx] = offset + np.where(bcol >= 0, bcol, len(cols))
        start[idx] = p0 + pad
        group_of[idx] = gi
        offset += len(cols) + 1
        s_e, s_v = p0 + pad + e_lo, p0 + pad + w_lo  # window starts on the padded grid
        if world_est is not None:
            wnames = fe["world"].iloc[idx].to_numpy()
            for w in pd.unique(wnames):
                if not w:
                    continue
                sel = wnames == w
                series = _padded(world_market_on_grid(study.returns, w, exchange, grid), pad,
                                 width, np.nan)
                rows_w = idx[sel]
                world_est[rows_w] = sliding_window_view(series, t_len)[s_e[sel]]
                world_event[rows_w] = sliding_window_view(series, l_len)[s_v[sel]]
        # first available return of each ticker on this grid
        valid = np.isfinite(mat)
        any_valid = valid.any(axis=1)
        first_pos = valid.argmax(axis=1)
        has_any[idx] = any_valid[ycol]
        first_valid[idx] = np.where(any_valid[ycol], gd[first_pos[ycol]], np.datetime64("NaT"))
        if nf or has_rf:
            fac = study.factors.reindex(grid)
            if nf:  # (width, F) -> windows (positions, F, T) -> (rows, T, F)
                fm = _padded(fac[fac_cols].to_numpy(dtype=float), pad, width, np.nan)
                fac_est[idx] = sliding_window_view(fm, t_len, axis=0)[s_e].transpose(0, 2, 1)
                fac_event[idx] = sliding_window_view(fm, l_len, axis=0)[s_v].transpose(0, 2, 1)
            if has_rf:
                rf = _padded(fac["rf"].to_numpy(dtype=float), pad, width, np.nan)
                rf_est[idx] = sliding_window_view(rf, t_len)[s_e]
                rf_event[idx] = sliding_window_view(rf, l_len)[s_v]
        pe = p0[:, None] + est_off[None, :] if study.clean_estimation else None
        if study.clean_estimation:
            tick = fe["ticker"].iloc[idx].to_numpy()
            extra = study.other_event_days
            # placebo re-fits clean only the real events (other_event_days), never each other
            own_rows = getattr(study, "clean_study_rows", True)
            for t in pd.unique(tick):
                rows = np.flatnonzero(tick == t)
                # other events' day 0 on this grid: the study's own rows, then the extra ones
                p_other = p0[rows] if own_rows else p0[rows][:0]
                m = len(p_other)
                if extra is not None:
                    days = extra.loc[extra["ticker"] == t, "day0"].to_numpy()
                    p_other = np.concatenate([p_other, grid.searchsorted(days)])
                if len(p_other) < (2 if own_rows else 1):
                    continue
                starts = p_other + w_lo  # (m + e,) other events' windows on this grid
                ends = p_other + w_hi
                pos = pe[rows]  # (m, T)
                hit = (pos[:, :, None] >= starts[None, None, :]) & (
                    pos[:, :, None] <= ends[None, None, :])  # (m, T, m + e)
                own = p_other[None, :m] == p0[rows][:, None]  # the row's own window
                hit[:, :, :m] &= ~own[:, None, :]
                if extra is not None:  # an extra day equal to the row's own day 0 is itself
                    hit[:, :, m:] &= (p_other[None, None, m:] != p0[rows][:, None, None])
                clean_mask[idx[rows]] &= ~hit.any(axis=2)
    # one gather of contiguous slices per array (see the docstring)
    big = np.concatenate(blocks)
    win_e = sliding_window_view(big, t_len, axis=1)
    win_v = sliding_window_view(big, l_len, axis=1)
    s_e, s_v = start + e_lo, start + w_lo
    y_est, y_event = win_e[row_of, s_e], win_v[row_of, s_v]
    b_est, b_event = win_e[bench_row, s_e], win_v[bench_row, s_v]
    # the benchmark k sessions later (thin-trading betas)
    bench_shift = {k: (win_e[bench_row, s_e + k], win_v[bench_row, s_v + k]) for k in shifts}
    # the (N, T) dates are gathered when first read (most fits never read them)
    dates_est = Deferred(_window_rows, date_rows, group_of, s_e, t_len)
    dates_event = sliding_window_view(date_rows, l_len, axis=1)[group_of, s_v]
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
        date_windows=(date_rows, group_of, s_e),
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


def estimation_regressors(study, spec, lay: Layout) -> list[np.ndarray]:
    """The ``(N, T)`` estimation-window arrays of ``spec``'s regressors other than the
    constant, for every row of ``lay`` (views, no copy; the columns of
    :meth:`crackdown.estimation.study.EventStudy._design`, unstacked)."""
    fac_cols = study._factor_columns()
    shifted = {"market_lag1": -1, "market_lead1": 1}
    out = []
    for r in spec.design_columns:
        if r == "const":
            continue
        if r == "market":
            out.append(lay.bench_est)
        elif r in shifted:
            out.append(lay.bench_shift[shifted[r]][0])
        elif r == "world":
            out.append(lay.world_est)
        else:
            out.append(lay.fac_est[:, :, fac_cols.index(r)])
    return out


def _usable_returns(study, spec, lay: Layout, rows: np.ndarray) -> np.ndarray:
    """The stock's estimation-window returns on the days ``spec`` can use (NaN elsewhere).

    A day is usable when the return, every regressor of ``spec``
    (:func:`estimation_regressors`) and the clean mask are there; no ``(N, T, k)`` design is
    built.
    """
    every = len(rows) == len(lay.y_est) and np.array_equal(rows, np.arange(len(rows)))

    def pick(a: np.ndarray) -> np.ndarray:
        return a if every else a[rows]

    y = lay.y_est[rows]  # a copy
    use = np.isfinite(y)
    use &= pick(lay.clean_mask)
    for x in estimation_regressors(study, spec, lay):
        use &= np.isfinite(pick(x))
    y[~use] = np.nan
    return y


#: Rows per block of :func:`_usable_blocks` (2 MB of float64 per block at T = 250).
USABLE_BLOCK = 1024


def _usable_blocks(study, spec, lay: Layout, rows: np.ndarray):
    """:func:`_usable_returns` of ``rows``, block by block: yields ``(sl, y)`` with ``y``
    the usable returns of ``rows[sl]`` (cache-sized temporaries instead of one
    ``(len(rows), T)`` copy; each row is computed as in :func:`_usable_returns`)."""
    regs = estimation_regressors(study, spec, lay)
    for s in range(0, len(rows), USABLE_BLOCK):
        sl = slice(s, s + USABLE_BLOCK)
        r = rows[sl]
        y = lay.y_est[r]  # a copy
        use = np.isfinite(y)
        use &= lay.clean_mask[r]
        for x in regs:
            use &= np.isfinite(x[r])
        y[~use] = np.nan
        yield sl, y


def drop_constant_returns(study, spec, lay: Layout, rows: np.ndarray, status: np.ndarray,
                          detail: list[str], stats: dict | None = None) -> np.ndarray:
    """Rows of ``rows`` whose return varies; the others get ``insufficient_estimation``.

    A return that is the same on all of at least two usable estimation days (a price that
    never moves) has zero variance: every standardized test would divide by zero and the
    model's fit is undefined. ``status`` and ``detail`` are updated in place. With ``stats``
    (a dict), the usable days, largest and smallest usable return of the rows kept are left
    in it (keys ``rows, n_use, hi, lo``) for :func:`flag_perfect_fits`, which then need not
    compute them again.
    """
    if spec is None or len(rows) == 0:
        return rows
    n_use = np.empty(len(rows), dtype=np.intp)
    filled_hi = np.empty(len(rows))
    filled_lo = np.empty(len(rows))
    for sl, y in _usable_blocks(study, spec, lay, rows):
        n_use[sl] = y.shape[1] - np.isnan(y).sum(axis=1)
        filled_hi[sl] = np.fmax.reduce(y, axis=1)  # NaN-ignoring: the largest usable return
        filled_lo[sl] = np.fmin.reduce(y, axis=1)
    constant = (n_use >= 2) & (filled_hi == filled_lo)
    if stats is not None:
        keep = ~constant
        stats.update(rows=rows[keep], n_use=n_use[keep], hi=filled_hi[keep], lo=filled_lo[keep])
    for j in np.flatnonzero(constant):
        status[rows[j]] = "insufficient_estimation"
        detail[rows[j]] = (
            f"zero return variance in the estimation window: the return is "
            f"{float(filled_hi[j]):.6g} on all {n_use[j]} usable days (a price that never moves: "
            "not trading, or a stale series); its tests would be undefined; excluded"
        )
    return rows[~constant]


def flag_perfect_fits(study, spec, lay: Layout, rows: np.ndarray, fit, status: np.ndarray,
                      detail: list[str], stats: dict | None = None) -> None:
    """Mark fits whose residual variance is rounding error as ``degenerate_design``.

    ``sigma2 <= PERFECT_FIT * Var(r)`` over the usable estimation days (Var with ddof 1): the
    regressors reproduce the stock's returns (its own returns under another name). Sets
    ``fit.ok`` to False for them (excluded) and updates ``status`` and ``detail`` in place.
    ``stats``: what :func:`drop_constant_returns` left for the same ``rows`` (else computed
    here).
    """
    if len(rows) == 0:
        return
    # Var(r) <= n / (n - 1) max|r|^2 <= 2 max|r|^2 (n >= 2): only rows under 4 PERFECT_FIT
    # max|r|^2 can be perfect, and Var(r) is computed for those alone (row by row, as for all)
    var_y = np.full(len(rows), np.nan)
    maybe = np.zeros(len(rows), dtype=bool)
    if stats and np.array_equal(stats["rows"], rows):
        top = np.fmax(stats["hi"], -stats["lo"])
        s2 = fit.sigma2
        with np.errstate(invalid="ignore", over="ignore"):
            maybe[:] = fit.ok & (stats["n_use"] > 1) & np.isfinite(s2) & (
                s2 <= 4 * PERFECT_FIT * top * top)
        cand = np.flatnonzero(maybe)
        if len(cand):
            with np.errstate(invalid="ignore", divide="ignore"):
                var_y[cand] = np.nanvar(_usable_returns(study, spec, lay, rows[cand]), axis=1,
                                        ddof=1)
        _flag(spec, rows, fit, status, detail, maybe, var_y)
        return
    for sl, y in _usable_blocks(study, spec, lay, rows):
        n_use = y.shape[1] - np.isnan(y).sum(axis=1)
        top = np.fmax(np.fmax.reduce(y, axis=1), -np.fmin.reduce(y, axis=1))
        s2 = fit.sigma2[sl]
        with np.errstate(invalid="ignore", over="ignore"):
            maybe[sl] = fit.ok[sl] & (n_use > 1) & np.isfinite(s2) & (
                s2 <= 4 * PERFECT_FIT * top * top)
        cand = np.flatnonzero(maybe[sl])
        if len(cand):
            with np.errstate(invalid="ignore", divide="ignore"):
                var_y[sl][cand] = np.nanvar(y[cand], axis=1, ddof=1)
    _flag(spec, rows, fit, status, detail, maybe, var_y)


def _flag(spec, rows, fit, status, detail, maybe, var_y) -> None:
    """The perfect fits among the candidates ``maybe`` (:func:`flag_perfect_fits`)."""
    with np.errstate(invalid="ignore"):
        perfect = maybe & (fit.sigma2 <= PERFECT_FIT * var_y)
    for j in np.flatnonzero(perfect):
        fit.ok[j] = False
        status[rows[j]] = "degenerate_design"
        detail[rows[j]] = (
            f"model {spec.name} reproduces the returns exactly in the estimation window "
            f"(residual variance {float(fit.sigma2[j]):.3g}, return variance "
            f"{float(var_y[j]):.3g}): is a regressor the stock itself under another name? Its "
            "tests would be rounding noise; excluded"
        )
