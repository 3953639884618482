"""Daily returns on each ticker's own exchange calendar, with gaps reported, never filled.

Conventions
-----------
* Prices are the ``price`` column of :func:`crackdown.marketdata.prices.load_prices` (``Adj Close`` when the
  source has it, else ``Close``, which is then already adjusted or needs no adjustment).
* Simple return of session :math:`t`: :math:`R_t = P_t / P_{t-1} - 1`; log return:
  :math:`r_t = \\ln(P_t / P_{t-1})`, where :math:`t-1` is the *previous session of the ticker's
  exchange* (:func:`crackdown.timeline.calendars.sessions`), not the previous row of the file.
* Each ticker gets one row per exchange session from the session after its first price to the
  session of its last price. A delisted series (e.g. DIDI, last price 2021-12-30) therefore ends
  there, with no NaN tail to the calendar end; the first price has no return (no row).
* A session without a price (missing row, or a blank price cell) is a **gap**: its row has
  ``ret = NaN`` and ``missing_price = True``, and the next priced session has
  ``gap_before = True``. By default that next return is NaN too (its previous price is
  unknown). With ``span_gaps=True`` it becomes the multi-session return from the last priced
  session, :math:`P_t / P_{t-k} - 1` with ``n_sessions = k > 1``. Nothing is forward-filled.
* ``n_sessions`` is the number of sessions a return spans: 1 for an ordinary return, ``k > 1``
  for a spanning return, 0 where ``ret`` is NaN.
* A price dated on a day that is not a session of the exchange (a holiday, a weekend) cannot be
  placed on the calendar: it is left out of the returns, listed in
  ``result.attrs["non_session_dates"]`` and reported by :func:`crackdown.marketdata.quality.quality_report`.
* Hong Kong half days (Christmas Eve, New Year's Eve, Lunar New Year's Eve) are sessions; rows
  with Volume 0 on those days are valid prices.
* A **placeholder row** -- Volume 0 and Open = High = Low = Close on a *full* session
  (``flat_zero_volume`` of :func:`crackdown.marketdata.prices.load_prices`, on a session that is
  not an early close) -- is Yahoo's stand-in for a day without trades (e.g. 2022-03-14 for 13
  Hong Kong listings) or a suspension. Its close is not a price anyone traded at, so it is a
  **missing price**: a gap like any other (the next return is NaN, or spans the gap with
  ``span_gaps=True``), listed in ``result.attrs["placeholder_dates"]`` and reported by
  :func:`crackdown.marketdata.quality.quality_report`. It is never a zero return. Index
  symbols (``^HSI``) are exempt: Yahoo often has no intraday range or volume for an index, and
  such a row still carries the real close (^HSI 2020-03-23: -4.9%).
* An **invalid price** -- not finite (``inf``) or not > 0 -- is a missing price (a gap), listed
  in ``result.attrs["invalid_prices"]`` and reported by
  :func:`crackdown.marketdata.quality.quality_report`; the file reader names its file and line
  (:mod:`crackdown.marketdata.price_files`). It never enters a return.
* A **suspect price** is a missing price too (listed in ``result.attrs["suspect_prices"]``): a
  finite positive price outside :data:`PRICE_BOUNDS` (no listed share or index trades below
  1e-6 or above 1e9 in its currency: ``1e308`` and ``1e-300`` are data errors), or a spike
  :data:`SUSPECT_FACTOR` (100) times above or below the median of its neighbourhood, the
  :math:`2 \\cdot` :data:`SUSPECT_NEIGHBOURS` + 1 valid prices centred on it (at least three):
  :math:`|\\ln P_t - \\operatorname{median}_{|j| \\le 5} \\ln P_{t+j}| > \\ln 100`. A decimal-point
  slip (1850 for 18.50) is caught; a lasting level change (a real crash, an unadjusted split)
  moves the median with it and is not; up to five consecutive bad prices are caught. A
  genuine 100-fold move that reverses within five sessions is not seen in listed equities.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crackdown.errors import PriceDataError
from crackdown.timeline.calendars import CALENDAR_END, CALENDAR_START, early_closes, sessions
from crackdown.timeline.universe import exchange_for_ticker

RETURN_COLUMNS = ("date", "ticker", "exchange", "ret", "n_sessions", "gap_before",
                  "missing_price")
KINDS = ("simple", "log")
#: A price outside these bounds is suspect (treated as missing, reported).
PRICE_BOUNDS = (1e-6, 1e9)
#: A price this many times above or below the median of its neighbourhood is suspect.
SUSPECT_FACTOR = 100.0
#: Valid prices on each side of a price in its neighbourhood.
SUSPECT_NEIGHBOURS = 5


@dataclass
class TickerOnCalendar:
    """One ticker's prices aligned to its exchange sessions (internal building block).

    Attributes
    ----------
    ticker, exchange
        Symbol and calendar MIC.
    sessions
        Exchange sessions from the first to the last priced session (inclusive).
    price
        Price on each of ``sessions`` (NaN = no price that session).
    non_session_dates
        Dates of priced rows that are not sessions (left out of ``price``).
    outside_calendar_dates
        Dates outside the calendar's range :data:`crackdown.timeline.calendars.CALENDAR_START` ..
        ``CALENDAR_END`` (cannot be checked; left out).
    placeholder_dates
        Full sessions whose row is a placeholder (Volume 0, O=H=L=C): their price is NaN here.
    invalid_prices, suspect_prices
        Prices that are not finite or not > 0, and suspect prices (:func:`suspect_price_mask`),
        indexed by date, as read: their price is NaN here.
    """

    ticker: str
    exchange: str
    sessions: pd.DatetimeIndex
    price: np.ndarray
    non_session_dates: pd.DatetimeIndex
    outside_calendar_dates: pd.DatetimeIndex
    placeholder_dates: pd.DatetimeIndex = field(
        default_factory=lambda: pd.DatetimeIndex([], dtype="datetime64[ns]"))
    invalid_prices: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    suspect_prices: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))


def suspect_price_mask(price: np.ndarray) -> np.ndarray:
    """Which finite positive prices are suspect (see the module docstring).

    Parameters
    ----------
    price
        Prices in date order; NaN, non-finite and non-positive entries are skipped (never
        suspect, never neighbours).

    Returns
    -------
    ndarray of bool
        ``True`` where the price is outside :data:`PRICE_BOUNDS`, or where
        :math:`|\\ln P_t - m_t| > \\ln` :data:`SUSPECT_FACTOR`, :math:`m_t` the median of the log
        prices of the window of :data:`SUSPECT_NEIGHBOURS` valid prices on each side of
        :math:`t` and :math:`t` itself, when that window holds at least three prices.
    """
    v = np.asarray(price, dtype=float)
    out = np.zeros(v.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(v) & (v > 0)
    if not ok.any():
        return out
    good = v[ok]
    flag = (good < PRICE_BOUNDS[0]) | (good > PRICE_BOUNDS[1])
    k = SUSPECT_NEIGHBOURS
    pad = np.full(k, np.nan)
    logs = np.log(good)
    window = sliding_window_view(np.concatenate([pad, logs, pad]), 2 * k + 1)
    # median of the finite entries of each window (only the first and last k windows reach
    # into the NaN padding): sorted rows put NaN last, and the median of c values is
    # (x[(c - 1) // 2] + x[c // 2]) / 2, as numpy.nanmedian computes it (the middle value for
    # odd c)
    ordered = np.sort(window, axis=1)
    count = np.isfinite(window).sum(axis=1)
    rows = np.arange(len(good))
    with np.errstate(invalid="ignore"):
        med = (ordered[rows, np.maximum(count - 1, 0) // 2] + ordered[rows, count // 2]) / 2
    med[count < 3] = np.nan
    enough = np.isfinite(med)
    spike = np.abs(logs[enough] - med[enough]) > np.log(SUSPECT_FACTOR)
    flag[np.flatnonzero(enough)[spike]] = True
    out[np.flatnonzero(ok)[flag]] = True
    return out


def _check_long(prices_long: pd.DataFrame) -> None:
    missing = [c for c in ("date", "ticker", "price") if c not in prices_long.columns]
    if missing:
        raise PriceDataError(
            f"price frame lacks column(s) {missing}; pass the frame from "
            f"crackdown.marketdata.prices.load_prices()"
        )


def align_to_calendar(ticker: str, rows: pd.DataFrame) -> TickerOnCalendar:
    """Place one ticker's price rows on its exchange's sessions.

    Parameters
    ----------
    ticker
        Symbol (its exchange comes from :func:`crackdown.timeline.universe.exchange_for_ticker`).
    rows
        That ticker's rows of the long price frame (columns ``date``, ``price``; optional
        ``flat_zero_volume``, whose rows on full sessions become missing prices).

    Invalid (non-finite, <= 0) and suspect prices (:func:`suspect_price_mask`) become missing
    prices, listed in ``invalid_prices`` / ``suspect_prices``.

    Raises
    ------
    PriceDataError
        Duplicated dates.
    """
    dates = pd.DatetimeIndex(pd.to_datetime(rows["date"])).astype("datetime64[ns]")
    flat = (rows["flat_zero_volume"].to_numpy(dtype=bool)
            if "flat_zero_volume" in rows.columns else None)
    return _align(ticker, exchange_for_ticker(ticker), dates,
                  rows["price"].to_numpy(dtype=float), flat)


_FIRST, _LAST = np.datetime64(CALENDAR_START, "ns"), np.datetime64(CALENDAR_END, "ns")


def _full_grid(exchange: str) -> np.ndarray:
    """Every session of ``exchange`` (datetime64[ns], sorted)."""
    return sessions(exchange, CALENDAR_START, CALENDAR_END).to_numpy()


def _where_in(days: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each of ``days`` in the sorted ``grid`` and whether it is there."""
    pos = np.searchsorted(grid, days)
    found = np.zeros(len(days), dtype=bool)
    if len(grid):
        found = (pos < len(grid)) & (grid[np.minimum(pos, len(grid) - 1)] == days)
    return pos, found


