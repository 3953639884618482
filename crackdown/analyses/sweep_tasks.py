"""The work of one specification-curve task: fit a group of specifications, test each event.

A task (:class:`SweepTask`) is one *data key* (benchmark choice, returns kind, timing policy:
the loaded returns and day 0s, a :class:`SweepBase`), one *fit key* (model, estimation window,
clean estimation) and every event window of the grid, for a chunk of events. For each window it
builds the :class:`~crackdown.estimation.study.EventStudy` of the chunk's firm-events on the
base's returns, fits it once (all events batched) and, when the sweep draws placebo dates,
re-fits the same firms at every common pseudo date in one more batched fit
(:func:`crackdown.estimation.placebo.pseudo_firm_events`).

Per event and specification it reports (:data:`ROW_FIELDS`):

* ``caar = sum_{t=lo..hi} AAR_t`` over the included listings (NaN when a day has no AR), with the
  interval ``caar +/- t_{df, 1 - a/2} * sd_p * sqrt(L)`` of the Brown-Warner (1985) portfolio test
  (the ``ci_lo``/``ci_hi`` of :func:`crackdown.analyses.campaign.event_table`);
* ``bhar``: the mean buy-and-hold abnormal return ``prod(1 + r_t) - prod(1 + q_t)`` of the
  listings with every window day (``exp(sum r) - exp(sum q)`` for log returns);
* the headline test (:data:`crackdown.inference.headline.HEADLINE_TEST`, Kolari-Pynnönen
  adjusted BMP) statistic and p-value; NaN with a note for a single listing.

Tasks are plain functions of picklable arguments, so the same code runs in this process or on a
Dask worker (:func:`crackdown.cluster.run_tasks`) and gives the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crackdown.errors import CrackdownError

__all__ = ["ROW_FIELDS", "SweepBase", "SweepTask", "model_exchanges", "run_sweep_task"]

#: Result fields of one (event, specification), in the order of the sweep table.
ROW_FIELDS = ("n_requested", "n_firms", "n_flagged", "caar", "ci_lo", "ci_hi", "bhar",
              "headline_stat", "headline_p", "outcomes", "status", "note")

#: Exchanges a factor model applies to (the factor files' markets); others: every exchange.
_FACTOR_MARKETS = {"ff3": ("XNYS",), "ff5": ("XNYS",), "carhart": ("XNYS",),
                   "ff3-asia": ("XHKG",), "ff5-asia": ("XHKG",), "carhart-asia": ("XHKG",)}


def model_exchanges(model: str) -> tuple[str, ...] | None:
    """Exchanges whose listings ``model`` can estimate (None: all): the US Fama-French and
    Carhart factors price New York listings, the Asia Pacific ex Japan factors Hong Kong ones."""
    return _FACTOR_MARKETS.get(model)


@dataclass
class SweepBase:
    """The data shared by every specification of one data key.

    Attributes
    ----------
    study : EventStudy
        Built by :meth:`~crackdown.estimation.study.EventStudy.from_events` over every event of the
        sweep (returns over the whole span the grid and the placebo draws need; the firm-events
        with their day 0s and benchmarks).
    other_days : pandas.DataFrame
        ``ticker, day0`` of every event (the studied ones and the rest of the events table)
        whose event window clean estimation removes from a listing's estimation window (a row's
        own day 0 among them is recognised as itself).
    uncertain : dict
        event_id -> True when a listing's day 0 is uncertain (no release time, ``span`` policy).
    settings : dict
        ``fallback``, ``min_estimation_obs``, ``returns_kind``, ``timing_policy``.
    """

    study: object
    other_days: pd.DataFrame
    uncertain: dict[str, bool]
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SweepTask:
    """One unit of work: a data key, a fit key, every window, a chunk of events."""

    data_key: tuple[str, str, str]          # (benchmark label, returns kind, timing policy)
    model: str
    estimation: tuple[int, int]
    clean_estimation: bool
    windows: tuple[tuple[int, int], ...]
    event_ids: tuple[str, ...]
    n_draws: int = 0
    alpha: float = 0.05


def run_sweep_task(task: SweepTask, *, bases: Mapping, pseudo: Mapping) -> dict:
    """Fit ``task``'s specifications and test each of its events.

    Parameters
    ----------
    task : SweepTask
    bases : mapping data key -> SweepBase
    pseudo : mapping event_id -> (DatetimeIndex of pseudo dates, main exchange MIC)

    Returns
    -------
    dict
        ``rows``: list of ``(event_id, window, {field: value})`` with :data:`ROW_FIELDS`;
        ``draws``: dict ``(event_id, window) -> (caar, statistic, pvalue)`` arrays of length
        ``task.n_draws`` (NaN where a draw is not computable).
    """
    from crackdown.estimation.inputs import check_windows

    base = bases[task.data_key]
    rows: list = []
    draws: dict = {}
    cache: dict = {}  # the events' pseudo firm-events, shared by the task's windows
    for window in task.windows:
        try:
            check_windows(task.estimation, window)
        except CrackdownError as exc:
            for ev in task.event_ids:
                rows.append((ev, window, _empty_row("invalid", _one_line(exc))))
            continue
        rows_w, draws_w = _one_window(task, base, window, pseudo, cache)
        rows.extend(rows_w)
        draws.update(draws_w)
    return {"rows": rows, "draws": draws}


def _one_window(task: SweepTask, base: SweepBase, window: tuple[int, int], pseudo: Mapping,
                cache: dict):
    study0 = base.study
    fe_all = study0.firm_events
    rows: list = []
    draws: dict = {}
    exchanges = model_exchanges(task.model)
    todo = []
    for ev in task.event_ids:
        fe_ev = fe_all.loc[fe_all["event_id"] == ev]
        if task.data_key[2] == "span" and window[1] < 1 and base.uncertain.get(ev, False):
            rows.append((ev, window, _empty_row(
                "not_applicable", f"no release time: under timing policy span the event window "
                f"must reach day +1 (it is {window[0]}:{window[1]})", len(fe_ev))))
            continue
        if exchanges is not None:
            fe_ev = fe_ev.loc[fe_ev["exchange"].isin(exchanges)]
            if fe_ev.empty:
                rows.append((ev, window, _empty_row(
                    "not_applicable", f"{task.model} applies to {', '.join(exchanges)} listings "
                    "only; the event has none")))
                continue
        todo.append((ev, fe_ev))
    if not todo:
        return rows, draws
    fe = pd.concat([f for _, f in todo], ignore_index=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            study = _spec_study(task, base, window, fe)
            res = study.fit()
    except CrackdownError as exc:
        for ev, fe_ev in todo:
            rows.append((ev, window, _empty_row("failed", _one_line(exc), len(fe_ev))))
        return rows, draws
    panel = res.panel
    outcomes = res.outcomes
    ids = panel.keys["event_id"].to_numpy()
    for ev, fe_ev in todo:
        oc = outcomes.loc[outcomes["event_id"] == ev]
        row = _event_stats(panel, np.flatnonzero(ids == ev), window, study.returns_kind,
                           task.alpha, full=True)
        row["n_requested"] = len(oc)
        row["n_flagged"] = int((oc["included"] & oc["flagged"]).sum())
        row["outcomes"] = ", ".join(f"{k} {v}" for k, v in oc["status"].value_counts()
                                    .sort_index().items())
        left = oc.loc[~oc["included"]]
        notes = [row.pop("_note")] + [f"{r.ticker}: {r.status}"
                                      for r in left.itertuples(index=False)]
        if exchanges is not None:
            notes.append(f"{task.model}: {', '.join(exchanges)} listings only")
        row["note"] = "; ".join(n for n in notes if n)
        row["status"] = "ok" if row["n_firms"] else "no_firms"
        rows.append((ev, window, row))
    if task.n_draws:
        draws = _placebo_draws(task, base, window, study, todo, pseudo, cache)
    return rows, draws


def _spec_study(task: SweepTask, base: SweepBase, window, fe: pd.DataFrame):
    """The EventStudy of one specification on ``fe``, with the base's returns and notes."""
    from crackdown.estimation.study import EventStudy

    s0 = base.study
    fallback = base.settings.get("fallback")
    study = EventStudy(
        s0.returns, fe, model=task.model, estimation=task.estimation, window=window,
        min_estimation_obs=base.settings.get("min_estimation_obs", 100),
        fallback=None if fallback == task.model else fallback,
        clean_estimation=task.clean_estimation,
        other_event_days=base.other_days if task.clean_estimation else None,
        returns_kind=base.settings.get("returns_kind", "simple"),
        world_market=s0.world_market,
    )
    study.no_data_reasons = dict(s0.no_data_reasons)
    study.benchmark_info = dict(s0.benchmark_info)
    study.day0_notes = dict(s0.day0_notes)
    study.firm_event_info = dict(s0.firm_event_info)
    study.timing_policy = s0.timing_policy
    return study


