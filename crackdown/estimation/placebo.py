"""Placebo test of one event: the same firms re-fitted at random common pseudo dates.

The study is re-estimated with its own settings at ``n_draws`` pseudo events in one batched fit
(:meth:`crackdown.estimation.study.EventStudy.with_firm_events`), and the event's statistic is
compared with their distribution (:func:`crackdown.inference.placebo.empirical_pvalue`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.estimation.panel import EventPanel
from crackdown.inference import parametric as par
from crackdown.inference.base import TestResult
from crackdown.inference.placebo import empirical_pvalue


def placebo_test(results, event_id: str | None = None, lo: int | None = None,
                 hi: int | None = None, *, n_draws: int = 199, seed: int = 0,
                 statistic: str = "portfolio_t", buffer: int = 10,
                 exclude_dates=None) -> TestResult:
    """Placebo test: the event's statistic against the same firms at random pseudo dates.

    Each pseudo date is common to all the event's firms (each mapped to the first session
    of its own exchange on or after that date), so every draw keeps the cross-sectional
    correlation of a clustered event. All ``n_draws`` pseudo events are re-estimated with
    the study's settings in ONE batched fit. Candidate dates are the sessions of the
    event's main exchange with room for the estimation and event windows, minus every
    event of the study (and ``exclude_dates``) widened by ``buffer`` sessions on each side
    of its event window. ``p = (1 + #{|T_b| >= |T_obs|}) / (B + 1)`` over the valid draws
    (see :func:`crackdown.inference.placebo.empirical_pvalue`).

    Parameters
    ----------
    results : EventStudyResults
        A fitted study.
    event_id : str, optional
        The event (may be omitted when the study has one event).
    lo, hi : int, optional
        Event-window days of the statistic (default: the study's window).
    n_draws, seed : int
        Number of pseudo dates and the seed of their draw (without replacement).
    buffer : int
        Sessions excluded around every real event window.
    exclude_dates : sequence of dates, optional
        Further dates treated like real events.
    statistic : {"portfolio_t", "caar"}
        ``"portfolio_t"``: the Brown-Warner 1985 portfolio t of the CAAR (scale-free, so
        calm and turbulent pseudo dates are comparable); ``"caar"``: the raw CAAR.

    Returns
    -------
    crackdown.inference.base.TestResult
        ``distribution="empirical"``; ``extra`` holds ``draws``, ``pseudo_dates``, ``n_nan``.
    """
    if statistic not in ("portfolio_t", "caar"):
        raise StudyConfigError(f"statistic={statistic!r}: use 'portfolio_t' or 'caar'")
    if int(n_draws) < 1:
        raise StudyConfigError(f"n_draws must be >= 1; got {n_draws!r}")
    s, event_id, p, window = _event_window(results, event_id, lo, hi)
    idx = np.flatnonzero(p.keys["event_id"].to_numpy() == event_id)
    observed = _placebo_statistic(p.subset(idx), window, statistic)
    pseudo, pseudo_fe, main_exchange = pseudo_events(results, event_id, n_draws=n_draws,
                                                     seed=seed, buffer=buffer,
                                                     exclude_dates=exclude_dates)
    res = s.with_firm_events(pseudo_fe).fit()
    ids = res.panel.keys["event_id"].to_numpy()
    res.panel.share_information_time()  # one alignment pass; each draw's subset reuses it
    draws = np.full(len(pseudo), np.nan)
    for k in range(len(pseudo)):
        sel = np.flatnonzero(ids == f"placebo_{k:04d}")
        if len(sel):
            draws[k] = _placebo_statistic(res.panel.subset(sel), window, statistic)
    valid = np.isfinite(draws)
    pvalue = empirical_pvalue(observed, draws[valid])
    cols = p.columns(*window)
    caar = float(np.nansum(np.nanmean(p.ar_event[idx][:, cols], axis=0)))
    return TestResult(
        name=f"placebo_{statistic}", statistic=float(observed), pvalue=pvalue,
        distribution="empirical", df=None, estimate=caar, window=window, n=len(idx),
        robust_to_clustering=True,
        convention=(f"{int(valid.sum())} pseudo dates on {main_exchange} (seed {seed}, "
                    f"+/-{buffer} sessions around real events excluded); "
                    "p = (1 + #{|T_b| >= |T_obs|}) / (B + 1)"),
        extra={"draws": draws, "pseudo_dates": pseudo, "n_nan": int((~valid).sum())},
    )


def pseudo_events(results, event_id: str, *, n_draws: int, seed: int = 0, buffer: int = 10,
                  exclude_dates=None) -> tuple[pd.DatetimeIndex, pd.DataFrame, str]:
    """Random common pseudo dates of one event's firms, as firm-events for a batched re-fit.

    Candidates are the sessions of the event's main exchange with room for the estimation and
    event windows, minus every event of the study (and ``exclude_dates``) widened by
    ``buffer`` sessions around its event window; ``n_draws`` of them are drawn without
    replacement (:func:`placebo_dates`). Each firm is mapped to the first session of its own
    exchange on or after the pseudo date (:func:`pseudo_firm_events`).

    Returns
    -------
    pseudo : DatetimeIndex
        The pseudo dates (sorted).
    firm_events : pandas.DataFrame
        ``event_id`` (``placebo_0000`` ...), ``ticker, day0, exchange, benchmark``.
    main_exchange : str
    """
    s = results.study
    p = results.panel
    idx = np.flatnonzero(p.keys["event_id"].to_numpy() == event_id)
    if not len(idx):
        raise StudyConfigError(f"event {event_id!r} has no included firm-events")
    firms = p.keys.iloc[idx][["ticker", "exchange"]].drop_duplicates()
    main_exchange = firms["exchange"].value_counts().index[0]
    pseudo = placebo_dates(s, main_exchange, n_draws=n_draws, seed=seed, buffer=buffer,
                           exclude_dates=exclude_dates, label=repr(event_id))
    return pseudo, pseudo_firm_events(s, firms, pseudo, main_exchange), main_exchange


def placebo_dates(study, exchange: str, *, n_draws: int, seed: int = 0, buffer: int = 10,
                  exclude_dates=None, estimation: tuple[int, int] | None = None,
                  window: tuple[int, int] | None = None, span=None, within=None,
                  label: str = "the event") -> pd.DatetimeIndex:
    """``n_draws`` sessions of ``exchange`` drawn without replacement as placebo day 0s.

    Candidates are the sessions of the study's grid for ``exchange`` inside the returns index
    (or ``span = (first, last)``) with ``-estimation[0]`` sessions before and ``window[1]``
    after them (default: the study's windows), minus the event window of every firm-event of
    the study and every date of ``exclude_dates``, each widened by ``buffer`` sessions on both
    sides; with ``within = (first, last)`` only the sessions in that range (e.g. while the
    event's listings trade) are candidates. The draw is ``numpy.random.default_rng(seed).choice(n_candidates, n_draws,
    replace=False)``, sorted.
    """
    s = study
    grid = s._grid(exchange)
    first, last = (s.returns.index.min(), s.returns.index.max()) if span is None else span
    grid = grid[(grid >= first) & (grid <= last)]
    (e_lo, _), (w_lo, w_hi) = estimation or s.estimation, window or s.window
    ok = np.zeros(len(grid), dtype=bool)
    ok[max(-e_lo, 0): max(len(grid) - max(w_hi, 0), 0)] = True
    real = list(pd.to_datetime(s.firm_events["day0"]).unique())
    real += [pd.Timestamp(d) for d in (exclude_dates or [])]
    for d in real:
        pos = int(grid.searchsorted(d))
        ok[max(pos + w_lo - buffer, 0): max(pos + w_hi + buffer + 1, 0)] = False
    candidates = grid[ok]
    if within is not None:
        candidates = candidates[(candidates >= within[0]) & (candidates <= within[1])]
    if len(candidates) < n_draws:
        raise StudyConfigError(
            f"only {len(candidates)} placebo dates are available for {label}; lower "
            f"n_draws (asked {n_draws}) or the buffer ({buffer})"
        )
    rng = np.random.default_rng(seed)
    return candidates[np.sort(rng.choice(len(candidates), size=int(n_draws), replace=False))]


def pseudo_firm_events(study, firms: pd.DataFrame, pseudo: pd.DatetimeIndex,
                       main_exchange: str) -> pd.DataFrame:
    """Firm-events ``placebo_0000`` ... of ``firms`` (``ticker, exchange``) at ``pseudo``.

    A firm on ``main_exchange`` (or any firm on the ``"data"`` grid) gets the pseudo date
    itself, the others the first session of their own exchange on or after it; benchmark (and
    ``world``) are the ``benchmark`` (``world``) column of ``firms`` when it has one, else each
    ticker's first in ``study.firm_events``.
    """
    s = study
    source = firms if "benchmark" in firms.columns else s.firm_events
    bench = source.drop_duplicates(["ticker"]).set_index("ticker")["benchmark"]
    pseudo = pd.DatetimeIndex(pseudo)
    labels = np.array([f"placebo_{k:04d}" for k in range(len(pseudo))], dtype=object)
    parts = []  # per firm: the draws it has, its day 0s, ticker, exchange, benchmark
    for t, x in firms[["ticker", "exchange"]].itertuples(index=False):
        if x == main_exchange or s.session_grid == "data":
            day0, keep = pseudo, np.ones(len(pseudo), dtype=bool)
        else:  # the first session of the firm's own exchange on or after the pseudo date
            grid = s._grid(x)
            pos = grid.searchsorted(pseudo)
            keep = pos < len(grid)
            day0 = grid[pos[keep]]
        parts.append((np.flatnonzero(keep), day0, t, x, bench.get(t, "")))
    cols = ["event_id", "ticker", "day0", "exchange", "benchmark"]
    if parts:  # rows by draw, then in the order of ``firms`` (one concatenation, one sort)
        k = np.concatenate([p[0] for p in parts])
        firm = np.repeat(np.arange(len(parts)), [len(p[0]) for p in parts])
        rows = np.lexsort((firm, k))
        text = {name: np.array([p[j] for p in parts], dtype=object)[firm[rows]]
                for j, name in ((2, "ticker"), (3, "exchange"), (4, "benchmark"))}
        day0 = parts[0][1].append([p[1] for p in parts[1:]]) if len(parts) > 1 else parts[0][1]
        pseudo_fe = pd.DataFrame({"event_id": labels[k[rows]], "ticker": text["ticker"],
                                  "day0": day0[rows], "exchange": text["exchange"],
                                  "benchmark": text["benchmark"]})
    else:
        pseudo_fe = pd.DataFrame(columns=cols)
    if "world" in s.firm_events.columns:  # international model: keep each listing's world
        source = firms if "world" in firms.columns else s.firm_events
        world = source.drop_duplicates(["ticker"]).set_index("ticker")["world"]
        pseudo_fe["world"] = pseudo_fe["ticker"].map(world).fillna("")
    return pseudo_fe


def _event_window(results, event_id, lo, hi):
    """The study, the event's id, the panel and the tested window ``(lo, hi)`` in days."""
    p = results.panel
    cols = p.columns(lo, hi)
    return (results.study, results._one_event(event_id), p,
            (int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]])))


