r"""Multiple testing across the campaign: FDR over event clusters and a dependence-aware FWER.

With 80+ announcements, many sharing a day 0 and most naming the same platforms, "N events
significant at 5%" overstates the evidence twice: the same abnormal returns are counted once per
event of a cluster, and some of 80 tests reject by chance. Two adjustments, per event:

**Benjamini-Hochberg q-values over clusters.** Each cluster
(:func:`crackdown.timeline.clusters.event_clusters`) contributes ONE p-value: the smallest
p-value of its events, Bonferroni-adjusted for the cluster's size, ``p_c = min(1, m_c min_j
p_j)``. The BH step-up over the ``K`` clusters, ``q_(k) = min_{l >= k} K p_(l) / l``, gives each
event its cluster's q-value.

**Westfall-Young step-down min-p family-wise adjusted p-values** (Westfall & Young 1993; the
min-p form puts events with different numbers of listings, hence different reference
distributions, on one scale). The null distribution keeps the dependence between events: in draw
``b`` EVERY firm-event is moved by the same number ``k_b`` of sessions of its own exchange
(pseudo dates common to all events: events that share a day 0 still share it, firms shared
between events are still shared, and the spacing of the campaign is kept), re-estimated with
the study's settings in batched fits, and each event's p-value ``p*_{b,e}`` recomputed. With
the observed p-values ordered ``p_(1) <= ... <= p_(E)``,

.. math::

    p^{adj}_{(r)} = \max_{s \le r} \frac{1 + \#\{b : \min_{e \in \{(s), ..., (E)\}} p^*_{b,e}
    \le p_{(s)}\}}{1 + B},

draws where an event's statistic cannot be computed (no prices at the shifted date) leave it
out of that draw's maximum. Shifts are drawn from ``min_shift <= |k| <= max_shift`` sessions;
pseudo windows may fall on other real events, which can only widen the null distribution (the
adjustment is then conservative). Each batched fit of ``chunk`` draws is tested in one grouped
pass (:mod:`crackdown.inference.grouped`: every pseudo event's statistic from the fit's whole
panel, equal to the per-event function on that event's rows).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError

__all__ = ["GROUPED_STATISTICS", "MULTIPLE_TESTING_COLUMNS", "STATISTICS", "bh_qvalues",
           "campaign_multiple_testing", "grouped_pvalues", "westfall_young_stepdown"]

#: Columns of :func:`campaign_multiple_testing`.
MULTIPLE_TESTING_COLUMNS = ("event_id", "cluster_id", "statistic", "pvalue", "cluster_p",
                            "q_bh", "p_fwer", "n_draws")


def _portfolio_t(panel, window):
    from crackdown.inference.parametric import portfolio_t

    return portfolio_t(panel.ar_event, panel.aligned_residuals()[0], window,
                       rel_days=panel.rel_days)


def _kp_bmp(panel, window):
    from crackdown.inference.parametric import kolari_pynnonen_bmp

    return kolari_pynnonen_bmp(panel.ar_event, panel.ar_est, window, rel_days=panel.rel_days,
                               corr_residuals=panel.aligned_residuals()[0],
                               **panel.standardization(window))


def _grank(panel, window):
    from crackdown.inference.grank import grank_t

    return grank_t(panel.ar_event, panel.ar_est, window, rel_days=panel.rel_days,
                   rank_residuals=panel.aligned_residuals()[0], **panel.standardization(window))


#: Statistic name -> function(panel of one event, window) -> TestResult.
STATISTICS: dict[str, Callable] = {"portfolio_t": _portfolio_t,
                                   "kolari_pynnonen_bmp": _kp_bmp, "grank_t": _grank}


def _group_residuals(panel, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Rows of :meth:`EventPanel.aligned_residuals` as ``panel.subset(group rows)`` gives them.

    Alignment is per event (each group is one pseudo event), so one call on the whole panel
    gives every group's rows; only listings without an exchange switch it off for the whole
    panel, so the groups holding such rows keep ``ar_est`` (as their own subset would) and the
    others are aligned on their own. Columns are relative (information) days; the extra
    all-NaN columns change no statistic.
    """
    ex = panel.keys["exchange"].astype(str).to_numpy()
    if panel.session_grid != "exchange" or not (ex == "").any():
        return panel.aligned_residuals()[0]
    plain = (np.bincount(codes[ex == ""], minlength=n_groups) > 0)[codes]
    rest, days, _ = panel.subset(np.flatnonzero(~plain)).aligned_residuals()
    est = panel.est_rel_days
    lo = int(min(est[0], days[0])) if len(days) else int(est[0])
    hi = int(max(est[-1], days[-1])) if len(days) else int(est[-1])
    out = np.full((panel.n, hi - lo + 1), np.nan)
    out[np.ix_(np.flatnonzero(plain), est - lo)] = panel.ar_est[plain]
    if len(days):
        out[np.ix_(np.flatnonzero(~plain), days - lo)] = rest
    return out


