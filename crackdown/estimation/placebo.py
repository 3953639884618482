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
    replacement. Each firm is mapped to the first session of its own exchange on or after the
    pseudo date.

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
    grid = s._grid(main_exchange)
    grid = grid[(grid >= s.returns.index.min()) & (grid <= s.returns.index.max())]
    (e_lo, _), (w_lo, w_hi) = s.estimation, s.window
    ok = np.zeros(len(grid), dtype=bool)
    ok[max(-e_lo, 0): max(len(grid) - max(w_hi, 0), 0)] = True
    real = list(pd.to_datetime(s.firm_events["day0"]).unique())
    real += [pd.Timestamp(d) for d in (exclude_dates or [])]
    for d in real:
        pos = int(grid.searchsorted(d))
        ok[max(pos + w_lo - buffer, 0): max(pos + w_hi + buffer + 1, 0)] = False
    candidates = grid[ok]
    if len(candidates) < n_draws:
        raise StudyConfigError(
            f"only {len(candidates)} placebo dates are available for {event_id!r}; lower "
            f"n_draws (asked {n_draws}) or the buffer ({buffer})"
        )
    rng = np.random.default_rng(seed)
    pseudo = candidates[np.sort(rng.choice(len(candidates), size=int(n_draws), replace=False))]
    bench = s.firm_events.drop_duplicates(["ticker"]).set_index("ticker")["benchmark"]
    rows = []
    for k, d in enumerate(pseudo):
        for t, x in firms.itertuples(index=False):
            d0 = d if (x == main_exchange or s.session_grid == "data") else _next_session(
                s._grid(x), d)
            if d0 is not None:
                rows.append((f"placebo_{k:04d}", t, d0, x, bench.get(t, "")))
    pseudo_fe = pd.DataFrame(rows, columns=["event_id", "ticker", "day0", "exchange",
                                            "benchmark"])
    if "world" in s.firm_events.columns:  # international model: keep each listing's world
        world = s.firm_events.drop_duplicates(["ticker"]).set_index("ticker")["world"]
        pseudo_fe["world"] = pseudo_fe["ticker"].map(world).fillna("")
    return pseudo, pseudo_fe, main_exchange


def _event_window(results, event_id, lo, hi):
    """The study, the event's id, the panel and the tested window ``(lo, hi)`` in days."""
    p = results.panel
    cols = p.columns(lo, hi)
    return (results.study, results._one_event(event_id), p,
            (int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]])))


def _next_session(grid: pd.DatetimeIndex, date: pd.Timestamp) -> pd.Timestamp | None:
    pos = int(grid.searchsorted(date))
    return grid[pos] if pos < len(grid) else None


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
