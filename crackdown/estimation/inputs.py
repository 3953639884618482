"""From an events table to the inputs of a study: day 0 per listing, benchmarks, returns.

:func:`study_inputs` is the data-loading half of
:meth:`crackdown.estimation.study.EventStudy.from_events`: it maps each announcement to day 0
on every named listing's exchange, picks each listing's benchmark, loads the prices over a span
that covers every window and turns them into returns on each exchange's calendar.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import itemgetter

import numpy as np
import pandas as pd

from crackdown.errors import CrackdownError, StudyConfigError
from crackdown.timeline.tickers import check_tickers

#: Default "world" market of the international market model, per listing exchange: the news
#: of the other market that the listing has not priced yet (see
#: :func:`crackdown.estimation.layout.world_market_on_grid`).
WORLD_MARKETS: dict[str, str] = {"XHKG": "SPY", "XNYS": "HK_NONTECH_EW"}


#: Largest |offset| of a window, in sessions (about ten years of trading days): longer windows
#: are refused rather than overflowing the calendar arithmetic.
MAX_WINDOW_OFFSET = 2500


def check_window(value, name: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise StudyConfigError(f"{name} must be a pair (lo, hi) of day offsets; got {value!r}")
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise StudyConfigError(f"{name} offsets must be integers; got {value!r}")
    if hi < lo:
        raise StudyConfigError(
            f"{name} {lo}:{hi} ends before it starts; write it as LO:HI with LO <= HI"
        )
    if max(abs(int(lo)), abs(int(hi))) > MAX_WINDOW_OFFSET:
        raise StudyConfigError(
            f"{name} {lo}:{hi} reaches beyond {MAX_WINDOW_OFFSET} sessions (about ten years) "
            "from day 0; use offsets within that range")
    return int(lo), int(hi)


def check_windows(estimation, window) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate the estimation and event windows and that they do not overlap."""
    estimation = check_window(estimation, "estimation window")
    window = check_window(window, "event window")
    (e_lo, e_hi), (w_lo, w_hi) = estimation, window
    if e_lo <= w_hi and w_lo <= e_hi:
        raise StudyConfigError(
            f"estimation window {e_lo}:{e_hi} overlaps the event window {w_lo}:{w_hi}; "
            f"end the estimation before {w_lo} (e.g. {e_lo}:{w_lo - 1}) or start it after {w_hi}"
        )
    return estimation, window


def resolve_benchmarks(fe: pd.DataFrame, raw: pd.DataFrame, benchmark) -> list[str]:
    """Market proxy of each firm-event of :class:`EventStudy` (its ``benchmark`` parameter)."""
    from crackdown.timeline.universe import default_benchmark

    if isinstance(benchmark, str):
        return [benchmark] * len(fe)
    cache: dict[tuple[str, str], str] = {}
    given = raw["benchmark"].to_numpy(dtype=object) if "benchmark" in raw.columns else None
    if benchmark is None and given is not None:
        listed = given.tolist()
        if all(type(b) is str and b for b in listed):  # every row names its benchmark
            return listed
    out = []
    for i, (ticker, exchange) in enumerate(zip(fe["ticker"].tolist(), fe["exchange"].tolist())):
        if isinstance(benchmark, Mapping):
            b = benchmark.get(ticker, benchmark.get(exchange))
            if b is None:
                raise StudyConfigError(
                    f"benchmark mapping has no entry for ticker {ticker} or exchange "
                    f"{exchange}"
                )
            out.append(str(b))
            continue
        if benchmark is not None:
            raise StudyConfigError(f"benchmark must be a ticker or a mapping; got {benchmark!r}")
        if given is not None and isinstance(given[i], str) and given[i]:
            out.append(given[i])
            continue
        if (ticker, exchange) not in cache:
            try:
                b = default_benchmark(ticker) or (
                    default_benchmark(exchange) if exchange else "")
            except CrackdownError:
                b = ""
            cache[(ticker, exchange)] = b
        out.append(cache[(ticker, exchange)])
    return out


