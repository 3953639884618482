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

from crackdown.timeline.calendars import CALENDAR_END, CALENDAR_START, day_zero, sessions

__all__ = ["CLUSTER_COLUMNS", "confounders", "connected_groups", "event_clusters", "listing_day0s"]

#: Columns of :func:`event_clusters`.
CLUSTER_COLUMNS = ("event_id", "cluster_id", "cluster_size", "shares_day0_with")


def listing_day0s(events: pd.DataFrame, *, timing_policy: str = "span") -> pd.DataFrame:
    """Day 0 of every (event, listing) on the listing's exchange.

    Returns
    -------
    pandas.DataFrame
        ``event_id, ticker, exchange, day0`` (listings whose exchange cannot be placed on a
        calendar are left out).
    """
    from crackdown.errors import CrackdownError
    from crackdown.timeline.universe import exchange_for_ticker

    rows, cache = [], {}
    exchange_of: dict[str, str | None] = {}  # once per ticker (None: no calendar)
    for ev in events.itertuples(index=False):
        tickers = getattr(ev, "ticker_list", None)
        if not isinstance(tickers, (list, tuple)):
            tickers = [t.strip() for t in str(getattr(ev, "tickers", "")).split(";") if t.strip()]
        time = getattr(ev, "time_beijing", None) or None
        date = pd.Timestamp(ev.date)
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
                cache[key] = day_zero(key[0], time, exchange, timing_policy=timing_policy).session
            rows.append((str(ev.event_id), ticker, exchange, cache[key]))
    out = pd.DataFrame(rows, columns=["event_id", "ticker", "exchange", "day0"])
    out["day0"] = pd.to_datetime(out["day0"]).astype("datetime64[ns]")
    return out


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
    roots = connected_groups(ids, (
        list(dict.fromkeys(group["event_id"]))
        for _, group in day0s.groupby(["ticker", "exchange", "day0"], sort=False)))
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
        ``;``-separated event ids per row of ``firm_events`` (empty when unconfounded).
    """
    lo, hi = window
    out = [""] * len(firm_events)
    if len(firm_events) == 0 or len(others) == 0:
        return out
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