@dataclass
class _Placed:
    """One ticker's rows placed on its sessions, as arrays (what :class:`TickerOnCalendar`
    holds, before any pandas object is built; :func:`compute_returns` reads the arrays and
    builds indexes only for the tickers that have something to report).

    ``sessions`` and ``price``: the kept sessions (datetime64[ns]) and their prices;
    ``outside`` and ``non_session``: dates in date order (``non_session`` None: no priced
    row inside the calendar, the unnamed empty index); ``placeholders``: dates in the rows'
    order (None: the unnamed empty default); ``day``/``value``: the rows sorted by date with
    their prices as read, ``invalid``/``suspect`` masks over them.
    """

    sessions: np.ndarray
    price: np.ndarray
    outside: np.ndarray
    non_session: np.ndarray | None
    placeholders: np.ndarray | None
    day: np.ndarray
    value: np.ndarray
    invalid: np.ndarray
    suspect: np.ndarray

    def prices_of(self, mask: np.ndarray, name) -> pd.Series:
        """The rows' prices under ``mask``, indexed by date (``invalid_prices`` layout)."""
        return pd.Series(self.value[mask], index=pd.DatetimeIndex(self.day[mask], name=name))

    def on_calendar(self, ticker: str, exchange: str, name) -> TickerOnCalendar:
        """The :class:`TickerOnCalendar` (``name``: the dates' name, kept on its indexes)."""
        empty = pd.DatetimeIndex([], dtype="datetime64[ns]")
        return TickerOnCalendar(
            ticker=ticker,
            exchange=exchange,
            sessions=pd.DatetimeIndex(self.sessions),
            price=self.price,
            non_session_dates=(empty if self.non_session is None
                               else pd.DatetimeIndex(self.non_session, name=name)),
            outside_calendar_dates=pd.DatetimeIndex(self.outside, name=name),
            placeholder_dates=(empty if self.placeholders is None
                               else pd.DatetimeIndex(self.placeholders, name=name)),
            invalid_prices=self.prices_of(self.invalid, name),
            suspect_prices=self.prices_of(self.suspect, name),
        )