def study_inputs(
    events_df: pd.DataFrame,
    *,
    tickers: list[str] | None,
    benchmark: str | Mapping[str, str] | None,
    prices_dir,
    returns_kind: str,
    history: str | tuple | None,
    other_events: pd.DataFrame | None,
    settings: dict,
    timing_policy: str = "span",
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict[str, str]]:
    """Day 0s, benchmarks and returns for :meth:`EventStudy.from_events` (same parameters).

    Returns
    -------
    returns : pandas.DataFrame
        Wide session returns (dates x tickers); tickers without prices are all-NaN columns.
    firm_events : pandas.DataFrame
        ``event_id, ticker, exchange, day0, day0_note, benchmark, timing, day0_uncertain,
        confounded_by`` per (event, listing): ``timing`` from the events table
        (known/approximate/unknown), ``day0_uncertain`` under ``timing_policy="span"`` (see
        :func:`crackdown.timeline.calendars.day_zero`), ``confounded_by`` the other events of the
        listing (in ``events_df`` and ``other_events``) whose day 0 is in the event window
        (:func:`crackdown.timeline.clusters.confounders`).
    settings : dict
        The study keywords, with ``other_event_days`` added when ``clean_estimation`` and
        ``other_events`` are given.
    missing : dict
        Ticker -> why it has no prices (an event's own tickers only).
    """
    # imported here, not at module level: importing the study (and the CLI) stays cheap
    from crackdown.marketdata.benchmarks import benchmark_returns, is_constructed_benchmark
    from crackdown.marketdata.wide_returns import study_returns
    from crackdown.timeline.calendars import check_timing_policy, day_zero
    from crackdown.timeline.clusters import confounders, listing_day0s
    from crackdown.timeline.events import timing_of
    from crackdown.timeline.universe import default_benchmark, exchange_for_ticker

    check_timing_policy(timing_policy)
    settings = dict(settings)
    if settings.get("session_grid", "exchange") != "exchange":
        raise StudyConfigError("from_events maps day 0 on exchange calendars: use "
                               "session_grid='exchange'")
    estimation, window = check_windows(settings.get("estimation", (-250, -11)),
                                        settings.get("window", (-1, 1)))
    # day 0 of every listing of the studied and the other events, mapped once: the other
    # events' windows are cleaned from the estimation (on request) and checked as confounders
    # (listings that cannot be placed on a calendar are left out of both)
    table = events_df if other_events is None else pd.concat(
        [events_df, other_events[~other_events["event_id"].isin(events_df["event_id"])]],
        ignore_index=True)
    all_day0s = listing_day0s(table, timing_policy=timing_policy)
    if other_events is not None and settings.get("clean_estimation"):
        studied = set(events_df["event_id"].astype(str))
        others = all_day0s.loc[~all_day0s["event_id"].isin(studied)]
        settings["other_event_days"] = others[["ticker", "day0"]].reset_index(drop=True)
    explicit = tickers is not None
    tickers = check_tickers(tickers, "tickers=") if explicit else None  # the one ticker check
    # resolved once per ticker and once per (announcement, exchange), then broadcast: a study
    # of E events x N listings maps E x (number of exchanges) day 0s, not E x N; the columns
    # are built as lists (no dict per firm-event)
    exchange_of: dict[str, str] = {}
    day0_of: dict[tuple, object] = {}
    # per distinct ticker list: its exchanges, the distinct ones (first-appearance order) and
    # each ticker's position among them, so an event maps one day 0 per exchange and
    # broadcasts it with list indexing (no Python work per firm-event)
    pattern_of: dict[tuple[str, ...], tuple[list[str], list[str], list[int]]] = {}
    columns: dict[str, list] = {c: [] for c in ("event_id", "ticker", "exchange", "day0",
                                                "day0_note", "timing", "day0_uncertain")}
    for ev in events_df.itertuples(index=False):
        ev_tickers = list(tickers) if explicit else _event_tickers(ev)
        if ev_tickers and not explicit:  # a hand-made events frame: the same check
            ev_tickers = check_tickers(ev_tickers, f"event {ev.event_id}: tickers")
        if not ev_tickers:
            raise StudyConfigError(f"event {ev.event_id} lists no tickers; pass tickers=...")
        time = getattr(ev, "time_beijing", None) or None
        timing = getattr(ev, "timing", None) or timing_of(time or "",
                                                          getattr(ev, "time_source", "") or "")
        date = pd.Timestamp(ev.date)
        pattern = pattern_of.get(tuple(ev_tickers))
        if pattern is None:  # first event with these tickers: in order, the first failing
            exchanges = []  # listing raises (its exchange, then its day 0)
            for ticker in ev_tickers:
                exchange = exchange_of.get(ticker)
                if exchange is None:
                    exchange = exchange_of[ticker] = exchange_for_ticker(ticker)
                if (exchange, date, time) not in day0_of:
                    day0_of[(exchange, date, time)] = day_zero(
                        date, time, exchange, timing_policy=timing_policy)
                exchanges.append(exchange)
            distinct = list(dict.fromkeys(exchanges))
            pos = {x: k for k, x in enumerate(distinct)}
            where = [pos[x] for x in exchanges]
            pattern = pattern_of[tuple(ev_tickers)] = (
                exchanges, distinct, itemgetter(*where) if len(where) > 1 else None)
        exchanges, distinct, spread = pattern
        zeros = []
        for exchange in distinct:  # the order in which the tickers first reach them
            dz = day0_of.get((exchange, date, time))
            if dz is None:
                dz = day0_of[(exchange, date, time)] = day_zero(
                    date, time, exchange, timing_policy=timing_policy)
            zeros.append(dz)
        m = len(ev_tickers)
        columns["event_id"] += [str(ev.event_id)] * m
        columns["ticker"] += ev_tickers
        columns["exchange"] += exchanges
        if len(zeros) == 1:
            dz = zeros[0]
            columns["day0"] += [_ns(dz.session)] * m
            columns["day0_note"] += [dz.note] * m
            columns["day0_uncertain"] += [dz.uncertain] * m
        else:  # one day 0 per ticker, picked from the exchanges' (itemgetter: a tuple)
            columns["day0"] += spread([_ns(dz.session) for dz in zeros])
            columns["day0_note"] += spread([dz.note for dz in zeros])
            columns["day0_uncertain"] += spread([dz.uncertain for dz in zeros])
        columns["timing"] += [timing] * m
    if not columns["event_id"]:
        raise StudyConfigError("no events given")
    # day 0s were kept as nanoseconds: one array, not a Timestamp per firm-event to infer
    columns["day0"] = np.array(columns["day0"], dtype=np.int64).view("datetime64[ns]")
    fe = pd.DataFrame(columns)
    tick_list, exchange_list = columns["ticker"], columns["exchange"]
    if fe["day0_uncertain"].any() and window[1] < 1:
        r = fe.loc[fe["day0_uncertain"]].iloc[0]
        raise StudyConfigError(
            f"event {r.event_id} has no release time: on {r.exchange} its day 0 is "
            f"{r.day0:%Y-%m-%d} or the next session, and under timing_policy='span' the event "
            f"window must reach day +1 to span both (it is {window[0]}:{window[1]}); use a "
            "window ending at +1 or later, or timing_policy='same-day' / 'next-session'")
    fe["confounded_by"] = confounders(fe, all_day0s, window)
    if isinstance(benchmark, str):
        fe["benchmark"] = benchmark
    elif isinstance(benchmark, Mapping):  # listings the mapping does not name: their default
        chosen: dict[tuple[str, str], str] = {}  # once per listing
        for t, x in zip(tick_list, exchange_list):
            if (t, x) not in chosen:
                chosen[(t, x)] = (benchmark.get(t, benchmark.get(x, "")) or default_benchmark(t)
                                  or default_benchmark(x))
        fe["benchmark"] = [chosen[(t, x)] for t, x in zip(tick_list, exchange_list)]
    else:
        default: dict[tuple[str, str], str] = {}  # once per listing
        for t, x in zip(tick_list, exchange_list):
            if (t, x) not in default:
                default[(t, x)] = default_benchmark(t) or default_benchmark(x)
        fe["benchmark"] = [default[(t, x)] for t, x in zip(tick_list, exchange_list)]
    fe["benchmark"] = _exclude_treated(fe)
    if "international" in (settings.get("model"), settings.get("fallback")):
        world = dict(WORLD_MARKETS if settings.get("world_market") is None
                     else settings["world_market"])
        fe["world"] = [world.get(x, "") for x in exchange_list]
        fe["world"] = _exclude_treated(fe, "world")
    # calendar span: estimation and event windows, at most ~7/5 calendar days per session
    reach_back = max(0, -min(estimation[0], window[0]))
    reach_fwd = max(0, max(estimation[1], window[1]))
    start = fe["day0"].min() - pd.Timedelta(days=int(reach_back * 7 / 5) + 30)
    end = fe["day0"].max() + pd.Timedelta(days=int(reach_fwd * 7 / 5) + 30)
    if history == "all":
        start = end = None
    elif history is not None:
        try:
            h_start, h_end = (pd.Timestamp(h) if h is not None else None for h in history)
        except (TypeError, ValueError):
            raise StudyConfigError(
                f"history={history!r}: use 'all' or a (start, end) pair of dates") from None
        start = min(start, h_start) if h_start is not None else start
        end = max(end, h_end) if h_end is not None else end
    firm_tickers = list(dict.fromkeys(tick_list))
    markets = list(dict.fromkeys(
        fe["benchmark"].tolist() + (fe["world"].tolist() if "world" in fe.columns else [])))
    built = [b for b in markets if b and is_constructed_benchmark(b)]
    bench_tickers = [b for b in markets if b and b not in firm_tickers and b not in built]
    # benchmarks and explicit tickers must load; an event's own tickers may be missing
    must = bench_tickers + (firm_tickers if explicit else [])
    # (a Hong Kong-only event has no ticker benchmark to load: its proxy is built below)
    # (wide returns straight from the price files: the load_prices + compute_returns +
    # returns_matrix chain, same frame, warnings and errors; empty when no listing has prices)
    rets, missing = study_returns(must, None if explicit else firm_tickers, start, end,
                                  prices_dir=prices_dir, kind=returns_kind)
    for t in missing:
        rets[t] = np.nan
    for t in firm_tickers:  # prices in the span but no return (e.g. one row, listed late):
        if t not in rets.columns:  # the study reports it (no_price_data / listed_after_event)
            rets[t] = np.nan
    if built:
        made, info = benchmark_returns(built, start, end, prices_dir=prices_dir,
                                       kind=returns_kind)
        rets = rets.join(made, how="outer")
        rets.attrs["benchmarks"] = info
    return rets, fe, settings, missing


