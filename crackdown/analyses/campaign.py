"""The crackdown as a campaign: one batched event study over every event's firms, tidy tables.

:func:`run_campaign` maps each event's day 0 on each listing's exchange, fits ONE
:class:`crackdown.estimation.study.EventStudy` over all firm-events (the engine solves every market model in
one batched least-squares call) and returns :class:`CampaignResults` with

* :attr:`CampaignResults.event_table`: one row per event with its CAAR, a confidence interval,
  the portfolio (Brown-Warner 1985) and Kolari-Pynnönen p-values, the number of firms used and
  the event's category and direction;
* :attr:`CampaignResults.firm_cars`: one row per firm-event with the CAR and the raw inputs a
  reader needs to check it against the prices (sum of raw returns, of benchmark returns, alpha,
  beta);
* :attr:`CampaignResults.car_matrix`: firm x event CAR matrix (events in date order);
* :attr:`CampaignResults.firm_cumulative` and :attr:`CampaignResults.basket`: the headline
  cumulative path. A FIXED basket of platform stocks (default :func:`platform_basket`); each
  firm's CAR in every event it is named in, each firm-day counted once, summed across the
  campaign (:func:`firm_cumulative`), and the basket's equal-weighted mean of those per-firm
  sums (:func:`basket_cumulative`): "the average platform stock's cumulative abnormal return
  across the announcement windows";
* :attr:`CampaignResults.cumulative`: the SUM OF EVENT CAARs (secondary, see
  :func:`cumulative_value`). Each event's CAAR averages over a different set of firms, so this
  running sum is not the return of any investor or firm: three education stocks losing ~98 %
  in one event move it as much as the whole platform basket does.

Conventions
-----------
* Returns in decimals; ``CAR_i = sum_{t=lo}^{hi} AR_it`` (NaN when a day is missing),
  ``CAAR_e = sum_t AAR_et`` with ``AAR_et`` the mean AR over the event's firms with a return on
  day ``t`` (:meth:`crackdown.estimation.results.EventStudyResults.caar`).
* Confidence interval of the CAAR (the portfolio / "crude dependence adjustment" of Brown and
  Warner 1985, robust to the cross-sectional correlation of a common event date):
  ``se = sd(AAR_est) * sqrt(L_w)`` with ``sd`` the time-series standard deviation (ddof = 1) of
  the equally weighted estimation-window residual portfolio, and
  ``CAAR +/- t_{1-(1-ci)/2, T_p - 1} * se``, ``T_p`` the estimation days with at least one firm.
  The interval is the inversion of the portfolio t-test whose p-value is reported with it.
* A firm listed in New York and Hong Kong counts as two firm-events (one per listing), each on
  its own exchange's day 0.
* The cumulative paths (per firm, basket, sum of event CAARs) follow the conventions of
  :mod:`crackdown.analyses.cumulative`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from crackdown.analyses.cumulative import (
    BASKET_MIN_SHARE,
    _event_rows,
    _unique_cars,
    basket_cumulative,
    basket_summary,
    cumulative_value,
    firm_cumulative,
    platform_basket,
)
from crackdown.errors import StudyConfigError

__all__ = [
    "BASKET_MIN_SHARE",
    "CAR_BELOW_MINUS_100",
    "KEY_EVENTS",
    "CampaignResults",
    "basket_cumulative",
    "basket_summary",
    "caar_path",
    "campaign_headline",
    "car_matrix",
    "cumulative_value",
    "event_headline",
    "event_table",
    "firm_car_table",
    "firm_cumulative",
    "key_event_table",
    "platform_basket",
    "run_campaign",
]

#: Landmark events whose CARs the overview reports (event ids of ``events.csv``).
KEY_EVENTS: tuple[str, ...] = (
    "alibaba_antitrust_probe",
    "alibaba_antitrust_fine",
    "didi_cybersecurity_review",
    "didi_app_removal",
    "education_double_reduction",
    "samr_food_delivery_guidelines",
    "liu_he_fsdc_market_support",
)

EVENT_COLUMNS = (
    "event_id", "date", "category", "direction", "title", "n_requested", "n_firms",
    "n_flagged", "caar", "se", "ci_lo", "ci_hi", "df", "portfolio_t", "portfolio_p",
    "kp_t", "kp_p", "mean_car", "n_complete", "note", "timing", "anticipated",
    "crackdown_action", "cluster_id", "cluster_size", "shares_day0_with", "headline_test",
    "headline_p",
)


#: Note of a CAR below -100% (firm tables and reports).
CAR_BELOW_MINUS_100 = ("CAR below -100%: summed abnormal returns are not a wealth effect (a price "
                       "cannot fall more than 100%); read the buy-and-hold abnormal return bhar")


@dataclass
class CampaignResults:
    """Tables of a campaign study (see the module docstring for the conventions).

    Attributes
    ----------
    results : crackdown.estimation.results.EventStudyResults
        The fitted study (all firm-events).
    events : pandas.DataFrame
        The events studied (rows of :func:`crackdown.timeline.events.load_events`).
    window : (int, int)
        Event window of the CARs in the tables.
    ci : float
        Confidence level of ``ci_lo``/``ci_hi``.
    event_table, firm_cars, car_matrix : pandas.DataFrame
        See :func:`event_table`, :func:`firm_car_table`, :func:`car_matrix`.
    cumulative : pandas.DataFrame
        Sum of event CAARs (secondary; :func:`cumulative_value`).
    market_caps : dict or None
        The market caps (US$) used for the value columns, if any.
    firm_cumulative, basket : pandas.DataFrame or None
        Headline cumulative path of the default platform basket (:func:`firm_cumulative`,
        :func:`basket_cumulative`); None when no firm-event has abnormal returns.
    """

    results: object
    events: pd.DataFrame
    window: tuple[int, int]
    ci: float
    event_table: pd.DataFrame
    firm_cars: pd.DataFrame
    car_matrix: pd.DataFrame
    cumulative: pd.DataFrame
    market_caps: dict[str, float] | None = None
    firm_cumulative: pd.DataFrame | None = None
    basket: pd.DataFrame | None = None

    @property
    def outcomes(self) -> pd.DataFrame:
        """Outcome of every firm-event (``used``, ``fallback``, ``no_price_data``, ...)."""
        return self.results.outcomes

    def event(self, event_id: str) -> pd.Series:
        """The :attr:`event_table` row of one event."""
        hit = self.event_table.loc[self.event_table["event_id"] == event_id]
        if hit.empty:
            raise StudyConfigError(f"event {event_id!r} is not in this campaign "
                                   f"({len(self.event_table)} events)")
        return hit.iloc[0]

    def to_csv(self, folder: str | os.PathLike[str], prefix: str = "campaign") -> dict[str, Path]:
        """Write the tables as CSV: ``<prefix>_<name>.csv``.

        Names: ``events``, ``firm_cars``, ``car_matrix``, ``firm_cumulative`` and
        ``basket_cumulative`` (when computed), ``sum_of_event_caars`` (:attr:`cumulative`) and
        ``outcomes``. Returns the paths written, keyed by name.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "events": self.event_table,
            "firm_cars": self.firm_cars,
            "car_matrix": self.car_matrix.reset_index(),
            "sum_of_event_caars": self.cumulative,
            "outcomes": self.outcomes,
        }
        if self.firm_cumulative is not None:
            tables["firm_cumulative"] = self.firm_cumulative
        if self.basket is not None:
            tables["basket_cumulative"] = self.basket
        paths = {}
        for name, table in tables.items():
            path = out / f"{prefix}_{name}.csv"
            table.to_csv(path, index=False, float_format="%.10g", date_format="%Y-%m-%d")
            paths[name] = path
        return paths


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def event_table(results, events: pd.DataFrame, window: tuple[int, int] | None = None, *,
                ci: float = 0.95) -> pd.DataFrame:
    """One row per event: CAAR over ``window`` with its portfolio-test interval and p-values.

    Parameters
    ----------
    results : crackdown.estimation.results.EventStudyResults
    events : pandas.DataFrame
        Events table (``event_id, date, category, direction, title``); every event appears in
        the output, also those without any usable firm (NaN estimates and a ``note``).
    window : (int, int), optional
        Sub-window of the study's event window (default: the whole window).
    ci : float
        Confidence level of ``ci_lo``/``ci_hi`` (see module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`: ``n_requested`` firm-events asked for, ``n_firms`` with
        at least one AR in the window, ``n_flagged`` of them flagged (fallback model or a
        missing day), ``caar``, ``se`` and ``ci_lo``/``ci_hi`` (portfolio), ``df``,
        ``portfolio_t``/``portfolio_p`` (Brown-Warner 1985), ``kp_t``/``kp_p``
        (Kolari-Pynnönen adjusted BMP, t(N-1); NaN for a single firm), ``mean_car`` over the
        ``n_complete`` firms with every day present, a ``note``; then the event's ``timing``,
        ``anticipated`` and ``crackdown_action`` (from the events table, when it has them) and
        its cluster (:func:`crackdown.timeline.clusters.event_clusters`: ``cluster_id``,
        ``cluster_size``, ``shares_day0_with``; the note then says so).
    """
    from crackdown.inference.headline import HEADLINE_TEST
    from crackdown.inference.parametric import portfolio_t
    from crackdown.timeline.clusters import event_clusters

    if not 0 < ci < 1:
        raise StudyConfigError(f"ci={ci!r} must be strictly between 0 and 1 (e.g. 0.95)")
    panel = results.panel
    w = tuple(results.study.window) if window is None else (int(window[0]), int(window[1]))
    cols = panel.columns(*w) if panel.n else None
    rows_of = _event_rows(results) if panel.n else {}
    outcomes = results.outcomes
    tests = results.tests(*w) if panel.n else pd.DataFrame(columns=["event_id", "test"])
    caar = results.caar(*w).set_index("event_id") if panel.n else pd.DataFrame()
    quantile = 1 - (1 - ci) / 2
    policy = getattr(results.study, "timing_policy", None) or "span"
    clusters = event_clusters(events, timing_policy=policy).set_index("event_id")
    out = []
    for ev in events.itertuples(index=False):
        eid = str(ev.event_id)
        oc = outcomes.loc[outcomes["event_id"] == eid]
        row = {
            "event_id": eid, "date": pd.Timestamp(ev.date), "category": ev.category,
            "direction": ev.direction, "title": getattr(ev, "title", ""),
            "n_requested": len(oc), "n_firms": 0,
            "n_flagged": int((oc["included"] & oc["flagged"]).sum()) if len(oc) else 0,
        }
        for key in EVENT_COLUMNS:
            row.setdefault(key, np.nan)
        for key, default in (("timing", ""), ("anticipated", False), ("crackdown_action", True)):
            row[key] = getattr(ev, key, default)
        cl = clusters.loc[eid]
        row.update(cluster_id=cl["cluster_id"], cluster_size=int(cl["cluster_size"]),
                   shares_day0_with=cl["shares_day0_with"])
        shared = (f"shares day 0 and listings with {cl['shares_day0_with'].replace(';', ', ')}: "
                  "their abnormal returns are the same" if cl["shares_day0_with"] else "")
        idx = rows_of.get(eid)
        if idx is None or len(idx) == 0:
            reasons = "; ".join(f"{r.ticker}: {r.status}" for r in oc.itertuples(index=False))
            row["note"] = "; ".join(filter(None, [
                f"no firm with abnormal returns ({reasons or 'no tickers'})", shared]))
            out.append(row)
            continue
        sub = panel.subset(idx)
        # the portfolio series pairs New York and Hong Kong sessions in information time
        res = portfolio_t(sub.ar_event, sub.aligned_residuals()[0], w, rel_days=sub.rel_days)
        se = res.extra["sd_portfolio"] * np.sqrt(len(cols))
        ok_df = np.isfinite(res.df) and res.df > 0
        crit = stats.t.ppf(quantile, res.df) if ok_df else np.nan
        c = caar.loc[eid]
        row.update(
            n_firms=int(c["n"]), caar=float(c["caar"]), se=float(se),
            ci_lo=float(c["caar"] - crit * se), ci_hi=float(c["caar"] + crit * se),
            df=float(res.df) if ok_df else np.nan, portfolio_t=float(res.statistic),
            portfolio_p=float(res.pvalue),
            mean_car=float(c["mean_car"]), n_complete=int(c["n_complete"]),
        )
        kp = tests.loc[(tests["event_id"] == eid) & (tests["test"] == "kolari_pynnonen_bmp")]
        if len(kp):
            row["kp_t"] = float(kp["statistic"].iloc[0])
            row["kp_p"] = float(kp["pvalue"].iloc[0])
        head = tests.loc[(tests["event_id"] == eid) & (tests["test"] == HEADLINE_TEST)]
        row["headline_test"] = HEADLINE_TEST
        row["headline_p"] = float(head["pvalue"].iloc[0]) if len(head) else np.nan
        dropped = oc.loc[~oc["included"]]
        notes = [f"{r.ticker}: {r.status}" for r in dropped.itertuples(index=False)]
        if row["n_flagged"]:
            notes.append(f"{row['n_flagged']} flagged (fallback model or missing day)")
        if shared:
            notes.append(shared)
        row["note"] = "; ".join(notes)
        out.append(row)
    table = pd.DataFrame(out, columns=list(EVENT_COLUMNS))
    table["date"] = pd.to_datetime(table["date"])
    return table


