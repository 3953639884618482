"""Specification curves: the same events under every reasonable choice, estimated and tested.

A headline CAAR rests on choices: the normal-return model, the market proxy, the estimation
window, the event window, simple or log returns, whether other events are cleaned out of the
estimation window, where day 0 falls for an announcement without a release time. A
*specification curve* (Simonsohn, Simmons & Nelson 2020, *Nature Human Behaviour* 4, 1208-1214)
estimates every combination, sorts the estimates and shows the choices underneath, so a reader
sees whether the result survives them. :func:`sweep` runs the grid for a set of events:

* one row per (event, specification) (:data:`SWEEP_COLUMNS`): the choices, ``n_firms``, CAAR with
  its portfolio-test interval, mean BHAR, the headline test (:data:`HEADLINE_TEST`), the outcome
  counts, a ``status`` (``ok``; ``invalid`` when the estimation window overlaps the event window;
  ``not_applicable`` when a model does not price the event's listings or the window does not reach
  day +1 for an event without a release time; ``duplicate`` when, for this event, the choice makes
  no difference, e.g. the Hong Kong proxy for an event of New York listings only, or the timing
  policy for an event with a release time, see ``same_as``; ``failed`` with the error of a task
  that failed twice);
* a joint test per event (:data:`JOINT_COLUMNS`): the share of specifications whose headline test
  rejects at ``alpha`` (in the dominant direction), the median CAAR and Stouffer's mean
  ``z_s = sign(T_s) Phi^{-1}(1 - p_s / 2)``, each compared with the same statistic of the whole
  curve at ``n_draws`` common pseudo dates (every specification re-estimated at the same placebo
  dates, :func:`crackdown.estimation.placebo.placebo_dates`), ``p = (1 + #{|S_b| >= |S_obs|}) /
  (B + 1)`` (:func:`crackdown.inference.placebo.empirical_pvalue`). The placebo keeps the
  event's cross-sectional correlation and the curve's dependence between specifications, which
  a count of significant specifications alone ignores.

Every specification of an event is the study one would run by hand: the row equals
:class:`~crackdown.estimation.study.EventStudy` on the same events with the same settings (the
tests check it against :func:`crackdown.analyses.campaign.run_campaign`). Work is shared:
returns and day 0s are loaded once per (benchmark, returns kind, timing policy), each fit covers
every event of a chunk at once, duplicates are computed once, and the tasks run in this process
or on a Dask cluster (:mod:`crackdown.cluster`) with the same numbers.
"""

from __future__ import annotations

import itertools
import os
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crackdown.analyses.sweep_tasks import ROW_FIELDS, SweepBase, SweepTask, run_sweep_task
from crackdown.errors import CrackdownError, StudyConfigError

__all__ = ["CHOICES", "DEFAULT_BENCHMARKS", "DEFAULT_ESTIMATIONS", "DEFAULT_MODELS",
           "DEFAULT_WINDOWS", "JOINT_COLUMNS", "SWEEP_COLUMNS", "SweepResults", "sweep"]

#: The choices a specification makes, in the order of the table and the figure.
CHOICES = ("model", "window", "estimation", "benchmark", "returns", "clean_estimation",
           "timing_policy")
#: Default grid: 4 models x 4 windows x 2 estimation windows x 2 benchmarks = 64 specifications.
DEFAULT_MODELS = ("market", "market-adjusted", "scholes-williams", "international")
DEFAULT_WINDOWS = ((-1, 1), (0, 1), (0, 2), (-1, 5))
DEFAULT_ESTIMATIONS = ((-250, -11), (-120, -11))
DEFAULT_BENCHMARKS = ("auto", "^HSI")

#: Columns of :attr:`SweepResults.table`.
SWEEP_COLUMNS = ("event_id", "spec_id", *CHOICES, *ROW_FIELDS, "same_as")
#: Columns of :attr:`SweepResults.joint`.
JOINT_COLUMNS = ("event_id", "n_specs", "n_estimable", "n_significant", "share_significant",
                 "share_negative", "share_positive", "median_caar", "min_caar", "max_caar",
                 "stouffer_z", "n_draws", "p_share", "p_median", "p_stouffer", "note")