def _placebo_statistic(panel: EventPanel, window: tuple[int, int], statistic: str) -> float:
    """CAAR over ``window`` or its Brown-Warner 1985 portfolio t (NaN when not computable)."""
    cols = panel.columns(*window)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if statistic == "caar":
            aar = np.nanmean(panel.ar_event[:, cols], axis=0)
            return float(aar.sum()) if np.isfinite(aar).all() else float("nan")
        try:
            return float(par.portfolio_t(panel.ar_event, panel.aligned_residuals()[0], window,
                                         rel_days=panel.rel_days).statistic)
        except (ValueError, ZeroDivisionError):
            return float("nan")


#: Columns of :func:`size_check`.
SIZE_CHECK_COLUMNS = ("test", "n_draws", "rejections", "rejection_rate", "mc_se", "headline",
                      "robust_to")


def size_check(results, event_id: str | None = None, lo: int | None = None,
               hi: int | None = None, *, n_draws: int = 99, seed: int = 0, buffer: int = 10,
               alpha: float = 0.05) -> pd.DataFrame:
    """Empirical size of every test on this event's own listings, at dates with no event.

    The event's firms are re-estimated at ``n_draws`` random common pseudo dates
    (:func:`pseudo_events`, ONE batched fit) and the whole test battery of
    :meth:`crackdown.estimation.results.EventStudyResults.tests` is run at each; a test's
    rejection rate at ``alpha`` estimates its size for THIS event's listings, their
    correlation, volatility and tails. A test rejecting far more than ``alpha`` here should not
    be trusted for the event. ``mc_se = sqrt(rate (1 - rate) / n)``.

    Returns
    -------
    pandas.DataFrame
        :data:`SIZE_CHECK_COLUMNS`, one row per test (the headline test first).
    """
    from crackdown.estimation.battery import run_test_battery
    from crackdown.inference.headline import HEADLINE_TEST, ROBUSTNESS

    if int(n_draws) < 1:
        raise StudyConfigError(f"n_draws must be >= 1; got {n_draws!r}")
    s, event_id, _, window = _event_window(results, event_id, lo, hi)
    _, pseudo_fe, _ = pseudo_events(results, event_id, n_draws=n_draws, seed=seed,
                                    buffer=buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = s.with_firm_events(pseudo_fe).fit()
    ids = fit.panel.keys["event_id"].to_numpy()
    fit.panel.share_information_time()  # one alignment pass; each draw's subset reuses it
    counts: dict[str, list[int]] = {}
    for k in range(int(n_draws)):
        sel = np.flatnonzero(ids == f"placebo_{k:04d}")
        if not len(sel):
            continue
        for r in run_test_battery(fit.panel.subset(sel), window):
            if np.isfinite(r.pvalue):
                c = counts.setdefault(r.name, [0, 0])
                c[0] += 1
                c[1] += int(r.pvalue < alpha)
    rows = []
    for name, (n, rej) in counts.items():
        rate = rej / n
        rows.append((name, n, rej, rate, float(np.sqrt(rate * (1 - rate) / n)),
                     name == HEADLINE_TEST, ROBUSTNESS.get(name, "")))
    return pd.DataFrame(rows, columns=list(SIZE_CHECK_COLUMNS))