def _align(ticker: str, exchange: str, dates: pd.DatetimeIndex, values: np.ndarray,
           flat: np.ndarray | None) -> TickerOnCalendar:
    """:func:`align_to_calendar` on arrays: ``dates`` (ns) and ``values`` of each row (any
    order), ``flat`` the rows' ``flat_zero_volume`` or None."""
    placed = _place(ticker, exchange, dates.to_numpy(), values, flat)
    return placed.on_calendar(ticker, exchange, dates.name)


def _place(ticker: str, exchange: str, raw: np.ndarray, values: np.ndarray,
           flat: np.ndarray | None, calendar: dict | None = None) -> _Placed:
    """The rows (dates ``raw``, datetime64[ns] in any order; prices ``values``; placeholder
    flags ``flat`` or None) sorted, checked and put on the sessions from the first to the
    last priced one. ``calendar``: a dict that keeps the exchanges' sessions and early closes
    between calls (each looked up when first needed)."""
    calendar = {} if calendar is None else calendar
    order = np.argsort(raw, kind="stable")
    day = raw[order]
    ints = day.view(np.int64)  # NaT equals NaT here, as in DatetimeIndex.duplicated
    dup = ints[1:] == ints[:-1]
    if dup.any():
        shown = sorted({f"{pd.Timestamp(d):%Y-%m-%d}" for d in day[1:][dup]})
        raise PriceDataError(f"{ticker}: duplicated date(s) {', '.join(shown[:5])} in the prices")
    read = values[order]
    with np.errstate(invalid="ignore"):
        invalid = ~np.isnan(read) & ~(np.isfinite(read) & (read > 0))
    suspect = suspect_price_mask(read)
    value = np.where(invalid | suspect, np.nan, read)
    # on the sessions: rows outside the calendar's range cannot be checked (left out)
    inside = (day >= _FIRST) & (day <= _LAST)
    outside = day[~inside]
    on_day, value = day[inside], value[inside]
    priced = ~np.isnan(value)
    no_price = np.array([], dtype="datetime64[ns]")
    if not priced.any():
        return _Placed(no_price, np.array([], dtype=float), outside, None, None, day, read,
                       invalid, suspect)
    grid = calendar.get(("sessions", exchange))
    if grid is None:
        grid = calendar[("sessions", exchange)] = _full_grid(exchange)
    first, last = on_day[priced][0], on_day[priced][-1]
    span = grid[np.searchsorted(grid, first, "left"):np.searchsorted(grid, last, "right")]
    pos, is_session = _where_in(on_day, span)
    non_session = on_day[~is_session & priced]
    on_sessions = np.full(len(span), np.nan)
    on_sessions[pos[is_session]] = value[is_session]
    placeholders = None
    if flat is not None and not ticker.startswith("^"):
        flat_days = raw[flat]  # the rows' order
        at, on_span = _where_in(flat_days, span)
        early = calendar.get(("early", exchange))
        if early is None:
            early = calendar[("early", exchange)] = early_closes(exchange).to_numpy()
        keep = on_span & ~np.isin(flat_days, early)
        keep[keep] = ~np.isnan(on_sessions[at[keep]])
        placeholders = flat_days[keep]
        on_sessions[at[keep]] = np.nan
    valid = np.flatnonzero(~np.isnan(on_sessions))
    if valid.size == 0:
        return _Placed(no_price, np.array([], dtype=float), outside, non_session,
                       placeholders, day, read, invalid, suspect)
    kept = slice(valid[0], valid[-1] + 1)
    return _Placed(span[kept], on_sessions[kept], outside, non_session, placeholders, day,
                   read, invalid, suspect)


