"""The aligned arrays of a fitted study: one row per included firm-event, one column per day.

:class:`EventPanel` is what every :mod:`crackdown.inference` test consumes: event-window
abnormal returns ``(N, L)``, estimation residuals ``(N, T)``, the fit's degrees of freedom and
forecast-error factors, the benchmark's returns and the calendar dates of each cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.estimation.layout import Deferred, deferred_fields


@dataclass
class EventPanel:
    """Arrays of the ``N`` included firm-events (rows in the order of :attr:`keys`).

    Attributes
    ----------
    keys : pandas.DataFrame
        ``event_id, ticker, exchange, day0, model, flagged, benchmark`` per row.
    rel_days : ndarray (L,)
        Event-window days relative to day 0.
    est_rel_days : ndarray (T,)
        Estimation-window days relative to day 0.
    ar_event : ndarray (N, L)
        Event-window abnormal returns; NaN = missing.
    ar_est : ndarray (N, T)
        Estimation-window residuals on the days used in the fit; NaN elsewhere.
    ret_event : ndarray (N, L)
        Raw returns of the firm on the event days.
    n_obs : ndarray of int (N,)
        Estimation days used.
    n_params : ndarray of int (N,)
        Estimated coefficients (0 for market-adjusted).
    df_resid : ndarray of int (N,)
        Residual degrees of freedom behind ``sigma2``: ``n_obs - n_params`` for regression models,
        ``n_obs - 1`` for market-adjusted (sd with ddof = 1).
    sigma2 : ndarray (N,)
        Estimation-window residual variance (``SSR / df_resid``).
    forecast_var_factor : ndarray (N, L)
        ``1 + x_t'(X'X)^{-1}x_t`` (1 for market-adjusted; NaN on missing days).
    market_est, market_event : ndarray (N, T) and (N, L)
        Benchmark returns on the estimation and event days, NOT masked by the firm's own missing
        days (estudy2's Patell convention uses all index days); NaN when no benchmark.
    dates_est, dates_event : ndarray of datetime64 (N, T) and (N, L)
        Calendar dates of the grid days (NaT outside the grid).

        ``ar_est``, ``market_est`` and ``dates_est`` may be passed as a
        :class:`crackdown.estimation.layout.Deferred` (:meth:`build` does when not every
        firm-event is included): the array is gathered on first read (the same values), so
        a fit whose estimation-window arrays are never read (abnormal returns, CARs) never
        allocates them; the tests read them.
    model : ndarray of str (N,)
    session_grid : {"exchange", "data"}
        Grid of the relative days: each listing's exchange calendar, or the returns index.
    """

    keys: pd.DataFrame
    rel_days: np.ndarray
    est_rel_days: np.ndarray
    ar_event: np.ndarray
    ar_est: np.ndarray
    ret_event: np.ndarray
    n_obs: np.ndarray
    n_params: np.ndarray
    df_resid: np.ndarray
    sigma2: np.ndarray
    forecast_var_factor: np.ndarray
    market_est: np.ndarray
    market_event: np.ndarray
    dates_est: np.ndarray
    dates_event: np.ndarray
    model: np.ndarray
    groups: list = field(default_factory=list, repr=False)
    session_grid: str = "exchange"

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(self.sigma2)

    @property
    def n(self) -> int:
        """Number of rows ``N`` (``len(keys)``; read from ``ar_event`` so that the deferred
        ``keys`` of a :meth:`subset` are not built for it)."""
        return len(self.ar_event)

    def columns(self, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        """Column positions of event days ``lo..hi`` (default: the whole window)."""
        w_lo, w_hi = int(self.rel_days[0]), int(self.rel_days[-1])
        lo = w_lo if lo is None else int(lo)
        hi = w_hi if hi is None else int(hi)
        if hi < lo:
            raise StudyConfigError(f"window {lo}:{hi} ends before it starts")
        if lo < w_lo or hi > w_hi:
            raise StudyConfigError(
                f"window {lo}:{hi} is outside the study's event window {w_lo}:{w_hi}"
            )
        return np.arange(lo - w_lo, hi - w_lo + 1)

    def subset(self, rows: np.ndarray) -> EventPanel:
        """A panel of the given rows (e.g. one event).

        The same arrays as indexing every field with ``rows``; ``keys`` (a small DataFrame,
        ``keys.iloc[rows]`` with a fresh index) is gathered on first read. When this panel's
        information-time alignment is known (:meth:`aligned_residuals` was called on it or on
        the panel it was cut from), the subset reuses it for whole events (see there).
        """
        rows = np.asarray(rows)
        kw = {}
        for name in ("ar_event", "ar_est", "ret_event", "n_obs", "n_params", "df_resid", "sigma2",
                     "forecast_var_factor", "market_est", "market_event", "dates_est",
                     "dates_event", "model"):
            kw[name] = getattr(self, name)[rows]
        groups = []
        if self.groups:
            member = np.zeros(self.n, dtype=bool)
            member[rows] = True
            increasing = bool(np.all(np.diff(rows) > 0))
        for spec, fit, panel_rows, fit_rows in self.groups:
            keep = member[panel_rows]  # == np.isin(panel_rows, rows)
            if keep.any():
                new_pos = np.searchsorted(rows, panel_rows[keep]) if increasing \
                    else np.array([int(np.flatnonzero(rows == r)[0]) for r in panel_rows[keep]])
                groups.append((spec, fit, new_pos, fit_rows[keep]))
        out = EventPanel(keys=Deferred(_take_key_rows, self.keys, rows), rel_days=self.rel_days,
                         est_rel_days=self.est_rel_days, groups=groups,
                         session_grid=self.session_grid, **kw)
        source = self._information_source()
        if source is not None:
            info, parent_rows = source
            out.__dict__[_INHERITED] = (info, parent_rows[rows])
        return out

    @staticmethod
    def _mixed_calendar_rows(event_ids: np.ndarray, exchanges: np.ndarray,
                             same_calendar) -> np.ndarray:
        """Rows of events whose listings are on more than one calendar (a boolean mask).

        One factorization of the events and exchanges and one ``same_calendar`` call per
        distinct set of exchanges (not a scan of every row per event: a panel of pseudo
        events has thousands of events).
        """
        codes, events = pd.factorize(event_ids)
        x_codes, names = pd.factorize(exchanges)
        pairs = np.unique(codes.astype(np.int64) * len(names) + x_codes)
        exchanges_of: dict[int, list[str]] = {}
        for event, x in zip(*(a.tolist() for a in np.divmod(pairs, len(names))), strict=True):
            exchanges_of.setdefault(event, []).append(str(names[x]))
        verdict: dict[tuple[str, ...], bool] = {}
        mixed_event = np.zeros(len(events), dtype=bool)
        for event, listed in exchanges_of.items():
            key = tuple(listed)
            if key not in verdict:
                verdict[key] = not same_calendar(listed)
            mixed_event[event] = verdict[key]
        return mixed_event[codes]

    def aligned_residuals(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Estimation residuals with the rows' sessions paired in information time.

        Per event: rows on one calendar (or on the returns index, ``session_grid="data"``)
        keep ``ar_est`` (columns = relative trading days), so single-exchange tests are
        unchanged; rows of an event on several calendars are re-gridded with
        :func:`crackdown.timeline.information_time.align_in_information_time`, the event's
        relative information day 0 being the earliest information day of its listings' day 0s
        (the Hong Kong session that first prices the news). Different events keep event time
        (column = relative day), as the pooled tests always did. Tests of cross-sectional
        dependence (the portfolio's estimation-window series, Kolari-Pynnönen r̄, Lamb, the
        rank tests' mean-rank series) use this; firm-level variances use each row's own
        ``ar_est``.

        A re-gridded row depends only on its own sessions and its event's origin: after
        :meth:`share_information_time`, a :meth:`subset` made of whole events (every row of
        each of its events) assembles its residuals from the panel's alignment, the same
        arrays as computing them on the subset, without the calendar look-ups (the size
        check's pseudo events).

        Returns
        -------
        residuals : (N, K) array
        rel_days : (K,) array of relative (information) days
        n_summed : int
            Cells that sum several sessions of a listing (the anchor exchange was closed).
        """
        inherited = self.__dict__.get(_INHERITED)
        if inherited is not None and inherited[0].whole_events(inherited[1]):
            return inherited[0].assemble(self.ar_est, self.est_rel_days, inherited[1])
        own = self.__dict__.get(_OWN)
        if own is not None:
            return own.assemble(self.ar_est, self.est_rel_days, None)
        events = _mixed_events(self)
        if events is None or not events.rows.size:
            return self.ar_est, self.est_rel_days, 0
        from crackdown.timeline.information_time import align_in_information_time

        rows = events.rows
        part, part_days, n_summed = align_in_information_time(
            self.ar_est[rows], self.dates_est[rows], events.exchanges, events.origin)
        lo = int(min(self.est_rel_days[0], part_days[0] if len(part_days) else 0))
        hi = int(max(self.est_rel_days[-1], part_days[-1] if len(part_days) else 0))
        out = np.full((self.n, hi - lo + 1), np.nan)
        own_rows = np.flatnonzero(~events.mixed)
        out[np.ix_(own_rows, self.est_rel_days - lo)] = self.ar_est[own_rows]
        if len(part_days):
            out[np.ix_(rows, part_days - lo)] = part
        return out, np.arange(lo, hi + 1), n_summed

    def share_information_time(self) -> None:
        """Align every row in information time once and keep it for subsets (:meth:`subset`).

        Afterwards :meth:`aligned_residuals` of this panel, and of each subset of whole
        events cut from it (or from such a subset), are assembled from the kept alignment
        (:class:`_InformationRows`; whole events per call of the aligner, the same arrays).
        For many small subsets of one panel (the size check and placebo test of an event at
        their pseudo dates); memory: one ``(mixed rows, K)`` array kept with the panel.
        """
        if _OWN not in self.__dict__:
            self.__dict__[_OWN] = _InformationRows.build(self)

    def _information_source(self) -> tuple[_InformationRows, np.ndarray] | None:
        """Known alignment of this panel's rows: ``(info, rows of info's panel)`` or None."""
        own = self.__dict__.get(_OWN)
        if own is not None:
            return own, np.arange(self.n)
        return self.__dict__.get(_INHERITED)

    def __getstate__(self) -> dict:
        """Pickle the fields only (the information-time cache is rebuilt on demand)."""
        state = dict(self.__dict__)
        state.pop(_OWN, None)
        state.pop(_INHERITED, None)
        return state

    def standardization(self, window: tuple[int, int]) -> dict:
        """Keyword arguments of the standardized tests over ``window`` (relative days).

        ``n_params``, ``sigma_ddof = n_obs - df_resid`` (k for regressions, 1 for
        market-adjusted), the forecast-error factors and the exact CAR factor
        ``V_i = car_variance / sigma2`` (the window length where it is not defined).
        """
        cols = self.columns(*window)
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = self.car_variance(cols) / self.sigma2
        return {"n_params": self.n_params, "sigma_ddof": self.n_obs - self.df_resid,
                "forecast_var_factor": self.forecast_var_factor,
                "car_var_factor": np.where(np.isfinite(factor), factor, len(cols))}

    def car_variance(self, cols: np.ndarray) -> np.ndarray:
        """Forecast-error variance of each row's CAR over event columns ``cols`` (see module)."""
        day_mask = np.zeros(self.ar_event.shape[1], dtype=bool)
        day_mask[cols] = True
        out = np.full(self.n, np.nan)
        for _spec, fit, panel_rows, fit_rows in self.groups:
            v = fit.car_variance(day_mask)
            out[panel_rows] = v[fit_rows]
        return out

    @classmethod
    def build(cls, study, lay, fits, included, model_used, flagged) -> EventPanel:
        """The panel of the ``included`` rows of ``lay`` from the ``fits`` of
        :meth:`crackdown.estimation.study.EventStudy.fit` (``(spec, rows, fit)`` triples).

        Panel row ``p`` is the ``p``-th included layout row (``rows = flatnonzero(included)``);
        a fitted row ``r`` goes to ``p = cumsum(included)[r] - 1``. Every included row is in
        exactly one fit. Nothing is copied that need not be: when one fit holds every
        included row in order, ``ar_est`` is that fit's residual array (every fitted row
        included) or a gather of its rows on first read; ``market_est`` and ``dates_est`` are
        the layout's arrays when every row is included (or, not read yet, gathered on first
        read as the layout's would be) and otherwise gathered on first read
        (:class:`crackdown.estimation.layout.Deferred`). The values are those of a copy.
        """
        rows = np.flatnonzero(included)
        pos = np.cumsum(included, dtype=np.intp) - 1  # panel row of an included layout row
        n, t_len = len(rows), lay.clean_mask.shape[1]
        l_len = lay.y_event.shape[1]
        ar_event = np.full((n, l_len), np.nan)
        fvf = np.full((n, l_len), np.nan)
        n_obs = np.zeros(n, dtype=int)
        n_params = np.zeros(n, dtype=int)
        df_resid = np.zeros(n, dtype=int)
        sigma2 = np.full(n, np.nan)
        groups, parts = [], []
        for spec, frows, fit in fits:
            frows = np.asarray(frows, dtype=np.intp)
            sel = included[frows]
            if not sel.any():
                continue
            prow = pos[frows[sel]]
            ar_event[prow] = fit.ar_event[sel]
            fvf[prow] = fit.forecast_var_factor[sel]
            n_obs[prow] = fit.n_obs[sel]
            n_params[prow] = spec.n_params
            df_resid[prow] = fit.df_resid[sel]
            sigma2[prow] = fit.sigma2[sel]
            groups.append((spec, fit, prow, np.flatnonzero(sel)))
            parts.append((fit, sel, prow))
        ar_est = _panel_residuals(parts, n, t_len)
        fe = lay.keys
        model = model_used.astype(str)[rows]
        keys = pd.DataFrame(
            {
                "event_id": fe["event_id"].to_numpy()[rows],
                "ticker": fe["ticker"].to_numpy()[rows],
                "exchange": fe["exchange"].to_numpy()[rows],
                "day0": fe["day0"].to_numpy()[rows],
                "model": model,
                "flagged": flagged[rows],
                "benchmark": fe["benchmark"].to_numpy()[rows],
            }
        )
        every = n == len(included)  # every layout row is a panel row, in order
        e_lo, e_hi = study.estimation
        w_lo, w_hi = study.window
        return cls(
            keys=keys,
            rel_days=np.arange(w_lo, w_hi + 1),
            est_rel_days=np.arange(e_lo, e_hi + 1),
            ar_event=ar_event,
            ar_est=ar_est,
            ret_event=lay.y_event[rows],
            n_obs=n_obs,
            n_params=n_params,
            df_resid=df_resid,
            sigma2=sigma2,
            forecast_var_factor=fvf,
            market_est=lay.deferred_rows("bench_est", None if every else rows),
            market_event=lay.bench_event[rows],
            dates_est=lay.deferred_dates_est(None if every else rows),
            dates_event=lay.dates_event[rows],
            model=model.copy(),
            groups=groups,
            session_grid=study.session_grid,
        )


# ``ar_est``, ``market_est`` and ``dates_est`` may be given as a Deferred gather (build),
# ``keys`` too (subset)
deferred_fields(EventPanel, ("ar_est", "market_est", "dates_est", "keys"))

#: ``EventPanel.__dict__`` keys of the information-time cache (not dataclass fields).
_OWN, _INHERITED = "_information_rows_own", "_information_rows_inherited"


def _take_key_rows(keys: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``keys.iloc[rows]`` with a fresh RangeIndex (module level, so a Deferred pickles)."""
    return keys.iloc[rows].reset_index(drop=True)


def _str_values(column: pd.Series) -> np.ndarray:
    """``column.astype(str).to_numpy()`` without the pandas conversion when it is str already."""
    values = column.to_numpy()
    if values.dtype == object and all(type(v) is str for v in values.tolist()):
        return values
    return column.astype(str).to_numpy()


def _event_minimum(codes: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """Per row, the minimum of ``values`` (datetime64[ns]) over the rows of its group.

    NaT is skipped (NaT only when the whole group is NaT), as
    ``pandas.Series(values).groupby(codes).transform("min")``; ``np.minimum.at`` on the int64
    view with NaT mapped to the int64 maximum.
    """
    nat, top = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    ints = values.astype("datetime64[ns]").view(np.int64)
    ints = np.where(ints == nat, top, ints)
    low = np.full(n_groups, top, dtype=np.int64)
    np.minimum.at(low, codes, ints)
    low = np.where(low == top, nat, low)
    return low[codes].view("datetime64[ns]")


@dataclass(frozen=True)
class _MixedEvents:
    """Rows of a panel's events on several calendars and each one's information-time origin.

    ``codes`` / ``counts``: each row's event (0..E-1) and the rows per event; ``mixed``: the
    rows of events listed on more than one calendar, ``rows = flatnonzero(mixed)``, their
    ``exchanges`` and ``origin`` (the earliest information day of the event's day 0s).
    """

    codes: np.ndarray
    counts: np.ndarray
    mixed: np.ndarray
    rows: np.ndarray
    exchanges: np.ndarray
    origin: np.ndarray


def _mixed_events(panel: EventPanel) -> _MixedEvents | None:
    """:class:`_MixedEvents` of ``panel``; None when every row keeps ``ar_est`` as it is (the
    ``"data"`` grid, or a row without an exchange)."""
    from crackdown.timeline.information_time import information_day, same_calendar

    keys = panel.keys
    exchanges = _str_values(keys["exchange"])
    if panel.session_grid != "exchange" or (exchanges == "").any():
        return None
    event_ids = _str_values(keys["event_id"])
    names, codes, counts = np.unique(event_ids, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    mixed = panel._mixed_calendar_rows(event_ids, exchanges, same_calendar)
    rows = np.flatnonzero(mixed)
    x_rows = exchanges[rows]
    keys0 = np.empty(len(rows), dtype="datetime64[ns]")
    if len(rows):
        day0 = keys["day0"].to_numpy(dtype="datetime64[ns]")[rows]
        for x in pd.unique(x_rows):
            sel = x_rows == x
            keys0[sel] = information_day(day0[sel], x)
    origin = _event_minimum(codes[rows], len(names), keys0)
    return _MixedEvents(codes, counts, mixed, rows, x_rows, origin)


#: Rows of estimation residuals re-gridded per call of ``align_in_information_time`` when a
#: panel's alignment is built (whole events per call; small calls stay in the CPU caches).
_ALIGN_CHUNK_ROWS = 96


def _align_by_chunks(est, dates, exchanges, origin, event_codes, align):
    """Re-grid ``est`` (mixed rows, events contiguous or not) onto information days in chunks.

    Each call of ``align`` (:func:`~crackdown.timeline.information_time.align_in_information_time`)
    gets whole events (``event_codes``) of about :data:`_ALIGN_CHUNK_ROWS` rows, with the
    residuals and, below them, ones: a cell of the ones is NaN where the row has no session and
    counts its sessions elsewhere. A row's cells depend only on its own sessions and origin,
    so the chunks' columns are placed on one grid of relative information days (NaN where a
    row has no session, as a single call would give).

    Returns
    -------
    part : (n, W) array on relative information days ``part_lo ..``
    first, last : (n,) int arrays, the row's first and last column with a session (-1: none)
    summed : (n,) int array, cells that sum several sessions
    part_lo : int
    """
    n = len(est)
    order = np.argsort(event_codes, kind="stable")  # whole events per chunk
    bounds = np.flatnonzero(np.diff(event_codes[order])) + 1
    starts = [0]
    for b in bounds.tolist():
        if b - starts[-1] >= _ALIGN_CHUNK_ROWS:
            starts.append(b)
    starts.append(n)
    pieces = []
    for a, b in pairwise(starts):
        rows = order[a:b]
        e, d, x, o = est[rows], dates[rows], exchanges[rows], origin[rows]
        both, days, _ = align(np.vstack([e, np.ones_like(e)]), np.vstack([d, d]),
                              np.concatenate([x, x]), np.concatenate([o, o]))
        pieces.append((rows, both[: len(rows)], both[len(rows):],
                       int(days[0]) if len(days) else 0))
    width_of = [p.shape[1] for _, p, _, _ in pieces]
    used = [lo for (_, _, _, lo), w in zip(pieces, width_of, strict=True) if w]
    part_lo = min(used) if used else 0
    part_hi = max((lo + w - 1 for (_, _, _, lo), w in zip(pieces, width_of, strict=True) if w),
                  default=part_lo - 1)
    part = np.full((n, part_hi - part_lo + 1), np.nan)
    first = np.full(n, -1, dtype=np.intp)
    last = np.full(n, -1, dtype=np.intp)
    summed = np.zeros(n, dtype=np.intp)
    for (rows, values, sessions, lo), w in zip(pieces, width_of, strict=True):
        if not w:
            continue
        shift = lo - part_lo
        part[rows, shift:shift + w] = values
        have = ~np.isnan(sessions)
        any_day = have.any(axis=1)
        first[rows] = np.where(any_day, shift + np.argmax(have, axis=1), -1)
        last[rows] = np.where(any_day, shift + w - 1 - np.argmax(have[:, ::-1], axis=1), -1)
        summed[rows] = ((sessions > 1) & ~np.isnan(values)).sum(axis=1)
    return part, first, last, summed, part_lo


@dataclass(frozen=True)
class _InformationRows:
    """Information-time alignment of every row of a panel, kept to be cut by row.

    ``codes`` / ``counts``: each row's event (0..E-1) and the rows per event; ``mixed``: rows of
    events on several calendars; for those (``pos[row]`` into the part arrays, -1 otherwise)
    ``part`` holds the re-gridded residuals on relative information days ``part_lo + j``,
    ``first`` / ``last`` the first and last column with a session (-1: none) and ``summed``
    the cells that sum several sessions. The columns a subset gets are
    ``min(first)..max(last)`` over its mixed rows: the range
    :func:`~crackdown.timeline.information_time.align_in_information_time` gives those rows.
    """

    codes: np.ndarray
    counts: np.ndarray
    mixed: np.ndarray
    pos: np.ndarray
    part: np.ndarray
    part_lo: int
    first: np.ndarray
    last: np.ndarray
    summed: np.ndarray

    @classmethod
    def build(cls, panel: EventPanel) -> _InformationRows | None:
        """The alignment of ``panel``'s rows; None when every row keeps ``ar_est`` as it is
        (the ``"data"`` grid or a row without an exchange)."""
        from crackdown.timeline.information_time import align_in_information_time

        events = _mixed_events(panel)
        if events is None:
            return None
        rows = events.rows
        pos = np.full(len(events.mixed), -1, dtype=np.intp)
        pos[rows] = np.arange(len(rows))
        if not len(rows):
            empty = np.zeros(0, dtype=np.intp)
            return cls(events.codes, events.counts, events.mixed, pos, np.zeros((0, 0)), 0,
                       empty, empty, empty)
        part, first, last, summed, part_lo = _align_by_chunks(
            panel.ar_est[rows], panel.dates_est[rows], events.exchanges, events.origin,
            events.codes[rows], align_in_information_time)
        return cls(events.codes, events.counts, events.mixed, pos, part, part_lo, first, last,
                   summed)

    def whole_events(self, rows: np.ndarray) -> bool:
        """True when ``rows`` (distinct) hold every row of each of their events."""
        rows = np.asarray(rows)
        if len(np.unique(rows)) != len(rows):
            return False
        events, counts = np.unique(self.codes[rows], return_counts=True)
        return bool(np.array_equal(self.counts[events], counts))

    def assemble(self, ar_est: np.ndarray, est_rel_days: np.ndarray,
                 rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """:meth:`EventPanel.aligned_residuals` of the panel of ``rows`` (None: every row),
        whose estimation residuals are ``ar_est``."""
        mixed = self.mixed if rows is None else self.mixed[rows]
        if not mixed.any():
            return ar_est, est_rel_days, 0
        n = len(mixed)
        local = np.flatnonzero(mixed)
        p = self.pos[local] if rows is None else self.pos[rows[local]]
        first, last = self.first[p], self.last[p]
        have = first >= 0
        n_summed = int(self.summed[p].sum())
        if have.any():
            c_lo, c_hi = int(first[have].min()), int(last[have].max())
            part = self.part[p][:, c_lo:c_hi + 1]
            part_days = np.arange(self.part_lo + c_lo, self.part_lo + c_hi + 1)
        else:
            part, part_days = np.zeros((len(p), 0)), np.zeros(0, dtype=int)
        lo = int(min(est_rel_days[0], part_days[0] if len(part_days) else 0))
        hi = int(max(est_rel_days[-1], part_days[-1] if len(part_days) else 0))
        out = np.full((n, hi - lo + 1), np.nan)
        own = np.setdiff1d(np.arange(n), local)
        out[np.ix_(own, est_rel_days - lo)] = ar_est[own]
        if len(part_days):
            out[np.ix_(local, part_days - lo)] = part
        return out, np.arange(lo, hi + 1), n_summed


def _take_rows(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``a[rows]`` (a module-level function: a :class:`Deferred` of it can be pickled)."""
    return a[rows]


def _panel_residuals(parts: list, n: int, t_len: int) -> np.ndarray:
    """The ``(n, T)`` estimation residuals of the panel from ``(fit, sel, prow)`` per fit.

    One fit covering panel rows ``0..n-1`` in order: its own ``ar_est`` when every fitted row
    is included (C-contiguous float64, as a copy would be; not copied), else a
    :class:`Deferred` gather of its included rows (made on first read). Otherwise a NaN array
    with each fit's included rows scattered in.
    """
    if len(parts) == 1:
        fit, sel, prow = parts[0]
        a = fit.ar_est
        if (len(prow) == n and bool((prow == np.arange(n)).all())
                and a.dtype == np.float64 and a.flags.c_contiguous):
            return a if bool(sel.all()) else Deferred(_take_rows, a, sel)
    out = np.full((n, t_len), np.nan)
    for fit, sel, prow in parts:
        out[prow] = fit.ar_est[sel]
    return out