def _ns(session: pd.Timestamp) -> int:
    """Nanoseconds since the epoch of a naive session date (NaT: numpy's NaT integer)."""
    return pd.Timestamp(session).value


def _exclude_treated(fe: pd.DataFrame, column: str = "benchmark") -> list[str]:
    """Constructed benchmarks without the constituents an event names (or the ticker itself).

    See :mod:`crackdown.marketdata.benchmarks`: a firm that an event treats is never part of
    the market proxy of that event's firm-events.
    """
    from crackdown.marketdata.benchmarks import (
        benchmark_name,
        is_constructed_benchmark,
        parse_benchmark_name,
    )

    names = fe[column].tolist()
    if not any(b and is_constructed_benchmark(b) for b in dict.fromkeys(names)):
        return names  # nothing to exclude from
    treated = fe.groupby("event_id")["ticker"].agg(set).to_dict()
    named: dict[tuple[str, str], str] = {}  # once per (event, benchmark), not per firm-event
    out = []
    for ev, b in zip(fe["event_id"].tolist(), names):
        if (ev, b) not in named:
            name = b
            if b and is_constructed_benchmark(b):
                base, already = parse_benchmark_name(b)
                name = benchmark_name(base, set(already) | treated[ev])
            named[(ev, b)] = name
        out.append(named[(ev, b)])
    return out