#: A task holds at most about this many firm-events (observed plus placebo) per window: with
#: a 250-day estimation window the arrays of one fit take about 25 kB per firm-event, so a
#: task's peak stays near 100 MB on top of the shared returns.
CHUNK_FIRM_EVENTS = 4000
#: In-process seconds above which a local run without a scheduler starts a LocalCluster
#: (measured by benchmarks/sweep_speed.py: a 2-worker cluster costs about 3 s to start).
AUTO_CLUSTER_SECONDS = 20.0
#: Rough in-process cost (s) of one firm-event fit and of one (event, draw) headline test (the
#: draws' tests are grouped, inference/grouped.py), and the factor of the GARCH model (one arch
#: fit per firm-event); used only to choose the executor. Fitted to benchmarks/sweep_speed.py
#: runs: 41.3 s estimated for 42.4 s measured (91 events, 19 draws), 4.5 s for 4.2 s (key
#: events, 49 draws).
_COST_FIT, _COST_TEST, _GARCH_FACTOR = 4e-5, 1.2e-4, 800.0


@dataclass(frozen=True)
class Specification:
    """One combination of choices; ``spec_id`` is its stable text key."""

    model: str
    window: tuple[int, int]
    estimation: tuple[int, int]
    benchmark: str
    returns: str
    clean_estimation: bool
    timing_policy: str

    @property
    def spec_id(self) -> str:
        w, e = self.window, self.estimation
        return (f"{self.model}|w{w[0]}:{w[1]}|e{e[0]}:{e[1]}|{self.benchmark}|{self.returns}|"
                f"{'clean' if self.clean_estimation else 'all-days'}|{self.timing_policy}")

    @property
    def data_key(self) -> tuple[str, str, str]:
        return (self.benchmark, self.returns, self.timing_policy)