def _placebo_draws(task: SweepTask, base: SweepBase, window, study, todo, pseudo,
                   cache: dict) -> dict:
    """(caar, statistic, p) of every event's firms at its common pseudo dates, one fit."""
    from crackdown.estimation.placebo import pseudo_firm_events

    frames = []
    todo = [(ev, fe_ev) for ev, fe_ev in todo if ev in pseudo]  # others: no placebo dates
    if not todo:
        return {}
    for ev, fe_ev in todo:
        if ev not in cache:
            dates, main = pseudo[ev]
            pfe = pseudo_firm_events(base.study, fe_ev.drop_duplicates("ticker"), dates, main)
            pfe["event_id"] = ev + "\x1f" + pfe["event_id"]
            cache[ev] = pfe
        frames.append(cache[ev])
    out = {(ev, window): tuple(np.full(task.n_draws, np.nan) for _ in range(3))
           for ev, _ in todo}
    pfe = pd.concat(frames, ignore_index=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            placebo_study = study.with_firm_events(pfe)  # same model, windows, fallback
            placebo_study.clean_estimation = study.clean_estimation  # and the same cleaning
            placebo_study.other_event_days = _real_days(base, study)
            placebo_study.clean_study_rows = False  # pseudo events never clean each other
            res = placebo_study.fit()
    except CrackdownError:
        return out  # every draw NaN: counted as invalid draws by the joint test
    panel = res.panel
    if _PER_PANEL_DRAWS:
        return _placebo_draws_per_panel(task, panel, window, study, todo, out)
    # one grouped pass over the fit's panel: group (event j, draw k) = code j * n_draws + k
    code_of = {f"{ev}\x1fplacebo_{k:04d}": j * task.n_draws + k
               for j, (ev, _) in enumerate(todo) for k in range(task.n_draws)}
    codes = pd.Series(panel.keys["event_id"].to_numpy()).map(code_of)
    if codes.isna().any():  # rows of no (event, draw) of this task (none expected)
        panel = panel.subset(np.flatnonzero(codes.notna().to_numpy()))
        codes = codes.dropna()
    codes = codes.to_numpy(dtype=np.int64)
    n_groups = len(code_of)
    caar = _grouped_caar(panel, codes, n_groups, window)
    head = _grouped_headline(panel, codes, n_groups, window)
    size = np.bincount(codes, minlength=n_groups)
    for j, (ev, _) in enumerate(todo):
        part = slice(j * task.n_draws, (j + 1) * task.n_draws)
        has = size[part] > 0
        two = size[part] >= 2  # one listing: no cross-sectional test
        for arr, values, keep in zip(out[(ev, window)], (caar[part], *head[part].T),
                                     (has, two, two), strict=True):
            arr[keep] = values[keep]
    return out


#: Private: test every (event, draw) on its own ``panel.subset`` as before issue #14 (the
#: reference path; tests/test_sweep.py compares the two).
_PER_PANEL_DRAWS = False


def _placebo_draws_per_panel(task: SweepTask, panel, window, study, todo, out: dict) -> dict:
    ids = panel.keys["event_id"].to_numpy()
    order: dict[str, list[int]] = {}
    for i, key in enumerate(ids):
        order.setdefault(key, []).append(i)
    for ev, _ in todo:
        caar, stat, pval = out[(ev, window)]
        for k in range(task.n_draws):
            idx = order.get(f"{ev}\x1fplacebo_{k:04d}")
            if idx:
                r = _event_stats(panel, np.asarray(idx), window, study.returns_kind,
                                 task.alpha, full=False)
                caar[k], stat[k], pval[k] = r["caar"], r["headline_stat"], r["headline_p"]
    return out


def _grouped_caar(panel, codes: np.ndarray, n_groups: int, window) -> np.ndarray:
    """CAAR of :func:`_event_stats` per group: ``Σ_t AAR_t`` over the window's days, ``AAR_t``
    the mean of the rows' finite abnormal returns on day t (the same sums, bit for bit:
    :func:`crackdown.inference.grouped.grouped_nansum`); NaN when a day has none."""
    from crackdown.inference.grouped import grouped_nansum

    ar = panel.ar_event[:, panel.columns(*window)]
    total = grouped_nansum(ar, codes, n_groups, column_major=True)  # sub.ar_event[:, cols]
    cnt = np.zeros(total.shape)
    np.add.at(cnt, codes, np.isfinite(ar))
    with np.errstate(invalid="ignore", divide="ignore"):
        aar = total / cnt
    return np.where((cnt > 0).all(axis=1), aar.sum(axis=1), np.nan)


def _grouped_headline(panel, codes: np.ndarray, n_groups: int, window) -> np.ndarray:
    """``(G, 2)`` headline statistic and p-value per group (NaN where not computable)."""
    from crackdown.analyses.multiple_testing import GROUPED_STATISTICS, STATISTICS, _safe
    from crackdown.inference.headline import HEADLINE_TEST

    out = np.full((n_groups, 2), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if HEADLINE_TEST in GROUPED_STATISTICS:
            try:
                res = GROUPED_STATISTICS[HEADLINE_TEST](panel, codes, n_groups, window)
            except (CrackdownError, ValueError, ZeroDivisionError):
                return out
            return np.column_stack([res.statistic, res.pvalue])
        rows = pd.Series(np.arange(len(codes))).groupby(codes).indices
        for g, sel in rows.items():
            out[g] = _safe(STATISTICS[HEADLINE_TEST], panel.subset(sel), window)
    return out


def _real_days(base: SweepBase, study) -> pd.DataFrame | None:
    """Every real event's ``ticker, day0``: what a placebo re-fit's clean estimation removes."""
    return base.other_days if study.clean_estimation else None


def _event_stats(panel, idx: np.ndarray, window, returns_kind: str, alpha: float, *,
                 full: bool) -> dict:
    """CAAR, its portfolio interval, mean BHAR and the headline test of rows ``idx``."""
    from scipy import special

    from crackdown.analyses.multiple_testing import STATISTICS
    from crackdown.inference.headline import HEADLINE_TEST

    row = {"n_firms": 0, "caar": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "bhar": np.nan,
           "headline_stat": np.nan, "headline_p": np.nan, "_note": ""}
    if len(idx) == 0:
        row["_note"] = "no listing estimable"
        return row
    sub = panel.subset(idx)
    cols = sub.columns(*window)
    ar = sub.ar_event[:, cols]
    cnt = np.isfinite(ar).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        aar = np.nansum(ar, axis=0) / cnt
    row["n_firms"] = int(np.isfinite(ar).any(axis=1).sum())
    row["caar"] = float(aar.sum()) if (cnt > 0).all() else np.nan
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(idx) >= 2:
            try:
                head = STATISTICS[HEADLINE_TEST](sub, window)
                row["headline_stat"], row["headline_p"] = float(head.statistic), float(
                    head.pvalue)
            except (CrackdownError, ValueError, ZeroDivisionError) as exc:
                row["_note"] = f"headline test not computable: {_one_line(exc)}"
        else:
            row["_note"] = "one listing: no cross-sectional test"
        if not full:
            return row
        row.update(_interval(sub, window, row["caar"], alpha, special))
        r = sub.ret_event[:, cols]
        q = r - ar
        if returns_kind == "log":
            bh = np.exp(r.sum(axis=1)) - np.exp(q.sum(axis=1))
        else:
            bh = np.prod(1.0 + r, axis=1) - np.prod(1.0 + q, axis=1)
        bh = bh[np.isfinite(bh)]
        row["bhar"] = float(bh.mean()) if len(bh) else np.nan
    return row


def _interval(sub, window, caar: float, alpha: float, special) -> dict:
    """``caar -/+ t_{df, 1 - alpha/2} sd_p sqrt(L)`` of the Brown-Warner 1985 portfolio test."""
    from crackdown.inference.parametric import portfolio_t

    try:
        res = portfolio_t(sub.ar_event, sub.aligned_residuals()[0], window,
                          rel_days=sub.rel_days)
    except (CrackdownError, ValueError, ZeroDivisionError):
        return {}
    df = float(res.df) if res.df is not None else np.nan
    if not (np.isfinite(df) and df > 0 and np.isfinite(caar)):
        return {}
    se = float(res.extra["sd_portfolio"]) * np.sqrt(len(sub.columns(*window)))
    crit = float(special.stdtrit(df, 1 - alpha / 2))
    return {"ci_lo": caar - crit * se, "ci_hi": caar + crit * se}


def _empty_row(status: str, note: str, n_requested: int = 0) -> dict:
    row = dict.fromkeys(ROW_FIELDS, np.nan)
    row.update(n_requested=n_requested, n_firms=0, n_flagged=0, outcomes="", status=status,
               note=note)
    return row


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
