"""Results of an event study: tidy tables, the arrays inference consumes, text and exports.

:class:`EventStudyResults` is what :meth:`crackdown.study.EventStudy.fit` returns. Every table
is a tidy :class:`pandas.DataFrame` (one row per firm-event-day, firm-event or event);
:attr:`EventStudyResults.panel` holds the numpy arrays that :mod:`crackdown.inference`
functions take.

Conventions
-----------
* ``AR_it = r_it - E[r_it]`` (excess returns for factor models); ``CAR_i(lo, hi) = sum AR_it``
  over the days, NaN when a day is missing (never summed over a gap).
* ``AAR_t`` = cross-sectional mean of the available ARs on day ``t``;
  ``CAAR(lo, hi) = sum_t AAR_t`` (the estudy2 / MacKinlay 1997 definition).
* ``Var(CAR_i) = sigma_i^2 (L + s'(X'X)^{-1}s)`` with ``s`` the sum of the event-day regressors
  (exact forecast-error variance of the summed prediction errors); ``t = CAR/se`` with a
  Student t reference distribution on ``df_resid`` degrees of freedom.
* ``BHAR_i = prod(1 + r_it) - prod(1 + E[r_it])`` (log returns are compounded as
  ``exp(sum r)``), with ``E[r]`` the model's normal return or the benchmark's return.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from crackdown.errors import StudyConfigError

AR_COLUMNS = ("event_id", "ticker", "exchange", "day0", "rel_day", "date", "ar", "car", "model",
              "flagged")
EXPORTS = ("ar", "car", "aar", "caar", "bhar", "fits", "outcomes", "tests")


@dataclass
class EventPanel:
    """Arrays of the ``N`` included firm-events (rows in the order of :attr:`keys`).

    Attributes
    ----------
    keys : pandas.DataFrame
        ``event_id, ticker, exchange, day0, model, flagged`` per row.
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
    model : ndarray of str (N,)
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

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(self.sigma2)

    @property
    def n(self) -> int:
        return len(self.keys)

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
        """A panel of the given rows (e.g. one event)."""
        rows = np.asarray(rows)
        kw = {}
        for name in ("ar_event", "ar_est", "ret_event", "n_obs", "n_params", "df_resid", "sigma2",
                     "forecast_var_factor", "market_est", "market_event", "dates_est",
                     "dates_event", "model"):
            kw[name] = getattr(self, name)[rows]
        groups = []
        for spec, fit, panel_rows, fit_rows in self.groups:
            keep = np.isin(panel_rows, rows)
            if keep.any():
                new_pos = np.searchsorted(rows, panel_rows[keep]) if np.all(np.diff(rows) > 0) \
                    else np.array([int(np.flatnonzero(rows == r)[0]) for r in panel_rows[keep]])
                groups.append((spec, fit, new_pos, fit_rows[keep]))
        return EventPanel(keys=self.keys.iloc[rows].reset_index(drop=True), rel_days=self.rel_days,
                          est_rel_days=self.est_rel_days, groups=groups, **kw)

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
        rows = np.flatnonzero(included)
        pos_of = {int(r): p for p, r in enumerate(rows)}
        n, t_len = len(rows), lay.y_est.shape[1]
        l_len = lay.y_event.shape[1]
        ar_event = np.full((n, l_len), np.nan)
        ar_est = np.full((n, t_len), np.nan)
        fvf = np.full((n, l_len), np.nan)
        n_obs = np.zeros(n, dtype=int)
        n_params = np.zeros(n, dtype=int)
        df_resid = np.zeros(n, dtype=int)
        sigma2 = np.full(n, np.nan)
        groups = []
        for spec, frows, fit in fits:
            sel = np.array([int(r) in pos_of for r in frows], dtype=bool)
            if not sel.any():
                continue
            prow = np.array([pos_of[int(r)] for r in frows[sel]])
            ar_event[prow] = fit.ar_event[sel]
            ar_est[prow] = fit.ar_est[sel]
            fvf[prow] = fit.forecast_var_factor[sel]
            n_obs[prow] = fit.n_obs[sel]
            n_params[prow] = spec.n_params
            df_resid[prow] = fit.df_resid[sel]
            sigma2[prow] = fit.sigma2[sel]
            groups.append((spec, fit, prow, np.flatnonzero(sel)))
        fe = lay.keys
        keys = pd.DataFrame(
            {
                "event_id": fe["event_id"].to_numpy()[rows],
                "ticker": fe["ticker"].to_numpy()[rows],
                "exchange": fe["exchange"].to_numpy()[rows],
                "day0": fe["day0"].to_numpy()[rows],
                "model": model_used.astype(str)[rows],
                "flagged": flagged[rows],
            }
        )
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
            market_est=lay.bench_est[rows],
            market_event=lay.bench_event[rows],
            dates_est=lay.dates_est[rows],
            dates_event=lay.dates_event[rows],
            model=model_used.astype(str)[rows],
            groups=groups,
        )