def firm_car_table(results, events: pd.DataFrame, window: tuple[int, int] | None = None
                   ) -> pd.DataFrame:
    """One row per included firm-event: CAR over ``window`` and the inputs to check it.

    Columns ``event_id, date, category, direction, ticker, exchange, day0, model, flagged,
    car, se, t, pvalue, n_days, ret_sum, benchmark_sum, normal_sum, alpha, beta, ar_day0``:
    ``ret_sum = sum_t r_it`` and ``benchmark_sum = sum_t m_t`` over the window (raw returns of
    the firm and of its benchmark), ``normal_sum = ret_sum - car`` (for the market model
    ``L_w * alpha + beta * benchmark_sum``), ``ar_day0`` the abnormal return on day 0 (NaN
    when day 0 is outside the window), ``bhr = prod(1 + r_t) - 1`` the raw buy-and-hold return
    (the price change from the close before the window to its last close, dividends included
    in adjusted prices) and ``bhar`` the buy-and-hold abnormal return
    (:meth:`crackdown.estimation.results.EventStudyResults.bhar`). CARs add simple returns, so a CAR
    below -100 % is possible (e.g. the education stocks in July 2021); ``bhr`` cannot be, and
    ``car_note`` flags every such CAR (:data:`CAR_BELOW_MINUS_100`). ``car_unique`` is the CAR
    counting each (ticker, date) abnormal return once across events
    in the order of ``events`` (see module docstring; NaN when ``car`` is NaN).
    """
    panel = results.panel
    w = tuple(results.study.window) if window is None else (int(window[0]), int(window[1]))
    columns = ["event_id", "date", "category", "direction", "ticker", "exchange", "day0",
                          "model", "flagged", "car", "se", "t", "pvalue", "n_days", "ret_sum",
               "benchmark_sum", "normal_sum", "alpha", "beta", "ar_day0", "bhr", "bhar",
               "car_unique", "car_note"]
    if panel.n == 0:
        return pd.DataFrame(columns=columns)
    cols = panel.columns(*w)
    car = results.car(*w)
    fits = results.fits
    out = car[["event_id", "ticker", "exchange", "day0", "model", "flagged", "car", "se", "t",
               "pvalue", "n_days"]].copy()
    out["ret_sum"] = panel.ret_event[:, cols].sum(axis=1)
    out["benchmark_sum"] = panel.market_event[:, cols].sum(axis=1)
    out["normal_sum"] = out["ret_sum"] - out["car"]
    out["alpha"] = fits["alpha"].to_numpy()
    out["beta"] = fits["beta"].to_numpy()
    zero = np.flatnonzero(panel.rel_days == 0)
    out["ar_day0"] = panel.ar_event[:, zero[0]] if len(zero) else np.nan
    bhar = results.bhar(*w)
    out["bhr"] = bhar["bhr"].to_numpy()
    out["bhar"] = bhar["bhar"].to_numpy()
    out["car_unique"] = _unique_cars(results, list(events["event_id"].astype(str)), cols)
    out["car_note"] = np.where(out["car"] < -1.0, CAR_BELOW_MINUS_100, "")
    meta = events.set_index(events["event_id"].astype(str))[["date", "category", "direction"]]
    out = out.join(meta, on="event_id")
    return out[columns].reset_index(drop=True)