def price_items(found: pd.Series) -> list[str]:
    """``["YYYY-MM-DD value", ...]`` of a date-indexed series of prices (``repr`` values)."""
    return [f"{d:%Y-%m-%d} {float(v)!r}" for d, v in found.items()]


def session_returns(
    price: np.ndarray, kind: str = "simple", span_gaps: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns of a price path on consecutive sessions (first session has no return).

    Parameters
    ----------
    price
        Prices on consecutive sessions, NaN where missing; ``price[0]`` must be present.
    kind
        ``"simple"`` (:math:`P_t/P_{s}-1`) or ``"log"`` (:math:`\\ln(P_t/P_s)`), ``s`` the
        previous session (or, with ``span_gaps``, the last priced session).
    span_gaps
        Whether a return after missing sessions spans them.

    Returns
    -------
    ret, n_sessions, gap_before
        Arrays of length ``len(price) - 1`` for sessions ``1..``; see the module docstring.
    """
    if kind not in KINDS:
        raise PriceDataError(f"returns kind {kind!r}; use 'simple' or 'log'")
    n = len(price)
    if n < 2:
        empty = np.array([], dtype=float)
        return empty, np.array([], dtype=np.int64), np.array([], dtype=bool)
    valid = ~np.isnan(price)
    positions = np.arange(n)
    # index of the last priced session at or before each session
    last_valid = np.maximum.accumulate(np.where(valid, positions, -1))
    prev_valid = last_valid[:-1]  # last priced session strictly before sessions 1..n-1
    cur = price[1:]
    k = positions[1:] - prev_valid
    base = price[np.clip(prev_valid, 0, None)]
    gap_before = ~valid[:-1]
    usable = valid[1:] & (prev_valid >= 0) & ((k == 1) | span_gaps)
    ratio = np.where(usable, cur / np.where(usable, base, 1.0), np.nan)
    ret = ratio - 1.0 if kind == "simple" else np.log(ratio)
    n_sessions = np.where(usable, k, 0).astype(np.int64)
    return ret, n_sessions, gap_before


def _aligned_tickers(prices_long: pd.DataFrame):
    """``(ticker, exchange, _Placed)`` of every ticker of the long frame, in first-seen order.

    The rows are grouped once (one factorization), not compared with each ticker in turn; a
    ticker's rows keep their order. Same result as :func:`align_to_calendar` on each ticker's
    rows (``_Placed.on_calendar`` gives it).
    """
    codes, uniques = pd.factorize(prices_long["ticker"])  # first-seen order; NaN: no rows
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    date_col = prices_long["date"]
    if isinstance(date_col.dtype, np.dtype) and date_col.dtype.kind == "M":
        dates = pd.DatetimeIndex(date_col).astype("datetime64[ns]").to_numpy()
    else:
        dates = None  # parsed per ticker, as align_to_calendar does
    price = prices_long["price"].to_numpy(dtype=float)
    flat = (prices_long["flat_zero_volume"].to_numpy(dtype=bool)
            if "flat_zero_volume" in prices_long.columns else None)
    calendar: dict = {}  # each exchange's sessions and early closes, looked up once
    for j, ticker in enumerate(uniques):
        rows = order[bounds[j]:bounds[j + 1]]
        name = str(ticker)
        if dates is None:  # (parsed before the exchange is looked up, as align_to_calendar)
            day = pd.DatetimeIndex(pd.to_datetime(prices_long["date"].iloc[rows])).astype(
                "datetime64[ns]").to_numpy()
        else:
            day = dates[rows]
        exchange = exchange_for_ticker(name)
        yield ticker, exchange, _place(name, exchange, day, price[rows],
                                       None if flat is None else flat[rows], calendar)


def _day_texts(days: np.ndarray) -> list[str]:
    """``["YYYY-MM-DD", ...]`` of datetime64[ns] days, as ``f"{Timestamp:%Y-%m-%d}"``."""
    return [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(days)]


def compute_returns(
    prices_long: pd.DataFrame, kind: str = "simple", *, span_gaps: bool = False
) -> pd.DataFrame:
    """Daily returns of every ticker on its listing exchange's calendar.

    Parameters
    ----------
    prices_long
        Output of :func:`crackdown.marketdata.prices.load_prices` (columns ``date, ticker, price``).
    kind
        ``"simple"`` or ``"log"``.
    span_gaps
        ``False`` (default): a return whose previous session has no price is NaN.
        ``True``: it spans back to the last priced session (``n_sessions > 1``).

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64[ns]), ``ticker``, ``exchange``, ``ret`` (float),
        ``n_sessions`` (int), ``gap_before`` (bool: the previous session had no price),
        ``missing_price`` (bool: this session has no price). Ordered by ticker (input order)
        then date. ``attrs``: ``kind``, ``span_gaps``, ``non_session_dates``,
        ``outside_calendar_dates`` and ``placeholder_dates`` (``{ticker: [YYYY-MM-DD, ...]}``,
        only tickers with some), ``invalid_prices`` and ``suspect_prices``
        (``{ticker: ["YYYY-MM-DD value", ...]}``, :func:`price_items`).

    Warns
    -----
    UserWarning
        When some priced dates are not sessions (they are left out; see
        :func:`crackdown.marketdata.quality.quality_report`), and when invalid or suspect prices
        were treated as missing (naming ticker, dates and values).
    """
    if kind not in KINDS:
        raise PriceDataError(f"returns kind {kind!r}; use 'simple' or 'log'")
    _check_long(prices_long)
    non_session: dict[str, list[str]] = {}
    outside: dict[str, list[str]] = {}
    placeholder: dict[str, list[str]] = {}
    bad_prices: dict[str, dict[str, list[str]]] = {"invalid": {}, "suspect": {}}
    columns = ("date", "ticker", "exchange", "ret", "n_sessions", "gap_before",
               "missing_price")
    built: dict[str, list] = {c: [] for c in columns}
    lengths: list[int] = []
    for ticker, exchange, placed in _aligned_tickers(prices_long):
        for what, mask in (("invalid", placed.invalid), ("suspect", placed.suspect)):
            if mask.any():  # indexes built only for a ticker with something to report
                bad_prices[what][str(ticker)] = price_items(placed.prices_of(mask, "date"))
        for found, days in ((non_session, placed.non_session), (outside, placed.outside),
                            (placeholder, placed.placeholders)):
            if days is not None and len(days):
                found[str(ticker)] = _day_texts(days)
        ret, n_sess, gap = session_returns(placed.price, kind, span_gaps)
        n = len(ret)
        for col, values in (("date", placed.sessions[1:]), ("ticker", str(ticker)),
                            ("exchange", exchange), ("ret", ret), ("n_sessions", n_sess),
                            ("gap_before", gap), ("missing_price", np.isnan(placed.price[1:]))):
            built[col].append(values)
        lengths.append(n)
    if built["date"]:  # the ticker and exchange of each row: one repeat, not a fill per ticker
        result = pd.DataFrame({c: np.repeat(np.array(v, dtype=object), lengths)
                               if c in ("ticker", "exchange") else np.concatenate(v)
                               for c, v in built.items()})
    else:
        result = pd.DataFrame({c: [] for c in RETURN_COLUMNS})
    result["date"] = pd.to_datetime(result["date"]).astype("datetime64[ns]")
    result["n_sessions"] = result["n_sessions"].astype(np.int64)
    result["gap_before"] = result["gap_before"].astype(bool)
    result["missing_price"] = result["missing_price"].astype(bool)
    result["ret"] = result["ret"].astype(float)
    result = result.loc[:, list(RETURN_COLUMNS)]
    if non_session:
        summary = ", ".join(f"{t} ({len(v)})" for t, v in non_session.items())
        warnings.warn(
            f"prices on dates that are not exchange sessions were left out of the returns: "
            f"{summary}; see crackdown.marketdata.quality.quality_report / `crackdown data check`",
            stacklevel=2,
        )
    if outside:
        warnings.warn(
            f"prices outside the calendar range {CALENDAR_START:%Y-%m-%d}..{CALENDAR_END:%Y-%m-%d}"
            f" were left out: {', '.join(f'{t} ({len(v)})' for t, v in outside.items())}",
            stacklevel=2,
        )
    for what, found in bad_prices.items():
        if found:
            shown = "; ".join(f"{t}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}"
                              for t, v in found.items())
            why = ("not finite or not > 0" if what == "invalid" else
                   f"outside {PRICE_BOUNDS[0]:g}..{PRICE_BOUNDS[1]:g} or {SUSPECT_FACTOR:g} times "
                   "off the median of their neighbours")
            warnings.warn(
                f"{what} prices ({why}) were treated as missing: {shown}; fix the price files "
                "or leave the cells blank (see `crackdown data check`)",
                stacklevel=2,
            )
    result.attrs.update({"kind": kind, "span_gaps": span_gaps, "non_session_dates": non_session,
                         "outside_calendar_dates": outside,
                         "placeholder_dates": placeholder,
                         "invalid_prices": bad_prices["invalid"],
                         "suspect_prices": bad_prices["suspect"]})
    return result


def returns_matrix(returns_long: pd.DataFrame, value: str = "ret") -> pd.DataFrame:
    """Pivot long returns to wide: index ``date``, one column per ticker.

    Sessions of one exchange that are not sessions of another are NaN in the other's column.
    """
    fast = _scatter_wide(returns_long, value)
    if fast is not None:
        return fast
    wide = returns_long.pivot(index="date", columns="ticker", values=value)
    wide = wide.loc[:, list(dict.fromkeys(returns_long["ticker"].tolist()))]
    wide.columns.name = "ticker"
    return wide.sort_index()


def _scatter_wide(returns_long: pd.DataFrame, value: str) -> pd.DataFrame | None:
    """:func:`returns_matrix` by one scatter into a NaN (dates x tickers) array, or None.

    For float values on naive dates with every ticker named and each (date, ticker) once: rows
    are the sorted dates, columns the tickers in first-seen order, as the pivot gives. Anything
    else (NaT, a missing ticker, a duplicate, another dtype) returns None: the pivot handles it
    (and raises on duplicates), as does an empty frame.
    """
    values = returns_long[value]
    dates = returns_long["date"]
    plain = (isinstance(values.dtype, np.dtype) and values.dtype.kind == "f"
             and isinstance(dates.dtype, np.dtype) and dates.dtype == "datetime64[ns]")
    if not len(returns_long) or not plain:
        return None
    day = dates.to_numpy()
    if np.isnat(day).any():
        return None
    t_code, tickers = pd.factorize(returns_long["ticker"])
    if (t_code < 0).any():
        return None
    days, d_code = np.unique(day, return_inverse=True)
    cell = d_code.astype(np.int64) * len(tickers) + t_code
    size = len(days) * len(tickers)
    if np.bincount(cell, minlength=size).max() > 1:
        return None
    out = np.full(size, np.nan)
    out[cell] = values.to_numpy()
    columns = pd.Index(tickers.tolist(), name="ticker")
    # copy=False keeps the (dates x tickers) C-ordered array as the frame's block, the memory
    # layout the pivot gives: reductions over the columns then add in the same order
    return pd.DataFrame(out.reshape(len(days), len(tickers)), copy=False,
                        index=pd.DatetimeIndex(days, name="date"), columns=columns)
