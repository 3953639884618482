"""The same firm in New York and Hong Kong: which market could react first, and do they agree?

Alibaba, JD.com, NetEase and Tencent trade both as US ADRs (BABA, JD, NTES, TCEHY) and as Hong
Kong shares (9988.HK, 9618.HK, 9999.HK, 0700.HK; :func:`crackdown.timeline.universe.cross_listing_pairs`).
A Beijing announcement reaches the two markets at different instants: Hong Kong (UTC+8) closes
at 08:00 UTC, New York at 20:00 or 21:00 UTC (EDT/EST), so news published before the Hong Kong
close moves Hong Kong first, and news published in the Beijing evening moves New York first.

Conventions
-----------
* Day 0 of each listing: :func:`crackdown.timeline.calendars.day_zero` on its own exchange (Beijing date
  and time of the announcement; unknown time = 09:00 Beijing, flagged ``time_assumed``).
* First reaction: the listing whose day-0 **close** instant (UTC, ``exchange_calendars``
  closes incl. half days) comes first. ``lead_hours = (close_NY - close_HK)`` in hours:
  positive when Hong Kong reacted first.
* Abnormal returns: one batched :class:`crackdown.estimation.study.EventStudy` over both listings of every
  pair, each listing against its own market (SPY for New York, the non-tech proxy HK_NONTECH_EW
  for Hong Kong) with its own estimation window; ``CAR`` over the event window (sum of ARs), ``ar_day0`` on day 0.
* Agreement across events, per pair: mean and sd (ddof = 1) of ``car_diff = car_us - car_hk``
  with the paired t-statistic ``mean / (sd / sqrt(n))`` and its two-sided Student t(n-1)
  p-value; Pearson correlation of ``car_us`` and ``car_hk`` (and of the day-0 ARs); share of
  events where both CARs have the same sign. Events where either CAR is missing are left out of
  these statistics and counted in ``n_missing``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crackdown.errors import StudyConfigError

__all__ = [
    "CrossListingResults",
    "agreement",
    "listing_pairs",
    "pair_event_table",
    "reaction_order",
    "run_cross_listing",
]

FIRST_HK = "Hong Kong"
FIRST_NY = "New York"


@dataclass
class CrossListingResults:
    """Output of :func:`run_cross_listing`.

    Attributes
    ----------
    results : crackdown.estimation.results.EventStudyResults
        The fitted study over both listings of every pair.
    events : pandas.DataFrame
        Events studied.
    pairs : pandas.DataFrame
        ``us_ticker, hk_ticker, company``.
    table : pandas.DataFrame
        One row per (pair, event): see :func:`pair_event_table`.
    agreement : pandas.DataFrame
        One row per pair plus ``ALL`` (pooled): see :func:`agreement`.
    window : (int, int)
    skipped : dict
        Pairs left out because a listing has no prices: ``{"US/HK": reason}``.
    """

    results: object
    events: pd.DataFrame
    pairs: pd.DataFrame
    table: pd.DataFrame
    agreement: pd.DataFrame
    window: tuple[int, int]
    skipped: dict[str, str] | None = None

    def paths(self, us_ticker: str) -> pd.DataFrame:
        """Tidy AR/CAR paths of one pair (``results.ar`` rows of both listings, pair's events)."""
        pair = self.pairs.loc[self.pairs["us_ticker"] == us_ticker]
        if pair.empty:
            raise StudyConfigError(f"{us_ticker!r} is not a US ticker of the pairs "
                                   f"({', '.join(self.pairs['us_ticker'])})")
        hk = pair["hk_ticker"].iloc[0]
        events = self.table.loc[self.table["us_ticker"] == us_ticker, "event_id"]
        ar = self.results.ar
        return ar.loc[ar["ticker"].isin([us_ticker, hk]) & ar["event_id"].isin(events)].reset_index(
            drop=True)


def listing_pairs(pairs: pd.DataFrame | Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Pairs as a frame ``us_ticker, hk_ticker, company`` (default: the universe's pairs)."""
    if pairs is None:
        from crackdown.timeline.universe import cross_listing_pairs

        return cross_listing_pairs().reset_index(drop=True)
    if isinstance(pairs, pd.DataFrame):
        missing = {"us_ticker", "hk_ticker"} - set(pairs.columns)
        if missing:
            raise StudyConfigError(f"pairs lacks column(s) {sorted(missing)}; give us_ticker, "
                                   "hk_ticker (and optionally company)")
        out = pairs.copy()
    else:
        rows = []
        for item in pairs:
            if len(item) != 2:
                raise StudyConfigError(f"pair {item!r}: give (US ticker, Hong Kong ticker)")
            rows.append({"us_ticker": str(item[0]), "hk_ticker": str(item[1])})
        out = pd.DataFrame(rows, columns=["us_ticker", "hk_ticker"])
    if "company" not in out.columns:
        out["company"] = out["us_ticker"]
    bad = out.loc[~out["hk_ticker"].astype(str).str.upper().str.endswith(".HK"), "hk_ticker"]
    if len(bad):
        raise StudyConfigError(f"pair Hong Kong ticker {bad.iloc[0]!r} does not end in .HK; "
                               "give pairs as (US ticker, Hong Kong ticker)")
    return out[["us_ticker", "hk_ticker", "company"]].reset_index(drop=True)


def _select(events: pd.DataFrame, pair_row, selection: str) -> pd.DataFrame:
    if selection == "all":
        return events
    named = events["ticker_list"].map(
        lambda lst: pair_row.us_ticker in lst or pair_row.hk_ticker in lst)
    return events.loc[named]


def reaction_order(events: pd.DataFrame, pairs: pd.DataFrame | None = None, *,
                   selection: str = "named") -> pd.DataFrame:
    """Which listing of each pair could react first to each event (see module conventions).

    Parameters
    ----------
    events : pandas.DataFrame
        Events (:func:`crackdown.timeline.events.load_events`).
    pairs : pandas.DataFrame, optional
        :func:`listing_pairs` (default: the universe's pairs).
    selection : {"named", "all"}
        ``"named"``: for each pair only the events whose ``tickers`` name either listing;
        ``"all"``: every event for every pair.

    Returns
    -------
    pandas.DataFrame
        ``us_ticker, hk_ticker, company, event_id, date, time_beijing, time_assumed, us_day0,
        hk_day0, us_close_utc, hk_close_utc, lead_hours, first``: ``first`` is
        ``"Hong Kong"`` or ``"New York"`` (or ``"same instant"``).
    """
    from crackdown.timeline.calendars import day_zero, get_calendar

    if selection not in ("named", "all"):
        raise StudyConfigError(f"selection={selection!r}; use 'named' or 'all'")
    pairs = listing_pairs(pairs)
    ny, hk = get_calendar("XNYS"), get_calendar("XHKG")
    cache: dict[tuple, tuple] = {}
    rows = []
    for pair in pairs.itertuples(index=False):
        for ev in _select(events, pair, selection).itertuples(index=False):
            time = ev.time_beijing or None
            key = (pd.Timestamp(ev.date), time)
            if key not in cache:
                d_ny = day_zero(ev.date, time, "XNYS")
                d_hk = day_zero(ev.date, time, "XHKG")
                cache[key] = (d_ny, d_hk, ny.session_close(d_ny.session),
                              hk.session_close(d_hk.session))
            d_ny, d_hk, c_ny, c_hk = cache[key]
            lead = (c_ny - c_hk).total_seconds() / 3600.0
            first = FIRST_HK if lead > 0 else (FIRST_NY if lead < 0 else "same instant")
            rows.append({
                "us_ticker": pair.us_ticker, "hk_ticker": pair.hk_ticker,
                "company": pair.company, "event_id": str(ev.event_id),
                "date": pd.Timestamp(ev.date), "time_beijing": ev.time_beijing or "",
                "time_assumed": bool(d_ny.time_assumed), "us_day0": d_ny.session,
                "hk_day0": d_hk.session, "us_close_utc": c_ny, "hk_close_utc": c_hk,
                "lead_hours": lead, "first": first,
            })
    return pd.DataFrame(rows, columns=[
        "us_ticker", "hk_ticker", "company", "event_id", "date", "time_beijing", "time_assumed",
        "us_day0", "hk_day0", "us_close_utc", "hk_close_utc", "lead_hours", "first"])


def pair_event_table(results, order: pd.DataFrame, window: tuple[int, int] | None = None
                     ) -> pd.DataFrame:
    """Join the reaction order with each listing's day-0 AR and CAR.

    Returns ``order``'s columns plus ``us_ar_day0, hk_ar_day0, us_car, hk_car, car_diff
    (us - hk), same_sign, first_ar_day0, second_ar_day0`` (the day-0 AR of the listing that
    could react first / second), ``us_status, hk_status`` (outcome of each firm-event).
    """
    w = tuple(results.study.window) if window is None else (int(window[0]), int(window[1]))
    panel = results.panel
    if panel.n:
        car = results.car(*w).set_index(["event_id", "ticker"])["car"]
        zero = np.flatnonzero(panel.rel_days == 0)
        ar0 = pd.Series(panel.ar_event[:, zero[0]] if len(zero) else np.nan,
                        index=pd.MultiIndex.from_frame(panel.keys[["event_id", "ticker"]]))
    else:
        car = ar0 = pd.Series(dtype=float, index=pd.MultiIndex.from_tuples(
            [], names=["event_id", "ticker"]))
    status = results.outcomes.set_index(["event_id", "ticker"])["status"]
    out = order.copy()

    def look(series, side):
        keys = list(zip(out["event_id"], out[f"{side}_ticker"]))
        return np.array([float(series.get(k, np.nan)) for k in keys], dtype=float)

    out["us_ar_day0"] = look(ar0, "us")
    out["hk_ar_day0"] = look(ar0, "hk")
    out["us_car"] = look(car, "us")
    out["hk_car"] = look(car, "hk")
    out["car_diff"] = out["us_car"] - out["hk_car"]
    both = out["us_car"].notna() & out["hk_car"].notna()
    out["same_sign"] = np.where(both, np.sign(out["us_car"]) == np.sign(out["hk_car"]), np.nan)
    hk_first = out["first"] == FIRST_HK
    out["first_ar_day0"] = np.where(hk_first, out["hk_ar_day0"], out["us_ar_day0"])
    out["second_ar_day0"] = np.where(hk_first, out["us_ar_day0"], out["hk_ar_day0"])
    out["us_status"] = [status.get(k, "not studied") for k in zip(out["event_id"],
                                                                   out["us_ticker"])]
    out["hk_status"] = [status.get(k, "not studied") for k in zip(out["event_id"],
                                                                   out["hk_ticker"])]
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Agreement of the two listings' CARs across events, per pair and pooled (``ALL``).

    Columns ``us_ticker, hk_ticker, n_events, n_missing, n_hk_first, n_ny_first, corr_car,
    corr_ar_day0, mean_diff, sd_diff, t_diff, p_diff, share_same_sign, mean_us_car,
    mean_hk_car`` (module conventions; correlations need at least 3 events).
    """
    groups = [((u, h), g) for (u, h), g in table.groupby(["us_ticker", "hk_ticker"], sort=False)]
    if len(groups) > 1:
        groups.append((("ALL", "ALL"), table))
    rows = []
    for (us, hk), g in groups:
        ok = g["us_car"].notna() & g["hk_car"].notna()
        a, b = g.loc[ok, "us_car"].to_numpy(), g.loc[ok, "hk_car"].to_numpy()
        d = a - b
        n = len(d)
        sd = float(np.std(d, ddof=1)) if n > 1 else float("nan")
        t = float(d.mean() / (sd / np.sqrt(n))) if n > 1 and sd > 0 else float("nan")
        p = float(2 * stats.t.sf(abs(t), n - 1)) if np.isfinite(t) else float("nan")
        ok0 = g["us_ar_day0"].notna() & g["hk_ar_day0"].notna()
        rows.append({
            "us_ticker": us, "hk_ticker": hk, "n_events": int(n),
            "n_missing": int((~ok).sum()),
            "n_hk_first": int((g["first"] == FIRST_HK).sum()),
            "n_ny_first": int((g["first"] == FIRST_NY).sum()),
            "corr_car": _pearson(a, b),
            "corr_ar_day0": _pearson(g.loc[ok0, "us_ar_day0"].to_numpy(),
                                     g.loc[ok0, "hk_ar_day0"].to_numpy()),
            "mean_diff": float(d.mean()) if n else float("nan"),
            "sd_diff": sd, "t_diff": t, "p_diff": p,
            "share_same_sign": float(np.mean(np.sign(a) == np.sign(b))) if n else float("nan"),
            "mean_us_car": float(a.mean()) if n else float("nan"),
            "mean_hk_car": float(b.mean()) if n else float("nan"),
        })
    return pd.DataFrame(rows)


def run_cross_listing(
    events_df: pd.DataFrame | None = None,
    *,
    pairs: pd.DataFrame | Sequence[tuple[str, str]] | None = None,
    selection: str = "named",
    model: str = "market",
    window: tuple[int, int] = (-1, 1),
    estimation: tuple[int, int] = (-250, -11),
    fallback: str | None = "market-adjusted",
    min_estimation_obs: int = 100,
    returns_kind: str = "simple",
    prices_dir: str | os.PathLike[str] | None = None,
    events_file: str | os.PathLike[str] | None = None,
    **settings,
) -> CrossListingResults:
    """Study both listings of every pair around the events and compare them.

    Parameters
    ----------
    events_df : pandas.DataFrame, optional
        Events (default: all of ``events_file``).
    pairs : optional
        :func:`listing_pairs` input (default: the universe's four pairs).
    selection : {"named", "all"}
        See :func:`reaction_order`.
    model, window, estimation, fallback, min_estimation_obs, returns_kind, **settings
        :class:`crackdown.estimation.study.EventStudy` settings; each listing uses its default benchmark.
        ``fallback`` keeps the Hong Kong listings of JD/NetEase (listed June 2020) in for the
        first events, flagged.
    prices_dir, events_file : path, optional

    Returns
    -------
    CrossListingResults
        Pairs with a listing without prices (e.g. 9888.HK, absent from the offline snapshot)
        are left out and listed in ``skipped`` with the price loader's message.
    """
    import warnings

    from crackdown.estimation.study import EventStudy
    from crackdown.marketdata.prices import load_prices
    from crackdown.timeline.events import load_events

    if events_df is None:
        events_df = load_events(events_file)
    events_df = events_df.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)
    pairs_df = listing_pairs(pairs)
    # a pair needs prices for both listings: probe the sources once, report what is missing
    probe_tickers = list(dict.fromkeys(list(pairs_df["us_ticker"]) + list(pairs_df["hk_ticker"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        probe = load_prices(probe_tickers, events_df["date"].min() - pd.Timedelta(days=400),
                            events_df["date"].max() + pd.Timedelta(days=30),
                            prices_dir=prices_dir, on_missing="report")
    missing = dict(probe.attrs.get("missing", {}))
    skipped = {}
    keep = []
    for pair in pairs_df.itertuples(index=False):
        gone = [t for t in (pair.us_ticker, pair.hk_ticker) if t in missing]
        if gone:
            skipped[f"{pair.us_ticker}/{pair.hk_ticker}"] = "; ".join(missing[t] for t in gone)
        else:
            keep.append(True)
            continue
        keep.append(False)
    pairs_df = pairs_df.loc[keep].reset_index(drop=True)
    if pairs_df.empty:
        raise StudyConfigError("run_cross_listing: no pair has prices for both listings: "
                               + " | ".join(f"{k}: {v}" for k, v in skipped.items()))
    order = reaction_order(events_df, pairs_df, selection=selection)
    if order.empty:
        raise StudyConfigError("run_cross_listing: no event names a listing of the pairs "
                               f"({', '.join(pairs_df['us_ticker'])}); use selection='all'")
    used = events_df.loc[events_df["event_id"].isin(set(order["event_id"]))]
    tickers = list(dict.fromkeys(list(pairs_df["us_ticker"]) + list(pairs_df["hk_ticker"])))
    study = EventStudy.from_events(
        used, tickers=tickers, prices_dir=prices_dir, returns_kind=returns_kind, model=model,
        window=tuple(window), estimation=tuple(estimation), fallback=fallback,
        min_estimation_obs=min_estimation_obs, **settings,
    )
    results = study.fit()
    w = (int(window[0]), int(window[1]))
    table = pair_event_table(results, order, w)
    return CrossListingResults(results=results, events=used, pairs=pairs_df, table=table,
                               agreement=agreement(table), window=w, skipped=skipped)
