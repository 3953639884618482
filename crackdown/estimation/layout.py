"""Row-aligned estimation and event-window arrays of a study (one row per firm-event).

:func:`build_layout` puts every firm-event of an :class:`crackdown.estimation.study.EventStudy`
on its listing's session grid and gathers, for the estimation offsets ``T`` and the event
offsets ``L``, the stock's return, its benchmark's (also one session earlier and later, for
the thin-trading betas of :mod:`crackdown.estimation.thin_trading`), the other market's return
(the international market model), factors and the risk-free rate. Nothing is filled: a missing
value is NaN and the fit masks it. The ``(N, T)`` return and benchmark are gathered when first
read: the fit reads them by rows (:class:`EstimationRows`, :func:`estimation_design`).

Degenerate designs (:func:`own_regressors`, :func:`drop_constant_returns`,
:func:`flag_perfect_fits`) are found on these arrays: a regressor that is the studied ticker
itself, a return that never varies on the usable estimation days, a fit that reproduces the
returns exactly. :meth:`crackdown.estimation.study.EventStudy.fit` excludes them with the reason.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crackdown.errors import StudyConfigError
from crackdown.estimation.ols import _NAN_BITS, _Scratch, rows_in_range

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
    #: ``(big, {"y_est": rows, "bench_est": rows}, starts)``: the padded returns matrix, the
    #: row of each firm-event's return and benchmark in it and its estimation window's start
    #: (``y_est`` and ``bench_est`` are gathered from it when first read; see :meth:`est_rows`)
    est_windows: tuple | None = field(default=None, repr=False)

    def _windows(self, name: str, rows) -> tuple | None:
        """Arguments of :func:`_window_rows` giving ``getattr(self, name)[rows]`` (``rows``:
        int array or slice) when that array was not read yet, else None."""
        if not isinstance(self.__dict__.get(name), Deferred) or self.est_windows is None:
            return None
        big, which, starts = self.est_windows
        rows = np.arange(len(starts))[rows] if isinstance(rows, slice) else rows
        return big, which[name][rows], starts[rows], self.clean_mask.shape[1]

    def est_rows(self, name: str, rows) -> np.ndarray:
        """``getattr(self, name)[rows]`` for ``name`` ``"y_est"`` or ``"bench_est"``, without
        gathering the whole ``(N, T)`` array when it was not read yet: the rows' windows are
        gathered from the padded returns (the same values). ``rows``: int array or slice."""
        args = self._windows(name, rows)
        return getattr(self, name)[rows] if args is None else _window_rows(*args)

    def deferred_rows(self, name: str, rows: np.ndarray | None = None):
        """``getattr(self, name)[rows]`` (every row when None) as a :class:`Deferred` (gathered
        on first read; the array itself when read already and ``rows`` is None)."""
        if rows is None:
            return self.__dict__.get(name) if self._windows(name, slice(0)) else \
                getattr(self, name)
        args = self._windows(name, rows)
        return Deferred(operator.getitem, getattr(self, name), rows) if args is None else \
            Deferred(_window_rows, *args)

    def deferred_dates_est(self, rows: np.ndarray | None = None):
        """``dates_est[rows]`` (every row when None) as a :class:`Deferred`: gathered from
        the grid dates on first read, without gathering the other rows' dates."""
        if self.date_windows is None:
            return self.dates_est if rows is None else self.dates_est[rows]
        date_rows, group_of, starts = self.date_windows
        sel = slice(None) if rows is None else rows
        return Deferred(_window_rows, date_rows, group_of[sel], starts[sel],
                        self.clean_mask.shape[1])


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


deferred_fields(Layout, ("dates_est", "y_est", "bench_est"))


