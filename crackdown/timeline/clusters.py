"""Event clusters and confounded firm-events: announcements the prices cannot tell apart.

Clusters
--------
Two events are **linked** when, on some exchange, they have the same day 0 and name at least
one common listing on that exchange: that listing's abnormal returns around the day are then
the same numbers for both events. A cluster is a connected group of linked events (linking is
transitive: A~B and B~C puts A, B and C together). Its ``cluster_id`` is the ``event_id`` of its
first event (by date, then id); an event linked to no other is its own cluster. The library
derives clusters; they are never typed into the events table. Everything that counts or tests
events jointly counts clusters ("N clusters significant").

Confounders
-----------
A firm-event is **confounded** when its event window (relative sessions ``lo..hi`` around its
day 0, on its own exchange) contains the day 0 of another event naming the same listing
(:func:`confounders`): its CAR then measures both announcements.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crackdown.timeline.calendars import (
    CALENDAR_END,
    CALENDAR_START,
    SUPPORTED_EXCHANGES,
    _day0_ns,
    sessions,
)

__all__ = ["CLUSTER_COLUMNS", "confounders", "connected_groups", "event_clusters", "listing_day0s"]

#: Columns of :func:`event_clusters`.
CLUSTER_COLUMNS = ("event_id", "cluster_id", "cluster_size", "shares_day0_with")


def listing_day0s(events: pd.DataFrame, *, timing_policy: str = "span") -> pd.DataFrame:
    """Day 0 of every (event, listing) on the listing's exchange.

    Parameters
    ----------
    events : pandas.DataFrame
        ``event_id, date`` and optionally ``time_beijing`` and ``ticker_list`` (lists) or
        ``tickers`` (``;``-separated), as :func:`crackdown.timeline.events.load_events` returns.
    timing_policy : str
        How unknown times map to day 0 (:data:`crackdown.timeline.calendars.TIMING_POLICIES`).

    Returns
    -------
    pandas.DataFrame
        ``event_id, ticker, exchange, day0`` (listings whose exchange cannot be placed on a
        calendar are left out); ``day0`` is ``day_zero(date, time, exchange).session``, computed
        once per (date, time, exchange) without building its note.

    Raises
    ------
    CalendarError
        An announcement :func:`crackdown.timeline.calendars.day_zero` cannot map.
    """
    from crackdown.errors import CrackdownError
    from crackdown.timeline.universe import exchange_for_ticker

    columns = events.columns
    if columns.is_unique and "event_id" in columns and "date" in columns:
        def column(name, default):
            return events[name] if name in columns else [default] * len(events)

        rows = zip(events["event_id"], events["date"], column("time_beijing", None),
                   column("ticker_list", None), column("tickers", ""))
    else:  # what itertuples names (duplicate or missing columns: the same attribute errors)
        rows = ((ev, ev.date, getattr(ev, "time_beijing", None),
                 getattr(ev, "ticker_list", None), getattr(ev, "tickers", ""))
                for ev in events.itertuples(index=False))
    lazy_id = not isinstance(rows, zip)  # ev.event_id is read for a mapped listing only
    ids, tickers_out, exchanges, day0s = [], [], [], []
    cache: dict[tuple, int] = {}
    exchange_of: dict[str, str | None] = {}  # once per ticker (None: no calendar)
    for event_id, date, time, tickers, text in rows:
        if not isinstance(tickers, (list, tuple)):
            tickers = [t.strip() for t in str(text).split(";") if t.strip()]
        time = time or None
        date = pd.Timestamp(date)
        for ticker in tickers:
            if ticker not in exchange_of:
                try:
                    exchange_of[ticker] = exchange_for_ticker(ticker)
                except CrackdownError:
                    exchange_of[ticker] = None
            exchange = exchange_of[ticker]
            if exchange is None:
                continue
            key = (date, time, exchange)
            if key not in cache:
                cache[key] = _day0_ns(date, time, exchange, timing_policy)
            ids.append(str(event_id.event_id if lazy_id else event_id))
            tickers_out.append(ticker)
            exchanges.append(exchange)
            day0s.append(cache[key])
    if not ids:
        out = pd.DataFrame([], columns=["event_id", "ticker", "exchange", "day0"])
        out["day0"] = pd.to_datetime(out["day0"]).astype("datetime64[ns]")
        return out
    return pd.DataFrame({"event_id": ids, "ticker": tickers_out, "exchange": exchanges,
                         "day0": np.array(day0s, dtype=np.int64).view("datetime64[ns]")})


def event_clusters(events: pd.DataFrame, *, timing_policy: str = "span") -> pd.DataFrame:
    """Clusters of events that share a day 0 and a listing (module docstring).

    Parameters
    ----------
    events : pandas.DataFrame
        Events (:func:`crackdown.timeline.events.load_events`): ``event_id, date,
        time_beijing`` and ``ticker_list`` or ``tickers``.
    timing_policy : str
        How unknown times map to day 0 (:data:`crackdown.timeline.calendars.TIMING_POLICIES`).

    Returns
    -------
    pandas.DataFrame
        :data:`CLUSTER_COLUMNS`, one row per event in the input order; ``shares_day0_with`` the
        other members, ``;``-separated (empty for a cluster of one).
    """
    ids = [str(e) for e in events["event_id"]]
    day0s = listing_day0s(events, timing_policy=timing_policy)
    # the events of each (listing, day 0), groups and members in order of first appearance
    # (groupby(..., sort=False) order, with a dict: no DataFrame per group)
    shared: dict[tuple, dict[str, None]] = {}
    for event_id, ticker, exchange, day0 in zip(
            day0s["event_id"], day0s["ticker"], day0s["exchange"],
            day0s["day0"].to_numpy().view(np.int64).tolist(), strict=True):
        shared.setdefault((ticker, exchange, day0), {})[event_id] = None
    roots = connected_groups(ids, (list(members) for members in shared.values()))
    order = {e: i for i, e in enumerate(
        events.assign(_id=ids).sort_values(["date", "_id"], kind="stable")["_id"])}
    members: dict[str, list[str]] = {}
    for e in ids:
        members.setdefault(roots[e], []).append(e)
    first = {r: min(m, key=order.__getitem__) for r, m in members.items()}
    rows = []
    for e in ids:
        group = sorted(members[roots[e]], key=order.__getitem__)
        rows.append((e, first[roots[e]], len(group), ";".join(g for g in group if g != e)))
    return pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))


def connected_groups(ids, groups) -> dict[str, str]:
    """Union-find: each id -> one representative of its connected component.

    Two ids are connected when they appear in the same member list of ``groups`` (an iterable
    of lists of ids), directly or through a chain of lists; ids of ``groups`` not in ``ids``
    are ignored.
    """
    parent = {str(e): str(e) for e in ids}

    def find(e: str) -> str:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for members in groups:
        members = [str(m) for m in members if str(m) in parent]
        for other in members[1:]:
            a, b = find(members[0]), find(other)
            if a != b:
                parent[b] = a
    return {e: find(e) for e in parent}


def confounders(firm_events: pd.DataFrame, others: pd.DataFrame,
                window: tuple[int, int]) -> list[str]:
    """For each firm-event, the other events of its listing whose day 0 is in its window.

    Parameters
    ----------
    firm_events : pandas.DataFrame
        ``event_id, ticker, exchange, day0`` (the studied firm-events).
    others : pandas.DataFrame
        ``event_id, ticker, exchange, day0`` of every event that could confound them
        (:func:`listing_day0s` of the whole table).
    window : (int, int)
        Event window in sessions of each listing's exchange.

    Returns
    -------
    list of str
        ``;``-separated event ids per row of ``firm_events`` (empty when unconfounded): row
        ``i`` lists, once each and in ``others`` row order, the ``event_id`` of every row ``j``
        of ``others`` with the same (ticker, exchange), a different id and
        ``lo <= pos_j - pos_i <= hi``, where ``pos`` is ``searchsorted`` of the day 0 on the
        exchange's sessions (missing tickers or exchanges, and an empty exchange, never match).

    Notes
    -----
    All listings at once (sorted keys, two ``searchsorted``; about 3 ms for 23,000
    firm-events); inputs only the loop per listing defines (non-integer offsets, missing ids in
    ``others``, exchanges without a calendar, unhashable values) take that loop.
    """
    lo, hi = window
    out = [""] * len(firm_events)
    if len(firm_events) == 0 or len(others) == 0:
        return out
    fast = _confounders_vectorised(firm_events, others, lo, hi)
    if fast is not None:
        return fast
    grids: dict[str, pd.DatetimeIndex] = {}
    by_listing = others.groupby(["ticker", "exchange"], sort=False).indices
    other_ids = others["event_id"].to_numpy()
    other_day0 = pd.DatetimeIndex(others["day0"]).as_unit("ns")
    keys = firm_events.groupby(["ticker", "exchange"], sort=False).indices
    fe_ids = firm_events["event_id"].to_numpy()
    fe_day0 = pd.DatetimeIndex(firm_events["day0"]).as_unit("ns")
    # one listing at a time: (m firm-events) x (k other events) comparisons on its grid
    for (ticker, exchange), rows in keys.items():
        mine = by_listing.get((ticker, exchange))
        if mine is None or not exchange:
            continue
        if exchange not in grids:
            grids[exchange] = sessions(exchange, CALENDAR_START, CALENDAR_END)
        grid = grids[exchange]
        p0 = grid.searchsorted(fe_day0[rows])
        pos = grid.searchsorted(other_day0[mine])
        ids = other_ids[mine]
        hit = ((pos[None, :] >= p0[:, None] + lo) & (pos[None, :] <= p0[:, None] + hi)
               & (ids[None, :] != fe_ids[rows][:, None]))
        for j in np.flatnonzero(hit.any(axis=1)):
            out[rows[j]] = ";".join(dict.fromkeys(ids[hit[j]]))
    return out


def _codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """``pd.factorize`` codes (-1: missing) and the distinct values of a column (as objects)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def _listings(df: pd.DataFrame) -> tuple[np.ndarray, list[tuple | None]]:
    """Listing code of each row and the (ticker, exchange) of each code (None: a missing
    ticker or exchange, rows that ``groupby`` drops)."""
    t, t_uni = _codes(df["ticker"])
    x, x_uni = _codes(df["exchange"])
    width = max(len(x_uni), 1)
    codes, uniques = pd.factorize(np.where((t >= 0) & (x >= 0), t * width + x, -1))
    names = [(t_uni[v // width], x_uni[v % width]) if v >= 0 else None
             for v in uniques.tolist()]
    return np.asarray(codes, dtype=np.int64), names


def _confounders_vectorised(firm_events: pd.DataFrame, others: pd.DataFrame, lo,
                            hi) -> list[str] | None:
    """:func:`confounders` with sorted keys and ``searchsorted`` instead of a loop per listing.

    Every pair (firm-event, other event of its listing) whose other session position is in
    ``p0 + lo .. p0 + hi`` comes out of two ``searchsorted`` on ``listing * 2**22 + position``
    (positions on the exchange's grid, as the loop takes them); pairs with equal event ids
    (``!=`` on the same objects as the loop) are dropped and each id is kept once, in
    ``others`` row order. None (the loop decides) for non-integer or huge offsets, missing
    event ids in ``others``, missing columns, unhashable keys, exchanges without a calendar.
    """
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               and abs(int(v)) < 2**31 for v in (lo, hi)):
        return None
    try:  # anything odd (missing columns, unhashable values): the loop raises or copes
        other_day0 = pd.DatetimeIndex(others["day0"]).as_unit("ns").to_numpy()
        fe_day0 = pd.DatetimeIndex(firm_events["day0"]).as_unit("ns").to_numpy()
        fe_listing, fe_names = _listings(firm_events)
        oth_listing, oth_names = _listings(others)
        oth_eid, _ = _codes(others["event_id"])
        fe_ids = firm_events["event_id"].to_numpy()
        other_ids = others["event_id"].to_numpy()
        where = {name: k for k, name in enumerate(oth_names) if name is not None}
        to_other = np.array([-1 if name is None else where.get(name, -1) for name in fe_names],
                            dtype=np.int64)
    except Exception:  # noqa: BLE001 - the loop defines the outcome
        return None
    if (oth_eid < 0).any():
        return None  # dict.fromkeys of NaN ids: the loop's own (odd) outcome
    fe_code = to_other[fe_listing]  # the listing's code in others, -1: none
    out = [""] * len(firm_events)
    # each listing's grid: that of its exchange (the loop skips an empty exchange)
    grid_of: dict = {}
    listing_grid = np.full(len(oth_names), -1, dtype=np.int64)
    for code in np.unique(fe_code[fe_code >= 0]).tolist():
        exchange = oth_names[code][1]
        if not exchange:
            continue
        if not (isinstance(exchange, str) and exchange.strip().upper() in SUPPORTED_EXCHANGES):
            return None  # the loop's sessions() raises, in its own order
        if exchange not in grid_of:
            grid_of[exchange] = len(grid_of)
        listing_grid[code] = grid_of[exchange]
    if not grid_of:
        return out
    fe_grid = np.where(fe_code >= 0, listing_grid[np.maximum(fe_code, 0)], -1)
    oth_grid = np.where(oth_listing >= 0, listing_grid[np.maximum(oth_listing, 0)], -1)
    p0 = np.full(len(firm_events), -1, dtype=np.int64)
    pos = np.full(len(others), -1, dtype=np.int64)
    for exchange, g in grid_of.items():  # one searchsorted per exchange and side
        grid = sessions(exchange, CALENDAR_START, CALENDAR_END).to_numpy()
        rows, mine = np.flatnonzero(fe_grid == g), np.flatnonzero(oth_grid == g)
        p0[rows] = np.searchsorted(grid, fe_day0[rows])
        pos[mine] = np.searchsorted(grid, other_day0[mine])
    span = 1 << 22  # > every session position (a grid has ~4,300 sessions)
    oth_rows = np.flatnonzero(oth_grid >= 0)
    keys = oth_listing[oth_rows] * span + pos[oth_rows]
    order = np.argsort(keys, kind="stable")
    oth_rows, keys = oth_rows[order], keys[order]
    a, b = p0 + int(lo), p0 + int(hi)
    ok = (fe_grid >= 0) & (b >= 0) & (a < span) & (a <= b)
    first = np.searchsorted(keys, fe_code * span + np.clip(a, 0, span - 1), side="left")
    stop = np.searchsorted(keys, fe_code * span + np.clip(b, 0, span - 1), side="right")
    counts = np.where(ok, stop - first, 0)
    if not counts.any():
        return out
    pair_fe = np.repeat(np.arange(len(firm_events)), counts)
    offset = np.arange(len(pair_fe)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_oth = oth_rows[np.repeat(first, counts) + offset]
    other = np.asarray(fe_ids[pair_fe] != other_ids[pair_oth], dtype=bool)
    pair_fe, pair_oth = pair_fe[other], pair_oth[other]
    # each firm-event's ids in others row order, each id once (its first row)
    order = np.lexsort((pair_oth, pair_fe))
    pair_fe, pair_oth = pair_fe[order], pair_oth[order]
    _, once = np.unique(pair_fe * (int(oth_eid.max()) + 1) + oth_eid[pair_oth],
                        return_index=True)
    once = np.sort(once)
    pair_fe, pair_oth = pair_fe[once], pair_oth[once]
    if len(pair_fe) == 0:
        return out
    ids = other_ids[pair_oth]  # the loop's elements (and its join errors)
    if ids.dtype == object:
        ids = ids.tolist()  # the same objects, faster to slice
    starts = np.flatnonzero(np.r_[True, pair_fe[1:] != pair_fe[:-1]]).tolist()
    for row, i, j in zip(pair_fe[starts].tolist(), starts, starts[1:] + [len(pair_fe)]):
        out[row] = ";".join(ids[i:j])
    return out
