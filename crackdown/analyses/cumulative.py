"""Value lost and regained across the campaign: a fixed platform basket and per-firm paths.

Conventions
-----------
* Per-firm cumulative path (:func:`firm_cumulative`): events in date order (ties: events-table
  order); for firm ``i`` ``cum_CAR_i(e) = sum_{e' <= e} CAR*_{i e'}`` with ``CAR*`` the CAR
  counting each (ticker, date) abnormal return once (below) and 0 for an event the firm is not
  named in or has no complete CAR in. CARs are sums of simple abnormal returns, so the
  cumulative value is additive (not compounded): -60 % means the abnormal returns over the
  windows add to -60 %, and it can fall below -100 %.
* Basket (:func:`platform_basket`, :func:`basket_cumulative`): a FIXED set of tickers (named in
  at least :data:`BASKET_MIN_SHARE` of the events with data) and the equal-weighted mean of
  their per-firm paths, the return of one portfolio.
* Sum of event CAARs (:func:`cumulative_value`, secondary): for each event the
  equal-weighted return ``R_e = mean_i CAR_i`` over the firms with a complete CAR, and with
  market caps ``M_i`` (US$) the value ``V_e = sum_i CAR_i M_i``. Event windows overlap (four
  events of July 2021 share the same day 0), so a firm-day can fall in several windows; the
  ``*_unique`` columns count each (ticker, date) abnormal return once, in the first event (in
  date order) whose window contains it, and are the ones to read as "value lost and regained".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = [
    "BASKET_MIN_SHARE",
    "basket_cumulative",
    "basket_summary",
    "cumulative_value",
    "firm_cumulative",
    "platform_basket",
]

#: Default basket rule of :func:`platform_basket`: a ticker is in the basket when it is named in
#: at least this share of the events with data.
BASKET_MIN_SHARE: float = 0.25


def _event_rows(results) -> dict[str, np.ndarray]:
    ids = results.panel.keys["event_id"].to_numpy()
    return {e: np.flatnonzero(ids == e) for e in dict.fromkeys(ids)}


def _unique_cars(results, order: Sequence[str], cols: np.ndarray) -> np.ndarray:
    """CAR of each panel row counting each (ticker, date) once, in event order (see module)."""
    panel = results.panel
    keys = panel.keys
    rank = {e: i for i, e in enumerate(order)}
    ar = panel.ar_event[:, cols]
    dates = panel.dates_event[:, cols]
    claimed: set[tuple[str, np.datetime64]] = set()
    out = np.full(panel.n, np.nan)
    for i in sorted(range(panel.n), key=lambda r: (rank.get(keys["event_id"].iat[r], len(rank)),
                                                   r)):
        ticker = keys["ticker"].iat[i]
        if not np.isfinite(ar[i]).all():
            for d in dates[i]:
                claimed.add((ticker, d))
            continue
        total = 0.0
        for a, d in zip(ar[i], dates[i]):
            if (ticker, d) not in claimed:
                total += a
                claimed.add((ticker, d))
        out[i] = total
    return out


def cumulative_value(results, events: pd.DataFrame, window: tuple[int, int] | None = None, *,
                     market_caps: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Running sum of event CAARs (and US$ value) across the campaign, event by event.

    Secondary table: each event's mean CAR is over that event's own firms, so the running sum
    mixes different firm sets (an event naming three education stocks weighs as much as one
    naming nine platforms) and is not the return of any investor or firm. For the interpretable
    path of a fixed basket use :func:`firm_cumulative` and :func:`basket_cumulative`.

    Parameters
    ----------
    results : crackdown.estimation.results.EventStudyResults
    events : pandas.DataFrame
        Events in the order to cumulate (date order, as :func:`crackdown.timeline.events.load_events`).
    window : (int, int), optional
        CAR window (default: the study's event window).
    market_caps : mapping ticker -> US$, optional
        Market capitalisation before the campaign. Give ONE listing per company (e.g. only
        ``BABA``, not also ``9988.HK``), else the company's value is counted twice; firms without
        a cap are left out of the value columns (counted in ``n_without_cap``).

    Returns
    -------
    pandas.DataFrame
        One row per event: ``event_id, date, direction, category, n_firms`` (firms with a
        complete CAR), ``ret`` = mean CAR (equal weights), ``cum_ret`` its running sum,
        ``ret_unique``/``cum_ret_unique`` the same counting each firm-day once (see module),
        and with ``market_caps``: ``value_usd``, ``cum_value_usd``, ``value_usd_unique``,
        ``cum_value_usd_unique``, ``n_without_cap``. Events without a usable firm have NaN
        ``ret`` and add 0 to the running sums.
    """
    panel = results.panel
    w = tuple(results.study.window) if window is None else (int(window[0]), int(window[1]))
    order = list(events["event_id"].astype(str))
    rows_of = _event_rows(results) if panel.n else {}
    if panel.n:
        cols = panel.columns(*w)
        car_full = panel.ar_event[:, cols].sum(axis=1)
        car_unique = _unique_cars(results, order, cols)
    caps = None if market_caps is None else {str(k): float(v) for k, v in market_caps.items()}
    out = []
    for ev in events.itertuples(index=False):
        eid = str(ev.event_id)
        row = {"event_id": eid, "date": pd.Timestamp(ev.date), "direction": ev.direction,
               "category": ev.category, "n_firms": 0, "ret": np.nan, "ret_unique": np.nan}
        if caps is not None:
            row.update(value_usd=np.nan, value_usd_unique=np.nan, n_without_cap=0)
        idx = rows_of.get(eid, np.array([], dtype=int))
        idx = idx[np.isfinite(car_full[idx])] if len(idx) else idx
        if len(idx):
            row.update(n_firms=len(idx), ret=float(car_full[idx].mean()),
                       ret_unique=float(car_unique[idx].mean()))
            if caps is not None:
                tick = panel.keys["ticker"].to_numpy()[idx]
                has = np.array([t in caps for t in tick])
                m = np.array([caps.get(t, np.nan) for t in tick])
                row["n_without_cap"] = int((~has).sum())
                if has.any():
                    row["value_usd"] = float((car_full[idx][has] * m[has]).sum())
                    row["value_usd_unique"] = float((car_unique[idx][has] * m[has]).sum())
        out.append(row)
    table = pd.DataFrame(out)
    table["cum_ret"] = table["ret"].fillna(0.0).cumsum()
    table["cum_ret_unique"] = table["ret_unique"].fillna(0.0).cumsum()
    if caps is not None:
        table["cum_value_usd"] = table["value_usd"].fillna(0.0).cumsum()
        table["cum_value_usd_unique"] = table["value_usd_unique"].fillna(0.0).cumsum()
    return table