class EstimationRows:
    """The ``(N, T)`` estimation-window array ``name`` of a :class:`Layout` (``"y_est"`` or
    ``"bench_est"``), read row by row: :meth:`take_rows` gathers rows without the whole array
    (:meth:`Layout.est_rows`). :func:`crackdown.estimation.ols.fit_batched_ols` takes it in
    place of an array (as ``y`` or a column of ``X``); anything else gets the array with
    ``numpy.asarray`` (the same values)."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, lay: Layout, name: str) -> None:
        self.lay, self.name = lay, name
        self.shape = lay.clean_mask.shape

    def __len__(self) -> int:
        return self.shape[0]

    def take_rows(self, rows) -> np.ndarray:
        return self.lay.est_rows(self.name, rows)

    def __getitem__(self, key):  # rows (an int array or a slice: a copy); else of the array
        if isinstance(key, (slice, list, np.ndarray)):
            return self.take_rows(np.asarray(key) if isinstance(key, list) else key)
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(getattr(self.lay, self.name), dtype=dtype)


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


def _group_columns(tickers: np.ndarray, benchmarks: np.ndarray) -> tuple:
    """``(cols, ycol, bcol)``: ``cols = list(dict.fromkeys(list(tickers) + [b for b in
    benchmarks if b]))`` (the distinct tickers, then the distinct non-empty benchmarks not
    among them, in order of first appearance) and each ticker's and benchmark's position in it
    (``pd.Index(cols).get_indexer``: -1 for no benchmark). One :func:`pandas.factorize` per
    array: a hash pass, not a Python loop or a lookup per firm-event (the distinct tickers
    come first in ``cols``, so a ticker's code is its position)."""
    t_codes, t_uniq = pd.factorize(tickers, sort=False)
    b_codes, b_uniq = pd.factorize(benchmarks, sort=False)
    cols = list(dict.fromkeys(list(t_uniq) + [b for b in b_uniq if b]))
    index = pd.Index(cols)
    if (t_codes < 0).any() or (b_codes < 0).any():  # a missing label: as get_indexer does
        return cols, index.get_indexer(tickers), index.get_indexer(benchmarks)
    return cols, t_codes.astype(np.intp), index.get_indexer(b_uniq)[b_codes]


class _ReturnsSource:
    """The wide returns of a study as one float matrix, for :func:`build_layout`.

    :meth:`fill` writes ``returns.reindex(index=grid, columns=cols).to_numpy(float).T`` into
    a block of the layout and :meth:`stray` lists the columns of ``cols`` with a non-NaN return
    on a date off ``grid`` (``returns.loc[returns.index.difference(grid), cols].notna().any()``);
    both from positions (``get_indexer``) into the returns' values with a NaN row and column
    appended for missing labels, not from reindexed frames. Returns whose labels are not unique
    or whose columns are not all float64 go through pandas as written above (the same values,
    and pandas' errors).
    """

    def __init__(self, returns: pd.DataFrame, values: np.ndarray | None) -> None:
        self.returns, self.values = returns, values  # values: (columns + 1, dates + 1)

    @classmethod
    def of(cls, returns: pd.DataFrame) -> _ReturnsSource:
        fast = (returns.index.is_unique and returns.columns.is_unique
                and all(d == np.float64 for d in returns.dtypes))
        if not fast:
            return cls(returns, None)
        values = np.full((returns.shape[1] + 1, returns.shape[0] + 1), np.nan)
        values[:-1, :-1] = returns.to_numpy(dtype=float).T
        return cls(returns, values)

    def fill(self, out: np.ndarray, grid: pd.DatetimeIndex, cols: list) -> None:
        """``out[:] = returns.reindex(index=grid, columns=cols).to_numpy(float).T`` for an
        ``out`` that is all NaN (only the grid dates in the returns index are written)."""
        if self.values is None:
            out[:] = self.returns.reindex(index=grid, columns=cols).to_numpy(dtype=float).T
            return
        ci = self.returns.columns.get_indexer(cols)  # -1 (missing): the NaN row
        ri = self.returns.index.get_indexer(grid)  # -1 (not a returns date): stays NaN
        at = np.flatnonzero(ri >= 0)
        out[:, at] = self.values[ci][:, ri[at]]

    def stray(self, grid: pd.DatetimeIndex, cols: list) -> list:
        """Columns of ``cols`` (those in the returns, in this order) with a non-NaN return on a
        date that is not in ``grid``."""
        returns = self.returns
        if self.values is None:
            sub = returns.loc[returns.index.difference(grid),
                              [c for c in cols if c in returns.columns]]
            return sub.columns[sub.notna().any()].tolist()
        ci = returns.columns.get_indexer(cols)
        present = [c for c, i in zip(cols, ci.tolist(), strict=True) if i >= 0]
        off = np.flatnonzero(~returns.index.isin(grid))
        if not len(off) or not present:
            return []
        have = ~np.isnan(self.values[np.ix_(ci[ci >= 0], off)])
        return [c for c, h in zip(present, have.any(axis=1).tolist(), strict=True) if h]


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
    # (key, rows) per group in order of first appearance, as groupby(sort=False).indices
    codes, keys = pd.factorize(group_key.to_numpy(), sort=False)
    groups = [(keys[c], np.flatnonzero(codes == c)) for c in range(len(keys))]
    grids = {exchange: study_grid(study, exchange) for exchange, _ in groups}
    width = max(len(g) for g in grids.values()) + 2 * pad
    date_rows = np.full((len(groups), width), np.datetime64("NaT"), dtype="datetime64[ns]")
    row_of = np.zeros(n, dtype=np.intp)  # row of the firm-event's return in the blocks
    bench_row = np.zeros(n, dtype=np.intp)  # its benchmark's row (the NaN row if none)
    start = np.zeros(n, dtype=np.intp)  # padded grid position of day 0
    group_of = np.zeros(n, dtype=np.intp)
    # per exchange: the listings of its firm-events, then their benchmarks (first appearance)
    group_cols = [_group_columns(tickers[idx], benchmarks[idx]) for _, idx in groups]
    # every exchange's block (its columns + 1, width) in one padded matrix; last row of a
    # block: no benchmark
    big = np.full((sum(len(c) + 1 for c, _, _ in group_cols), width), np.nan)
    source = _ReturnsSource.of(study.returns)
    offset = 0
    for gi, (exchange, idx) in enumerate(groups):
        grid = grids[exchange]
        g = len(grid)
        cols, ycol, bcol = group_cols[gi]
        if study.session_grid == "exchange":
            stray = source.stray(grid, cols)
            if stray:
                warnings.warn(
                    f"returns of {', '.join(stray)} on dates that are not {exchange} sessions "
                    "were ignored (session_grid='exchange')",
                    stacklevel=3,
                )
        # (columns x dates): gathers along the date axis read contiguous memory
        mat = big[offset:offset + len(cols), pad:pad + g]
        source.fill(mat, grid, cols)
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
        gd = grid.to_numpy()
        date_rows[gi, pad:pad + g] = gd
        # ycol, bcol: each firm-event's ticker and benchmark in cols ("" (none): -1)
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
    win_e = sliding_window_view(big, t_len, axis=1)
    win_v = sliding_window_view(big, l_len, axis=1)
    s_e, s_v = start + e_lo, start + w_lo
    # the (N, T) returns and benchmark are gathered when first read (Layout.est_rows reads
    # rows of them without gathering the whole arrays)
    y_est = Deferred(_window_rows, big, row_of, s_e, t_len)
    b_est = Deferred(_window_rows, big, bench_row, s_e, t_len)
    y_event, b_event = win_v[row_of, s_v], win_v[bench_row, s_v]
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
        est_windows=(big, {"y_est": row_of, "bench_est": bench_row}, s_e),
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
    return _regressors(study, spec, lay, lazy=False)


def _regressors(study, spec, lay: Layout, lazy: bool) -> list:
    """:func:`estimation_regressors`; with ``lazy`` the benchmark is an
    :class:`EstimationRows` (read by rows, not gathered whole)."""
    fac_cols = study._factor_columns()
    shifted = {"market_lag1": -1, "market_lead1": 1}
    out = []
    for r in spec.design_columns:
        if r == "const":
            continue
        if r == "market":
            out.append(EstimationRows(lay, "bench_est") if lazy else lay.bench_est)
        elif r in shifted:
            out.append(lay.bench_shift[shifted[r]][0])
        elif r == "world":
            out.append(lay.world_est)
        else:
            out.append(lay.fac_est[:, :, fac_cols.index(r)])
    return out


def estimation_design(study, spec, lay: Layout) -> tuple:
    """y and the regressor columns of ``spec`` over the estimation window, every row of
    ``lay``, for :func:`crackdown.estimation.models.fit_normal_model`: the constant as
    ``1.0``, the stock's return and the benchmark as :class:`EstimationRows` (the fit
    gathers the rows it fits, block by block; the whole ``(N, T)`` arrays are not built),
    ``y - rf`` computed for excess models. The same values as
    :meth:`crackdown.estimation.study.EventStudy._estimation_design`."""
    y_e = lay.y_est - lay.rf_est if spec.excess else EstimationRows(lay, "y_est")
    regs = iter(_regressors(study, spec, lay, lazy=True))
    return y_e, [1.0 if r == "const" else next(regs) for r in spec.design_columns]


def _usable_returns(study, spec, lay: Layout, rows: np.ndarray) -> np.ndarray:
    """The stock's estimation-window returns on the days ``spec`` can use (NaN elsewhere).

    A day is usable when the return, every regressor of ``spec``
    (:func:`estimation_regressors`) and the clean mask are there; no ``(N, T, k)`` design is
    built.
    """
    rows = np.asarray(rows)
    y = lay.est_rows("y_est", rows)  # a copy
    use = np.isfinite(y)
    use &= lay.clean_mask[rows]
    for x in _regressors(study, spec, lay, lazy=True):
        use &= np.isfinite(x.take_rows(rows) if isinstance(x, EstimationRows) else x[rows])
    y[~use] = np.nan
    return y


#: Rows per block of :func:`_usable_block_stats` (2 MB of float64 per block at T = 250).
USABLE_BLOCK = 1024


def _usable_block_stats(study, spec, lay: Layout, rows: np.ndarray, excess: bool = False):
    """:func:`_usable_returns` of ``rows``, block by block: yields ``(sl, y, n_use, n_est)``
    with ``y`` the usable returns of ``rows[sl]``, ``n_use`` their number of usable days per
    row and ``n_est`` (with ``excess``; else None) the days on which ``y - rf`` is also
    finite (the usable days of an excess-return model).

    Cache-sized work arrays, allocated once and reused by every block (``y`` is overwritten by
    the next block: use it before asking for the next one); the return and the benchmark are
    gathered by rows (:meth:`Layout.est_rows`). Each row is the one of
    :func:`_usable_returns`: the NaN of an unusable day is set bitwise (the used days' bits
    ANDed with -1, the others' with 0, then OR-ed with the bits of ``np.nan``).
    """
    regs = _regressors(study, spec, lay, lazy=True)
    src_y = EstimationRows(lay, "y_est")
    t = lay.clean_mask.shape[1]
    sc = _Scratch(min(USABLE_BLOCK, max(len(rows), 1)), t,
                  rows_in_range(rows, len(lay.clean_mask)))
    for s in range(0, len(rows), USABLE_BLOCK):
        sl = slice(s, s + USABLE_BLOCK)
        r = rows[sl]
        nb = len(r)
        y = sc.take("y", src_y, r, nb)  # a copy: changed in place below
        use = np.isfinite(y, out=sc.get("use", nb, bool))
        use &= sc.take("clean", lay.clean_mask, r, nb)
        fin = sc.get("fin", nb, bool)
        for x in regs:
            use &= np.isfinite(sc.take("x", x, r, nb), out=fin)
        n_est = None
        if excess:  # np.isfinite(y - rf) & clean & regressors, as the model's usable days
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.subtract(y, sc.take("rf", lay.rf_est, r, nb),
                                   out=sc.get("diff", nb, np.float64))
            ok_e = np.isfinite(diff, out=sc.get("use_e", nb, bool))
            ok_e &= sc.take("clean", lay.clean_mask, r, nb)
            for x in regs:
                ok_e &= np.isfinite(sc.take("x", x, r, nb), out=fin)
            n_est = np.einsum("nt->n", ok_e.view(np.uint8), dtype=np.int64)
        bits = sc.get("bits", nb, np.int64)  # -1 on usable days, then the NaN bits elsewhere
        np.negative(use.view(np.int8), out=bits)
        np.bitwise_and(y.view(np.int64), bits, out=y.view(np.int64))
        np.bitwise_and(np.invert(bits, out=bits), _NAN_BITS, out=bits)
        np.bitwise_or(y.view(np.int64), bits, out=y.view(np.int64))
        yield sl, y, np.einsum("nt->n", use.view(np.uint8), dtype=np.int64), n_est


def usable_day_stats(study, spec, lay: Layout, rows: np.ndarray | None = None) -> dict:
    """Usable estimation days of the rows of ``lay`` (every row when None) under ``spec``, in
    one pass over the returns (gathered by rows, :func:`_usable_block_stats`).

    Returns a dict with ``spec``, ``rows``, ``n_est`` (int64, per row: the days on which the
    model's dependent variable (``r``, or ``r - rf`` for excess models), every regressor and
    the clean mask are present, the outcomes' ``n_estimation_obs``) and ``n_use``, ``hi``,
    ``lo``: the usable days of the return itself and its largest and smallest usable value
    (NaN-ignoring), which :func:`drop_constant_returns` takes as ``usable=`` (``n_use`` is
    ``n_est`` for a non-excess model).
    """
    sel = np.arange(len(lay.clean_mask)) if rows is None else np.asarray(rows)
    n = len(sel)
    n_use, n_est = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.int64)
    hi, lo = np.empty(n), np.empty(n)
    for sl, y, n_ok, n_e in _usable_block_stats(study, spec, lay, sel, excess=spec.excess):
        n_use[sl] = n_ok
        n_est[sl] = n_ok if n_e is None else n_e
        hi[sl] = np.fmax.reduce(y, axis=1)
        lo[sl] = np.fmin.reduce(y, axis=1)
    return {"spec": spec, "rows": rows, "n_est": n_est, "n_use": n_use, "hi": hi, "lo": lo}


