"""Event-time confidence bands in the style of the R package ``eventstudies`` (xKDR, CRAN 1.2.2).

Workflow (as in ``eventstudies``):

1. :func:`phys_to_event_time` re-indexes each event's series to event time (0 = event day),
   reporting per event ``success``, ``unitmissing``, ``wrongspan`` or ``wdatamissing``.
2. Take a window, e.g. ``frame.loc[-1:1]``, then :func:`remap_cumsum` (first row set to 0, then
   cumulative sum plus ``base``).
3. Bands across events at each event time: :func:`classic_interval` (t interval around the mean),
   :func:`wilcox_interval` (median with Walsh-average bounds), :func:`bootstrap_interval`
   (percentile bootstrap of the mean).

Interval functions take ``paths`` of shape ``(n_events, n_times)`` (one row per event, as the
``(N, L)`` arrays elsewhere in :mod:`crackdown.inference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.inference.base import t_ppf

__all__ = [
    "EventTimeData",
    "EventTimeIntervals",
    "bootstrap_interval",
    "classic_interval",
    "phys_to_event_time",
    "psignrank",
    "remap_cumsum",
    "wilcox_interval",
]


@dataclass(frozen=True)
class EventTimeIntervals:
    """Lower bound, centre and upper bound at each event time."""

    event_time: np.ndarray
    lower: np.ndarray
    center: np.ndarray
    upper: np.ndarray
    method: str
    center_is: str
    convention: str

    def to_frame(self) -> pd.DataFrame:
        """Columns event_time, lower, center, upper, method, center_is."""
        return pd.DataFrame({
            "event_time": self.event_time, "lower": self.lower, "center": self.center,
            "upper": self.upper, "method": self.method, "center_is": self.center_is,
        })


def _paths(paths, event_time):
    x = np.asarray(paths, dtype=float)
    if x.ndim != 2:
        raise StudyConfigError(
            f"paths must be 2-D (n_events x n_times); got shape {x.shape}."
        )
    if x.shape[0] < 2:
        raise StudyConfigError(
            f"inference across events needs at least 2 events; got {x.shape[0]}."
        )
    et = np.arange(x.shape[1]) if event_time is None else np.asarray(event_time)
    if et.shape != (x.shape[1],):
        raise StudyConfigError(f"event_time must have {x.shape[1]} entries; got {et.shape}.")
    return x, et


def classic_interval(paths, *, event_time=None, level: float = 0.95) -> EventTimeIntervals:
    """Mean ± t_{(1+level)/2, n-1} · sd/√n at each event time (R ``t.test`` interval).

    NaNs in a column are dropped (R ``t.test`` removes them). If a column has zero spread the
    interval is NaN (R's ``t.test`` refuses constant data; eventstudies reports NaN bounds, e.g.
    at the base date of a cumulated path).
    """
    x, et = _paths(paths, event_time)
    lo, mid, hi = (np.full(x.shape[1], np.nan) for _ in range(3))
    for j in range(x.shape[1]):
        v = x[:, j][~np.isnan(x[:, j])]
        n = v.size
        if n == 0:
            continue
        mid[j] = v.mean()
        sd = v.std(ddof=1) if n > 1 else 0.0
        if n > 1 and sd > 0:
            half = t_ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
            lo[j], hi[j] = mid[j] - half, mid[j] + half
    return EventTimeIntervals(et, lo, mid, hi, "classic", "mean",
                              f"mean ± t_(n-1) sd/sqrt(n), level={level}")


def psignrank(q, n: int) -> np.ndarray:
    """Exact CDF ``P(W+ <= q)`` of the Wilcoxon signed-rank statistic for ``n`` untied values.

    Same as R ``psignrank``. Computed by counting the subsets of ``{1..n}`` with each rank sum.
    """
    n = int(n)
    m = n * (n + 1) // 2
    counts = np.zeros(m + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):  # add rank r to every subset of {1..r-1}
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[: m + 1 - r]
        counts = counts + shifted
    cdf = np.cumsum(counts) / 2.0**n
    q = np.floor(np.asarray(q, dtype=float))
    out = np.where(q < 0, 0.0, cdf[np.clip(q, 0, m).astype(int)])
    return out


def wilcox_interval(paths, *, event_time=None, prob: float = 0.975) -> EventTimeIntervals:
    """Median with a Walsh-average (Hodges-Lehmann type) band, as ``eventstudies::inference.wilcox``.

    For each event time with values ``x`` (n of them, no NaN allowed): the ``m = n(n+1)/2``
    Walsh averages ``(x_i + x_j)/2, i <= j`` are sorted; ``f`` = number of ``k = 1..floor(m/2)``
    with ``1 - 2 P(W+ <= k) >= prob``; bounds = the ``(f+1)``-th and ``(m-f)``-th Walsh averages.
    The centre is the median of ``x``.

    ``eventstudies`` calls this rule with ``prob=0.975`` (the default here) although it labels
    the columns 2.5% / 97.5%; pass ``prob=0.95`` for a nominal 95% band. With n = 3 no ``k``
    qualifies for either value, so the bounds are min(x) and max(x).
    """
    x, et = _paths(paths, event_time)
    if np.isnan(x).any():
        raise StudyConfigError(
            "wilcox_interval: paths contain NaN; drop the incomplete events first "
            "(eventstudies' rule is undefined with missing values)."
        )
    n = x.shape[0]
    m = n * (n + 1) // 2
    k = np.arange(1, m // 2 + 1)
    conf = 1.0 - 2.0 * psignrank(k, n)
    f = int(np.sum(conf >= prob))
    iu = np.triu_indices(n)
    lo, mid, hi = (np.empty(x.shape[1]) for _ in range(3))
    for j in range(x.shape[1]):
        v = x[:, j]
        walsh = np.sort(((v[:, None] + v[None, :]) / 2.0)[iu])
        lo[j], hi[j] = walsh[f], walsh[m - f - 1]
        mid[j] = np.median(v)
    return EventTimeIntervals(et, lo, mid, hi, "wilcox", "median",
                              f"Walsh averages ({f + 1}, {m - f}) of {m}; prob={prob}")


def bootstrap_interval(
    paths, *, event_time=None, level: float = 0.95, n_boot: int = 1000, seed: int | None = 0
) -> EventTimeIntervals:
    """Percentile bootstrap of the cross-event mean path (``eventstudies::inference.bootstrap``).

    Events (rows) are resampled with replacement ``n_boot`` times with
    ``numpy.random.default_rng(seed)``; the centre is the sample mean, the bounds the
    ``(1 ± level)/2`` quantiles (linear interpolation, R's type 7) of the resampled means.

    The numbers depend on the random stream, so they cannot match R's ``boot`` draw for draw:
    only structural properties can be compared. With 3 events and 1000 draws a resample equals
    one event three times with probability 1/27 per event (about 37 draws each), so the 2.5% and
    97.5% quantiles are usually the minimum and maximum of the events, but for a given seed not
    always (roughly a 2-5% chance); ``tests/test_inference_intervals.py`` rebuilds the draw from
    the seed instead.
    """
    x, et = _paths(paths, event_time)
    if n_boot < 1:
        raise StudyConfigError(f"n_boot must be >= 1; got {n_boot}.")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    with np.errstate(invalid="ignore"):
        means = np.nanmean(x[idx], axis=1)  # (n_boot, n_times)
        lo = np.nanquantile(means, (1 - level) / 2, axis=0)
        hi = np.nanquantile(means, 1 - (1 - level) / 2, axis=0)
        mid = np.nanmean(x, axis=0)
    return EventTimeIntervals(et, lo, mid, hi, "bootstrap", "mean",
                              f"percentile bootstrap of the mean, {n_boot} draws, seed={seed}, "
                              f"level={level}")


@dataclass(frozen=True)
class EventTimeData:
    """Result of :func:`phys_to_event_time`.

    ``frame``: index = event time (int), one column per successful event (labelled by the
    events table's index). ``outcomes``: one entry per input event, in order. ``event_dates``:
    the data date mapped to event time 0 for each successful event.
    """

    frame: pd.DataFrame
    outcomes: pd.Series
    event_dates: dict = field(default_factory=dict)


def phys_to_event_time(data: pd.DataFrame, events: pd.DataFrame, width: int = 10) -> EventTimeData:
    """Re-index series to event time, following ``eventstudies::phys2eventtime``.

    Parameters
    ----------
    data : DataFrame
        Wide panel, sorted DatetimeIndex, one column per unit (e.g. log returns).
    events : DataFrame
        Columns ``name`` (unit) and ``when`` (date).
    width : int
        Half-width of the window whose data must be complete.

    Rules
    -----
    * ``unitmissing``: ``name`` is not a column of ``data``.
    * Event day 0 is the last date of ``data`` on or before ``when`` (a non-trading date maps to
      the previous trading day); with ``loc`` its 1-based position, ``wrongspan`` when
      ``loc <= width - 1`` or ``loc > len(data) - width``.
    * ``wdatamissing``: a NaN at event times ``-width+1 .. +width`` (eventstudies checks this
      range, not ``-width .. +width``; a missing day ``-width`` is kept).
    * otherwise ``success``.
    """
    if not isinstance(data, pd.DataFrame) or not isinstance(data.index, pd.DatetimeIndex):
        raise StudyConfigError("data must be a DataFrame with a DatetimeIndex (dates x units).")
    if not data.index.is_monotonic_increasing:
        raise StudyConfigError("data index must be sorted by date.")
    missing_cols = {"name", "when"} - set(events.columns)
    if missing_cols:
        raise StudyConfigError(f"events needs columns name and when; missing {sorted(missing_cols)}.")
    if width <= 0:
        raise StudyConfigError(f"width must be positive; got {width}.")
    n = len(data.index)
    outcomes, columns, dates = {}, {}, {}
    for label, row in events.iterrows():
        name, when = row["name"], pd.Timestamp(row["when"])
        if name not in data.columns:
            outcomes[label] = "unitmissing"
            continue
        loc = int(data.index.searchsorted(when, side="right"))  # count of dates <= when
        if loc <= width - 1 or loc > n - width:
            outcomes[label] = "wrongspan"
            continue
        series = pd.Series(data[name].to_numpy(dtype=float), index=np.arange(n) + 1 - loc)
        crucial = series.loc[-width + 1: width]
        if crucial.isna().any():
            outcomes[label] = "wdatamissing"
            continue
        outcomes[label] = "success"
        columns[label] = series
        dates[label] = data.index[loc - 1]
    frame = pd.DataFrame(columns) if columns else pd.DataFrame()
    if columns:
        frame.index.name = "event_time"
    return EventTimeData(frame=frame, outcomes=pd.Series(outcomes, name="outcome"),
                         event_dates=dates)


def remap_cumsum(frame: pd.DataFrame, base: float = 0.0) -> pd.DataFrame:
    """``eventstudies::remap.cumsum(is.pc=FALSE, base)``: first row := 0, then ``base + cumsum``.

    The first row is the base date of each path (so a missing return there does not matter).
    A NaN later in a column propagates to the following rows (R ``cumsum`` semantics).
    """
    out = frame.astype(float).copy()
    if len(out) == 0:
        return out
    out.iloc[0, :] = 0.0
    return base + out.cumsum(skipna=False)