def _events_in_date_order(events: pd.DataFrame) -> pd.DataFrame:
    """Events sorted by date; ties keep the events-table order (stable sort)."""
    out = events.assign(date=pd.to_datetime(events["date"]), event_id=events["event_id"].astype(str))
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def platform_basket(results, events: pd.DataFrame, *,
                    min_share: float = BASKET_MIN_SHARE) -> list[str]:
    """Default basket: the tickers named in at least ``min_share`` of the events with data.

    An event "has data" when at least one of its firm-events has abnormal returns; a ticker is
    "named" in an event when the study asked for it there (a row of
    ``results.outcomes``, whatever its status). With the shipped ``events.csv`` (66 events) and
    the default 25 % this keeps the nine listings of the big platforms (Alibaba, Tencent,
    Meituan, Baidu, JD, PDD; New York and Hong Kong listings counted separately) and leaves out
    firms named in a handful of events (DIDI, the education stocks, ...).

    Returns
    -------
    list of str
        Tickers ordered by the number of events naming them (most first), then name.
    """
    if not 0 < min_share <= 1:
        raise StudyConfigError(f"platform_basket: min_share={min_share!r} must be in (0, 1] "
                               "(e.g. 0.25 for a quarter of the events with data)")
    ids = set(events["event_id"].astype(str))
    with_data = set(results.panel.keys["event_id"].astype(str)) & ids if results.panel.n else set()
    if not with_data:
        return []
    oc = results.outcomes
    named = oc.loc[oc["event_id"].astype(str).isin(with_data), ["event_id", "ticker"]]
    counts = named.drop_duplicates().groupby("ticker").size()
    keep = counts[counts >= min_share * len(with_data)]
    return sorted(keep.index.astype(str), key=lambda t: (-int(keep[t]), t))