def car_matrix(firm_cars: pd.DataFrame, events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Firm x event matrix of CARs (index ticker, columns event ids in date order).

    Tickers are ordered by the number of events they have a CAR in (most first), then name;
    a cell is NaN when the firm is not named in the event or has no CAR.
    """
    if firm_cars.empty:
        return pd.DataFrame()
    order = (list(events["event_id"].astype(str)) if events is not None
             else list(firm_cars.sort_values("date")["event_id"].drop_duplicates()))
    grid = firm_cars.pivot(index="ticker", columns="event_id", values="car")
    cols = [e for e in order if e in grid.columns]
    counts = grid.notna().sum(axis=1)
    rows = sorted(grid.index, key=lambda t: (-counts[t], t))
    grid = grid.reindex(index=rows, columns=cols)
    grid.index.name = "ticker"
    grid.columns.name = "event_id"
    return grid


def caar_path(results, event_id: str | None = None, *, ci: float = 0.95) -> pd.DataFrame:
    """CAAR cumulated from the first event-window day, with a pointwise portfolio interval.

    For day ``k`` of the window ``lo..hi``: ``caar_k = sum_{t=lo}^{k} AAR_t`` and
    ``se_k = sd(AAR_est) sqrt(k - lo + 1)`` (portfolio convention of :func:`event_table`);
    ``lo``/``hi`` = ``caar_k -/+ t_{1-(1-ci)/2, T_p-1} se_k``. ``event_id=None`` pools every
    firm-event of the results.

    Returns
    -------
    pandas.DataFrame
        ``rel_day, aar, caar, se, lo, hi, n`` (``n`` firms with an AR that day).
    """
    from crackdown.inference.parametric import portfolio_t

    panel = results.panel
    idx = (np.arange(panel.n) if event_id is None
           else np.flatnonzero(panel.keys["event_id"].to_numpy() == event_id))
    if len(idx) == 0:
        raise StudyConfigError(f"caar_path: no firm of event {event_id!r} has abnormal returns")
    sub = panel.subset(idx)
    res = portfolio_t(sub.ar_event, sub.aligned_residuals()[0], None, rel_days=sub.rel_days)
    sd = res.extra["sd_portfolio"]
    counts = np.isfinite(sub.ar_event).sum(axis=0)
    with np.errstate(invalid="ignore"):
        aar = np.where(counts > 0, np.nansum(sub.ar_event, axis=0) / np.maximum(counts, 1),
                       np.nan)
    caar = np.cumsum(aar)
    se = sd * np.sqrt(np.arange(1, len(aar) + 1))
    crit = stats.t.ppf(1 - (1 - ci) / 2, res.df)
    return pd.DataFrame({"rel_day": sub.rel_days.astype(int), "aar": aar, "caar": caar,
                         "se": se, "lo": caar - crit * se, "hi": caar + crit * se,
                         "n": counts.astype(int)})


def key_event_table(campaign: CampaignResults, event_ids: Sequence[str] = KEY_EVENTS
                    ) -> pd.DataFrame:
    """Firm CARs of the landmark events (default :data:`KEY_EVENTS`), checkable by hand.

    Rows of :attr:`CampaignResults.firm_cars` for those events, with the event's CAAR and
    portfolio p-value repeated on each row; events absent from the campaign are skipped.
    """
    ev = campaign.event_table.set_index("event_id")[["caar", "ci_lo", "ci_hi", "portfolio_p"]]
    wanted = [e for e in event_ids if e in ev.index]
    firms = campaign.firm_cars.loc[campaign.firm_cars["event_id"].isin(wanted)].copy()
    firms = firms.join(ev.rename(columns=lambda c: f"event_{c}"), on="event_id")
    firms["_order"] = firms["event_id"].map({e: i for i, e in enumerate(wanted)})
    return firms.sort_values(["_order", "exchange", "ticker"]).drop(columns="_order").reset_index(
        drop=True)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def run_campaign(
    events_df: pd.DataFrame | None = None,
    *,
    tickers: Sequence[str] | None = None,
    model: str = "market",
    window: tuple[int, int] = (-1, 1),
    estimation: tuple[int, int] = (-250, -11),
    fallback: str | None = "market-adjusted",
    benchmark: str | Mapping[str, str] | None = None,
    min_estimation_obs: int = 100,
    returns_kind: str = "simple",
    prices_dir: str | os.PathLike[str] | None = None,
    events_file: str | os.PathLike[str] | None = None,
    market_caps: Mapping[str, float] | None = None,
    ci: float = 0.95,
    timing_policy: str = "span",
    **settings,
) -> CampaignResults:
    """Run one batched event study over every firm-event of ``events_df`` and tabulate it.

    Parameters
    ----------
    events_df : pandas.DataFrame, optional
        Events (:func:`crackdown.timeline.events.load_events`); default: every event of ``events_file``.
    tickers : list of str, optional
        Tickers for every event (default: each event's own ``tickers``). An event's own tickers
        without prices become ``no_price_data`` outcomes; explicit tickers must have prices.
    model, window, estimation, fallback, benchmark, min_estimation_obs, returns_kind, **settings
        :class:`crackdown.estimation.study.EventStudy` settings. ``fallback`` (default market-adjusted)
        keeps recent listings such as DIDI (IPO 2021-06-30) in, flagged.
    prices_dir, events_file : path, optional
        Offline price folder and events table (defaults from :mod:`crackdown.config`).
    market_caps : mapping ticker -> US$, optional
        For the value columns of :attr:`CampaignResults.cumulative`,
        :attr:`CampaignResults.firm_cumulative` and :attr:`CampaignResults.basket`; none is
        shipped.
    ci : float
        Confidence level of the CAAR intervals.
    timing_policy : {"span", "same-day", "next-session"}
        Events without a release time (:meth:`EventStudy.from_events`).

    Every event is studied; the cumulative tables (basket, firm paths, sum of CAARs) use the
    crackdown actions only (not the ``market_confound`` events, e.g. the SEC's HFCAA rules),
    unless the study holds no crackdown action at all.

    Returns
    -------
    CampaignResults
    """
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.events import load_events

    if events_df is None:
        events_df = load_events(events_file)
    if len(events_df) == 0:
        raise StudyConfigError("run_campaign: the events table is empty")
    events_df = events_df.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)
    study = EventStudy.from_events(
        events_df, tickers=None if tickers is None else list(tickers), benchmark=benchmark,
        prices_dir=prices_dir, returns_kind=returns_kind, model=model, window=tuple(window),
        estimation=tuple(estimation), fallback=fallback, min_estimation_obs=min_estimation_obs,
        timing_policy=timing_policy, **settings,
    )
    results = study.fit()
    w = (int(window[0]), int(window[1]))
    firms = firm_car_table(results, events_df, w)
    actions = events_df
    if "crackdown_action" in events_df.columns:
        actions = events_df.loc[events_df["crackdown_action"].astype(bool)].reset_index(drop=True)
    firm_cum = basket = None
    if results.panel.n and len(actions) and platform_basket(results, actions):
        firm_cum = firm_cumulative(results, actions, w, market_caps=market_caps)
        basket = basket_cumulative(firm_cum)
    return CampaignResults(
        results=results,
        events=events_df,
        window=w,
        ci=ci,
        event_table=event_table(results, events_df, w, ci=ci),
        firm_cars=firms,
        car_matrix=car_matrix(firms, events_df),
        cumulative=cumulative_value(results, actions if len(actions) else events_df, w,
                                    market_caps=market_caps),
        market_caps=None if market_caps is None else dict(market_caps),
        firm_cumulative=firm_cum,
        basket=basket,
    )


# --------------------------------------------------------------------------------------------
# Headline numbers (for crackdown.output.reports.record_headline)
# --------------------------------------------------------------------------------------------


def _window_text(window: tuple[int, int]) -> str:
    return f"[{window[0]:+d},{window[1]:+d}]"


def event_headline(campaign: CampaignResults, event_id: str) -> dict[str, object]:
    """Headline numbers of one event: CAAR (%) with CI, portfolio and KP p-values, firms used.

    When no firm has data the CAAR entries are ``None`` and ``note`` says why (a data fact,
    not a failure).
    """
    row = campaign.event(event_id)
    wt = _window_text(campaign.window)
    pct = lambda v: None if pd.isna(v) else 100.0 * float(v)
    num = lambda v: None if pd.isna(v) else float(v)
    return {
        f"CAAR{wt} (%)": pct(row["caar"]),
        "CI low (%)": pct(row["ci_lo"]),
        "CI high (%)": pct(row["ci_hi"]),
        "headline test": row["headline_test"] if isinstance(row["headline_test"], str) else "",
        "headline p": num(row["headline_p"]),
        "portfolio p": num(row["portfolio_p"]),
        "KP p": num(row["kp_p"]),
        "firms used": int(row["n_firms"]),
        "firms requested": int(row["n_requested"]),
        "timing": row["timing"] or "",
        "cluster": row["cluster_id"],
        "note": row["note"] if isinstance(row["note"], str) and row["note"] else "",
    }


def campaign_headline(campaign: CampaignResults,
                      key_events: Sequence[str] = KEY_EVENTS) -> dict[str, object]:
    """Headline numbers of the whole campaign: counts, basket cumulative path, key-event CAARs.

    Counts are of crackdown actions (``market_confound`` events are counted separately). A
    **cluster** (events sharing a day 0 and a listing) is significant when any of its events is
    (their abnormal returns are the same numbers); significance is counted in clusters, and
    split into surprises and anticipated dates (a cluster is anticipated when all its events
    are).

    The cumulative numbers are those of the platform basket (:attr:`CampaignResults.basket`):
    its trough (% and date) and end value of the equal-weighted mean cumulative CAR, and the
    number of tickers; they are ``None`` when the campaign has no basket.
    """
    et = campaign.event_table
    wt = _window_text(campaign.window)
    act = et.loc[et["crackdown_action"].fillna(True).astype(bool)]
    data = act.loc[act["n_firms"] > 0]
    sig = data.groupby("cluster_id").agg(p=("portfolio_p", "min"), hp=("headline_p", "min"),
                                         anticipated=("anticipated", "all"))
    out: dict[str, object] = {
        "events": len(act),
        "market confounds": int(len(et) - len(act)),
        "events with data": len(data),
        "clusters with data": int(data["cluster_id"].nunique()),
        "firm-events used": int(campaign.results.panel.n),
        "events significant at 5% (portfolio)": int((data["portfolio_p"] < 0.05).sum()),
        "clusters significant at 5% (portfolio)": int((sig["p"] < 0.05).sum()),
        "surprise clusters significant at 5% (portfolio)": int(
            ((sig["p"] < 0.05) & ~sig["anticipated"].astype(bool)).sum()),
        "anticipated clusters significant at 5% (portfolio)": int(
            ((sig["p"] < 0.05) & sig["anticipated"].astype(bool)).sum()),
        "anticipated clusters with data": int(sig["anticipated"].astype(bool).sum()),
        "headline test": str(et["headline_test"].dropna().iloc[0]) if len(et) else "",
        "clusters significant at 5% (headline test)": int((sig["hp"] < 0.05).sum()),
    }
    summary = None if campaign.basket is None else basket_summary(campaign.basket)
    out.update({
        "basket tickers": None if summary is None else summary["n_tickers"],
        "basket": None if campaign.firm_cumulative is None else ", ".join(
            pd.unique(campaign.firm_cumulative["ticker"])),
        f"basket cumulative CAR{wt} trough (%)": None if summary is None
        else 100.0 * summary["trough"],
        "basket trough date": None if summary is None
        else summary["trough_date"].strftime("%Y-%m-%d"),
        f"basket cumulative CAR{wt} end (%)": None if summary is None else 100.0 * summary["end"],
    })
    for eid in key_events:
        hit = et.loc[et["event_id"] == eid]
        if len(hit):
            v = hit["caar"].iloc[0]
            out[f"CAAR {eid} (%)"] = None if pd.isna(v) else 100.0 * float(v)
    return out