def drop_constant_returns(study, spec, lay: Layout, rows: np.ndarray, status: np.ndarray,
                          detail: list[str], stats: dict | None = None, *,
                          usable: dict | None = None) -> np.ndarray:
    """Rows of ``rows`` whose return varies; the others get ``insufficient_estimation``.

    A return that is the same on all of at least two usable estimation days (a price that
    never moves) has zero variance: every standardized test would divide by zero and the
    model's fit is undefined. ``status`` and ``detail`` are updated in place. With ``stats``
    (a dict), the usable days, largest and smallest usable return of the rows kept are left
    in it (keys ``rows, n_use, hi, lo``) for :func:`flag_perfect_fits`, which then need not
    compute them again. ``usable``: :func:`usable_day_stats` of the same ``spec`` for every
    row, whose ``n_use``, ``hi`` and ``lo`` are then used instead of a pass over the returns
    (the same numbers: each row's are computed from that row alone).
    """
    if spec is None or len(rows) == 0:
        return rows
    if usable is not None and usable.get("spec") is spec and usable.get("rows") is None:
        rows = np.asarray(rows)
        n_use, filled_hi, filled_lo = usable["n_use"][rows], usable["hi"][rows], \
            usable["lo"][rows]
    else:
        n_use = np.empty(len(rows), dtype=np.intp)
        filled_hi = np.empty(len(rows))
        filled_lo = np.empty(len(rows))
        for sl, y, n_ok, _ in _usable_block_stats(study, spec, lay, rows):
            n_use[sl] = n_ok  # = y.shape[1] - np.isnan(y).sum(axis=1)
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
    for sl, y, n_use, _ in _usable_block_stats(study, spec, lay, rows):
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
