"""Price files straight to the wide (dates x tickers) session returns a study needs.

:func:`study_returns` is the price chain of :meth:`crackdown.EventStudy.from_events`::

    frames = [load_prices(must, start, end, prices_dir=...)] if must else []
    if report is not None:
        frames.append(load_prices(report, start, end, prices_dir=..., on_missing="report"))
    prices = pd.concat(frames, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wide = returns_matrix(compute_returns(prices, kind=kind))

with the same result (values, index, column order, dtypes, names), the same ``missing`` dict
and the same warnings and errors, but without the long frames: each ticker's rows are read
from its parsed file's arrays (the memoized frame itself, never changed; no copy, no
per-ticker frame), the checks -- invalid and suspect prices, rows off the calendar, placeholder
rows -- run once over all tickers' rows concatenated, and the returns once per exchange over a
(tickers x sessions) block of prices (:func:`_fast_wide`). It follows the rules of
:mod:`crackdown.marketdata.returns` step by step:

* invalid prices (not finite or not > 0) and suspect ones
  (:func:`crackdown.marketdata.returns.suspect_price_mask`) are missing. A ticker's prices
  can hold a suspect one only if some price is outside
  :data:`~crackdown.marketdata.returns.PRICE_BOUNDS` or its largest valid price exceeds
  :data:`_SPIKE_FREE` (99) times its smallest: :math:`|\\ln P_t - m_t| \\le \\ln(\\max P /
  \\min P) \\le \\ln 99 < \\ln 100` for any median :math:`m_t` of its prices. Only such
  tickers are checked with ``suspect_price_mask`` itself;
* rows outside ``CALENDAR_START..CALENDAR_END`` and on days that are not sessions are left
  out; a placeholder row (``flat_zero_volume`` on a full session of a non-index ticker) with a
  price is missing;
* a ticker's sessions run from the session of its first to that of its last price (grid
  positions ``p_min .. p_max``); its returns are those of
  :func:`crackdown.marketdata.returns.session_returns` (``span_gaps=False``):
  :math:`P_t / P_{t-1} - 1` (or :math:`\\ln(P_t / P_{t-1})`) where both prices exist, NaN
  elsewhere, computed with the same floating-point operations (the cells of a ticker outside
  ``p_min + 1 .. p_max`` come out NaN, the NaN ``returns_matrix`` leaves where a ticker has
  no row: ``NaN - 1`` and ``log(NaN)`` keep its bits);
* the wide frame's rows are the sorted union of the tickers' return dates, its columns the
  tickers with at least one return, in load order.

Anything the fast path does not cover (a frame that is not one float block on a naive
nanosecond index, unsorted or duplicated dates, NaT, a ticker in both lists, an unknown
``kind``, no return at all) goes through the reference chain above, which gives the result or
the error. ``tests/test_wide_returns.py`` compares the two.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd

from crackdown.marketdata.prices import (
    _FLAT_COLUMNS,
    _load_frames,
    _long_frame,
    _plain,
    _rows_to_long,
    price_column_of,
)
from crackdown.marketdata.returns import (
    _FIRST,
    _LAST,
    KINDS,
    PRICE_BOUNDS,
    _full_grid,
    compute_returns,
    returns_matrix,
    suspect_price_mask,
)
from crackdown.timeline.calendars import early_closes
from crackdown.timeline.universe import exchange_for_ticker

#: A ticker whose valid prices stay within this factor of each other has no suspect spike
#: (see the module docstring; :data:`~crackdown.marketdata.returns.SUSPECT_FACTOR` is 100).
_SPIKE_FREE = 99.0

_Loaded = tuple[str, pd.DataFrame, "np.ndarray | None", str]


def study_returns(
    must: Sequence[str],
    report: Sequence[str] | None,
    start: object = None,
    end: object = None,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    kind: str = "simple",
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Wide session returns of the tickers ``must`` and ``report`` (the chain of the module
    docstring), and the tickers of ``report`` without prices.

    Parameters
    ----------
    must
        Tickers that must have prices (loaded when not empty; any without prices raises, as
        :func:`crackdown.marketdata.prices.load_prices` does).
    report
        Tickers that may lack prices (``on_missing="report"``: each one warns and is listed
        in ``missing``); None loads none.
    start, end
        Inclusive date range, as for ``load_prices``.
    prices_dir
        Offline folder of ``<TICKER>.csv`` files (default
        :func:`crackdown.config.prices_dir`).
    kind
        ``"simple"`` (:math:`P_t / P_{t-1} - 1`) or ``"log"`` (:math:`\\ln(P_t / P_{t-1})`).

    Returns
    -------
    returns : pandas.DataFrame
        ``returns_matrix(compute_returns(prices, kind=kind))`` of the loaded prices: index
        ``date`` (the sorted union of the tickers' return dates), one float column per ticker
        with at least one return, in load order (``must``, then ``report``), columns named
        ``ticker``; with no price row at all, an empty frame (``date`` index, float).
    missing : dict
        Ticker of ``report`` -> why it has no prices.

    Raises
    ------
    PriceDataError
        As ``load_prices`` and ``compute_returns`` (a ticker of ``must`` without prices, a
        malformed file, duplicated dates, an unknown ``kind``).
    """
    loaded: list[_Loaded] = []
    counts: list[int] = []  # tickers of each load_prices call (its long frame)
    missing: dict[str, str] = {}
    for names, on_missing in ((must if must else None, "raise"), (report, "report")):
        if names is None:
            continue
        got, lost = _load_frames(names, start, end, prices_dir=prices_dir, cache_dir=None,
                                 offline=None, progress=False, on_missing=on_missing,
                                 stacklevel=3)
        loaded += got
        counts.append(len(got))
        if on_missing == "report":
            missing = dict(lost)
    rows = sum(_row_count(frame, mask) for _, frame, mask, _ in loaded)
    if not rows:  # no listing has prices in the span
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype=float), missing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wide = _fast_wide(loaded, kind)
        if wide is None:
            wide = _reference_wide(loaded, counts, kind)
    return wide, missing