def firm_cumulative(results, events: pd.DataFrame, window: tuple[int, int] | None = None, *,
                    tickers: Sequence[str] | None = None,
                    market_caps: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each basket firm's cumulative abnormal return across the campaign, event by event.

    For every event (date order; ties keep the order of ``events``) and every ticker ``i`` of
    the basket::

        car_i(e)     = CAR*_{i,e}  if firm i is named in event e and has a complete CAR, else 0
        cum_car_i(e) = sum_{e' <= e} car_i(e')

    with ``CAR*`` the CAR over ``window`` counting each (ticker, date) abnormal return once:
    windows of nearby events overlap (four events of July 2021 share day 0), and a firm-day's
    abnormal return is counted in the first event (date order) whose window contains it (see
    the module docstring; ``car_unique`` of :func:`firm_car_table`). CARs are sums of simple
    abnormal returns, so ``cum_car`` is additive, not compounded: it is the sum of the firm's
    abnormal returns over the union of the announcement windows (it can fall below -100 %).
    The abnormal returns of days outside the windows are not counted.

    Parameters
    ----------
    results : crackdown.estimation.results.EventStudyResults
    events : pandas.DataFrame
        Events studied (``event_id, date, direction``); every event gives one row per ticker,
        also events without data (contribution 0).
    window : (int, int), optional
        CAR window (default: the study's event window).
    tickers : list of str, optional
        The basket. Default :func:`platform_basket` (tickers named in at least
        :data:`BASKET_MIN_SHARE` of the events with data). A fixed basket is what makes the
        equal-weighted mean of :func:`basket_cumulative` a return of one portfolio.
    market_caps : mapping ticker -> US$, optional
        Market capitalisation (before the campaign) for ``value_usd = car * market_cap``. Give
        one listing per company, or the company's value is counted twice when summed; a basket
        ticker without a cap gets NaN value columns.

    Returns
    -------
    pandas.DataFrame
        One row per (event, ticker), events in date order and tickers in basket order, columns
        ``event_id, date, direction, ticker, in_event`` (the study asked for the ticker in this
        event), ``has_car`` (it has a complete CAR there), ``car_window`` (its plain CAR over
        the window, NaN when absent), ``car`` (the contribution ``CAR*``, 0 when absent),
        ``cum_car``; with ``market_caps`` also ``market_cap, value_usd, cum_value_usd``.
    """
    panel = results.panel
    if panel.n == 0:
        raise StudyConfigError("firm_cumulative: no firm-event has abnormal returns "
                               "(see results.outcomes)")
    w = tuple(results.study.window) if window is None else (int(window[0]), int(window[1]))
    ordered = _events_in_date_order(events)
    order = list(ordered["event_id"])
    keys = panel.keys
    in_study = set(keys["ticker"].astype(str)) | set(results.outcomes["ticker"].astype(str))
    if tickers is None:
        basket = platform_basket(results, ordered)
        if not basket:
            raise StudyConfigError("firm_cumulative: the default basket is empty (no ticker is "
                                   f"named in {BASKET_MIN_SHARE:.0%} of the events with data); "
                                   "pass tickers=[...]")
    else:
        if isinstance(tickers, str):
            tickers = [tickers]
        basket = [str(t) for t in tickers]
        if not basket:
            raise StudyConfigError("firm_cumulative: tickers=[] is empty; pass at least one "
                                   "ticker or None for the default platform basket")
        dup = sorted({t for t in basket if basket.count(t) > 1})
        if dup:
            raise StudyConfigError(f"firm_cumulative: tickers {dup} repeat; give each once")
        unknown = [t for t in basket if t not in in_study]
        if unknown:
            raise StudyConfigError(f"firm_cumulative: tickers {unknown} are in no event of this "
                                   f"study; known tickers: {sorted(in_study)}")
    caps = None
    if market_caps is not None:
        caps = {}
        for t, v in market_caps.items():
            try:
                value = float(v)
            except (TypeError, ValueError):
                value = np.nan
            if not np.isfinite(value) or value <= 0:
                raise StudyConfigError(f"firm_cumulative: market_caps[{t!r}] = {v!r} must be a "
                                       "positive number of US$")
            caps[str(t)] = value

    cols = panel.columns(*w)
    ar = panel.ar_event[:, cols]
    car_full = ar.sum(axis=1)  # NaN when a day is missing
    car_unique = _unique_cars(results, order, cols)
    row_of = {(str(e), str(t)): i for i, (e, t) in enumerate(zip(keys["event_id"], keys["ticker"]))}
    oc = results.outcomes
    named = set(zip(oc["event_id"].astype(str), oc["ticker"].astype(str)))

    rows = []
    for ev in ordered.itertuples(index=False):
        for ticker in basket:
            i = row_of.get((ev.event_id, ticker))
            has = i is not None and bool(np.isfinite(car_full[i]))
            rows.append({
                "event_id": ev.event_id, "date": ev.date, "direction": ev.direction,
                "ticker": ticker, "in_event": (ev.event_id, ticker) in named or i is not None,
                "has_car": has,
                "car_window": float(car_full[i]) if has else np.nan,
                "car": float(car_unique[i]) if has else 0.0,
            })
    out = pd.DataFrame(rows, columns=["event_id", "date", "direction", "ticker", "in_event",
                                      "has_car", "car_window", "car"])
    out["cum_car"] = out.groupby("ticker", sort=False)["car"].cumsum()
    if caps is not None:
        out["market_cap"] = out["ticker"].map(caps).astype(float)
        out["value_usd"] = out["car"] * out["market_cap"]
        out["cum_value_usd"] = out["cum_car"] * out["market_cap"]
    return out


def basket_cumulative(firm_cum: pd.DataFrame) -> pd.DataFrame:
    """Equal-weighted basket path from :func:`firm_cumulative`: one row per event.

    ``basket_cum_car(e) = (1/N) sum_i cum_car_i(e)`` over the N tickers of the (fixed) basket,
    i.e. the average platform stock's cumulative abnormal return across the announcement
    windows up to event ``e`` (additive: sums of simple abnormal returns, see
    :func:`firm_cumulative`); ``basket_car(e) = (1/N) sum_i car_i(e)`` is the event's increment
    (firms not named in the event contribute 0, so it is NOT the event's CAAR).

    Returns
    -------
    pandas.DataFrame
        ``event_id, date, direction, n_tickers`` (basket size), ``n_with_car`` (tickers with a
        CAR in this event), ``basket_car, basket_cum_car``; when ``firm_cum`` has value columns
        also ``value_usd, cum_value_usd`` (sums over tickers with a cap) and ``n_with_cap``.
        Read the trough and end with :func:`basket_summary`.
    """
    need = ["event_id", "date", "direction", "ticker", "has_car", "car", "cum_car"]
    missing = [c for c in need if c not in firm_cum.columns]
    if missing:
        raise StudyConfigError(f"basket_cumulative: firm_cum lacks column(s) {missing}; pass the "
                               "output of crackdown.analyses.campaign.firm_cumulative")
    if firm_cum.empty:
        raise StudyConfigError("basket_cumulative: firm_cum is empty")
    n_all = firm_cum["ticker"].nunique()
    counts = firm_cum.groupby("event_id", sort=False)["ticker"].nunique()
    if (counts != n_all).any() or firm_cum.duplicated(["event_id", "ticker"]).any():
        raise StudyConfigError("basket_cumulative: every event must have one row per basket "
                               "ticker (a fixed basket); pass firm_cumulative's output unfiltered")
    grouped = firm_cum.groupby("event_id", sort=False)
    out = grouped.agg(date=("date", "first"), direction=("direction", "first"),
                      n_tickers=("ticker", "size"), n_with_car=("has_car", "sum"),
                      basket_car=("car", "mean"), basket_cum_car=("cum_car", "mean"))
    if "value_usd" in firm_cum.columns:
        caps = firm_cum["market_cap"].notna()
        out["n_with_cap"] = caps.groupby(firm_cum["event_id"], sort=False).sum()
        out["value_usd"] = grouped["value_usd"].sum(min_count=1)
        out["cum_value_usd"] = grouped["cum_value_usd"].sum(min_count=1)
    out = out.reset_index()
    out["n_with_car"] = out["n_with_car"].astype(int)
    return out


def basket_summary(basket: pd.DataFrame) -> dict[str, object]:
    """Trough and end of the basket path of :func:`basket_cumulative` (decimals).

    Returns a dict with ``trough`` (minimum of ``basket_cum_car``; the first event on ties),
    ``trough_date``, ``trough_event``, ``end`` (after the last event), ``end_date``,
    ``n_tickers`` and, with values, ``trough_value_usd`` / ``end_value_usd``.
    """
    if basket.empty or "basket_cum_car" not in basket.columns:
        raise StudyConfigError("basket_summary: pass the non-empty output of basket_cumulative")
    y = basket["basket_cum_car"].to_numpy(dtype=float)
    k = int(np.argmin(y))
    out: dict[str, object] = {
        "trough": float(y[k]), "trough_date": pd.Timestamp(basket["date"].iloc[k]),
        "trough_event": str(basket["event_id"].iloc[k]), "end": float(y[-1]),
        "end_date": pd.Timestamp(basket["date"].iloc[-1]),
        "n_tickers": int(basket["n_tickers"].iloc[0]),
    }
    if "cum_value_usd" in basket.columns:
        out["trough_value_usd"] = float(basket["cum_value_usd"].iloc[k])
        out["end_value_usd"] = float(basket["cum_value_usd"].iloc[-1])
    return out
