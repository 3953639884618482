r"""Placebo (pseudo-event, permutation-style) inference for clustered events.

The statistic of interest is recomputed at many randomly drawn *non-event* dates of the same
firms. Each pseudo date is common to all firms, so every draw keeps the cross-sectional
correlation of the real event (a clustered event): the draws approximate the null distribution
of the statistic *including* the dependence that makes textbook tests over-reject, without
modelling it.

Empirical p-value
    With ``B`` valid draws :math:`T_1..T_B` and the observed value :math:`T_{obs}`:

    * ``alternative="two-sided"`` (default), ``two_sided="abs"`` (default):
      :math:`p = (1 + \#\{b: |T_b| \ge |T_{obs}|\}) / (B + 1)`. This presumes the null
      distribution is centred at zero and symmetric (true for CAARs and t-type statistics under
      the null); use it with centred statistics only.
    * ``two_sided="equal-tail"``: :math:`p = \min(1, 2\min(p_{greater}, p_{less}))`, which needs
      no symmetry (for statistics whose null is skewed or not centred at zero).
    * ``alternative="greater"``: :math:`p = (1 + \#\{T_b \ge T_{obs}\}) / (B + 1)`;
      ``"less"``: :math:`(1 + \#\{T_b \le T_{obs}\}) / (B + 1)`.

    Counting the observed value itself (the ``+1``) makes the test exact (size at most alpha)
    when the observed and placebo statistics are exchangeable (Phipson and Smyth 2010); the
    smallest attainable p-value is ``1/(B+1)``. Draws where the statistic is NaN (e.g. too
    little data around a pseudo date) are excluded from ``B`` and reported as ``n_nan``.

Candidate dates
    Pseudo dates are drawn *without replacement* from ``candidate_dates`` after removing the
    ``exclude`` entries (single dates, or inclusive ``(start, end)`` intervals: the real event
    windows widened by a buffer). ``n_draws=None`` uses every candidate (exhaustive).

References
----------
Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. *Statistical
Applications in Genetics and Molecular Biology* 9(1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.inference.base import TestResult

__all__ = [
    "caar_portfolio_t",
    "caar_statistic",
    "empirical_pvalue",
    "market_model_arrays",
    "placebo_candidate_positions",
    "placebo_distribution",
    "placebo_from_returns",
    "placebo_test",
]

Alternative = Literal["two-sided", "greater", "less"]


def empirical_pvalue(
    observed: float,
    draws: np.ndarray,
    *,
    alternative: Alternative = "two-sided",
    two_sided: Literal["abs", "equal-tail"] = "abs",
) -> float:
    """Placebo p-value ``(1 + #{draws at least as extreme}) / (B + 1)``.

    Parameters
    ----------
    observed : float
        Statistic at the real event.
    draws : array of float
        Placebo statistics; NaNs must already be removed.
    alternative : {"two-sided", "greater", "less"}
    two_sided : {"abs", "equal-tail"}
        Two-sided rule: compare absolute values (symmetric null centred at 0), or double the
        smaller one-sided p-value (capped at 1).

    Returns
    -------
    float
    """
    draws = np.asarray(draws, dtype=float)
    b = draws.size
    if b == 0:
        raise StudyConfigError("no valid placebo draws: cannot compute an empirical p-value")
    if not np.isfinite(observed):
        raise StudyConfigError(f"observed statistic is {observed}: cannot compute a p-value")
    greater = (1 + np.count_nonzero(draws >= observed)) / (b + 1)
    less = (1 + np.count_nonzero(draws <= observed)) / (b + 1)
    if alternative == "greater":
        return float(greater)
    if alternative == "less":
        return float(less)
    if alternative != "two-sided":
        raise StudyConfigError(
            f"alternative={alternative!r}: choose 'two-sided', 'greater' or 'less'"
        )
    if two_sided == "abs":
        return float((1 + np.count_nonzero(np.abs(draws) >= abs(observed))) / (b + 1))
    if two_sided == "equal-tail":
        return float(min(1.0, 2.0 * min(greater, less)))
    raise StudyConfigError(f"two_sided={two_sided!r}: choose 'abs' or 'equal-tail'")


def _is_interval(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2


def _filter_candidates(candidates: Sequence, exclude: Iterable | None) -> list:
    cands = list(candidates)
    if exclude is None:
        return cands
    singles, intervals = [], []
    for item in exclude:
        (intervals if _is_interval(item) else singles).append(item)
    single_set = set(singles)

    def keep(c) -> bool:
        if c in single_set:
            return False
        return not any(lo <= c <= hi for lo, hi in intervals)

    return [c for c in cands if keep(c)]


def placebo_distribution(
    statistic_fn: Callable[[Any], float],
    candidate_dates: Sequence,
    n_draws: int | None,
    seed: int | np.random.Generator | None = None,
    *,
    exclude: Iterable | None = None,
) -> pd.Series:
    """Evaluate ``statistic_fn`` at randomly drawn pseudo event dates.

    Parameters
    ----------
    statistic_fn : callable
        ``statistic_fn(pseudo_date) -> float``: the statistic recomputed as if the event had
        happened on ``pseudo_date`` for all firms at once (same date for every firm). May return
        NaN when the pseudo event cannot be evaluated.
    candidate_dates : sequence
        Possible pseudo dates (Timestamps, ints, ...: any sortable, hashable values).
    n_draws : int or None
        Number of pseudo dates drawn without replacement; ``None`` = all candidates.
    seed : int, Generator or None
        Seed of the draw (``numpy.random.default_rng``).
    exclude : iterable, optional
        Dates or inclusive ``(start, end)`` intervals removed from the candidates (the real event
        windows +/- a buffer).

    Returns
    -------
    pandas.Series
        Statistic per pseudo date (index ``pseudo_date``, in draw order), NaNs kept.

    Raises
    ------
    StudyConfigError
        No candidates left, or ``n_draws`` larger than the number of candidates.
    """
    cands = _filter_candidates(candidate_dates, exclude)
    if not cands:
        raise StudyConfigError(
            "no placebo candidate dates left after exclusions: widen the sample or shrink the "
            "buffer around the real events"
        )
    if n_draws is None:
        n_draws = len(cands)
    n_draws = int(n_draws)
    if n_draws < 1 or n_draws > len(cands):
        raise StudyConfigError(
            f"n_draws={n_draws} but only {len(cands)} placebo candidate dates are available "
            "(drawing without replacement): lower n_draws or pass n_draws=None for all"
        )
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(cands), size=n_draws, replace=False)
    dates = [cands[i] for i in picks]
    values = np.array([float(statistic_fn(d)) for d in dates], dtype=float)
    return pd.Series(values, index=pd.Index(dates, name="pseudo_date"), name="statistic")


def placebo_test(
    statistic_fn: Callable[[Any], float],
    observed: float,
    candidate_dates: Sequence,
    n_draws: int | None,
    seed: int | np.random.Generator | None = None,
    *,
    exclude: Iterable | None = None,
    alternative: Alternative = "two-sided",
    two_sided: Literal["abs", "equal-tail"] = "abs",
    name: str = "placebo",
    estimate: float = np.nan,
    window: tuple[int, int] | None = None,
    n: int = 0,
) -> TestResult:
    """Placebo test: empirical p-value of ``observed`` among pseudo-event statistics.

    See :func:`placebo_distribution` for the draw and :func:`empirical_pvalue` for the p-value.
    The returned :class:`TestResult` has ``distribution="empirical"``, ``df=None``,
    ``robust_to_clustering=True`` and ``extra`` holding ``draws`` (ndarray), ``n_draws``
    (valid), ``n_nan``, ``min_attainable_pvalue`` (``1/(B+1)``: choose ``B`` so that it is
    below the test level, e.g. ``B >= 39`` at 5%) and ``pseudo_dates``.
    """
    draws = placebo_distribution(statistic_fn, candidate_dates, n_draws, seed, exclude=exclude)
    values = draws.to_numpy()
    valid = np.isfinite(values)
    n_nan = int((~valid).sum())
    pvalue = empirical_pvalue(
        observed, values[valid], alternative=alternative, two_sided=two_sided
    )
    rule = "|T_b| >= |T_obs|" if (alternative == "two-sided" and two_sided == "abs") else (
        f"{alternative}/{two_sided}"
    )
    return TestResult(
        name=name,
        statistic=float(observed),
        pvalue=pvalue,
        distribution="empirical",
        df=None,
        estimate=float(estimate),
        window=window,
        n=int(n),
        robust_to_clustering=True,
        convention=(
            f"placebo: common pseudo date for all firms, B={int(valid.sum())} draws without "
            f"replacement ({n_nan} NaN dropped), p=(1+#{{{rule}}})/(B+1)"
        ),
        extra={
            "draws": values[valid],
            "n_draws": int(valid.sum()),
            "n_nan": n_nan,
            "min_attainable_pvalue": 1.0 / (int(valid.sum()) + 1),
            "pseudo_dates": list(draws.index),
        },
    )


# --------------------------------------------------------------------------------------------
# Array-level convenience: market-model placebo over a returns matrix
# --------------------------------------------------------------------------------------------


def market_model_arrays(
    returns: np.ndarray,
    market: np.ndarray | None,
    event_pos: int,
    estimation: tuple[int, int],
    window: tuple[int, int],
    *,
    model: Literal["market", "constant-mean", "market-adjusted"] = "market",
    min_estimation_obs: int = 30,
) -> dict[str, np.ndarray | int]:
    """Abnormal-return arrays of one (pseudo) event, vectorised over firms.

    Parameters
    ----------
    returns : array (N, D)
        Firm returns on a common calendar (NaN = missing).
    market : array (D,) or None
        Market return (needed for ``"market"`` and ``"market-adjusted"``).
    event_pos : int
        Column of day 0.
    estimation, window : (int, int)
        Inclusive relative-day ranges of the estimation and event windows.
    model : {"market", "constant-mean", "market-adjusted"}
        OLS market model ``r = a + b m``; mean-adjusted ``r - mean``; ``r - m``.
    min_estimation_obs : int
        Firms with fewer complete estimation days get NaN abnormal returns.

    Returns
    -------
    dict
        ``ar_event`` (N, L), ``ar_est`` (N, T) (NaN where missing), ``n_obs`` (N,),
        ``n_params`` (int), ``forecast_var_factor`` (N, L) = ``1 + 1/T_i + (m_d - mbar_i)^2 /
        S_mm,i`` for the market model, ``1 + 1/T_i`` for constant-mean, 1 for market-adjusted.
    """
    y = np.asarray(returns, dtype=float)
    n_firms, n_days = y.shape
    e_lo, e_hi = event_pos + estimation[0], event_pos + estimation[1]
    w_lo, w_hi = event_pos + window[0], event_pos + window[1]
    if e_lo < 0 or w_hi >= n_days or e_hi >= w_lo:
        raise StudyConfigError(
            f"event at column {event_pos} with estimation {estimation} and window {window} "
            f"does not fit in {n_days} columns (or the windows overlap)"
        )
    ys = y[:, e_lo : e_hi + 1]
    ye = y[:, w_lo : w_hi + 1]
    length = ye.shape[1]
    if model == "market-adjusted" or model == "market":
        if market is None:
            raise StudyConfigError(f"model={model!r} needs the market return series")
        m = np.asarray(market, dtype=float)
        ms = np.broadcast_to(m[e_lo : e_hi + 1], ys.shape)
        me = np.broadcast_to(m[w_lo : w_hi + 1], ye.shape)
    elif model != "constant-mean":
        raise StudyConfigError(
            f"model={model!r}: choose 'market', 'constant-mean' or 'market-adjusted'"
        )
    if model == "market-adjusted":
        ar_est = ys - ms
        ar_event = ye - me
        n_obs = np.isfinite(ar_est).sum(axis=1)
        fvf = np.ones((n_firms, length))
        n_params = 0
    elif model == "constant-mean":
        ok = np.isfinite(ys)
        n_obs = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(ok, ys, 0.0).sum(axis=1) / n_obs
        ar_est = ys - mu[:, None]
        ar_event = ye - mu[:, None]
        with np.errstate(divide="ignore"):
            fvf = np.repeat((1.0 + 1.0 / n_obs)[:, None], length, axis=1)
        n_params = 1
    else:
        ok = np.isfinite(ys) & np.isfinite(ms)
        n_obs = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mbar = np.where(ok, ms, 0.0).sum(axis=1) / n_obs
            ybar = np.where(ok, ys, 0.0).sum(axis=1) / n_obs
            dm = np.where(ok, ms - mbar[:, None], 0.0)
            dy = np.where(ok, ys - ybar[:, None], 0.0)
            smm = (dm * dm).sum(axis=1)
            beta = (dm * dy).sum(axis=1) / smm
            alpha = ybar - beta * mbar
            ar_est = np.where(ok, ys - alpha[:, None] - beta[:, None] * ms, np.nan)
            ar_event = ye - alpha[:, None] - beta[:, None] * me
            fvf = 1.0 + 1.0 / n_obs[:, None] + (me - mbar[:, None]) ** 2 / smm[:, None]
        n_params = 2
    short = n_obs < min_estimation_obs
    if short.any():
        ar_event = np.where(short[:, None], np.nan, ar_event)
        ar_est = np.where(short[:, None], np.nan, ar_est)
    return {
        "ar_event": ar_event,
        "ar_est": ar_est,
        "n_obs": n_obs,
        "n_params": n_params,
        "forecast_var_factor": fvf,
    }


def caar_statistic(ar_event, ar_est, n_obs, n_params, forecast_var_factor) -> float:
    """Raw CAAR over the whole window: mean over firms of the summed event-window ARs.

    Firms with any missing event-day AR are left out (NaN-aware mean over complete rows).
    """
    car = np.asarray(ar_event, dtype=float).sum(axis=1)  # NaN if any day missing
    car = car[np.isfinite(car)]
    return float(car.mean()) if car.size else np.nan


def caar_portfolio_t(ar_event, ar_est, n_obs, n_params, forecast_var_factor) -> float:
    """Brown-Warner (1985) crude-dependence (portfolio) t of the CAAR over the whole window.

    ``t = CAAR / (sqrt(L) * s_p)`` with ``s_p`` the ``ddof=1`` standard deviation of the
    equally weighted portfolio abnormal return over the estimation window (days where every
    included firm has a residual), using firms complete on the event window.
    """
    ar_event = np.asarray(ar_event, dtype=float)
    keep = np.isfinite(ar_event).all(axis=1)
    if not keep.any():
        return np.nan
    port_est = np.asarray(ar_est, dtype=float)[keep].mean(axis=0)
    port_est = port_est[np.isfinite(port_est)]
    if port_est.size < 3:
        return np.nan
    caar = ar_event[keep].sum(axis=1).mean()
    return float(caar / (np.sqrt(ar_event.shape[1]) * port_est.std(ddof=1)))


_BUILTIN_STATS: dict[str, Callable[..., float]] = {
    "caar": caar_statistic,
    "caar_portfolio": caar_portfolio_t,
}


def placebo_candidate_positions(
    n_days: int,
    event_positions: Sequence[int],
    estimation: tuple[int, int],
    window: tuple[int, int],
    buffer: int = 0,
) -> np.ndarray:
    """Day-0 columns usable as pseudo events.

    A column ``p`` qualifies when the pseudo estimation and event windows fit in
    ``0..n_days-1`` and the pseudo event window ``[p+window[0], p+window[1]]`` does not touch
    any real event window widened by ``buffer`` days on each side.
    """
    lo_ok = -estimation[0]
    hi_ok = n_days - 1 - window[1]
    pos = np.arange(max(lo_ok, 0), hi_ok + 1)
    keep = np.ones(pos.size, dtype=bool)
    for e in event_positions:
        blocked_lo = e + window[0] - buffer
        blocked_hi = e + window[1] + buffer
        keep &= (pos + window[1] < blocked_lo) | (pos + window[0] > blocked_hi)
    return pos[keep]


def placebo_from_returns(
    returns: np.ndarray,
    market: np.ndarray | None,
    event_pos: int,
    estimation: tuple[int, int] = (-250, -11),
    window: tuple[int, int] = (-1, 1),
    stat: str | Callable[..., float] = "caar_portfolio",
    *,
    n_draws: int | None = 999,
    seed: int | np.random.Generator | None = None,
    buffer: int = 10,
    other_event_positions: Sequence[int] = (),
    model: Literal["market", "constant-mean", "market-adjusted"] = "market",
    min_estimation_obs: int = 30,
    alternative: Alternative = "two-sided",
    two_sided: Literal["abs", "equal-tail"] = "abs",
) -> TestResult:
    """Placebo test of a clustered event directly on a returns matrix.

    For the real event and for each pseudo day 0 (common to all firms) the normal-return model
    is re-estimated for every firm over the same relative estimation window
    (:func:`market_model_arrays`) and ``stat`` is recomputed.

    Parameters
    ----------
    returns : array (N, D)
        Firm returns on a common trading calendar (NaN = missing).
    market : array (D,) or None
        Market return (``None`` only with ``model="constant-mean"``).
    event_pos : int
        Column of the real day 0.
    estimation, window : (int, int)
        Relative-day ranges (inclusive).
    stat : {"caar_portfolio", "caar"} or callable
        ``"caar_portfolio"``: Brown-Warner (1985) portfolio t of the CAAR
        (:func:`caar_portfolio_t`); ``"caar"``: raw CAAR; or a callable
        ``f(ar_event, ar_est, n_obs, n_params, forecast_var_factor) -> float`` (keyword
        arguments), e.g. ``lambda **a: bmp_test(**a).statistic``.
    n_draws : int or None
        Pseudo events drawn without replacement (None = all eligible days).
    seed : int or Generator
    buffer : int
        Days around the real event window (and ``other_event_positions``' windows) excluded from
        the pseudo event windows.
    other_event_positions : sequence of int
        Further real events in the sample to keep out of the pseudo windows.
    model, min_estimation_obs : see :func:`market_model_arrays`.
    alternative, two_sided : see :func:`empirical_pvalue`.

    Returns
    -------
    TestResult
        ``name="placebo_<stat>"``, ``statistic`` = observed value, empirical p-value,
        ``estimate`` = observed CAAR.
    """
    y = np.asarray(returns, dtype=float)
    if y.ndim != 2:
        raise StudyConfigError(f"returns must be (N firms, D days), got shape {y.shape}")
    if isinstance(stat, str):
        if stat not in _BUILTIN_STATS:
            raise StudyConfigError(
                f"stat={stat!r}: choose one of {sorted(_BUILTIN_STATS)} or pass a callable"
            )
        stat_name, stat_fn = stat, _BUILTIN_STATS[stat]
    else:
        stat_name, stat_fn = getattr(stat, "__name__", "custom"), stat

    def arrays_at(pos: int) -> dict:
        return market_model_arrays(
            y, market, int(pos), estimation, window, model=model,
            min_estimation_obs=min_estimation_obs,
        )

    observed_arrays = arrays_at(event_pos)
    observed = float(stat_fn(**observed_arrays))
    n_used = int(np.isfinite(observed_arrays["ar_event"]).all(axis=1).sum())
    candidates = placebo_candidate_positions(
        y.shape[1], [event_pos, *other_event_positions], estimation, window, buffer
    )
    return placebo_test(
        lambda p: float(stat_fn(**arrays_at(int(p)))),
        observed,
        candidates.tolist(),
        n_draws,
        seed,
        alternative=alternative,
        two_sided=two_sided,
        name=f"placebo_{stat_name}",
        estimate=caar_statistic(**observed_arrays),
        window=(int(window[0]), int(window[1])),
        n=n_used,
    )