def _row_count(frame: pd.DataFrame, mask: np.ndarray | None) -> int:
    return len(frame) if mask is None else int(np.count_nonzero(mask))


def _reference_wide(loaded: list[_Loaded], counts: list[int], kind: str) -> pd.DataFrame:
    """The chain of the module docstring on what :func:`study_returns` loaded: one long
    frame per ``load_prices`` call (``counts`` tickers each), concatenated."""
    frames, at = [], 0
    for n in counts:
        frames.append(_long_frame([_rows_to_long(frame, mask, ticker, source)
                                   for ticker, frame, mask, source in loaded[at:at + n]], {}))
        at += n
    prices = pd.concat(frames, ignore_index=True)
    return returns_matrix(compute_returns(prices, kind=kind))


@cache
def _grid(exchange: str) -> tuple[np.ndarray, np.ndarray]:
    """Every session of ``exchange`` (datetime64[ns], sorted) and which are early closes."""
    grid = _full_grid(exchange)
    return grid, np.isin(grid, early_closes(exchange).to_numpy())


def _segments(loaded: list[_Loaded]):
    """Per ticker with rows in range: ``(name, dates, prices, flat)`` -- views of the frame's
    values where the rows are one run -- with ``flat`` the positions of its placeholder rows
    (Volume 0 and O=H=L=C, :func:`crackdown.marketdata.prices.flat_zero_volume`; None for
    an index, a file without those columns or no such row); None when a frame is not
    :func:`~crackdown.marketdata.prices._plain` (the reference handles it)."""
    out = []
    for ticker, frame, mask, _ in loaded:
        values = _plain(frame)
        if values is None:
            return None
        day = frame.index.values  # (plain: a naive datetime64[ns] DatetimeIndex)
        if mask is not None and not mask.all():
            at = np.flatnonzero(mask)
            if not len(at):
                continue  # no row in range: no rows in the long frame either
            if at[-1] - at[0] + 1 == len(at):  # one run of rows: views
                values, day = values[at[0]:at[-1] + 1], day[at[0]:at[-1] + 1]
            else:
                values, day = values[at], day[at]
        if not len(day):
            continue
        names = frame.columns.tolist()
        flat = None
        if not ticker.startswith("^") and all(c in names for c in _FLAT_COLUMNS):
            o, h, lo, c, v = (values[:, names.index(c)] for c in _FLAT_COLUMNS)
            zero = np.flatnonzero(v == 0)
            if len(zero):
                o, h, lo, c = o[zero], h[zero], lo[zero], c[zero]
                flat = zero[(o == h) & (h == lo) & (lo == c)]
        out.append((ticker, day, values[:, names.index(price_column_of(frame))], flat))
    return out