def _grouped_portfolio_t(panel, codes, n_groups, window):
    from crackdown.inference.grouped import grouped_portfolio_t

    return grouped_portfolio_t(panel.ar_event, _group_residuals(panel, codes, n_groups), codes,
                               window, n_groups=n_groups, rel_days=panel.rel_days)


def _grouped_kp_bmp(panel, codes, n_groups, window):
    from crackdown.inference.grouped import grouped_kolari_pynnonen_bmp

    return grouped_kolari_pynnonen_bmp(
        panel.ar_event, panel.ar_est, codes, window, n_groups=n_groups, rel_days=panel.rel_days,
        corr_residuals=_group_residuals(panel, codes, n_groups), **panel.standardization(window))


#: Statistic name -> function(panel, group codes, n_groups, window) -> GroupedTest: the
#: statistics of :data:`STATISTICS` computed for many groups of one panel at once (equal to
#: the per-panel function on each group's rows, see :mod:`crackdown.inference.grouped`).
GROUPED_STATISTICS: dict[str, Callable] = {"portfolio_t": _grouped_portfolio_t,
                                           "kolari_pynnonen_bmp": _grouped_kp_bmp}


def grouped_pvalues(statistic: str, panel, codes: np.ndarray, n_groups: int,
                    window: tuple[int, int]) -> np.ndarray:
    """``(G,)`` p-values of ``statistic`` per group of ``panel``'s rows (NaN: not computable).

    Grouped computation where :data:`GROUPED_STATISTICS` has one, else the per-panel function
    on each group (``_safe``). An error of the whole grouped call (e.g. a window outside the
    panel) gives NaN everywhere, as it would for every group.
    """
    from crackdown.errors import CrackdownError

    codes = np.asarray(codes, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if statistic in GROUPED_STATISTICS:
            try:
                return GROUPED_STATISTICS[statistic](panel, codes, n_groups, window).pvalue
            except (CrackdownError, ValueError, ZeroDivisionError):
                return np.full(n_groups, np.nan)
        out = np.full(n_groups, np.nan)
        rows = pd.Series(np.arange(len(codes))).groupby(codes).indices
        for g, sel in rows.items():
            out[g] = _safe(STATISTICS[statistic], panel.subset(sel), window)[1]
        return out


def bh_qvalues(pvalues) -> np.ndarray:
    """Benjamini-Hochberg (1995) q-values: ``q_(k) = min_{l >= k} min(1, K p_(l) / l)``.

    NaN p-values are left out (and get NaN).
    """
    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    k = len(order)
    raw = p[order] * k / np.arange(1, k + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(raw[::-1])[::-1])
    return q


def westfall_young_stepdown(observed, draws) -> np.ndarray:
    """Step-down adjusted p-values from significance scores (module docstring).

    Larger scores are more significant: pass ``|T|`` for max-T, or ``-log p`` for min-p.

    Parameters
    ----------
    observed : (E,) array
        Observed scores (NaN = not tested: NaN out).
    draws : (B, E) array
        Scores under the null, NaN where not computable.
    """
    t = np.abs(np.asarray(observed, dtype=float))
    d = np.abs(np.asarray(draws, dtype=float))
    out = np.full(t.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(t))
    if not len(ok):
        return out
    order = ok[np.argsort(-t[ok], kind="stable")]
    valid = np.isfinite(d[:, order]).any(axis=1)
    d = d[valid][:, order]
    b = len(d)
    # running max from the bottom of the ordering: max over {(s), ..., (E)}
    filled = np.where(np.isfinite(d), d, -np.inf)
    tail_max = np.maximum.accumulate(filled[:, ::-1], axis=1)[:, ::-1]
    p = (1.0 + (tail_max >= t[order][None, :]).sum(axis=0)) / (b + 1.0)
    out[order] = np.maximum.accumulate(p)
    return out


def campaign_multiple_testing(campaign, **options) -> pd.DataFrame:
    """:func:`multiple_testing` of a campaign's crackdown actions with data.

    ``campaign`` comes from :func:`crackdown.analyses.campaign.run_campaign`, ideally with
    ``history="all"`` (the shifted pseudo events need prices outside the event windows; without
    it few draws are valid). Market confounds are left out of the family. ``options`` are those
    of :func:`multiple_testing`.
    """
    table = campaign.event_table
    family = table.loc[table["crackdown_action"].fillna(True).astype(bool)
                       & (table["n_firms"] > 0), ["event_id", "cluster_id"]]
    return multiple_testing(campaign.results, family, window=tuple(campaign.window), **options)


def multiple_testing(
    results,
    family: pd.DataFrame,
    *,
    window: tuple[int, int] | None = None,
    statistic: str = "portfolio_t",
    n_draws: int = 199,
    seed: int = 0,
    min_shift: int = 40,
    max_shift: int = 500,
    chunk: int = 25,
    _per_panel: bool = False,
) -> pd.DataFrame:
    """Per event: p-value, cluster BH q-value and Westfall-Young step-down FWER p-value.

    Parameters
    ----------
    results : EventStudyResults
        The fitted study of the events (with a long price history for the shifts).
    family : pandas.DataFrame
        ``event_id, cluster_id`` of the events tested jointly.
    window : (int, int), optional
        Tested window (default: the study's event window).
    statistic : {"portfolio_t", "kolari_pynnonen_bmp", "grank_t"}
        The per-event test (:data:`STATISTICS`).
    n_draws, seed : int
        Number of common shifts ``k_b`` and their seed.
    min_shift, max_shift : int
        Range of ``|k_b|`` in sessions.
    chunk : int
        Draws re-estimated per batched fit (memory).
    _per_panel : bool
        Private: test every pseudo event on its own ``panel.subset`` (the reference path that
        ``benchmarks/fwer_speed.py`` times) instead of one grouped pass per batched fit
        (:data:`GROUPED_STATISTICS`; same p-values, see :mod:`crackdown.inference.grouped`).

    Returns
    -------
    pandas.DataFrame
        :data:`MULTIPLE_TESTING_COLUMNS`, one row per event of ``family`` in its order;
        ``pvalue`` is the statistic's own p-value.
    """
    if statistic not in STATISTICS:
        raise StudyConfigError(f"statistic {statistic!r}; use one of {', '.join(STATISTICS)}")
    if n_draws < 19:
        raise StudyConfigError(f"n_draws={n_draws}: use at least 19 (p-values of 0.05 need it)")
    if not 0 < min_shift <= max_shift:
        raise StudyConfigError("need 0 < min_shift <= max_shift (sessions)")
    fn = STATISTICS[statistic]
    study, panel = results.study, results.panel
    window = tuple(study.window) if window is None else (int(window[0]), int(window[1]))
    ids = family["event_id"].astype(str).tolist()
    keys = panel.keys
    rows_of = {e: np.flatnonzero(keys["event_id"].to_numpy() == e) for e in ids}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        observed, pvals = np.array([_safe(fn, panel.subset(rows_of[e]), window)
                                    for e in ids]).reshape(len(ids), 2).T

    rng = np.random.default_rng(seed)
    shifts = rng.choice(np.r_[-max_shift:-min_shift + 1, min_shift:max_shift + 1],
                        size=int(n_draws), replace=True)
    fe = keys.loc[keys["event_id"].isin(ids), ["event_id", "ticker", "exchange", "day0",
                                                 "benchmark"]]
    grids = {x: study._grid(x) for x in fe["exchange"].unique()}
    if study.session_grid == "data":
        grids = {x: study.returns.index for x in grids}
    by_exchange = {x: fe.loc[fe["exchange"] == x] for x in grids}
    pos = {x: grids[x].searchsorted(by_exchange[x]["day0"]) for x in grids}
    draws = np.full((len(shifts), len(ids)), np.nan)
    for start in range(0, len(shifts), chunk):
        part = []
        for b in range(start, min(start + chunk, len(shifts))):
            for x, grid in grids.items():
                sel = by_exchange[x]
                p = pos[x] + shifts[b]
                ok = (p >= 0) & (p < len(grid))
                shifted = sel.loc[ok].assign(day0=grid[p[ok]],
                                             event_id=sel.loc[ok, "event_id"] + f"|{b}")
                part.append(shifted)
        pseudo = pd.concat(part, ignore_index=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = study.with_firm_events(pseudo).fit()
        stop = min(start + chunk, len(shifts))
        if _per_panel or statistic not in GROUPED_STATISTICS:
            rows_of_pseudo = pd.Series(fit.panel.keys["event_id"].to_numpy()).groupby(
                fit.panel.keys["event_id"].to_numpy()).indices
            for b in range(start, stop):
                for j, e in enumerate(ids):
                    sel = rows_of_pseudo.get(f"{e}|{b}")
                    if sel is not None:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", RuntimeWarning)
                            draws[b, j] = _safe(fn, fit.panel.subset(sel), window)[1]
            continue
        # one grouped pass: group (b, j) = pseudo event f"{ids[j]}|{b}"
        code_of = {f"{e}|{b}": (b - start) * len(ids) + j
                   for b in range(start, stop) for j, e in enumerate(ids)}
        codes = pd.Series(fit.panel.keys["event_id"].to_numpy()).map(code_of)
        sub = fit.panel
        if codes.isna().any():  # rows of no pseudo event of the family (none expected)
            sub = sub.subset(np.flatnonzero(codes.notna().to_numpy()))
            codes = codes.dropna()
        draws[start:stop] = grouped_pvalues(
            statistic, sub, codes.to_numpy(dtype=np.int64), len(code_of), window,
        ).reshape(stop - start, len(ids))
    clusters = family["cluster_id"].astype(str).to_numpy()
    size = pd.Series(clusters).map(pd.Series(clusters).value_counts()).to_numpy()
    frame = pd.DataFrame({"cluster_id": clusters, "p": pvals, "m": size})
    cluster_p = frame.groupby("cluster_id").apply(
        lambda g: min(1.0, g["m"].iloc[0] * g["p"].min()) if g["p"].notna().any() else np.nan,
        include_groups=False)
    q = pd.Series(bh_qvalues(cluster_p.to_numpy()), index=cluster_p.index)
    with np.errstate(divide="ignore"):  # p = 0 -> score inf (most significant)
        score, null_score = -np.log(pvals), -np.log(draws)
    return pd.DataFrame({
        "event_id": ids, "cluster_id": clusters, "statistic": observed, "pvalue": pvals,
        "cluster_p": cluster_p.reindex(clusters).to_numpy(),
        "q_bh": q.reindex(clusters).to_numpy(),
        "p_fwer": westfall_young_stepdown(score, null_score),
        "n_draws": np.isfinite(draws).sum(axis=0),
    }, columns=list(MULTIPLE_TESTING_COLUMNS))


def _safe(fn, panel, window) -> tuple[float, float]:
    """``(statistic, pvalue)`` of ``fn`` on one event's panel; NaNs when not computable."""
    from crackdown.errors import CrackdownError

    try:
        res = fn(panel, window)
    except (CrackdownError, ValueError, ZeroDivisionError):
        return float("nan"), float("nan")
    return float(res.statistic), float(res.pvalue)
