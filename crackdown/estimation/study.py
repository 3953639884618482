"""Event studies: many firm-events estimated at once.

:class:`EventStudy` takes a wide table of returns and a table of firm-events (event id,
ticker, day 0), puts every firm-event on its own trading-day grid, builds masked
``(N x T)`` estimation and ``(N x L)`` event-window arrays, and fits the normal-return model of
all firm-events with ONE batched least-squares solve (:func:`crackdown.estimation.models.fit_batched_ols`).
:meth:`EventStudy.fit` returns :class:`crackdown.estimation.results.EventStudyResults`.

Conventions
-----------
* Relative days are trading sessions of each listing's exchange (``session_grid="exchange"``,
  calendars from :mod:`crackdown.timeline.calendars`) or rows of the returns index
  (``session_grid="data"``, for user/peer data). Day 0 must be a session of the grid.
* Estimation window ``(lo, hi)`` and event window ``(lo, hi)`` are inclusive offsets from day 0.
  A day enters the estimation when the stock's return and every regressor are present (and,
  with ``clean_estimation=True``, the day is outside the event windows of the same ticker's
  other events). A firm-event needs at least ``min_estimation_obs`` such days; fewer available
  days than the window length are fine when the minimum is reached.
* A model that estimates nothing (``market-adjusted``) needs no estimation window: a
  firm-event with fewer than ``min_estimation_obs`` estimation days (a listing days before the
  event, DIDI in July 2021) still gets its abnormal returns, status ``short_estimation``
  (flagged), and no estimation-window variance (``sigma2`` NaN, no residuals), so the tests
  that standardize by it leave it out.
* Degenerate designs are excluded with the reason: a benchmark or world market that is the
  studied ticker itself (SPY against SPY; ``degenerate_design``), a fit whose residual variance
  is below :data:`PERFECT_FIT` times the return variance (the same returns under another name;
  ``degenerate_design``), a stock whose return never varies on its usable estimation days
  (a constant price; ``insufficient_estimation``).
* Nothing is filled: a missing return is a masked day, and every firm-event gets an outcome
  (see :data:`OUTCOME_STATUSES`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crackdown.errors import CrackdownError, PriceDataError, StudyConfigError
from crackdown.estimation.inputs import (
    WORLD_MARKETS,
    FirmEventInfo,
    check_windows,
    outcome_info_columns,
    resolve_benchmarks,
)
from crackdown.estimation.layout import (
    PERFECT_FIT,
    Layout,
    build_layout,
    drop_constant_returns,
    estimation_design,
    flag_perfect_fits,
    own_regressors,
    usable_day_stats,
)
from crackdown.estimation.models import (
    FACTOR_COLUMNS,
    MODELS,
    ModelSpec,
    fit_normal_model,
    model_spec,
)

#: Status of a firm-event in :attr:`EventStudyResults.outcomes`.
OUTCOME_STATUSES: dict[str, str] = {
    "used": "abnormal returns computed with the requested model",
    "fallback": "too few estimation days for the model: the fallback model was used (flagged)",
    "missing_event_window": "computed, but some event-window days have no return (flagged); "
    "or excluded when every event-window day is missing",
    "short_estimation": "the model estimates nothing (market-adjusted): abnormal returns "
    "computed with fewer than min_estimation_obs estimation days; no estimation-window "
    "variance, so left out of the tests that need one (flagged)",
    "insufficient_estimation": "fewer than min_estimation_obs estimation days, or no return "
    "variance in the estimation window (a price that never moves); excluded",
    "degenerate_design": "the benchmark (or world market) is the studied ticker itself, or the "
    "model reproduces its returns exactly: abnormal returns would be rounding noise; excluded",
    "listed_after_event": "the ticker's first return is after day 0; excluded",
    "no_price_data": "no returns for the ticker at all; excluded",
}
INCLUDED_STATUSES = ("used", "short_estimation", "fallback", "missing_event_window")
#: Statuses of included firm-events that are flagged.
FLAGGED_STATUSES = ("short_estimation", "fallback", "missing_event_window")

SESSION_GRIDS = ("exchange", "data")
RETURN_KINDS = ("simple", "log")


class EventStudy:
    """A multi-firm, multi-event study of abnormal returns.

    Parameters
    ----------
    returns : pandas.DataFrame
        Wide daily returns: DatetimeIndex of dates, one column per ticker, including the
        benchmark column(s). NaN = missing (never filled).
    firm_events : pandas.DataFrame
        One row per firm-event with columns ``event_id``, ``ticker``, ``day0`` (a session of the
        ticker's grid) and optionally ``exchange`` (MIC; inferred from the ticker when absent)
        and ``benchmark``.
    benchmark : str or mapping, optional
        Market proxy column in ``returns``: one ticker for all rows, or a mapping from ticker or
        exchange MIC to ticker. Default: the ``benchmark`` column of ``firm_events`` when present,
        else :func:`crackdown.timeline.universe.default_benchmark` of each ticker (SPY for US,
        ``HK_NONTECH_EW`` for Hong Kong listings: the equal-weighted non-tech Hang Seng
        constituents of :mod:`crackdown.marketdata.benchmarks`, whose column ``returns`` must
        then hold; ``{"XHKG": "^HSI"}`` selects the Hang Seng Index).
    model : str
        One of :data:`crackdown.estimation.models.MODELS`.
    estimation, window : (int, int)
        Inclusive estimation and event windows in trading days relative to day 0.
    min_estimation_obs : int
        Minimum usable estimation days.
    fallback : str, optional
        Model used (and flagged) for firm-events with too few estimation days, e.g.
        ``"market-adjusted"``.
    clean_estimation : bool
        Drop the event windows of the same ticker's other events from its estimation window:
        the other rows of ``firm_events`` and, when given, ``other_event_days``.
    other_event_days : pandas.DataFrame, optional
        Further ``ticker, day0`` pairs (events not studied here, e.g. the rest of the events
        table) whose event windows ``clean_estimation`` removes. Ignored without it.
    factors : pandas.DataFrame, optional
        Daily factors in decimals, indexed by date: for ``ff3``/``carhart``/``ff5`` (columns
        as :func:`crackdown.marketdata.factors.load_factors`; loaded from the default folder when omitted)
        or the user factor set of ``model="factors"`` (all columns but ``rf`` are regressors).
    session_grid : {"exchange", "data"}
        Trading-day grid: each listing's exchange calendar, or the returns index.
    returns_kind : {"simple", "log"}
        How ``returns`` were computed (used to compound buy-and-hold returns).
    world_market : mapping, optional
        ``model="international"``: the other market's return column per exchange MIC (default
        :data:`WORLD_MARKETS`: SPY for Hong Kong listings, ``HK_NONTECH_EW`` for New York
        listings), or a ``world`` column of ``firm_events``.

    Raises
    ------
    StudyConfigError
        A window ending before it starts, overlapping estimation and event windows, an unknown
        model, a ticker or benchmark missing from ``returns``, malformed ``firm_events``.
    """

    def __init__(
        self,
        returns: pd.DataFrame,
        firm_events: pd.DataFrame,
        *,
        benchmark: str | Mapping[str, str] | None = None,
        model: str = "market",
        estimation: tuple[int, int] = (-250, -11),
        window: tuple[int, int] = (-1, 1),
        min_estimation_obs: int = 100,
        fallback: str | None = None,
        clean_estimation: bool = False,
        other_event_days: pd.DataFrame | None = None,
        factors: pd.DataFrame | None = None,
        session_grid: str = "exchange",
        returns_kind: str = "simple",
        world_market: Mapping[str, str] | None = None,
    ) -> None:
        self.estimation, self.window = check_windows(estimation, window)
        if session_grid not in SESSION_GRIDS:
            raise StudyConfigError(
                f"session_grid {session_grid!r}; use 'exchange' (each listing's calendar) or "
                "'data' (the returns index)"
            )
        if returns_kind not in RETURN_KINDS:
            raise StudyConfigError(f"returns_kind {returns_kind!r}; use 'simple' or 'log'")
        if isinstance(min_estimation_obs, bool) or not isinstance(
            min_estimation_obs, (int, np.integer)
        ) or min_estimation_obs < 1:
            raise StudyConfigError(
                f"min_estimation_obs must be a positive integer; got {min_estimation_obs!r}"
            )
        self.model = model
        self.fallback = fallback
        factor_cols = None if factors is None else [str(c) for c in factors.columns]
        self.spec = model_spec(model, factor_cols)
        self.fallback_spec = None if fallback is None else model_spec(fallback, factor_cols)
        if fallback is not None and fallback == model:
            raise StudyConfigError(f"fallback {fallback!r} is the same as the model; choose another")
        self.min_estimation_obs = int(min_estimation_obs)
        self.clean_estimation = bool(clean_estimation)
        self.other_event_days = self._check_other_event_days(other_event_days)
        self.session_grid = session_grid
        self.returns_kind = returns_kind
        self.returns = self._check_returns(returns)
        self.world_market = dict(WORLD_MARKETS if world_market is None else world_market)
        self.firm_events = self._check_firm_events(firm_events, benchmark)
        self.factors = self._resolve_factors(factors)
        #: optional explanations for tickers without data, set by :meth:`from_events`
        self.no_data_reasons: dict[str, str] = {}
        self.day0_notes: Mapping[tuple[str, str], str] = {}
        #: constructed benchmarks (:mod:`crackdown.marketdata.benchmarks`): constituents used,
        #: missing ones, thin days; set by :meth:`from_events`
        self.benchmark_info: dict[str, dict] = {}
        #: per (event_id, ticker): timing, day0_uncertain, confounded_by (set by from_events:
        #: a :class:`crackdown.estimation.inputs.FirmEventInfo` over its columns)
        self.firm_event_info: Mapping[tuple[str, str], dict] = {}
        self.timing_policy: str | None = None

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_other_event_days(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        if not isinstance(frame, pd.DataFrame) or not {"ticker", "day0"} <= set(frame.columns):
            raise StudyConfigError("other_event_days must be a DataFrame with columns ticker, day0")
        out = frame[["ticker", "day0"]].copy()
        out["ticker"] = out["ticker"].astype(str)
        try:
            out["day0"] = pd.to_datetime(out["day0"]).astype("datetime64[ns]")
        except (TypeError, ValueError):
            raise StudyConfigError("other_event_days: day0 must hold dates") from None
        return out.drop_duplicates().reset_index(drop=True)

    @staticmethod
    def _check_returns(returns: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(returns, pd.DataFrame):
            raise StudyConfigError("returns must be a wide DataFrame (index date, one column per ticker)")
        try:
            index = pd.DatetimeIndex(returns.index)
        except (TypeError, ValueError):
            raise StudyConfigError("the returns index must hold dates") from None
        if index.tz is not None:
            index = index.tz_localize(None)
        if index.has_duplicates:
            dup = index[index.duplicated()][:3]
            raise StudyConfigError(
                f"the returns index has duplicate dates ({', '.join(f'{d:%Y-%m-%d}' for d in dup)})"
            )
        out = returns.copy()
        out.index = index.normalize().as_unit("ns")
        out.columns = [str(c) for c in out.columns]
        return out.sort_index().astype(float)

    def _check_firm_events(self, firm_events: pd.DataFrame, benchmark) -> pd.DataFrame:
        need = ["event_id", "ticker", "day0"]
        missing = [c for c in need if c not in firm_events.columns]
        if missing:
            raise StudyConfigError(
                f"firm_events lacks column(s) {missing}; it needs event_id, ticker, day0 "
                "(optionally exchange, benchmark)"
            )
        if len(firm_events) == 0:
            raise StudyConfigError("firm_events is empty: nothing to study")
        fe = pd.DataFrame(
            {
                "event_id": firm_events["event_id"].astype(str).to_numpy(),
                "ticker": firm_events["ticker"].astype(str).to_numpy(),
                "day0": pd.to_datetime(firm_events["day0"].to_numpy()).normalize().as_unit("ns"),
            }
        )
        if fe["day0"].isna().any():
            row = int(np.flatnonzero(fe["day0"].isna())[0])
            raise StudyConfigError(f"firm_events row {row}: day0 is missing")
        dup = fe.duplicated(["event_id", "ticker"])
        if dup.any():
            r = fe.loc[dup].iloc[0]
            raise StudyConfigError(
                f"firm_events has (event_id, ticker) = ({r.event_id}, {r.ticker}) more than once"
            )
        if "exchange" in firm_events.columns:
            fe["exchange"] = firm_events["exchange"].fillna("").astype(str).to_numpy()
        else:
            fe["exchange"] = ""
        need_ex = fe["exchange"] == ""
        if need_ex.any():
            from crackdown.timeline.universe import exchange_for_ticker

            def _ex(t: str) -> str:
                try:
                    return exchange_for_ticker(t)
                except CrackdownError:
                    if self.session_grid == "data":
                        return ""
                    raise

            mics = {t: _ex(t) for t in pd.unique(fe.loc[need_ex, "ticker"])}  # once per ticker
            fe.loc[need_ex, "exchange"] = fe.loc[need_ex, "ticker"].map(mics)
        fe["benchmark"] = resolve_benchmarks(fe, firm_events, benchmark)
        if any(s is not None and s.needs_world for s in (self.spec, self.fallback_spec)):
            fe["world"] = self._world_columns(fe, firm_events)

        unknown = sorted(set(fe["ticker"].unique()) - set(self.returns.columns))
        if unknown:
            raise StudyConfigError(
                f"ticker(s) {', '.join(unknown)} not in the returns columns "
                f"({', '.join(map(str, self.returns.columns[:12]))}"
                f"{', ...' if len(self.returns.columns) > 12 else ''}); add their returns or drop "
                "them from firm_events"
            )
        needs_bench = self.spec.needs_benchmark or (
            self.fallback_spec is not None and self.fallback_spec.needs_benchmark
        )
        bad = sorted({b for b in fe["benchmark"].unique() if b and b not in self.returns.columns})
        if needs_bench:
            if (fe["benchmark"] == "").any():
                t = fe.loc[fe["benchmark"] == "", "ticker"].iloc[0]
                raise StudyConfigError(f"no benchmark for ticker {t}; pass benchmark=...")
            if bad:
                hint = ""
                if any(b.startswith("HK_NONTECH_EW") for b in bad):
                    hint = (" (HK_NONTECH_EW, the default for Hong Kong listings, is built by "
                            "EventStudy.from_events or crackdown.benchmark_returns; or pass "
                            "benchmark='^HSI')")
                raise StudyConfigError(
                    f"benchmark(s) {', '.join(bad)} not in the returns columns; add their returns "
                    f"or pass another benchmark{hint}"
                )
        elif bad:  # benchmark only informative (tests' market returns): drop silently missing ones
            fe.loc[fe["benchmark"].isin(bad), "benchmark"] = ""
        return fe

    def _world_columns(self, fe: pd.DataFrame, raw: pd.DataFrame) -> list[str]:
        given = raw["world"].fillna("").astype(str).to_numpy() if "world" in raw.columns else None
        out = []
        for i, (t, x) in enumerate(zip(fe["ticker"], fe["exchange"])):
            w = given[i] if given is not None and given[i] else self.world_market.get(x, "")
            if not w:
                raise StudyConfigError(
                    f"model 'international' needs a world market for {t} ({x}); pass "
                    f"world_market={{'{x}': ticker}}")
            if w not in self.returns.columns:
                raise StudyConfigError(
                    f"world market {w} of {t} is not in the returns columns; add its returns "
                    "or pass another world_market")
            out.append(w)
        return out

    @property
    def needs_benchmark_shifts(self) -> bool:
        """A model of the study uses the benchmark one session before and after."""
        return any(s is not None and s.needs_benchmark_shifts
                   for s in (self.spec, self.fallback_spec))

    def _resolve_factors(self, factors: pd.DataFrame | None) -> pd.DataFrame | None:
        spec_kinds = {s.factor_kind for s in (self.spec, self.fallback_spec) if s is not None}
        spec_kinds.discard(None)
        if not spec_kinds:
            return None
        regions = {"asia" if k.endswith("-asia") else "us" for k in spec_kinds - {"factors"}}
        if "asia" in regions:
            other = sorted(set(self.firm_events.loc[self.firm_events["exchange"] != "XHKG",
                                                    "ticker"]))
            if other:
                raise StudyConfigError(
                    f"Asia Pacific factor models are for Hong Kong listings; {', '.join(other[:6])} "
                    "trade(s) elsewhere: study them with ff3/carhart/ff5 (US factors) or "
                    "model='market'")
        if len(regions) > 1:
            raise StudyConfigError(
                "the model and the fallback use US and Asia Pacific factors, whose columns share "
                "names; choose factor models of one region")
        if factors is None:
            kinds = spec_kinds - {"factors"}
            from crackdown.marketdata.factors import load_factors

            frames = [load_factors(kind) for kind in sorted(kinds)]
            factors = frames[0]
            for f in frames[1:]:
                factors = factors.combine_first(f)
        factors = factors.copy()
        factors.index = pd.DatetimeIndex(factors.index).normalize().as_unit("ns")
        factors.columns = [str(c) for c in factors.columns]
        for spec in (self.spec, self.fallback_spec):
            if spec is None or spec.factor_kind is None:
                continue
            need = list(spec.factor_columns) + (["rf"] if spec.excess else [])
            missing = [c for c in need if c not in factors.columns]
            if missing:
                raise StudyConfigError(
                    f"model {spec.name!r} needs factor column(s) {missing}; the factors have "
                    f"{list(factors.columns)}"
                )
        return factors.sort_index().astype(float)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_events(
        cls,
        events_df: pd.DataFrame,
        *,
        tickers: list[str] | None = None,
        benchmark: str | Mapping[str, str] | None = None,
        prices_dir=None,
        returns_kind: str = "simple",
        history: str | tuple | None = None,
        other_events: pd.DataFrame | None = None,
        timing_policy: str = "span",
        **settings,
    ) -> EventStudy:
        """Build a study from an events table (:func:`crackdown.timeline.events.load_events`).

        For each event and ticker (``tickers``, else the event's ``ticker_list``), day 0 is
        mapped on the ticker's exchange with :func:`crackdown.timeline.calendars.day_zero` (Beijing date
        and time of the announcement); prices of the tickers and their benchmarks are loaded
        with :func:`crackdown.marketdata.prices.load_prices` over a span covering every window and turned
        into returns with :func:`crackdown.marketdata.returns.compute_returns`.

        Parameters
        ----------
        events_df : pandas.DataFrame
            Columns ``event_id``, ``date``, ``time_beijing`` and ``ticker_list`` (or
            ``tickers``, a ';'-separated string).
        tickers : list of str, optional
            Tickers for every event (default: each event's own tickers). Tickers given here
            must have prices (else :class:`PriceDataError`); an event's own tickers without
            prices get the outcome ``no_price_data`` instead.
        benchmark : str or mapping, optional
            See :class:`EventStudy`; default per listing: SPY for US, ``HK_NONTECH_EW`` for Hong
            Kong (built here from the constituents' prices, without the constituents the event
            names; :mod:`crackdown.marketdata.benchmarks`). ``{"XHKG": "^HSI"}`` or ``"^HSI"``
            selects the Hang Seng Index.
        prices_dir : path, optional
            Offline price folder (default :func:`crackdown.config.prices_dir`).
        returns_kind : {"simple", "log"}
        history : "all" or (start, end), optional
            Load prices over a wider span than the windows need: every available date
            (``"all"``) or at least ``start..end`` (either may be None). Placebo tests
            (:meth:`EventStudyResults.placebo`) draw pseudo dates from this span.
        other_events : pandas.DataFrame, optional
            Further events (same columns as ``events_df``, e.g. the whole events table) whose
            windows ``clean_estimation=True`` removes from each listing's estimation window, for
            the listings they name (mapped to day 0 like the studied events). Their day 0s are
            also checked for confounders: a firm-event's ``confounded_by`` (in
            :attr:`EventStudyResults.outcomes`) lists the events of ``events_df`` and
            ``other_events`` naming the same listing whose day 0 is in its event window.
        timing_policy : {"span", "same-day", "next-session"}
            Events without a release time (:data:`crackdown.timeline.calendars.TIMING_POLICIES`):
            ``span`` (default) puts Hong Kong's day 0 on the date's session and requires the
            event window to reach day +1, so the reaction spans both possible sessions;
            ``same-day`` / ``next-session`` assume a release before / after the Hong Kong close.
        **settings
            Any other :class:`EventStudy` keyword (model, estimation, window, ...).
        """
        from crackdown.estimation.inputs import study_inputs

        rets, fe, settings, missing = study_inputs(
            events_df, tickers=tickers, benchmark=benchmark, prices_dir=prices_dir,
            returns_kind=returns_kind, history=history, other_events=other_events,
            settings=settings, timing_policy=timing_policy)
        study = cls(
            rets,
            fe,
            benchmark=None,
            returns_kind=returns_kind,
            **settings,
        )
        study.no_data_reasons = missing
        study.benchmark_info = dict(rets.attrs.get("benchmarks", {}))
        # (event_id, ticker) -> note / info: the columns, as mappings built on first look-up
        event_ids, tickers = fe["event_id"].tolist(), fe["ticker"].tolist()
        uncertain = fe["day0_uncertain"]
        study.day0_notes = FirmEventInfo(event_ids, tickers,
                                         {"day0_note": fe["day0_note"].tolist()})
        study.timing_policy = timing_policy
        study.firm_event_info = FirmEventInfo(event_ids, tickers, {
            "timing": fe["timing"].tolist(),
            "day0_uncertain": (uncertain.tolist() if uncertain.dtype == bool
                               else [bool(u) for u in uncertain.tolist()]),
            "confounded_by": fe["confounded_by"].tolist()})
        return study

    def with_firm_events(self, firm_events: pd.DataFrame) -> EventStudy:
        """A study of other firm-events on the same returns, with the same settings.

        Used for placebo re-fits (:func:`crackdown.estimation.placebo.placebo_test`): model,
        windows, minimum observations, fallback, factors, session grid and returns kind are
        copied; ``firm_events`` (``event_id, ticker, day0`` and optionally ``exchange``,
        ``benchmark``) replaces the studied ones.
        """
        return type(self)(
            self.returns, firm_events, model=self.model, estimation=self.estimation,
            window=self.window, min_estimation_obs=self.min_estimation_obs,
            fallback=self.fallback, factors=self.factors if self.spec.factor_columns else None,
            session_grid=self.session_grid, returns_kind=self.returns_kind,
            world_market=self.world_market,
        )

    # ------------------------------------------------------------------ array layout
    def _grid(self, exchange: str) -> pd.DatetimeIndex:
        from crackdown.estimation.layout import study_grid

        return study_grid(self, exchange)

    def _layout(self) -> Layout:
        return build_layout(self)

    def _factor_columns(self) -> list[str]:
        cols: list[str] = []
        for spec in (self.spec, self.fallback_spec):
            if spec is not None:
                cols += [c for c in spec.factor_columns if c not in cols]
        return cols

    def _design(self, spec: ModelSpec, lay: Layout, rows: np.ndarray):
        """y and X (estimation and event window) of ``spec`` for the given rows."""
        fac_cols = self._factor_columns()
        y_e, y_v = lay.y_est[rows], lay.y_event[rows]
        if spec.excess:
            y_e = y_e - lay.rf_est[rows]
            y_v = y_v - lay.rf_event[rows]
        xe, xv = [], []
        shifted = {"market_lag1": -1, "market_lead1": 1}
        for r in spec.design_columns:
            if r == "const":
                xe.append(np.ones_like(y_e))
                xv.append(np.ones_like(y_v))
            elif r == "market":
                xe.append(lay.bench_est[rows])
                xv.append(lay.bench_event[rows])
            elif r in shifted:
                est, event = lay.bench_shift[shifted[r]]
                xe.append(est[rows])
                xv.append(event[rows])
            elif r == "world":
                xe.append(lay.world_est[rows])
                xv.append(lay.world_event[rows])
            else:
                j = fac_cols.index(r)
                xe.append(lay.fac_est[rows, :, j])
                xv.append(lay.fac_event[rows, :, j])
        # (N, T, k) views of (k, N, T) stacks: each regressor column is contiguous (fast path of
        # fit_batched_ols)
        return y_e, np.moveaxis(np.stack(xe), 0, 2), y_v, np.moveaxis(np.stack(xv), 0, 2)

    def _estimation_design(self, spec: ModelSpec, lay: Layout) -> tuple[np.ndarray, list]:
        """y and the regressor columns of ``spec`` over the estimation window, every row of
        ``lay``: views of the layout (``y - rf`` computed for excess models), the constant as
        ``1.0`` (:func:`crackdown.estimation.ols.fit_batched_ols` takes the columns as they
        are: no ``(N, T, k)`` stack, no array of ones)."""
        return estimation_design(self, spec, lay)

    def _event_design(self, spec: ModelSpec, lay: Layout,
                      rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """y and the stacked ``(N, L, k)`` X of ``spec`` over the event window, for ``rows``."""
        y_v = lay.y_event[rows]
        if spec.excess:
            y_v = y_v - lay.rf_event[rows]
        fac_cols = self._factor_columns()
        shifted = {"market_lag1": -1, "market_lead1": 1}
        xv = []
        for r in spec.design_columns:
            if r == "const":
                xv.append(np.ones_like(y_v))
            elif r == "market":
                xv.append(lay.bench_event[rows])
            elif r in shifted:
                xv.append(lay.bench_shift[shifted[r]][1][rows])
            elif r == "world":
                xv.append(lay.world_event[rows])
            else:
                xv.append(lay.fac_event[rows, :, fac_cols.index(r)])
        return y_v, np.moveaxis(np.stack(xv), 0, 2)

    def _check_factor_coverage(self, spec: ModelSpec, lay: Layout, rows: np.ndarray) -> None:
        if spec.factor_kind is None or len(rows) == 0:
            return
        _, xe, _, xv = self._design(spec, lay, rows)
        cols = list(spec.factor_columns) + (["rf"] if spec.excess else [])
        miss_e = np.isfinite(lay.y_est[rows]) & lay.clean_mask[rows] & ~np.isfinite(xe).all(axis=2)
        miss_v = np.isfinite(lay.y_event[rows]) & ~np.isfinite(xv).all(axis=2)
        if spec.excess:
            miss_e |= np.isfinite(lay.y_est[rows]) & ~np.isfinite(lay.rf_est[rows])
            miss_v |= np.isfinite(lay.y_event[rows]) & ~np.isfinite(lay.rf_event[rows])
        dates = np.concatenate([lay.dates_est[rows][miss_e], lay.dates_event[rows][miss_v]])
        if len(dates):
            uniq = pd.DatetimeIndex(np.unique(dates))
            tick = sorted(set(lay.keys["ticker"].iloc[rows][(miss_e.any(1) | miss_v.any(1))]))
            shown = ", ".join(f"{d:%Y-%m-%d}" for d in uniq[:8])
            raise PriceDataError(
                f"factor data ({', '.join(cols)}) are missing on {len(uniq)} date(s) where "
                f"{', '.join(tick[:6])} trade{'s' if len(tick) == 1 else ''}: {shown}"
                f"{' ...' if len(uniq) > 8 else ''}; factor models need factors covering every "
                "estimation and event day (US factors do not cover Hong Kong sessions; use a "
                f"newer factor file or model='market'){_factor_hint(spec, self.factors)}"
            )

    # ------------------------------------------------------------------ fit
    def fit(self):
        """Estimate every firm-event and return :class:`crackdown.estimation.results.EventStudyResults`."""
        from crackdown.estimation.panel import EventPanel
        from crackdown.estimation.results import EventStudyResults

        lay = self._layout()
        fe = lay.keys
        n = len(fe)
        w_lo, w_hi = self.window
        ev_days = np.arange(w_lo, w_hi + 1)
        status = np.array(["used"] * n, dtype=object)
        detail = [""] * n
        model_used = np.array([self.model] * n, dtype=object)
        day0 = fe["day0"].to_numpy()

        days = usable_day_stats(self, self.spec, lay)  # one pass over the returns
        n_est = days["n_est"]
        tickers = fe["ticker"].to_numpy()
        event_ids = fe["event_id"].to_numpy()
        for i in np.flatnonzero(~lay.has_any):
            t = tickers[i]
            status[i] = "no_price_data"
            detail[i] = self.no_data_reasons.get(t, f"no returns for {t} in the data")
        late = np.flatnonzero(lay.has_any & (lay.first_valid > day0))
        if len(late):  # the dates formatted in one pass, not a Timestamp per firm-event
            status[late] = "listed_after_event"
            for i, t, first, zero in zip(late.tolist(), tickers[late].tolist(),
                                         _day_texts(lay.first_valid[late]),
                                         _day_texts(day0[late])):
                detail[i] = f"first return of {t} on {first}, after day 0 {zero}"
        own = own_regressors(self.spec, fe)
        for i in np.flatnonzero((status == "used") & (np.array(own, dtype=object) != "")):
            status[i] = "degenerate_design"
            detail[i] = (
                f"the {own[i]} is the studied ticker {tickers[i]} itself: its abnormal "
                "returns are "
                "identically zero and its tests would be rounding noise; excluded (study it "
                "against another benchmark, e.g. benchmark=/--benchmark, or with "
                "model='constant-mean')"
            )
        pending = np.flatnonzero(status == "used")
        short = pending[n_est[pending] < self.min_estimation_obs]
        t_len = self.estimation[1] - self.estimation[0] + 1
        for i in short:
            msg = (
                f"{n_est[i]} usable estimation days of {t_len} (minimum {self.min_estimation_obs})"
            )
            status[i] = "insufficient_estimation"
            detail[i] = msg
            if not self.spec.estimated:  # nothing to estimate: the ARs need no window
                status[i] = "short_estimation"
                detail[i] = (f"{msg}: {self.model} estimates nothing, so its abnormal returns "
                             "are computed; no estimation-window variance: left out of "
                             "standardized tests")
        if not self.spec.estimated:
            short = short[:0]
        fb_rows = np.array([], dtype=int)
        if self.fallback_spec is not None and len(short):
            n_fb = usable_day_stats(self, self.fallback_spec, lay, rows=short)["n_est"]
            need = self.fallback_spec.n_params + 1 if self.fallback_spec.estimated else 0
            feasible = n_fb >= max(need, 0)
            fb_rows = short[feasible]
            for i in fb_rows:
                status[i] = "fallback"
                model_used[i] = self.fallback
                detail[i] = f"{detail[i]}; used fallback model {self.fallback}"
        main_rows = np.flatnonzero(np.isin(status, ("used", "short_estimation")))
        usable: tuple[dict, dict] = ({}, {})  # usable-day statistics, for flag_perfect_fits
        main_rows = drop_constant_returns(self, self.spec, lay, main_rows, status, detail,
                                          stats=usable[0], usable=days)
        fb_rows = drop_constant_returns(self, self.fallback_spec, lay, fb_rows, status, detail,
                                        stats=usable[1])
        self._check_factor_coverage(self.spec, lay, main_rows)
        if self.fallback_spec is not None:
            self._check_factor_coverage(self.fallback_spec, lay, fb_rows)

        fits = []
        for spec, rows, stats in ((self.spec, main_rows, usable[0]),
                                  (self.fallback_spec, fb_rows, usable[1])):
            if spec is None or len(rows) == 0:
                continue
            y_e, xe = self._estimation_design(spec, lay)  # every row, no copies
            y_v, xv = self._event_design(spec, lay, rows)
            steps = _steps_ahead(self, lay, rows, y_e, xe) if spec.method == "garch" else None
            every = len(rows) == n and bool((rows == np.arange(n)).all())
            fit = fit_normal_model(spec, y_e, xe, lay.clean_mask, y_v, xv, steps,
                                   rows=None if every else rows)
            no_var = np.flatnonzero(status[rows] == "short_estimation")
            fit.ar_est[no_var] = np.nan  # fewer than min_estimation_obs days: no variance
            fit.sigma2[no_var] = np.nan
            flag_perfect_fits(self, spec, lay, rows, fit, status, detail, stats=stats)
            for j in np.flatnonzero(~fit.ok & (status[rows] != "degenerate_design")):
                i = rows[j]
                why = ("collinear regressors in the estimation window"
                       if fit.fail_reason is None or not fit.fail_reason[j] else
                       fit.fail_reason[j])
                status[i] = "insufficient_estimation"
                detail[i] = (
                    f"{detail[i] + '; ' if detail[i] else ''}model {spec.name} not estimable: "
                    f"{why}"
                )
            fits.append((spec, rows, fit))

        # event-window coverage (after the model is known: its regressors must be present)
        ar_event_all = np.full((n, len(ev_days)), np.nan)
        for spec, rows, fit in fits:
            ar_event_all[rows] = fit.ar_event
        for spec, rows, fit in fits:
            if spec is self.fallback_spec:
                for i in rows[fit.ok & (fit.n_obs < 2)]:
                    detail[i] += (
                        " (no estimation-window variance: left out of standardized tests)"
                    )
            has_gap = fit.ok & ~np.isfinite(fit.ar_event).all(axis=1)
            for j in np.flatnonzero(has_gap):
                i = rows[j]
                miss = ~np.isfinite(fit.ar_event[j])
                days = ", ".join(
                    f"{d:+d}" + (
                        f" ({pd.Timestamp(lay.dates_event[i, m]):%Y-%m-%d})"
                        if not np.isnat(lay.dates_event[i, m]) else ""
                    )
                    for m, d in zip(np.flatnonzero(miss), ev_days[miss])
                )
                text = f"no abnormal return on event day(s) {days}"
                if miss.all():
                    text = f"every event-window day is missing: {days}; excluded"
                detail[i] = f"{detail[i] + '; ' if detail[i] else ''}{text}"
                if status[i] == "used" or miss.all():
                    status[i] = "missing_event_window"
        for i in [i for i, note in enumerate(lay.day0_note) if note]:
            detail[i] = f"{detail[i] + '; ' if detail[i] else ''}{lay.day0_note[i]}"

        included = np.zeros(n, dtype=bool)
        for spec, rows, fit in fits:
            ok_rows = rows[fit.ok]
            all_missing = ~np.isfinite(ar_event_all[ok_rows]).any(axis=1)
            included[ok_rows[~all_missing]] = True
        flagged = np.isin(status, FLAGGED_STATUSES)
        columns = outcome_info_columns(self, event_ids.tolist(), tickers.tolist())
        outcomes = pd.DataFrame(
            {
                "event_id": fe["event_id"].to_numpy(),
                "ticker": fe["ticker"].to_numpy(),
                "exchange": fe["exchange"].to_numpy(),
                "day0": fe["day0"].to_numpy(),
                "status": status.astype(str),
                "detail": detail,
                "model": np.where(included, model_used.astype(str), ""),
                "n_estimation_obs": n_est,
                "included": included,
                "flagged": flagged & included,
                "day0_note": columns["day0_note"],
                "benchmark": fe["benchmark"].to_numpy(),
            }
        )
        for col in ("timing", "day0_uncertain", "confounded_by"):
            outcomes[col] = columns[col]
        for spec, rows, fit in fits:
            if spec is self.fallback_spec:  # report the days the fallback model used
                outcomes.loc[rows, "n_estimation_obs"] = fit.n_obs
        panel = EventPanel.build(self, lay, fits, included, model_used, flagged)
        return EventStudyResults(self, panel, outcomes)


def _day_texts(days: np.ndarray) -> list[str]:
    """``YYYY-MM-DD`` of each date, as ``f"{pd.Timestamp(d):%Y-%m-%d}"`` writes it."""
    return np.datetime_as_string(np.asarray(days, dtype="datetime64[ns]"), unit="D").tolist()


def _steps_ahead(study, lay: Layout, rows: np.ndarray, y_e: np.ndarray,
                 xe: list) -> np.ndarray:
    """Sessions from each row's last usable estimation day to each event day (N, L).

    ``y_e`` and the columns ``xe`` cover every row of ``lay``
    (:meth:`EventStudy._estimation_design`); the result is for ``rows``.
    """
    use = np.isfinite(y_e[rows]) & lay.clean_mask[rows]
    for x in xe:
        if not isinstance(x, float):
            use &= np.isfinite(x[rows])
    est_off = np.arange(study.estimation[0], study.estimation[1] + 1)
    last = np.where(use.any(axis=1), est_off[use.shape[1] - 1 - use[:, ::-1].argmax(axis=1)],
                    study.estimation[1])
    ev_off = np.arange(study.window[0], study.window[1] + 1)
    return ev_off[None, :] - last[:, None]


def _factor_hint(spec: ModelSpec, factors: pd.DataFrame | None) -> str:
    """Where the factor file of ``spec`` ends (Asia Pacific files end before the US ones)."""
    if spec.factor_kind is None or factors is None or not len(factors):
        return ""
    last = factors.dropna(how="any").index.max()
    if pd.isna(last):
        return ""
    return (f"; the {spec.name} factors loaded run to {last:%Y-%m-%d}, so events after that "
            "date cannot use this model")

__all__ = ["FACTOR_COLUMNS", "FLAGGED_STATUSES", "MODELS", "OUTCOME_STATUSES", "PERFECT_FIT",
           "WORLD_MARKETS", "EventStudy"]