def _fast_wide(loaded: list[_Loaded], kind: str) -> pd.DataFrame | None:
    """``returns_matrix(compute_returns(long frame, kind))`` over all tickers' rows at once
    (module docstring), or None when the reference must handle the input.

    The tickers' rows are concatenated grouped by exchange (each exchange's rows one slice);
    ``j`` numbers the tickers in that order, the columns keep the load order.
    """
    if kind not in KINDS:
        return None
    segs = _segments(loaded)
    if not segs or len({s[0] for s in segs}) != len(segs):
        return None  # nothing, or a ticker twice (its rows then meet: duplicated dates)
    names = [s[0] for s in segs]
    exchanges = [exchange_for_ticker(t) for t in names]  # in order: the first unknown raises
    distinct = list(dict.fromkeys(exchanges))
    code = np.array([distinct.index(x) for x in exchanges])
    order = np.argsort(code, kind="stable")  # j -> load position
    segs = [segs[k] for k in order]
    lengths = np.array([len(s[1]) for s in segs])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    tid = np.repeat(np.arange(len(segs)), lengths)
    day = np.concatenate([s[1] for s in segs])
    ints = day.view(np.int64)
    later = ints[1:] > ints[:-1]
    later[starts[1:] - 1] = True  # (a ticker's first row follows another ticker's last)
    if ints.min() == np.iinfo(np.int64).min or not later.all():
        return None  # NaT, or unsorted / duplicated dates: the reference's order or error
    read = np.concatenate([s[2] for s in segs])
    # invalid and suspect prices are missing
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(read) & (read > 0)
    invalid = ~np.isnan(read) & ~ok
    good = read.copy()
    good[~ok] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tickers: NaN, no flag
        low, high = np.fmin.reduceat(good, starts), np.fmax.reduceat(good, starts)
    missing = invalid
    for k in np.flatnonzero((high > _SPIKE_FREE * low) | (low < PRICE_BOUNDS[0])
                            | (high > PRICE_BOUNDS[1])):
        rows = slice(starts[k], starts[k] + lengths[k])
        missing[rows] |= suspect_price_mask(read[rows])
    value = read.copy()
    value[missing] = np.nan
    priced = ~np.isnan(value) & (day >= _FIRST) & (day <= _LAST)
    flat = np.zeros(len(read), dtype=bool)
    for k, seg in enumerate(segs):
        if seg[3] is not None:
            flat[starts[k] + seg[3]] = True
    # grid position of each row on its exchange's sessions; valid: a price on a session
    # that is not a placeholder (a flat row on a full session, i.e. not an early close)
    bounds = np.searchsorted(code[order], np.arange(len(distinct) + 1))
    pos = np.empty(len(read), dtype=np.int64)
    valid = np.empty(len(read), dtype=bool)
    grids = []
    for e, exchange in enumerate(distinct):
        grid, early = _grid(exchange)
        grids.append(grid)
        rows = slice(starts[bounds[e]], starts[bounds[e + 1] - 1] + lengths[bounds[e + 1] - 1])
        at = np.searchsorted(grid, day[rows])
        pos[rows] = at
        if not len(grid):
            valid[rows] = False
            continue
        at = np.minimum(at, len(grid) - 1)
        found = grid[at] == day[rows]
        valid[rows] = found & priced[rows] & ~(flat[rows] & ~early[at])
    # each ticker's sessions: grid positions p_min..p_max of its first and last valid rows
    vi = np.flatnonzero(valid)
    if not len(vi):
        return None  # no price on any session: no return (the reference's empty pivot)
    vt = tid[vi]  # sorted: rows are grouped by ticker
    lo_at = np.searchsorted(vt, np.arange(len(segs)), "left")
    hi_at = np.searchsorted(vt, np.arange(len(segs)), "right")
    has = hi_at > lo_at
    p_min = np.where(has, pos[vi[np.minimum(lo_at, len(vi) - 1)]], 0)
    p_max = np.where(has, pos[vi[np.maximum(hi_at - 1, 0)]], 0)
    kept = has & (p_max > p_min)  # the tickers with a return: the columns
    if not kept.any():
        return None
    # per exchange, the prices on its sessions g0..g1 as a (tickers x sessions) block (NaN: no
    # price), their session_returns (span_gaps=False) by the same operations; a ticker's
    # cells outside p_min + 1..p_max are NaN as returns_matrix leaves them (the same NaN)
    blocks = []
    for e, grid in enumerate(grids):
        js = np.arange(bounds[e], bounds[e + 1])
        js_kept = js[kept[js]]
        if not len(js_kept):
            continue
        g0, g1 = p_min[js[has[js]]].min(), p_max[js[has[js]]].max()
        width = g1 - g0 + 1
        dense = np.full(len(js) * width, np.nan)
        mine = vi[(vt >= bounds[e]) & (vt < bounds[e + 1])]
        dense[(tid[mine] - bounds[e]) * width + pos[mine] - g0] = value[mine]
        price = dense.reshape(len(js), width)
        have = ~np.isnan(price)
        usable = have[:, 1:] & have[:, :-1]
        ratio = np.where(usable, price[:, 1:] / np.where(usable, price[:, :-1], 1.0), np.nan)
        ret = ratio - 1.0 if kind == "simple" else np.log(ratio)
        # the sessions g0 + 1..g1 where some kept ticker has a return (a row of the frame)
        edges = np.zeros(width + 1, dtype=np.int64)
        np.add.at(edges, p_min[js_kept] - g0, 1)
        np.add.at(edges, p_max[js_kept] - g0, -1)
        covered = np.cumsum(edges[:-1])[:-1] > 0
        blocks.append((grid[g0 + 1:g1 + 1][covered], js_kept,
                       ret[js_kept - bounds[e]][:, covered]))
    # the wide frame: rows the sorted union of the return dates, columns in load order
    days = np.unique(np.concatenate([b[0] for b in blocks]))
    loaded_at = np.sort(order[kept])
    out = np.full((len(days), len(loaded_at)), np.nan)
    for dates, js_kept, ret in blocks:
        out[np.ix_(np.searchsorted(days, dates), np.searchsorted(loaded_at, order[js_kept]))] = (
            ret.T)
    # as returns_matrix builds it: the C-ordered (dates x tickers) array is the frame's block
    return pd.DataFrame(out, copy=False, index=pd.DatetimeIndex(days, name="date"),
                        columns=pd.Index([names[k] for k in loaded_at], name="ticker"))


__all__ = ["study_returns"]