def _event_tickers(ev) -> list[str]:
    tl = getattr(ev, "ticker_list", None)
    if isinstance(tl, (list, tuple, np.ndarray)):
        return [str(t) for t in tl if str(t)]
    raw = getattr(ev, "tickers", "") or ""
    return [t.strip() for t in str(raw).split(";") if t.strip()]


class FirmEventInfo(Mapping):
    """``(event_id, ticker) -> value`` of per-firm-event columns, as a read-only mapping.

    :meth:`EventStudy.from_events` keeps ``day0_notes`` (one column: the note) and
    ``firm_event_info`` (three columns: a dict ``{"timing", "day0_uncertain",
    "confounded_by"}`` per firm-event) as the columns of :func:`study_inputs`. The dict of
    keys is built on the first look-up, so a study whose mappings are never read allocates
    no key tuple and no dict per firm-event; :meth:`column` hands out a column as it is
    (``fit`` reads the outcome columns that way).

    Parameters
    ----------
    event_ids, tickers : list of str
        The keys, one per firm-event (unique pairs).
    columns : dict of str to list
        The values, in the same order. One column: the mapping's value is its entry; more:
        a new dict ``{name: entry}`` per look-up.
    """

    def __init__(self, event_ids: list[str], tickers: list[str],
                 columns: dict[str, list]) -> None:
        self.event_ids, self.tickers, self.columns = event_ids, tickers, columns
        self._index: dict[tuple[str, str], int] | None = None

    def _positions(self) -> dict[tuple[str, str], int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(zip(self.event_ids, self.tickers))}
        return self._index

    def __getitem__(self, key: tuple[str, str]):
        i = self._positions()[key]
        if len(self.columns) == 1:
            return next(iter(self.columns.values()))[i]
        return {name: col[i] for name, col in self.columns.items()}

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._positions())

    def __len__(self) -> int:
        return len(self.event_ids)

    def column(self, name: str, event_ids: list[str], tickers: list[str]) -> list | None:
        """Column ``name`` for firm-events in the order ``event_ids, tickers``: the column
        itself when the order is this mapping's, else None (look the keys up)."""
        if event_ids == self.event_ids and tickers == self.tickers:
            return self.columns[name]
        return None