@dataclass
class SweepResults:
    """The specification curves of a set of events (:func:`sweep`).

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`SWEEP_COLUMNS`, one row per (event, specification), windows as ``"lo:hi"``.
    joint : pandas.DataFrame
        :data:`JOINT_COLUMNS`, one row per event.
    draws : pandas.DataFrame
        ``event_id, spec_id, draw, caar, headline_stat, headline_p`` at the pseudo dates.
    pseudo_dates : dict
        event_id -> the common pseudo dates (on the event's main exchange).
    specifications : pandas.DataFrame
        The grid: ``spec_id`` and the choices.
    alpha : float
    executor : str
        ``in-process`` or the Dask scheduler used.
    """

    table: pd.DataFrame
    joint: pd.DataFrame
    draws: pd.DataFrame
    pseudo_dates: dict[str, pd.DatetimeIndex]
    specifications: pd.DataFrame
    alpha: float = 0.05
    executor: str = "in-process"
    settings: dict = field(default_factory=dict)

    def curve(self, event_id: str) -> pd.DataFrame:
        """The event's estimable specifications (``status == "ok"``, finite CAAR, no
        duplicate), sorted by CAAR, with their ``rank`` (1 = most negative)."""
        self._check_event(event_id)
        t = self.table
        sel = (t["event_id"] == event_id) & (t["status"] == "ok") & np.isfinite(t["caar"])
        out = t.loc[sel].sort_values(["caar", "spec_id"], kind="stable").reset_index(drop=True)
        out.insert(2, "rank", np.arange(1, len(out) + 1))
        return out

    def joint_test(self, event_id: str) -> dict[str, float]:
        """The numbers of the event's row of :attr:`joint` (for the figure's subtitle)."""
        self._check_event(event_id)
        row = self.joint.loc[self.joint["event_id"] == event_id].iloc[0]
        return {k: float(v) for k, v in row.items() if k not in ("event_id", "note")}

    def _check_event(self, event_id: str) -> None:
        ids = list(self.joint["event_id"])
        if event_id not in ids:
            raise StudyConfigError(f"event {event_id!r} is not in this sweep; it has "
                                   f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")

    def summary(self, width: int = 100) -> str:
        """Text report: the grid, then one line per event with the joint test (wrapped at
        ``width`` columns)."""
        s = self.settings
        lines = [
            "Specification curve (Simonsohn, Simmons & Nelson 2020)",
            (f"  {len(self.specifications)} specifications x {len(self.joint)} "
             f"event{'s' if len(self.joint) != 1 else ''}; "
             f"headline test {s.get('headline', '')} at alpha {self.alpha:g}; "
             f"{s.get('n_draws', 0)} common pseudo dates (seed {s.get('seed', 0)}); "
             f"run {self.executor}"),
        ]
        for choice in CHOICES:
            values = list(dict.fromkeys(self.specifications[choice].astype(str)))
            lines.append(f"  {choice:<16} {', '.join(values)}")
        lines.append("")
        for r in self.joint.itertuples(index=False):
            ps = [f"{name} {v:.3f}" for name, v in (("share", r.p_share), ("median", r.p_median),
                                                    ("Stouffer", r.p_stouffer)) if np.isfinite(v)]
            p = f"; joint p: {', '.join(ps)}" if ps else ""
            share = (f"{r.n_significant}/{r.n_estimable} significant "
                     f"({100 * r.share_significant:.0f}%)" if np.isfinite(r.share_significant)
                     else "no headline test (one listing)")
            lines.append(f"  {r.event_id}: {share}, median CAAR "
                         f"{100 * r.median_caar:+.2f}% [{100 * r.min_caar:+.2f}, "
                         f"{100 * r.max_caar:+.2f}]{p}" if r.n_estimable else
                         f"  {r.event_id}: no estimable specification ({r.note})")
        return "\n".join(textwrap.fill(line, width, subsequent_indent=" " * 6,
                                        break_on_hyphens=False) if line else line
                         for line in lines)

    def to_csv(self, folder: str | os.PathLike[str], prefix: str = "sweep") -> dict[str, Path]:
        """Write ``<prefix>.csv`` (the table) and ``<prefix>_joint.csv``, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, frame in (("table", self.table), ("joint", self.joint)):
            path = folder / (f"{prefix}.csv" if name == "table" else f"{prefix}_joint.csv")
            tmp = path.with_name(f".{path.name}.partial")
            frame.to_csv(tmp, index=False)
            os.replace(tmp, path)
            out[name] = path
        return out


def sweep(
    events: pd.DataFrame | None = None,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    windows: Sequence[tuple[int, int]] = DEFAULT_WINDOWS,
    estimations: Sequence[tuple[int, int]] = DEFAULT_ESTIMATIONS,
    benchmarks: Sequence[str | Mapping[str, str]] = DEFAULT_BENCHMARKS,
    returns: Sequence[str] = ("simple",),
    clean_estimation: Sequence[bool] = (False,),
    timing_policies: Sequence[str] = ("span",),
    n_draws: int = 99,
    seed: int = 0,
    alpha: float = 0.05,
    fallback: str | None = "market-adjusted",
    min_estimation_obs: int = 100,
    buffer: int = 10,
    prices_dir: str | os.PathLike[str] | None = None,
    events_file: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    chunk_size: int = CHUNK_FIRM_EVENTS,
    progress: bool = False,
) -> SweepResults:
    """Estimate and test every specification of the grid for each event.

    Parameters
    ----------
    events : pandas.DataFrame, optional
        Events (:func:`crackdown.timeline.events.load_events`), each with its own tickers;
        default every event of ``events_file``.
    models, windows, estimations, returns, timing_policies : sequences
        The choices: :data:`crackdown.estimation.models.MODELS` names, event and estimation
        windows ``(lo, hi)`` in sessions around day 0, ``"simple"``/``"log"``, and
        :data:`crackdown.timeline.calendars.TIMING_POLICIES`.
    benchmarks : sequence
        ``"auto"`` (SPY for New York, ``HK_NONTECH_EW`` for Hong Kong listings), a ticker such
        as ``"^HSI"`` (the proxy of the listings on its own exchange; the others keep auto),
        ``"MIC=TICKER"`` or a mapping MIC/ticker -> ticker.
    clean_estimation : sequence of bool
        Whether the event windows of the events table are removed from each listing's
        estimation window (:class:`~crackdown.estimation.study.EventStudy`).
    n_draws, seed, buffer : int
        Common pseudo dates per event for the joint test (0: no joint p-values), the seed of
        their draw and the sessions kept free around every real event window.
    alpha : float
        Level of the headline test counted as significant, and ``1 - alpha`` the interval's.
    fallback, min_estimation_obs
        As :func:`crackdown.analyses.campaign.run_campaign` (the sweep's campaign specification
        reproduces its numbers).
    prices_dir, events_file : path, optional
        Offline price folder and events table (defaults from :mod:`crackdown.config`).
    scheduler : str, optional
        Where the tasks run (:func:`crackdown.cluster.resolve_scheduler`): ``"in-process"``,
        ``"local"``/``"local:N"`` (a LocalCluster) or a scheduler address; default
        ``$CRACKDOWN_DASK_SCHEDULER``, else in-process for a job estimated under
        :data:`AUTO_CLUSTER_SECONDS` and a LocalCluster sized to the machine above it.
    chunk_size : int
        Firm-events (observed plus placebo) per task and window, bounding a worker's memory.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    SweepResults
    """
    from crackdown.cluster import default_local_workers, resolve_scheduler, run_tasks
    from crackdown.inference.headline import HEADLINE_TEST
    from crackdown.timeline.events import load_events

    grid = _grid(models, windows, estimations, benchmarks, returns, clean_estimation,
                 timing_policies)
    n_draws = _positive_int(n_draws, "n_draws", allow_zero=True)
    chunk_size = _positive_int(chunk_size, "chunk_size")
    if not 0 < float(alpha) < 1:
        raise StudyConfigError(f"alpha={alpha!r} must be strictly between 0 and 1 (e.g. 0.05)")
    executor = resolve_scheduler(scheduler)  # a bad value fails before any data is read
    all_events = load_events(events_file)
    if events is None:
        events = all_events
    if len(events) == 0:
        raise StudyConfigError("sweep: the events table is empty")
    events = events.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)
    event_ids = [str(e) for e in events["event_id"]]
    specs = list(grid.values())
    bases = _bases(events, all_events, specs, n_draws=n_draws, fallback=fallback,
                   min_estimation_obs=min_estimation_obs, prices_dir=prices_dir)
    canonical = _canonical_specs(specs, bases, event_ids)
    pseudo, no_pseudo = (_pseudo_dates(bases, specs, event_ids, n_draws, seed, buffer)
                         if n_draws else ({}, {}))
    tasks = _tasks(specs, canonical, bases, event_ids, n_draws, float(alpha), chunk_size)
    if executor is None:
        seconds = _estimated_seconds(tasks, bases)
        executor = ("local" if seconds > AUTO_CLUSTER_SECONDS and default_local_workers() > 1
                    else "in-process")
    outcomes = run_tasks(run_sweep_task, tasks, scheduler=executor,
                         broadcast={"bases": bases, "pseudo": pseudo}, progress=progress,
                         desc="sweep")
    table, draws = _assemble(specs, canonical, tasks, outcomes, event_ids, n_draws)
    joint = _joint(table, draws, event_ids, n_draws, float(alpha), no_pseudo)
    spec_frame = pd.DataFrame([{"spec_id": s.spec_id, **_choice_values(s)} for s in specs])
    return SweepResults(
        table=table, joint=joint, draws=draws,
        pseudo_dates={ev: d for ev, (d, _) in pseudo.items()}, specifications=spec_frame,
        alpha=float(alpha), executor=executor,
        settings={"n_draws": n_draws, "seed": seed, "buffer": buffer, "fallback": fallback,
                  "min_estimation_obs": min_estimation_obs, "headline": HEADLINE_TEST,
                  "n_tasks": len(tasks)},
    )


# -------------------------------------------------------------------------------- the grid
def _grid(models, windows, estimations, benchmarks, returns, clean, timings
          ) -> dict[str, Specification]:
    """Normalised, de-duplicated grid in a stable order: spec_id -> Specification."""
    from crackdown.estimation.inputs import check_window
    from crackdown.estimation.models import MODELS
    from crackdown.timeline.calendars import check_timing_policy

    def listed(values, name):
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
            values = [values]
        values = list(values)
        if not values:
            raise StudyConfigError(f"sweep: {name} is empty; give at least one value")
        return values

    models = listed(models, "models")
    for m in models:
        if m not in MODELS:
            raise StudyConfigError(f"sweep: unknown model {m!r}; use one of {', '.join(MODELS)}")
    windows = [check_window(w, "event window") for w in listed(windows, "windows")]
    estimations = [check_window(e, "estimation window")
                   for e in listed(estimations, "estimations")]
    benchmarks = [_benchmark_label(b) for b in listed(benchmarks, "benchmarks")]
    for r in listed(returns, "returns"):
        if r not in ("simple", "log"):
            raise StudyConfigError(f"sweep: returns {r!r}; use 'simple' or 'log'")
    for c in listed(clean, "clean_estimation"):
        if not isinstance(c, (bool, np.bool_)):
            raise StudyConfigError(f"sweep: clean_estimation values are True/False; got {c!r}")
    for t in listed(timings, "timing_policies"):
        check_timing_policy(t)
    out: dict[str, Specification] = {}
    for m, w, e, b, r, c, t in itertools.product(
            models, windows, estimations, benchmarks, listed(returns, "returns"),
            listed(clean, "clean_estimation"), listed(timings, "timing_policies")):
        spec = Specification(m, w, e, b, r, bool(c), t)
        out.setdefault(spec.spec_id, spec)
    return out


def _benchmark_label(value) -> str:
    """A benchmark choice as its label: ``auto``, ``TICKER`` or ``KEY=TICKER;KEY=TICKER``."""
    if isinstance(value, Mapping):
        if not value:
            raise StudyConfigError("sweep: an empty benchmark mapping; use 'auto'")
        return ";".join(f"{k}={v}" for k, v in sorted(value.items()))
    text = str(value).strip()
    if not text:
        raise StudyConfigError("sweep: an empty benchmark; use 'auto' or a ticker such as ^HSI")
    _benchmark_argument(text)  # validate now
    return text


def _benchmark_argument(label: str, tickers=()) -> dict[str, str] | None:
    """The ``benchmark=`` of :meth:`EventStudy.from_events` for a label (None: auto).

    A choice names the proxy of some listings (an exchange MIC or tickers); every other listing
    of ``tickers`` keeps its default (:func:`crackdown.timeline.universe.default_benchmark`), so
    ``^HSI`` changes the Hong Kong listings only.
    """
    from crackdown.marketdata.benchmarks import is_constructed_benchmark
    from crackdown.timeline.universe import default_benchmark, exchange_for_ticker

    if label == "auto":
        return None
    if "=" in label:
        pairs = {}
        for part in label.split(";"):
            key, _, ticker = part.partition("=")
            if not key.strip() or not ticker.strip():
                raise StudyConfigError(f"sweep: benchmark {label!r}; write KEY=TICKER pairs "
                                       "(KEY an exchange MIC such as XHKG, or a ticker)")
            pairs[key.strip()] = ticker.strip()
    elif is_constructed_benchmark(label):
        pairs = {"XHKG": label}
    else:
        try:
            pairs = {exchange_for_ticker(label): label}
        except CrackdownError as exc:
            raise StudyConfigError(
                f"sweep: benchmark {label!r}: {' '.join(str(exc).split())}; or write "
                "MIC=TICKER (e.g. XHKG=^HSCE)") from None
    out = {}
    for t in dict.fromkeys(tickers):
        try:
            ex = exchange_for_ticker(t)
        except CrackdownError:
            continue  # the study reports the ticker
        out[t] = pairs.get(t, pairs.get(ex)) or (default_benchmark(t) or default_benchmark(ex))
    return out if tickers else pairs


def _choice_values(spec: Specification) -> dict:
    return {"model": spec.model, "window": f"{spec.window[0]}:{spec.window[1]}",
            "estimation": f"{spec.estimation[0]}:{spec.estimation[1]}",
            "benchmark": spec.benchmark, "returns": spec.returns,
            "clean_estimation": spec.clean_estimation, "timing_policy": spec.timing_policy}


def _positive_int(value, name: str, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise StudyConfigError(f"{name}={value!r} must be a {kind} integer")
    return int(value)


# ------------------------------------------------------------------------- shared data
def _bases(events, all_events, specs, *, n_draws, fallback, min_estimation_obs, prices_dir
           ) -> dict[tuple, SweepBase]:
    """One :class:`SweepBase` per data key: day 0s, benchmarks and returns loaded once."""
    from crackdown.estimation.study import EventStudy
    from crackdown.timeline.clusters import listing_day0s

    e_lo = min(s.estimation[0] for s in specs)
    e_hi = max(s.estimation[1] for s in specs)
    w_lo = min(s.window[0] for s in specs)
    w_hi = max(s.window[1] for s in specs)
    # windows that only set the price span (the specifications are checked one by one): every
    # estimation and event day of the grid, and day +1 for events without a release time
    span_est, span_win = (min(e_lo, w_lo - 2), w_lo - 1), (w_lo, max(w_hi, e_hi, 1))
    needs_world = any(s.model == "international" for s in specs) or fallback == "international"
    from crackdown.estimation.inputs import _event_tickers

    tickers = [t for ev in events.itertuples(index=False) for t in _event_tickers(ev)]
    bases = {}
    for key in dict.fromkeys(s.data_key for s in specs):
        label, kind, timing = key
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            study = EventStudy.from_events(
                events, benchmark=_benchmark_argument(label, tickers), prices_dir=prices_dir,
                returns_kind=kind, history="all" if n_draws else None,
                timing_policy=timing, model="international" if needs_world else "market",
                estimation=span_est, window=span_win, fallback=fallback,
                min_estimation_obs=min_estimation_obs)
        day0s = listing_day0s(all_events, timing_policy=timing)[["ticker", "day0"]]
        other = pd.concat([study.firm_events[["ticker", "day0"]], day0s], ignore_index=True)
        uncertain: dict[str, bool] = {}
        for (ev, _), info in study.firm_event_info.items():
            uncertain[ev] = uncertain.get(ev, False) or bool(info.get("day0_uncertain"))
        bases[key] = SweepBase(
            study=study, other_days=other.drop_duplicates().reset_index(drop=True),
            uncertain=uncertain,
            settings={"fallback": fallback, "min_estimation_obs": min_estimation_obs,
                      "returns_kind": kind, "timing_policy": timing})
    return bases


def _canonical_specs(specs, bases, event_ids) -> dict[tuple[str, str], str]:
    """(event, spec_id) -> the first spec_id of the grid that gives this event the same study.

    Two specifications are the same for an event when they share model, windows, returns kind
    and cleaning, and the event's firm-events are identical (tickers, day 0s, benchmarks and
    ``world`` series) with the same days to clean; e.g. the Hong Kong proxy for an event of New
    York listings only, or the timing policy for an event with a release time.
    """
    firm_sig: dict[tuple, tuple] = {}
    for key, base in bases.items():
        fe = base.study.firm_events
        cols = [c for c in ("ticker", "exchange", "day0", "benchmark", "world") if c in fe]
        other = base.other_days
        for ev, grp in fe.groupby("event_id", sort=False):
            rows = tuple(sorted(map(tuple, grp[cols].astype(str).to_numpy())))
            days = other.loc[other["ticker"].isin(set(grp["ticker"]))]
            clean = tuple(sorted(map(tuple, days.astype(str).to_numpy())))
            firm_sig[(key, str(ev))] = (rows, clean, base.uncertain.get(str(ev), False))
    out: dict[tuple[str, str], str] = {}
    for ev in event_ids:
        seen: dict[tuple, str] = {}
        for spec in specs:
            rows, clean, uncertain = firm_sig.get((spec.data_key, ev), ((), (), False))
            sig = (spec.model, spec.window, spec.estimation, spec.returns, spec.clean_estimation,
                   rows, clean if spec.clean_estimation else (),
                   uncertain and spec.timing_policy == "span" and spec.window[1] < 1)
            out[(ev, spec.spec_id)] = seen.setdefault(sig, spec.spec_id)
    return out


def _pseudo_dates(bases, specs, event_ids, n_draws, seed, buffer) -> dict:
    """event_id -> (common pseudo dates on its main exchange, the MIC), one draw per event.

    Candidates lie in the span where every data key has returns, while the event's listings
    trade (their pseudo estimation windows may then be short: the fallback model applies as
    for a real event), leave room for the widest estimation and event windows of the grid, and avoid every
    event of the events table (+/- ``buffer`` sessions around the widest window). Event ``k``
    of the sweep uses the seed ``[seed, k]``.
    """
    from crackdown.estimation.placebo import placebo_dates

    first = next(iter(bases.values()))
    span = (max(b.study.returns.index.min() for b in bases.values()),
            min(b.study.returns.index.max() for b in bases.values()))
    estimation = (min(s.estimation[0] for s in specs), max(s.estimation[1] for s in specs))
    window = (min(s.window[0] for s in specs), max(s.window[1] for s in specs))
    exclude = list(pd.to_datetime(first.other_days["day0"]).unique())
    fe = first.study.firm_events
    out: dict = {}
    reasons: dict[str, str] = {}
    for k, ev in enumerate(event_ids):
        firms = fe.loc[fe["event_id"] == ev]
        have = [t for t in firms["ticker"] if t in first.study.returns.columns
                and first.study.returns[t].notna().any()]
        firms = firms.loc[firms["ticker"].isin(have)]
        if firms.empty:
            reasons[ev] = "no listing with returns"
            continue
        main = firms["exchange"].value_counts().index[0]
        # pseudo dates while the event's listings traded (e.g. DIDI: 2021-06-30 to 2022-06-10)
        valid = first.study.returns[have]
        trading = (min(valid[c].first_valid_index() for c in have),
                   max(valid[c].last_valid_index() for c in have))
        try:
            dates = placebo_dates(first.study, main, n_draws=n_draws, seed=[int(seed), k],
                                  buffer=buffer, exclude_dates=exclude, estimation=estimation,
                                  window=window, span=span, within=trading,
                                  label=repr(ev))
        except StudyConfigError as exc:
            reasons[ev] = " ".join(str(exc).split())  # the joint test of this event says so
            continue
        out[ev] = (dates, main)
    return out, reasons


def _tasks(specs, canonical, bases, event_ids, n_draws, alpha, chunk_size) -> list[SweepTask]:
    """Tasks per (data key, model, estimation, cleaning), all windows, events in chunks of at
    most ``chunk_size`` firm-events (observed and placebo); only canonical specifications."""
    groups: dict[tuple, list[Specification]] = {}
    for spec in specs:
        groups.setdefault((spec.data_key, spec.model, spec.estimation, spec.clean_estimation),
                          []).append(spec)
    tasks = []
    for (key, model, estimation, clean), members in groups.items():
        windows = tuple(dict.fromkeys(s.window for s in members))
        counts = bases[key].study.firm_events["event_id"].value_counts()
        todo = [ev for ev in event_ids
                if any(canonical[(ev, s.spec_id)] == s.spec_id for s in members)]
        chunk: list[str] = []
        size = 0
        for ev in todo:
            n = int(counts.get(ev, 0)) * (1 + n_draws)
            if chunk and size + n > chunk_size:
                tasks.append(SweepTask(key, model, estimation, clean, windows, tuple(chunk),
                                       n_draws, alpha))
                chunk, size = [], 0
            chunk.append(ev)
            size += n
        if chunk:
            tasks.append(SweepTask(key, model, estimation, clean, windows, tuple(chunk),
                                   n_draws, alpha))
    return tasks


def _estimated_seconds(tasks, bases) -> float:
    """Rough in-process time of ``tasks`` (to choose the executor, nothing else)."""
    total = 0.0
    for t in tasks:
        counts = bases[t.data_key].study.firm_events["event_id"].value_counts()
        n_fe = sum(int(counts.get(ev, 0)) for ev in t.event_ids)
        fit = _COST_FIT * (_GARCH_FACTOR if t.model == "garch" else 1.0)
        total += len(t.windows) * (1 + t.n_draws) * (n_fe * fit + len(t.event_ids) * _COST_TEST)
    return total


def _assemble(specs, canonical, tasks, outcomes, event_ids, n_draws):
    """The table in (event, grid) order and the draws of the canonical specifications."""
    from crackdown.analyses.sweep_tasks import _empty_row

    by_key = {(s.data_key, s.model, s.estimation, s.clean_estimation, s.window): s
              for s in specs}
    computed: dict[tuple[str, str], dict] = {}
    draw_arrays: dict[tuple[str, str], tuple] = {}
    for task, outcome in zip(tasks, outcomes):
        def spec_of(window, task=task):
            return by_key[(task.data_key, task.model, task.estimation, task.clean_estimation,
                           window)]
        if outcome.ok:
            for ev, window, row in outcome.value["rows"]:
                computed[(ev, spec_of(window).spec_id)] = row
            for (ev, window), arrays in outcome.value["draws"].items():
                draw_arrays[(ev, spec_of(window).spec_id)] = arrays
        else:
            note = f"task failed after a retry: {outcome.error}"
            for ev in task.event_ids:
                for window in task.windows:
                    computed[(ev, spec_of(window).spec_id)] = _empty_row("failed", note)
    rows = []
    for ev in event_ids:
        for spec in specs:
            first = canonical[(ev, spec.spec_id)]
            row = dict(computed.get((ev, first)) or _empty_row("failed", "not computed"))
            same_as = ""
            if first != spec.spec_id:
                same_as = first
                if row["status"] == "ok":
                    row["status"] = "duplicate"
                    row["note"] = f"same study as {first} for this event"
            rows.append({"event_id": ev, "spec_id": spec.spec_id, **_choice_values(spec),
                         **row, "same_as": same_as})
    table = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    for col in ("n_requested", "n_firms", "n_flagged"):
        table[col] = table[col].fillna(0).astype(int)
    long = []
    for (ev, sid), (caar, stat, pval) in draw_arrays.items():
        long.append(pd.DataFrame({"event_id": ev, "spec_id": sid, "draw": np.arange(n_draws),
                                  "caar": caar, "headline_stat": stat, "headline_p": pval}))
    draws = (pd.concat(long, ignore_index=True) if long else
             pd.DataFrame(columns=["event_id", "spec_id", "draw", "caar", "headline_stat",
                                   "headline_p"]))
    return table, draws


# ------------------------------------------------------------------------- joint test
def curve_statistics(caar, statistic, pvalue, alpha: float = 0.05) -> dict[str, float]:
    """The whole-curve statistics of one set of specifications.

    ``share`` = ``max(#{p_s < alpha, T_s < 0}, #{p_s < alpha, T_s > 0}) / #{p_s finite}`` (the
    share significant in the dominant direction), ``median`` = the median CAAR and
    ``stouffer`` = ``mean_s sign(T_s) Phi^{-1}(1 - p_s / 2)`` (Stouffer's z of the two-sided
    p-values, signed), each over the specifications where it is finite (NaN when none).
    """
    from scipy import special

    caar, statistic, pvalue = (np.asarray(a, dtype=float) for a in (caar, statistic, pvalue))
    ok = np.isfinite(pvalue) & np.isfinite(statistic)
    sig = ok & (pvalue < alpha)
    n = int(ok.sum())
    neg, pos = int((sig & (statistic < 0)).sum()), int((sig & (statistic > 0)).sum())
    finite = caar[np.isfinite(caar)]
    z = np.sign(statistic[ok]) * special.ndtri(1 - np.clip(pvalue[ok], 1e-300, 1.0) / 2)
    return {"share": max(neg, pos) / n if n else np.nan,
            "median": float(np.median(finite)) if len(finite) else np.nan,
            "stouffer": float(z.mean()) if n else np.nan,
            "n": n, "n_negative": neg, "n_positive": pos}


def _joint(table: pd.DataFrame, draws: pd.DataFrame, event_ids, n_draws: int,
           alpha: float, no_pseudo: Mapping[str, str]) -> pd.DataFrame:
    """Per event: the observed curve statistics and their placebo p-values."""
    from crackdown.inference.placebo import empirical_pvalue

    out = []
    for ev in event_ids:
        t = table.loc[(table["event_id"] == ev) & (table["status"] != "duplicate")]
        est = t.loc[(t["status"] == "ok") & np.isfinite(t["caar"])]
        obs = curve_statistics(est["caar"], est["headline_stat"], est["headline_p"], alpha)
        row = {"event_id": ev, "n_specs": len(t), "n_estimable": len(est),
               "n_significant": obs["n_negative"] + obs["n_positive"],
               "share_significant": (obs["n_negative"] + obs["n_positive"]) / obs["n"]
               if obs["n"] else np.nan,
               "share_negative": obs["n_negative"] / obs["n"] if obs["n"] else np.nan,
               "share_positive": obs["n_positive"] / obs["n"] if obs["n"] else np.nan,
               "median_caar": obs["median"],
               "min_caar": float(est["caar"].min()) if len(est) else np.nan,
               "max_caar": float(est["caar"].max()) if len(est) else np.nan,
               "stouffer_z": obs["stouffer"], "n_draws": 0, "p_share": np.nan,
               "p_median": np.nan, "p_stouffer": np.nan}
        notes = []
        left = t.loc[t["status"] != "ok", "status"].value_counts()
        if len(left):
            notes.append("not estimable: " + ", ".join(f"{k} {v}" for k, v in left.items()))
        dup = int(((table["event_id"] == ev) & (table["status"] == "duplicate")).sum())
        if dup:
            notes.append(f"{dup} duplicate specifications counted once")
        if not n_draws:
            notes.append("no placebo draws (n_draws=0): no joint p-values")
        elif len(est):
            d = draws.loc[(draws["event_id"] == ev) & draws["spec_id"].isin(set(est["spec_id"]))]
            if d.empty:
                notes.append(f"no placebo dates: {no_pseudo.get(ev, 'none drawn')}")
            else:
                stats_b = [curve_statistics(g["caar"], g["headline_stat"], g["headline_p"],
                                            alpha) for _, g in d.groupby("draw", sort=True)]
                for name, col in (("share", "p_share"), ("median", "p_median"),
                                  ("stouffer", "p_stouffer")):
                    vals = np.array([s[name] for s in stats_b], dtype=float)
                    vals = vals[np.isfinite(vals)]
                    if np.isfinite(obs[name]) and len(vals):
                        row[col] = empirical_pvalue(obs[name], vals)
                    row["n_draws"] = max(row["n_draws"], len(vals))
                if not row["n_draws"]:
                    notes.append("no placebo date gave a curve statistic")
        row["note"] = "; ".join(notes)
        out.append(row)
    return pd.DataFrame(out, columns=list(JOINT_COLUMNS))
