"""Rivals and spillovers: does a probe of the named firms move their competitors?

The antitrust event-study literature finds that an investigation lowers the target's value
and **raises** its rivals' (Huang, Yin, Zhang & Zhao 2025, *Review of Industrial
Organization*; Khoo, Lai & Tian 2025 on the 2020-21 Alibaba probe): investors read the probe as
weaker market power of the target, to the competitors' benefit. When the rivals instead fall
with the target, the news is read as sector-wide (contagion). This module splits each event's
universe into three groups and measures both.

Groups (:func:`spillover_groups`)
---------------------------------
From :func:`crackdown.timeline.universe.load_universe`, the **tech listings** are the rows whose
``role`` is one of :data:`TECH_ROLES` (``benchmark_constituent``, ``index`` and ``etf`` rows are
market proxies, not firms):

``target``
    The event's tickers, plus (``include_partners=True``) the other listing of a named firm
    (the universe's ``cross_listing`` column; e.g. ``9888.HK`` for an event naming ``BIDU``):
    the regulator names the company, and its second listing is the same claim on the same cash
    flows, never its rival.
``rival``
    Tech listings not among the targets that share the GICS ``sector`` **or** the ``industry``
    of any target (both markets).
``other``
    The remaining tech listings (other sectors and industries): a placebo group for market- or
    sector-wide news.

``rivals=`` / ``others=`` (lists of tickers; CLI ``--rivals A,B`` / ``--others ...``) override a
group; with ``rivals`` only, ``other`` is the tech listings that are neither targets nor the
given rivals. A ticker may sit in one group only (else :class:`StudyConfigError`).

Estimation
----------
One :class:`~crackdown.estimation.study.EventStudy` fit over all requested events, each event's
firm-events being its targets, rivals and others (every firm-event is its own regression, so a
fit of many events equals one fit per event). The groups enter as the event's ``ticker_list``
rather than through ``tickers=``, so a listing without prices over the span becomes a reported
``no_price_data`` outcome instead of an error. Hong Kong listings get ``HK_NONTECH_EW``, which
leaves out the constituents an event names; tech listings are never constituents (their role
is not ``benchmark_constituent``), so rivals are not in their own benchmark, and an overridden
rival that *is* a constituent is left out of it like a named firm.

Per group: ``caar`` = ``Σ_t AAR_t`` over the window (listing-weighted, each listing on its own
calendar, as :meth:`EventStudyResults.caar`); ``bhar`` = mean buy-and-hold abnormal return of
the listings with a complete window; the headline test
(:data:`crackdown.inference.headline.HEADLINE_TEST`, the Kolari-Pynnönen adjusted BMP test,
computed by :func:`crackdown.estimation.battery.run_test_battery` on the group's rows, so
equal to ``res.tests()`` of a study of those listings alone).

Target minus rival: the portfolio of differences
------------------------------------------------
Targets and rivals share the event date, so their abnormal returns are correlated through the
same news and the same market days; a two-sample test on the listings' CARs treats them as
independent and over-rejects when each group has its own common component (a sector factor).
The difference is tested as a **portfolio of differences** (Brown & Warner 1985, "crude
dependence adjustment"; the calendar-time portfolio approach of Jaffe 1974 and Mandelker 1974):

* Each group's portfolio return on day ``t`` is ``P_g,t`` = equal-weighted mean over the group's
  **firms** of the firm's mean abnormal return over its listings trading that day. A
  cross-listed pair (``BABA``/``9988.HK``) is one firm in two listings: weighting listings would
  count the (mostly cross-listed) targets twice against (mostly single-listed) rivals.
* Listings on two calendars are paired in **information time**
  (:func:`crackdown.timeline.information_time.align_in_information_time`: New York's day *t*
  with Hong Kong's next session, origin the earliest information day of the event's day 0s), as
  :meth:`crackdown.estimation.panel.EventPanel.aligned_residuals` does for the tests; on one
  calendar the relative trading days are kept.
* ``D_t = P_target,t - P_rival,t``; ``CAR_D = Σ_{t in window} D_t`` over the ``L`` days where
  ``D`` is defined; ``t = CAR_D / (sd(D_est) sqrt(L))`` with ``sd`` the time-series standard
  deviation (ddof 1) of ``D`` over the ``n_est`` estimation days where it is defined, against
  Student t with ``n_est - 1`` degrees of freedom.

Because ``D_t`` is one series, any correlation between targets and rivals (common date, common
sector factor) is in ``sd(D_est)``: no cross-correlation has to be estimated, and the test's
size holds under arbitrary contemporaneous dependence (``tests/test_spillovers.py`` simulates
within-group factors and a common event-day shock of the same size in both groups: about 5%
rejections, where the pooled cross-sectional two-sample t rejects far more often). Its
limitation is that of every portfolio test: a rise of the *variance* of ``D`` in the event
window (event-induced variance) is not in ``sd(D_est)``, and ``L`` days give few degrees of
freedom for nothing else. The SUR/dummy-variable alternative
(:mod:`crackdown.inference.dummy_regression`) needs a common calendar and a common benchmark
for all listings of the system, which two markets do not have; it is not used here.

Output contract (:data:`SPILLOVER_COLUMNS`)
-------------------------------------------
One row per event and group ``target``, ``rival``, ``other``, then one ``target_minus_rival``:

``event_id, date, category``
    The event.
``group``
    One of :data:`GROUPS` or :data:`DIFFERENCE`.
``n_listings, n_firms``
    Included listings (firm-events with abnormal returns) and firms (a pair counts once);
    a group without listings is a row with ``n_listings = 0`` and a note, never dropped.
``tickers``
    The included listings, ``;``-separated (difference row: targets ``|`` rivals).
``window``
    ``"lo:hi"`` (relative days; the difference's days are information days).
``caar, bhar``
    Group rows as above; difference row: target minus rival of those columns (not tested).
``portfolio_car, se``
    The firm-weighted portfolio CAR ``Σ_t P_g,t`` over the window and its Brown-Warner standard
    error ``sd(P_g,est) sqrt(L)``; difference row: ``CAR_D`` and ``sd(D_est) sqrt(L)``, the
    estimate its test tests.
``test, stat, p_value, df``
    Group rows: the headline test; difference row: ``portfolio_of_differences``.
``n_est``
    Estimation days behind ``se``: those of the group's portfolio series (``sd(D_est)`` for the
    difference row, whose test has ``df = n_est - 1``).
``note``
    Left-out listings and why, cross-listings added to the targets, few-listings warnings.

References
----------
Brown, S. J., & Warner, J. B. (1985). Using daily stock returns: The case of event studies.
*Journal of Financial Economics*, 14(1), 3-31.
Huang, Yin, Zhang & Zhao (2025). *Review of Industrial Organization* (antitrust probes and
rivals' value). Khoo, Lai & Tian (2025), the Alibaba antitrust probe.
Kolari, J. W., & Pynnönen, S. (2010). Event study testing with cross-sectional correlation of
abnormal returns. *Review of Financial Studies*, 23(11), 3996-4025.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = [
    "DIFFERENCE",
    "GROUPS",
    "SPILLOVER_COLUMNS",
    "TECH_ROLES",
    "difference_test",
    "group_portfolio",
    "spillover_groups",
    "spillovers",
]

#: Universe roles of the tech listings (firms); the other roles are market proxies.
TECH_ROLES: tuple[str, ...] = ("platform", "rival", "education", "fintech", "ev",
                               "hardware_semis")
#: The three groups of an event, in output order.
GROUPS: tuple[str, ...] = ("target", "rival", "other")
#: Name of the difference row.
DIFFERENCE = "target_minus_rival"
#: Columns of :func:`spillovers` (module docstring).
SPILLOVER_COLUMNS: tuple[str, ...] = (
    "event_id", "date", "category", "group", "n_listings", "n_firms", "tickers", "window",
    "caar", "bhar", "portfolio_car", "se", "test", "stat", "p_value", "df", "n_est", "note",
)
GROUP_COLUMNS = ("ticker", "group", "firm", "company", "exchange", "sector", "industry", "reason")


# --------------------------------------------------------------------------------- groups
def _event_row(event, events: pd.DataFrame | None) -> pd.Series:
    from crackdown.timeline.events import get_event

    if isinstance(event, str):
        return get_event(event, events)
    if isinstance(event, pd.Series):
        return event
    raise StudyConfigError(f"event must be an event id or a row of load_events(); got "
                           f"{type(event).__name__}")


def _event_tickers(row: pd.Series) -> list[str]:
    tl = row.get("ticker_list", None)
    if isinstance(tl, (list, tuple, np.ndarray)):
        return [str(t) for t in tl if str(t)]
    return [t.strip() for t in str(row.get("tickers", "") or "").split(";") if t.strip()]


def _ticker_list(values: Sequence[str] | None, option: str) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    out = [str(v).strip() for v in values]
    if any(not v for v in out):
        raise StudyConfigError(f"{option}= has an empty ticker; pass a list such as ['JD', 'PDD']")
    return list(dict.fromkeys(out))


def spillover_groups(
    event,
    universe: pd.DataFrame | None = None,
    rivals: Sequence[str] | None = None,
    others: Sequence[str] | None = None,
    *,
    events: pd.DataFrame | None = None,
    include_partners: bool = True,
) -> pd.DataFrame:
    """The target, rival and other listings of one event (module docstring: *Groups*).

    Parameters
    ----------
    event : str or pandas.Series
        An event id (looked up in ``events``, default the events table) or a row of
        :func:`crackdown.timeline.events.load_events`.
    universe : pandas.DataFrame, optional
        Universe table (default :func:`crackdown.timeline.universe.load_universe`).
    rivals, others : list of str, optional
        Override the rival / other group (tickers). Listings outside the universe are allowed
        (they need price files).
    events : pandas.DataFrame, optional
        Events table for an event id.
    include_partners : bool
        Add the cross-listing of each named target to the targets.

    Returns
    -------
    pandas.DataFrame
        Columns ``ticker, group, firm, company, exchange, sector, industry, reason``, targets
        first, then rivals and others in universe order. ``firm`` identifies the company (the
        alphabetically first ticker of a cross-listed pair), ``reason`` says why the listing
        is in its group.

    Raises
    ------
    StudyConfigError
        A ticker in two groups (a named target among ``rivals``/``others``, or in both).
    """
    from crackdown.timeline.universe import exchange_for_ticker, load_universe

    row = _event_row(event, events)
    event_id = str(row.get("event_id", "event"))
    uni = load_universe() if universe is None else universe
    info = uni.set_index("ticker")
    rivals = _ticker_list(rivals, "rivals")
    others = _ticker_list(others, "others")

    named = _event_tickers(row)
    targets = {t: "named by the event" for t in named}
    if include_partners:
        for t in named:
            partner = info["cross_listing"].get(t, "") if t in info.index else ""
            if partner and partner not in targets:
                targets[partner] = f"cross-listing of {t}"
    for option, given in (("rivals", rivals), ("others", others)):
        clash = [t for t in given or () if t in targets]
        if clash:
            raise StudyConfigError(
                f"event {event_id}: {option}= lists {clash}, which are targets of the event "
                f"(named or cross-listed); remove them from {option}=")
    if rivals is not None and others is not None:
        both = sorted(set(rivals) & set(others))
        if both:
            raise StudyConfigError(f"event {event_id}: {both} are in both rivals= and others=; "
                                   "put each ticker in one group")

    tech = uni.loc[uni["role"].isin(TECH_ROLES), "ticker"].tolist()
    known = [t for t in targets if t in info.index]
    sectors = {s for s in info.loc[known, "sector"] if s}
    industries = {s for s in info.loc[known, "industry"] if s}
    group: dict[str, tuple[str, str]] = {t: ("target", why) for t, why in targets.items()}
    if rivals is None:
        for t in tech:
            if t in group:
                continue
            sector, industry = info.at[t, "sector"], info.at[t, "industry"]
            if sector in sectors or industry in industries:
                why = (f"same sector ({sector})" if sector in sectors
                       else f"same industry ({industry})")
                group[t] = ("rival", why)
    else:
        for t in rivals:
            group[t] = ("rival", "rivals= override")
    if others is None:
        for t in tech:
            if t not in group:
                group[t] = ("other", "tech listing of another sector and industry")
    else:
        for t in others:
            if t in group:
                raise StudyConfigError(f"event {event_id}: others= lists {t}, already a "
                                       f"{group[t][0]}; put each ticker in one group")
            group[t] = ("other", "others= override")

    rows = []
    for t, (g, why) in group.items():
        known_t = t in info.index
        partner = info.at[t, "cross_listing"] if known_t else ""
        rows.append({
            "ticker": t, "group": g,
            "firm": min(t, partner) if partner else t,
            "company": info.at[t, "company"] if known_t else "",
            "exchange": info.at[t, "exchange"] if known_t else exchange_for_ticker(t),
            "sector": info.at[t, "sector"] if known_t else "",
            "industry": info.at[t, "industry"] if known_t else "",
            "reason": why,
        })
    out = pd.DataFrame(rows, columns=list(GROUP_COLUMNS))
    order = {g: i for i, g in enumerate(GROUPS)}
    out["_o"] = out["group"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


# --------------------------------------------------------------------------------- statistics
def group_portfolio(values: np.ndarray, firms: Sequence[str]) -> np.ndarray:
    """Firm-weighted portfolio series of listing-level values.

    ``P_t = mean_f ( mean_{i in f, value_it present} value_it )`` over the firms ``f`` with at
    least one listing present on day ``t``; NaN when no firm has a value.

    Parameters
    ----------
    values : (N, T) array
        One row per listing (abnormal returns or residuals on common columns); NaN = missing.
    firms : sequence of str (N,)
        Firm of each row (the two listings of a cross-listed pair share it).

    Returns
    -------
    ndarray (T,)
    """
    v = np.atleast_2d(np.asarray(values, dtype=float))
    firms = np.asarray([str(f) for f in firms])
    if len(firms) != v.shape[0]:
        raise StudyConfigError(f"group_portfolio: {len(firms)} firm labels for {v.shape[0]} rows")
    if v.shape[0] == 0:
        return np.full(v.shape[1], np.nan)
    per_firm = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for f in pd.unique(firms):
            per_firm.append(np.nanmean(v[firms == f], axis=0))
        return np.nanmean(np.vstack(per_firm), axis=0)


def difference_test(target_event, target_est, rival_event, rival_est, *,
                    target_firms: Sequence[str] | None = None,
                    rival_firms: Sequence[str] | None = None) -> dict:
    """Portfolio-of-differences test of the target-minus-rival CAR (module docstring).

    Parameters
    ----------
    target_event, rival_event : (N_g, L) arrays
        Event-window abnormal returns of each group's listings on common columns (days).
    target_est, rival_est : (N_g, T) arrays
        Estimation-window residuals on common columns.
    target_firms, rival_firms : sequence of str, optional
        Firm of each row (default: every row its own firm).

    Returns
    -------
    dict
        ``car_d = Σ D_t`` over the ``L`` event days with ``D`` defined, ``se = sd(D_est)
        sqrt(L)`` (ddof 1), ``stat = car_d / se``, ``df = n_est - 1``, two-sided Student-t
        ``p_value``, ``n_est``, ``n_days`` (= L), and the series ``d_event``, ``d_est``,
        ``p_target_event``, ``p_rival_event``, ``p_target_est``, ``p_rival_est``.
    """
    from crackdown.inference.parametric import portfolio_t

    te, tx = np.atleast_2d(target_event), np.atleast_2d(target_est)
    re_, rx = np.atleast_2d(rival_event), np.atleast_2d(rival_est)
    tf = list(range(len(te))) if target_firms is None else list(target_firms)
    rf = [f"r{i}" for i in range(len(re_))] if rival_firms is None else list(rival_firms)
    p_te, p_tx = group_portfolio(te, tf), group_portfolio(tx, tf)
    p_re, p_rx = group_portfolio(re_, rf), group_portfolio(rx, rf)
    d_event, d_est = p_te - p_re, p_tx - p_rx
    res = portfolio_t(d_event[None, :], d_est[None, :])  # one series: N = 1
    n_est = int(res.extra["n_estimation_days"])
    n_days = int(np.isfinite(d_event).sum())
    sd = float(res.extra["sd_portfolio"])
    return {
        "car_d": float(res.estimate) if n_days else float("nan"),
        "se": sd * np.sqrt(n_days) if n_days else float("nan"),
        "stat": float(res.statistic), "df": float(res.df), "p_value": float(res.pvalue),
        "n_est": n_est, "n_days": n_days,
        "d_event": d_event, "d_est": d_est, "p_target_event": p_te, "p_rival_event": p_re,
        "p_target_est": p_tx, "p_rival_est": p_rx,
    }


def _portfolio_car(event: np.ndarray, est: np.ndarray, firms) -> tuple[float, float, int]:
    """Firm-weighted portfolio CAR, its Brown-Warner standard error ``sd(P_est) sqrt(L)`` and
    the estimation days behind the sd (NaN when undefined)."""
    p_ev, p_est = group_portfolio(event, firms), group_portfolio(est, firms)
    p_est = p_est[np.isfinite(p_est)]
    used = np.isfinite(p_ev)
    if not used.any() or p_est.size < 2:
        return float("nan"), float("nan"), int(p_est.size)
    return (float(p_ev[used].sum()), float(np.std(p_est, ddof=1) * np.sqrt(used.sum())),
            int(p_est.size))


# --------------------------------------------------------------------------------- events
def _resolve_events(events, events_file) -> pd.DataFrame:
    from crackdown.timeline.events import load_events

    if isinstance(events, pd.DataFrame):
        if events.empty:
            raise StudyConfigError("spillovers: the events table is empty; pass events")
        return events
    table = load_events(events_file)
    if events is None:
        return table
    ids = [events] if isinstance(events, str) else [str(e) for e in events]
    return load_events(events_file, event_ids=ids) if ids else table


def _aligned(panel, rows: np.ndarray, cols: np.ndarray):
    """Event-window ARs and estimation residuals of ``rows`` on common columns.

    Relative trading days when the rows share a calendar, else information days with the
    earliest information day of the rows' day 0s as origin.
    """
    from crackdown.timeline.information_time import (
        align_in_information_time,
        information_day,
        same_calendar,
    )

    ar_ev = panel.ar_event[np.ix_(rows, cols)]
    exchanges = panel.keys["exchange"].astype(str).to_numpy()[rows]
    if panel.session_grid != "exchange" or same_calendar(list(set(exchanges))):
        return ar_ev, panel.ar_est[rows], panel.rel_days[cols], "relative trading days"
    day0 = panel.keys["day0"].to_numpy(dtype="datetime64[ns]")[rows]
    keys0 = np.empty(len(rows), dtype="datetime64[ns]")
    for x in pd.unique(exchanges):
        sel = exchanges == x
        keys0[sel] = information_day(day0[sel], x)
    origin = np.full(len(rows), keys0.min(), dtype="datetime64[ns]")
    est, _, _ = align_in_information_time(panel.ar_est[rows], panel.dates_est[rows], exchanges,
                                          origin)
    ev, ev_days, _ = align_in_information_time(ar_ev, panel.dates_event[np.ix_(rows, cols)],
                                               exchanges, origin)
    return ev, est, ev_days, "information days"


def _excluded_note(outcomes: pd.DataFrame, groups: pd.DataFrame, group: str) -> str:
    listed = groups.loc[groups["group"] == group]
    late = listed.loc[~listed["in_study"], "ticker"].tolist() if "in_study" in listed else []
    out = outcomes.loc[outcomes["ticker"].isin(listed["ticker"]) & ~outcomes["included"]]
    parts = [f"{s}: {', '.join(g['ticker'])}" for s, g in out.groupby("status", sort=False)]
    if late:
        parts.insert(0, f"listed on or after the event date: {', '.join(late)}")
    return f"{len(out) + len(late)} left out ({'; '.join(parts)})" if parts else ""


def _event_rows(ev: pd.Series, groups: pd.DataFrame, res, window) -> list[dict]:
    from crackdown.estimation.battery import run_test_battery
    from crackdown.inference.headline import HEADLINE_TEST, SMALL_N

    p = res.panel
    keys = p.keys
    eid = str(ev["event_id"])
    in_event = np.flatnonzero(keys["event_id"].astype(str).to_numpy() == eid)
    cols = p.columns(*window)
    lo, hi = int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]])
    wtext = f"{lo}:{hi}"
    outcomes = res.outcomes.loc[res.outcomes["event_id"].astype(str) == eid]
    bhar = res.bhar(lo, hi)
    bhar = bhar.loc[bhar["event_id"].astype(str) == eid].set_index("ticker")["bhar"]
    gmap = groups.set_index("ticker")
    tick = keys["ticker"].astype(str).to_numpy()[in_event]
    group_of = np.array([gmap.at[t, "group"] if t in gmap.index else "" for t in tick])
    firm_of = np.array([gmap.at[t, "firm"] if t in gmap.index else t for t in tick])
    if len(in_event):
        ev_al, est_al, _, grid = _aligned(p, in_event, cols)
    base = {"event_id": eid, "date": pd.Timestamp(ev["date"]), "category": ev.get("category", ""),
            "window": wtext}
    rows, by_group = [], {}
    for g in GROUPS:
        listed = groups.loc[groups["group"] == g, "ticker"].tolist()
        local = np.flatnonzero(group_of == g)
        idx = in_event[local]
        by_group[g] = local
        notes = [n for n in [_excluded_note(outcomes, groups, g)] if n]
        if g == "target":
            added = groups.loc[(groups["group"] == g)
                               & groups["reason"].str.startswith("cross-listing"), "ticker"]
            if len(added):
                notes.append(f"cross-listing(s) added: {', '.join(added)}")
        row = dict(base, group=g, n_listings=len(idx), n_firms=len(set(firm_of[local])),
                   tickers=";".join(tick[local]), caar=np.nan, bhar=np.nan,
                   portfolio_car=np.nan, se=np.nan, test=HEADLINE_TEST, stat=np.nan,
                   p_value=np.nan, df=np.nan, n_est=0)
        if not len(listed):
            notes.insert(0, f"no {g} listings in the universe for this event")
        elif not len(idx):
            notes.insert(0, f"no {g} listing has abnormal returns")
        if len(idx):
            sub = p.ar_event[np.ix_(idx, cols)]
            cnt = np.isfinite(sub).sum(axis=0)
            with np.errstate(invalid="ignore"):
                aar = np.nansum(sub, axis=0) / cnt
            row["caar"] = float(aar.sum()) if (cnt > 0).all() else np.nan
            b = bhar.reindex(tick[local]).to_numpy(dtype=float)
            row["bhar"] = float(np.nanmean(b)) if np.isfinite(b).any() else np.nan
            row["portfolio_car"], row["se"], row["n_est"] = _portfolio_car(
                ev_al[local], est_al[local], firm_of[local])
            head = run_test_battery(p.subset(idx), (lo, hi))[0]
            row.update(stat=float(head.statistic), p_value=float(head.pvalue),
                       df=float(head.df) if isinstance(head.df, (int, float)) else np.nan)
            if head.convention.startswith("not computed"):
                notes.append(head.convention)
            elif len(idx) <= SMALL_N:
                notes.append(f"{len(idx)} listing(s): the cross-sectional test has little power")
        row["note"] = "; ".join(notes)
        rows.append(row)
    t_rows, r_rows = rows[0], rows[1]
    diff = dict(base, group=DIFFERENCE, n_listings=t_rows["n_listings"] + r_rows["n_listings"],
                n_firms=t_rows["n_firms"] + r_rows["n_firms"],
                tickers=f"{t_rows['tickers']}|{r_rows['tickers']}",
                caar=t_rows["caar"] - r_rows["caar"], bhar=t_rows["bhar"] - r_rows["bhar"],
                portfolio_car=np.nan, se=np.nan, test="portfolio_of_differences", stat=np.nan,
                p_value=np.nan, df=np.nan, n_est=0)
    lt, lr = by_group["target"], by_group["rival"]
    if len(lt) and len(lr):
        d = difference_test(ev_al[lt], est_al[lt], ev_al[lr], est_al[lr],
                            target_firms=firm_of[lt], rival_firms=firm_of[lr])
        diff.update(portfolio_car=d["car_d"], se=d["se"], stat=d["stat"], p_value=d["p_value"],
                    df=d["df"], n_est=d["n_est"])
        diff["note"] = (f"D_t = firm-weighted target minus rival portfolio on {grid}; "
                        f"Brown-Warner 1985 sd of D over {d['n_est']} estimation days; "
                        f"L = {d['n_days']} day(s)")
    else:
        diff["note"] = "needs at least one target and one rival listing with abnormal returns"
    rows.append(diff)
    return rows


def spillovers(
    events=None,
    window: tuple[int, int] = (-1, 1),
    *,
    rivals: Sequence[str] | None = None,
    others: Sequence[str] | None = None,
    universe: pd.DataFrame | None = None,
    include_partners: bool = True,
    model: str = "market",
    estimation: tuple[int, int] = (-250, -11),
    fallback: str | None = "market-adjusted",
    benchmark=None,
    timing_policy: str = "span",
    prices_dir: str | os.PathLike[str] | None = None,
    events_file: str | os.PathLike[str] | None = None,
    **settings,
) -> pd.DataFrame:
    """Target, rival and other CAAR/BHAR/headline test and the target-minus-rival test.

    Parameters
    ----------
    events : str, list of str or pandas.DataFrame, optional
        An event id, several ids, or an events table (default: every event of the table).
    window : (int, int)
        Event window (relative days, inclusive).
    rivals, others : list of str, optional
        Group overrides applied to every event (:func:`spillover_groups`).
    universe : pandas.DataFrame, optional
        Universe table (default the shipped one).
    include_partners : bool
        Add the cross-listing of a named firm to the targets.
    model, estimation, fallback, benchmark, timing_policy, prices_dir, **settings
        :meth:`crackdown.estimation.study.EventStudy.from_events` settings.
    events_file : path, optional
        Events table to look ids up in.

    Returns
    -------
    pandas.DataFrame
        :data:`SPILLOVER_COLUMNS`; four rows per event (``target``, ``rival``, ``other``,
        ``target_minus_rival``), events in table order.
    """
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.universe import load_universe

    table = _resolve_events(events, events_file).reset_index(drop=True)
    uni = load_universe() if universe is None else universe
    listed = dict(zip(uni["ticker"], pd.to_datetime(uni["listed"], errors="coerce")))
    all_groups, lists = {}, []
    for _, ev in table.iterrows():
        g = spillover_groups(ev, uni, rivals, others, include_partners=include_partners)
        # listings that first trade on or after the event date cannot price it: left out
        # before the fit (reported in the group's note), as the study would exclude them
        late = [t for t in g["ticker"]
                if pd.notna(listed.get(t)) and listed[t] >= pd.Timestamp(ev["date"])]
        g["in_study"] = ~g["ticker"].isin(late)
        all_groups[str(ev["event_id"])] = g
        lists.append(g.loc[g["in_study"], "ticker"].tolist())
    study_events = table.copy()
    study_events["ticker_list"] = lists
    study_events["tickers"] = [";".join(t) for t in lists]
    if fallback == model:
        fallback = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        study = EventStudy.from_events(study_events, window=window, model=model,
                                       estimation=estimation, fallback=fallback,
                                       benchmark=benchmark, timing_policy=timing_policy,
                                       prices_dir=prices_dir, **settings)
        res = study.fit()
    rows = []
    for _, ev in table.iterrows():
        rows.extend(_event_rows(ev, all_groups[str(ev["event_id"])], res, window))
    return pd.DataFrame(rows, columns=list(SPILLOVER_COLUMNS))

