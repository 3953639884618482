"""Results of an event study: tidy tables, the arrays inference consumes, text and exports.

:class:`EventStudyResults` is what :meth:`crackdown.estimation.study.EventStudy.fit` returns. Every table
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

import os

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.estimation.battery import run_test_battery as _run_tests
from crackdown.estimation.panel import EventPanel

AR_COLUMNS = ("event_id", "ticker", "exchange", "day0", "rel_day", "date", "ar", "car", "model",
              "flagged")
EXPORTS = ("ar", "car", "aar", "caar", "bhar", "fits", "outcomes", "tests")


class EventStudyResults:
    """Output of :meth:`crackdown.estimation.study.EventStudy.fit`.

    Attributes
    ----------
    study : EventStudy
        The study (settings and inputs).
    panel : EventPanel
        Arrays for :mod:`crackdown.inference`.
    outcomes : pandas.DataFrame
        One row per firm-event: ``event_id, ticker, exchange, day0, status, detail, model,
        n_estimation_obs, included, flagged, day0_note, benchmark, timing, day0_uncertain,
        confounded_by`` (statuses: :data:`crackdown.estimation.study.OUTCOME_STATUSES`; the
        last three from :meth:`EventStudy.from_events`, empty otherwise).
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
        from scipy import special  # here, not at import: `crackdown study` prints ARs without it

        p = self.panel
        cols = p.columns(lo, hi)
        sub = p.ar_event[:, cols]
        car = sub.sum(axis=1)  # NaN if any day missing
        var = p.car_variance(cols)
        se = np.sqrt(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = car / se
        pval = 2.0 * special.stdtr(p.df_resid, -np.abs(t))  # 2 * scipy.stats.t.sf(|t|, df)
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

        Columns ``event_id, ticker, exchange, model, benchmark, alpha, beta, b_<regressor>...,
        sigma, n_obs, df_resid, r2, est_start, est_end``: ``benchmark`` is the market proxy of
        the firm-event (``HK_NONTECH_EW ex ...`` names the constituents left out, see
        :mod:`crackdown.marketdata.benchmarks`), ``alpha`` is the intercept, ``beta``
        the loading on the market (benchmark for ``market``, ``mkt_rf`` for factor models;
        NaN when the model has none; market-adjusted fixes nothing and reports NaN), ``sigma =
        sqrt(SSR/df_resid)``, ``est_start``/``est_end`` the first/last estimation day used.
        ``scholes-williams``/``dimson`` add the beta's components (``b_market_lag1``,
        ``b_market_0``, ``b_market_lead1``, ``rho_market``); ``garch`` adds ``garch_omega,
        garch_a, garch_b, garch_persistence``; ``international`` reports the world market's
        loading as ``b_world``.
        """
        p = self.panel
        n = p.n
        out = p.keys[["event_id", "ticker", "exchange", "model", "benchmark"]].copy()
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
            for col, values in fit.extra.items():  # thin-trading components, GARCH parameters
                extra.setdefault(col, np.full(n, np.nan))[prow] = values[frow]
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

        Calls :mod:`crackdown.inference` on :attr:`panel`. The headline test
        (:data:`crackdown.inference.headline.HEADLINE_TEST`, the Kolari-Pynnönen adjusted BMP:
        the only test that held its size under clustering and event-induced variance together
        in the simulation) comes first, then the other tests robust to the cross-sectional
        correlation of a common event date. Columns ``headline`` (bool) and ``robust_to``
        (:data:`crackdown.inference.headline.ROBUSTNESS`) label each row.

        Parameters
        ----------
        lo, hi : int, optional
            Sub-window of the event window (relative days, inclusive); default the whole window.
        by : {"event", "exchange"}
            ``"event"``: one block per event (all its listings), then all firm-events pooled
            (``event_id="ALL"``) when there are several events. When an event's listings trade
            on several calendars (New York and Hong Kong), the estimation residuals behind the
            portfolio series, r̄, Lamb and the rank series are paired in information time
            (:mod:`crackdown.timeline.information_time`: New York's day *t* with Hong Kong's
            next session), not by relative trading day, whose pairing drifts with each
            holiday of one calendar only.
            ``"exchange"``: one block per (event, exchange), each on a single calendar; adds an
            ``exchange`` column.

        Returns
        -------
        pandas.DataFrame
            ``event_id`` (and ``exchange``) plus the columns of
            :meth:`crackdown.inference.base.TestResult.as_dict`.
        """
        from crackdown.inference.base import results_frame
        from crackdown.inference.headline import HEADLINE_TEST, ROBUSTNESS

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
                f["headline"] = f["test"] == HEADLINE_TEST
                f["robust_to"] = f["test"].map(ROBUSTNESS).fillna("")
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

    def size_check(self, event_id: str | None = None, lo: int | None = None,
                   hi: int | None = None, *, n_draws: int = 99, seed: int = 0,
                   buffer: int = 10) -> pd.DataFrame:
        """Empirical size of every test on this event's own listings at pseudo dates.

        See :func:`crackdown.estimation.placebo.size_check` (needs a study with a long price
        history, e.g. ``EventStudy.from_events(..., history="all")``).
        """
        from crackdown.estimation.placebo import size_check

        return size_check(self, event_id, lo, hi, n_draws=n_draws, seed=seed, buffer=buffer)

    def placebo(self, event_id: str | None = None, lo: int | None = None,
                hi: int | None = None, *, n_draws: int = 199, seed: int = 0,
                statistic: str = "portfolio_t", buffer: int = 10,
                exclude_dates=None):
        """Placebo test: the event's statistic against the same firms at random pseudo dates.

        Every pseudo date is common to the event's firms, so each draw keeps the
        cross-sectional correlation of a clustered event; ``p = (1 + #{|T_b| >= |T_obs|}) /
        (B + 1)``. Parameters, conventions and the returned
        :class:`~crackdown.inference.base.TestResult`: see
        :func:`crackdown.estimation.placebo.placebo_test`.
        """
        from crackdown.estimation.placebo import placebo_test

        return placebo_test(self, event_id, lo, hi, n_draws=n_draws, seed=seed,
                            statistic=statistic, buffer=buffer, exclude_dates=exclude_dates)

    # ------------------------------------------------------------------ text and export
    def cross_section(self, formula: str, window: tuple[int, int] | None = None, **kwargs):
        """Regress firm-event CARs on characteristics (statsmodels formula), clustered SEs.

        ``res.cross_section("car ~ target + hk_listing + C(sector)", window=(-1, 1))``; see
        :func:`crackdown.estimation.cross_section.cross_section` for the characteristics,
        ``cluster=`` (event cluster by default, ``("event_cluster", "ticker")`` for two-way
        Cameron–Gelbach–Miller) and the other keywords.
        """
        from crackdown.estimation.cross_section import cross_section

        return cross_section(self, formula, window, **kwargs)

    def summary(self, lo: int | None = None, hi: int | None = None) -> str:
        """A readable text report: settings, outcomes, CAAR per event and test statistics."""
        from crackdown.estimation.summary import summary_text

        return summary_text(self, lo, hi)

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