class EventStudyResults:
    """Output of :meth:`crackdown.study.EventStudy.fit`.

    Attributes
    ----------
    study : EventStudy
        The study (settings and inputs).
    panel : EventPanel
        Arrays for :mod:`crackdown.inference`.
    outcomes : pandas.DataFrame
        One row per firm-event: ``event_id, ticker, exchange, day0, status, detail, model,
        n_estimation_obs, included, flagged`` (statuses: :data:`crackdown.study.OUTCOME_STATUSES`).
    """

    def __init__(self, study, panel: EventPanel, outcomes: pd.DataFrame) -> None:
        self.study = study
        self.panel = panel
        self.outcomes = outcomes

    def __repr__(self) -> str:
        counts = self.outcomes["status"].value_counts().to_dict()
        return (
            f"EventStudyResults(model={self.study.model!r}, firm_events={len(self.outcomes)}, "
            f"included={self.panel.n}, outcomes={counts})"
        )

    # ------------------------------------------------------------------ tidy tables
    @property
    def ar(self) -> pd.DataFrame:
        """Abnormal returns, one row per included firm-event and event-window day.

        Columns ``event_id, ticker, exchange, day0, rel_day, date, ar, car, model, flagged,
        ret, normal_ret`` where ``car`` cumulates ``ar`` from the first event-window day (NaN from
        a missing day on) and ``normal_ret = ret - ar`` (for factor models ``rf + x'b``).
        """
        p = self.panel
        n, l_len = p.ar_event.shape
        car = np.cumsum(p.ar_event, axis=1)
        rep = lambda col: np.repeat(p.keys[col].to_numpy(), l_len)
        frame = pd.DataFrame(
            {
                "event_id": rep("event_id"),
                "ticker": rep("ticker"),
                "exchange": rep("exchange"),
                "day0": pd.to_datetime(rep("day0")),
                "rel_day": np.tile(p.rel_days, n),
                "date": pd.to_datetime(p.dates_event.reshape(-1)),
                "ar": p.ar_event.reshape(-1),
                "car": car.reshape(-1),
                "model": rep("model"),
                "flagged": rep("flagged").astype(bool),
                "ret": p.ret_event.reshape(-1),
                "normal_ret": (p.ret_event - p.ar_event).reshape(-1),
            }
        )
        return frame

    def car(self, lo: int | None = None, hi: int | None = None) -> pd.DataFrame:
        """Cumulative abnormal return of each firm-event over event days ``lo..hi``.

        Columns ``event_id, ticker, exchange, day0, model, lo, hi, car, se, t, df, pvalue,
        n_days, flagged``: ``se = sqrt(Var(CAR))`` (forecast-error variance, see module),
        ``t = car / se``, two-sided p-value from Student t with ``df = df_resid``. ``car`` is NaN
        when a day in the window is missing.
        """
        p = self.panel
        cols = p.columns(lo, hi)
        sub = p.ar_event[:, cols]
        car = sub.sum(axis=1)  # NaN if any day missing
        var = p.car_variance(cols)
        se = np.sqrt(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = car / se
        pval = 2.0 * stats.t.sf(np.abs(t), p.df_resid)
        out = p.keys[["event_id", "ticker", "exchange", "day0", "model"]].copy()
        out["lo"] = int(p.rel_days[cols[0]])
        out["hi"] = int(p.rel_days[cols[-1]])
        out["car"] = car
        out["se"] = np.where(np.isfinite(car), se, np.nan)
        out["t"] = t
        out["df"] = p.df_resid
        out["pvalue"] = pval
        out["n_days"] = np.isfinite(sub).sum(axis=1)
        out["flagged"] = p.keys["flagged"].to_numpy()
        return out

    def _event_groups(self):
        ids = self.panel.keys["event_id"].to_numpy()
        groups = [(e, np.flatnonzero(ids == e)) for e in dict.fromkeys(ids)]
        if len(groups) > 1:
            groups.append(("ALL", np.arange(len(ids))))
        return groups

    def _event_exchange_groups(self):
        keys = self.panel.keys
        ids, exchanges = keys["event_id"].to_numpy(), keys["exchange"].to_numpy()
        return [
            ((e, x), np.flatnonzero((ids == e) & (exchanges == x)))
            for e, x in dict.fromkeys(zip(ids, exchanges))
        ]

    @property
    def aar(self) -> pd.DataFrame:
        """Average abnormal return per event and event day (plus ``event_id="ALL"`` pooled over
        events when there are several): ``event_id, rel_day, aar, n`` where ``n`` counts the
        firm-events with an AR that day."""
        p = self.panel
        rows = []
        for eid, idx in self._event_groups():
            sub = p.ar_event[idx]
            cnt = np.isfinite(sub).sum(axis=0)
            with np.errstate(invalid="ignore"):
                mean = np.nansum(sub, axis=0) / cnt
            for j, d in enumerate(p.rel_days):
                rows.append({"event_id": eid, "rel_day": int(d),
                             "aar": mean[j] if cnt[j] else np.nan, "n": int(cnt[j])})
        return pd.DataFrame(rows, columns=["event_id", "rel_day", "aar", "n"])

    def caar(self, lo: int | None = None, hi: int | None = None) -> pd.DataFrame:
        """Cumulative average abnormal return per event over ``lo..hi``.

        Columns ``event_id, lo, hi, caar, mean_car, n, n_complete``: ``caar = sum_t AAR_t``;
        ``mean_car`` = mean CAR over the ``n_complete`` firm-events with every day present;
        ``n`` = firm-events with at least one AR in the window.
        """
        p = self.panel
        cols = p.columns(lo, hi)
        rows = []
        for eid, idx in self._event_groups():
            sub = p.ar_event[np.ix_(idx, cols)]
            cnt = np.isfinite(sub).sum(axis=0)
            with np.errstate(invalid="ignore"):
                aar = np.nansum(sub, axis=0) / cnt
            complete = np.isfinite(sub).all(axis=1)
            rows.append(
                {
                    "event_id": eid,
                    "lo": int(p.rel_days[cols[0]]),
                    "hi": int(p.rel_days[cols[-1]]),
                    "caar": float(np.sum(aar)) if (cnt > 0).all() else np.nan,
                    "mean_car": float(sub[complete].sum(axis=1).mean()) if complete.any()
                    else np.nan,
                    "n": int(np.isfinite(sub).any(axis=1).sum()),
                    "n_complete": int(complete.sum()),
                }
            )
        return pd.DataFrame(rows)

    def bhar(self, lo: int | None = None, hi: int | None = None, *,
             against: str = "model") -> pd.DataFrame:
        """Buy-and-hold abnormal return of each firm-event over ``lo..hi``.

        ``BHAR = prod(1 + r_t) - prod(1 + q_t)`` with ``q_t`` the model's normal return
        (``against="model"``, ``q = r - AR``) or the benchmark's return
        (``against="benchmark"``). Log returns are compounded as ``exp(sum r)``. NaN when a day
        is missing. Columns ``event_id, ticker, exchange, day0, model, lo, hi, bhr,
        bhr_normal, bhar``.
        """
        p = self.panel
        cols = p.columns(lo, hi)
        r = p.ret_event[:, cols]
        if against == "model":
            q = r - p.ar_event[:, cols]
        elif against == "benchmark":
            q = p.market_event[:, cols]
        else:
            raise StudyConfigError(f"against={against!r}; use 'model' or 'benchmark'")
        if self.study.returns_kind == "log":
            bhr = np.exp(r.sum(axis=1)) - 1.0
            bhq = np.exp(q.sum(axis=1)) - 1.0
        else:
            bhr = np.prod(1.0 + r, axis=1) - 1.0
            bhq = np.prod(1.0 + q, axis=1) - 1.0
        out = p.keys[["event_id", "ticker", "exchange", "day0", "model"]].copy()
        out["lo"] = int(p.rel_days[cols[0]])
        out["hi"] = int(p.rel_days[cols[-1]])
        out["bhr"] = bhr
        out["bhr_normal"] = bhq
        out["bhar"] = bhr - bhq
        return out

    @property
    def fits(self) -> pd.DataFrame:
        """Estimated normal-return models, one row per included firm-event.

        Columns ``event_id, ticker, exchange, model, alpha, beta, b_<regressor>...,
        sigma, n_obs, df_resid, r2, est_start, est_end``: ``alpha`` is the intercept, ``beta``
        the loading on the market (benchmark for ``market``, ``mkt_rf`` for factor models;
        NaN when the model has none; market-adjusted fixes nothing and reports NaN), ``sigma =
        sqrt(SSR/df_resid)``, ``est_start``/``est_end`` the first/last estimation day used.
        """
        p = self.panel
        n = p.n
        out = p.keys[["event_id", "ticker", "exchange", "model"]].copy()
        alpha = np.full(n, np.nan)
        beta = np.full(n, np.nan)
        r2 = np.full(n, np.nan)
        extra: dict[str, np.ndarray] = {}
        for spec, fit, prow, frow in p.groups:
            for j, name in enumerate(spec.regressors if spec.estimated else ()):
                values = fit.params[frow, j]
                if name == "const":
                    alpha[prow] = values
                elif name in ("market", "mkt_rf"):
                    beta[prow] = values
                col = f"b_{name}"
                extra.setdefault(col, np.full(n, np.nan))[prow] = values
            r2[prow] = fit.r2[frow]
        out["alpha"] = alpha
        out["beta"] = beta
        for col, values in extra.items():
            out[col] = values
        out["sigma"] = p.sigma
        out["n_obs"] = p.n_obs
        out["df_resid"] = p.df_resid
        out["r2"] = r2
        used = np.isfinite(p.ar_est)
        d = np.where(used, p.dates_est, np.datetime64("NaT"))
        has = used.any(axis=1)
        first = np.where(has, d[np.arange(n), used.argmax(axis=1)], np.datetime64("NaT"))
        last_idx = used.shape[1] - 1 - used[:, ::-1].argmax(axis=1)
        last = np.where(has, d[np.arange(n), last_idx], np.datetime64("NaT"))
        out["est_start"] = pd.to_datetime(first)
        out["est_end"] = pd.to_datetime(last)
        return out

    # ------------------------------------------------------------------ inference
    def tests(self, lo: int | None = None, hi: int | None = None, *,
              by: str = "event") -> pd.DataFrame:
        """Test statistics of the mean (C)AR over ``lo..hi`` for each event (and pooled).

        Calls :mod:`crackdown.inference` on :attr:`panel`. Portfolio (Brown-Warner 1985 crude
        dependence adjustment) and Kolari-Pynnönen adjusted tests come first: they are the ones
        robust to the cross-sectional correlation of a common event date.

        Parameters
        ----------
        lo, hi : int, optional
            Sub-window of the event window (relative days, inclusive); default the whole window.
        by : {"event", "exchange"}
            ``"event"``: one block per event (all its listings), then all firm-events pooled
            (``event_id="ALL"``) when there are several events. Estimation residuals are aligned
            by relative day, so an event with US and Hong Kong listings mixes two calendars in
            the portfolio's estimation-window series (identical dates except holidays).
            ``"exchange"``: one block per (event, exchange), each on a single calendar; adds an
            ``exchange`` column.

        Returns
        -------
        pandas.DataFrame
            ``event_id`` (and ``exchange``) plus the columns of
            :meth:`crackdown.inference.base.TestResult.as_dict`.
        """
        from crackdown.inference.base import results_frame

        if by not in ("event", "exchange"):
            raise StudyConfigError(f"by={by!r}: use 'event' or 'exchange'")
        p = self.panel
        cols = p.columns(lo, hi)
        window = (int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]]))
        groups = self._event_groups() if by == "event" else self._event_exchange_groups()
        frames = []
        for key, idx in groups:
            results = _run_tests(p.subset(idx), window)
            if results:
                f = results_frame(results)
                if by == "exchange":
                    f.insert(0, "exchange", key[1])
                    key = key[0]
                f.insert(0, "event_id", key)
                frames.append(f)
        if not frames:
            return pd.DataFrame(columns=["event_id", "test"])
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ clustered events
    def _one_event(self, event_id: str | None) -> str:
        ids = list(dict.fromkeys(self.panel.keys["event_id"]))
        if event_id is None:
            if len(ids) != 1:
                raise StudyConfigError(
                    f"the study has {len(ids)} events; pass event_id= (one of "
                    f"{', '.join(map(str, ids[:8]))}{', ...' if len(ids) > 8 else ''})"
                )
            return ids[0]
        if event_id not in ids:
            raise StudyConfigError(
                f"event {event_id!r} has no included firm-events in these results; "
                "see .outcomes for why"
            )
        return event_id

    def dummy_regression(self, event_id: str | None = None, *, exchange: str | None = None):
        """Event-dummy SUR regression (Binder 1985) for one event's firms on one exchange.

        For each firm ``r_it = a_i + b_i m_t + sum_d g_id D_dt + e_it`` over the estimation and
        event windows (market model on the firm's benchmark; constant-only for
        ``model="constant-mean"``), estimated jointly with the estimation-window residual
        covariance; see :func:`crackdown.inference.dummy_regression.event_dummy_regression` for
        the Wald/F tests (all dummies zero, CAAR zero, daily AAR zero). Firms must share one
        calendar, hence one exchange per call (default: the exchange with most firms). Dates with
        any firm missing are dropped from the estimation sample (listwise, reported).

        Returns
        -------
        crackdown.inference.dummy_regression.DummyRegressionResult
        """
        from crackdown.inference.dummy_regression import event_dummy_regression

        s = self.study
        event_id = self._one_event(event_id)
        keys = self.panel.keys
        rows = keys.loc[keys["event_id"] == event_id]
        if exchange is None:
            exchange = rows["exchange"].value_counts().index[0]
        rows = rows.loc[rows["exchange"] == exchange]
        if rows.empty:
            raise StudyConfigError(f"event {event_id!r} has no included firms on {exchange}")
        day0 = pd.Timestamp(rows["day0"].iloc[0])
        grid = s._grid(exchange)
        pos = int(grid.searchsorted(day0))
        (e_lo, _), (w_lo, w_hi) = s.estimation, s.window
        if pos + e_lo < 0 or pos + w_hi >= len(grid):
            raise StudyConfigError(f"event {event_id!r}: windows run outside the trading calendar")
        dates = grid[pos + e_lo: pos + w_hi + 1]
        offsets = np.arange(e_lo, w_hi + 1)
        in_model = (offsets <= s.estimation[1]) | (offsets >= w_lo)
        dates, offsets = dates[in_model], offsets[in_model]
        tickers = list(rows["ticker"])
        returns = s.returns.reindex(dates)[tickers].to_numpy(dtype=float).T
        regressors = None
        if s.model != "constant-mean":
            bench = s.firm_events.loc[
                (s.firm_events["event_id"] == event_id) & s.firm_events["ticker"].isin(tickers),
                "benchmark"].unique()
            if len(bench) != 1 or not bench[0]:
                raise StudyConfigError(
                    f"event {event_id!r} on {exchange}: the firms need one common benchmark for "
                    f"the SUR system; got {list(bench)}"
                )
            regressors = s.returns.reindex(dates)[bench[0]].to_numpy(dtype=float)
            keep = np.isfinite(regressors) | (offsets >= w_lo)
            dates, offsets, returns, regressors = (
                dates[keep], offsets[keep], returns[:, keep], regressors[keep])
        event_positions = np.flatnonzero(offsets >= w_lo)
        return event_dummy_regression(
            returns, regressors, event_positions, rel_days=offsets[event_positions],
            firm_labels=tickers, missing="listwise",
        )

    def clustered_tests(self, lo: int | None = None, hi: int | None = None, *,
                        placebo_draws: int = 0, seed: int = 0) -> pd.DataFrame:
        """Tests built for clustered events, per event: the SUR dummy-regression F test of the
        CAAR (one row per exchange with at least two firms) and, when ``placebo_draws > 0``,
        the placebo test of the portfolio t. A test that cannot be run is a row with NaN
        statistic and the reason in ``convention``.

        Returns
        -------
        pandas.DataFrame
            ``event_id, exchange`` plus the columns of ``TestResult.as_dict``.
        """
        from crackdown.errors import CrackdownError
        from crackdown.inference.base import TestResult

        p = self.panel
        cols = p.columns(lo, hi)
        window = (int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]]))
        rows = []
        for (event_id, exchange), idx in self._event_exchange_groups():
            if len(idx) < 2:
                continue
            try:
                res = self.dummy_regression(event_id, exchange=exchange).caar_test(*window)
            except (CrackdownError, np.linalg.LinAlgError) as exc:
                res = TestResult(name="sur_caar", statistic=float("nan"), pvalue=float("nan"),
                                 distribution="", window=window, n=len(idx),
                                 robust_to_clustering=True, convention=f"not computed: {exc}")
            rows.append({"event_id": event_id, "exchange": exchange, **res.as_dict()})
        if placebo_draws > 0:
            for event_id in dict.fromkeys(p.keys["event_id"]):
                try:
                    res = self.placebo(event_id, lo, hi, n_draws=placebo_draws, seed=seed)
                except CrackdownError as exc:
                    res = TestResult(name="placebo_portfolio_t", statistic=float("nan"),
                                     pvalue=float("nan"), distribution="empirical",
                                     window=window, robust_to_clustering=True,
                                     convention=f"not computed: {exc}")
                rows.append({"event_id": event_id, "exchange": "all", **res.as_dict()})
        if not rows:
            return pd.DataFrame(columns=["event_id", "exchange", "test"])
        return pd.DataFrame(rows)

    def placebo(self, event_id: str | None = None, lo: int | None = None,
                hi: int | None = None, *, n_draws: int = 199, seed: int = 0,
                statistic: str = "portfolio_t", buffer: int = 10,
                exclude_dates=None):
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
        statistic : {"portfolio_t", "caar"}
            ``"portfolio_t"``: the Brown-Warner 1985 portfolio t of the CAAR (scale-free, so
            calm and turbulent pseudo dates are comparable); ``"caar"``: the raw CAAR.

        Returns
        -------
        crackdown.inference.base.TestResult
            ``distribution="empirical"``; ``extra`` holds ``draws``, ``pseudo_dates``, ``n_nan``.
        """
        from crackdown.inference.base import TestResult
        from crackdown.inference.placebo import empirical_pvalue
        from crackdown.study import EventStudy

        if statistic not in ("portfolio_t", "caar"):
            raise StudyConfigError(f"statistic={statistic!r}: use 'portfolio_t' or 'caar'")
        if int(n_draws) < 1:
            raise StudyConfigError(f"n_draws must be >= 1; got {n_draws!r}")
        s = self.study
        event_id = self._one_event(event_id)
        p = self.panel
        cols = p.columns(lo, hi)
        window = (int(p.rel_days[cols[0]]), int(p.rel_days[cols[-1]]))
        idx = np.flatnonzero(p.keys["event_id"].to_numpy() == event_id)
        observed = _placebo_statistic(p.subset(idx), window, statistic)
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
        placebo_study = EventStudy(
            s.returns, pseudo_fe, model=s.model, estimation=s.estimation, window=s.window,
            min_estimation_obs=s.min_estimation_obs, fallback=s.fallback,
            factors=s.factors if s.spec.factor_columns else None,
            session_grid=s.session_grid, returns_kind=s.returns_kind,
        )
        res = placebo_study.fit()
        ids = res.panel.keys["event_id"].to_numpy()
        draws = np.full(len(pseudo), np.nan)
        for k in range(len(pseudo)):
            sel = np.flatnonzero(ids == f"placebo_{k:04d}")
            if len(sel):
                draws[k] = _placebo_statistic(res.panel.subset(sel), window, statistic)
        valid = np.isfinite(draws)
        pvalue = empirical_pvalue(observed, draws[valid])
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

    # ------------------------------------------------------------------ text and export
    def summary(self, lo: int | None = None, hi: int | None = None) -> str:
        """A readable text report: settings, outcomes, CAAR per event and test statistics."""
        s = self.study
        out = io.StringIO()
        w = out.write
        w("Event study results\n")
        w("=" * 78 + "\n")
        w(f"model: {s.model}" + (f" (fallback {s.fallback})" if s.fallback else "") + "\n")
        w(f"estimation window: {s.estimation[0]}..{s.estimation[1]} (min {s.min_estimation_obs}"
          f" obs{', cleaned of other events' if s.clean_estimation else ''}); event window: "
          f"{s.window[0]}..{s.window[1]}; grid: {s.session_grid}; returns: {s.returns_kind}\n")
        counts = self.outcomes["status"].value_counts()
        w(f"firm-events: {len(self.outcomes)} requested, {self.panel.n} included ("
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")\n")
        problems = self.outcomes.loc[self.outcomes["status"] != "used"]
        if len(problems):
            w("\nOutcomes other than 'used':\n")
            for r in problems.itertuples(index=False):
                w(f"  {r.event_id} {r.ticker}: {r.status}: {r.detail}\n")
        if self.panel.n == 0:
            return out.getvalue()
        w("\nCAAR\n")
        caar = self.caar(lo, hi)
        w(caar.to_string(index=False, float_format=lambda v: f"{v:.6f}") + "\n")
        tests = self.tests(lo, hi)
        if len(tests) and "statistic" in tests.columns:
            w("\nTests of the mean CAR (portfolio and Kolari-Pynnönen first: robust to "
              "cross-sectional correlation)\n")
            show = tests[["event_id", "test", "estimate", "statistic", "pvalue", "distribution",
                          "n", "robust_to_clustering"]]
            w(_format_tests(show) + "\n")
            clustered = self.clustered_tests(lo, hi)
            if len(clustered):
                w("\nSUR event-dummy regression (Binder 1985), F test of the CAAR per exchange\n")
                show = clustered[["event_id", "exchange", "test", "estimate", "statistic",
                                  "pvalue", "distribution", "n"]]
                w(_format_tests(show) + "\n")
        else:
            w("\n(no test statistics: crackdown.inference is not available)\n")
        return out.getvalue()

    def _table(self, what: str, lo=None, hi=None) -> pd.DataFrame:
        if what == "ar":
            return self.ar
        if what == "car":
            return self.car(lo, hi)
        if what == "aar":
            return self.aar
        if what == "caar":
            return self.caar(lo, hi)
        if what == "bhar":
            return self.bhar(lo, hi)
        if what in ("fits", "fit"):
            return self.fits
        if what == "outcomes":
            return self.outcomes
        if what == "tests":
            return self.tests(lo, hi)
        raise StudyConfigError(f"unknown table {what!r}; choose one of {', '.join(EXPORTS)}")

    def to_csv(self, path: str | os.PathLike[str], what: str = "ar", *, lo=None, hi=None) -> None:
        """Write one table (``ar``, ``car``, ``aar``, ``caar``, ``bhar``, ``fits``, ``outcomes``,
        ``tests``) to CSV."""
        self._table(what, lo, hi).to_csv(path, index=False, float_format="%.12g",
                                         date_format="%Y-%m-%d")

    def to_latex(self, path: str | os.PathLike[str] | None = None, what: str = "caar", *,
                 lo=None, hi=None, float_format: str = "%.4f") -> str:
        """Render one table as a LaTeX tabular (written to ``path`` when given); returns the text."""
        frame = self._table(what, lo, hi).copy()
        for c in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[c]):
                frame[c] = frame[c].dt.strftime("%Y-%m-%d")
        fmt = lambda v: float_format % v
        body = frame.to_latex(index=False, float_format=fmt, escape=True)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(body)
        return body


def _format_tests(frame: pd.DataFrame) -> str:
    """Text table of test rows: 4 decimals, p-values with 3 significant digits (1.2e-09)."""
    frame = frame.copy()
    frame["pvalue"] = frame["pvalue"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def _next_session(grid: pd.DatetimeIndex, date: pd.Timestamp) -> pd.Timestamp | None:
    pos = int(grid.searchsorted(date))
    return grid[pos] if pos < len(grid) else None


def _placebo_statistic(panel: EventPanel, window: tuple[int, int], statistic: str) -> float:
    """CAAR over ``window`` or its Brown-Warner 1985 portfolio t (NaN when not computable)."""
    from crackdown.inference import parametric as par

    cols = panel.columns(*window)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if statistic == "caar":
            aar = np.nanmean(panel.ar_event[:, cols], axis=0)
            return float(aar.sum()) if np.isfinite(aar).all() else float("nan")
        try:
            return float(par.portfolio_t(panel.ar_event, panel.ar_est, window,
                                         rel_days=panel.rel_days).statistic)
        except (ValueError, ZeroDivisionError):
            return float("nan")


def _run_tests(panel: EventPanel, window: tuple[int, int]) -> list:
    """Run the :mod:`crackdown.inference` tests on one panel, robust tests first.

    Each test gets the panel's arrays: ``ar_event``, ``ar_est`` (estimation residuals by
    relative day; for firms of one exchange and one event these are the same calendar dates),
    ``n_obs``, ``n_params``, ``sigma_ddof = n_obs - df_resid`` (k for regressions, 1 for
    market-adjusted), the forecast-error factors ``1 + x_t'(X'X)^{-1}x_t`` and the exact CAR
    factor ``V_i = L_w + s'(X'X)^{-1}s``. A test that cannot be computed (e.g. a single firm
    for Kolari-Pynnönen) is reported as a row with NaN statistic and the reason.
    """
    try:
        from crackdown.inference import nonparametric as nonpar
        from crackdown.inference import parametric as par
        from crackdown.inference.base import TestResult
    except ImportError:  # pragma: no cover - inference is part of the package
        return []
    from crackdown.errors import CrackdownError

    cols = panel.columns(*window)
    with np.errstate(invalid="ignore", divide="ignore"):
        car_factor = panel.car_variance(cols) / panel.sigma2
    common = {"rel_days": panel.rel_days}
    std = {
        "n_params": panel.n_params,
        "sigma_ddof": panel.n_obs - panel.df_resid,
        "forecast_var_factor": panel.forecast_var_factor,
        "car_var_factor": np.where(np.isfinite(car_factor), car_factor, len(cols)),
    }
    ar, e = panel.ar_event, panel.ar_est
    calls = [
        ("portfolio_t", lambda: par.portfolio_t(ar, e, window, **common)),
        ("kolari_pynnonen_bmp", lambda: par.kolari_pynnonen_bmp(ar, e, window, **common, **std)),
        ("kolari_pynnonen_patell",
         lambda: par.kolari_pynnonen_patell(ar, e, window, **common, n_obs=panel.n_obs, **std)),
        ("lamb", lambda: par.lamb_test(ar, e, window, **common,
                                       forecast_var_factor=panel.forecast_var_factor)),
        ("bmp_t", lambda: par.bmp_t(ar, e, window, **common, **std)),
        ("patell_z", lambda: par.patell_z(ar, e, window, **common, n_obs=panel.n_obs, **std)),
        ("brown_warner_1980", lambda: par.brown_warner_1980(ar, e, window, **common)),
        ("cross_sectional_t", lambda: par.cross_sectional_t(ar, window, **common)),
        ("corrado_rank", lambda: nonpar.corrado_rank_test(ar, e, window, **common)),
        ("generalized_sign", lambda: nonpar.generalized_sign_test(ar, e, window, **common)),
        ("sign", lambda: nonpar.sign_test(ar, window, **common)),
        ("wilcoxon", lambda: nonpar.wilcoxon_signed_rank_test(ar, window, **common)),
    ]
    out = []
    for name, call in calls:
        try:
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # empty slices of 1-firm events
                out.append(call())
        except (CrackdownError, ValueError, ZeroDivisionError) as exc:
            out.append(TestResult(name=name, statistic=float("nan"), pvalue=float("nan"),
                                  distribution="", window=window, n=panel.n,
                                  convention=f"not computed: {exc}"))
    return out