def outcome_info_columns(study, event_ids: list[str], tickers: list[str]) -> dict[str, list]:
    """The outcome columns ``day0_note, timing, day0_uncertain, confounded_by`` of the
    firm-events ``event_ids, tickers``: the columns of :meth:`EventStudy.from_events` as they
    are (:class:`FirmEventInfo` in the same order), else a look-up per firm-event in
    ``study.day0_notes`` / ``study.firm_event_info`` (defaults ``""``, ``False``, ``""``)."""
    out: dict[str, list] = {}
    notes, info = study.day0_notes, study.firm_event_info
    got = (notes.column("day0_note", event_ids, tickers)
           if isinstance(notes, FirmEventInfo) else None)
    keys = None
    if got is None:
        keys = list(zip(event_ids, tickers))
        got = [notes.get(k, "") for k in keys]
    out["day0_note"] = got
    defaults = (("timing", ""), ("day0_uncertain", False), ("confounded_by", ""))
    if isinstance(info, FirmEventInfo) and info.column("timing", event_ids, tickers) is not None:
        return out | {col: info.columns[col] for col, _ in defaults}
    keys = list(zip(event_ids, tickers)) if keys is None else keys
    rows = [info.get(k, {}) for k in keys]
    return out | {col: [i.get(col, default) for i in rows] for col, default in defaults}
