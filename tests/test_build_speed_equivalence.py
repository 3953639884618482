"""The fast build of a study gives the same firm-events as the slow, obvious computation.

``EventStudy.from_events`` resolves each ticker once (an indexed universe instead of a boolean
mask per call), maps day 0 once per (announcement, exchange) and broadcasts it, names each
event's constructed benchmark once and finds confounders per listing with array comparisons;
the calendars' sessions and closes are cached on disk. Every test here recomputes the result
the slow way, written out independently in this file (boolean masks on the universe table,
the day-0 definition scanned over exchange_calendars' tz-aware closes, one loop per firm-event
over the other events), and requires identical values.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crackdown.estimation.study import EventStudy
from crackdown.marketdata.benchmarks import (
    benchmark_name,
    is_constructed_benchmark,
    parse_benchmark_name,
)
from crackdown.timeline import calendars
from crackdown.timeline.clusters import confounders, listing_day0s
from crackdown.timeline.events import load_events
from crackdown.timeline.universe import (
    default_benchmark,
    exchange_for_ticker,
    load_universe,
    universe_row,
)


# ------------------------------------------------------------------ slow reference path
def _slow_row(ticker: str) -> pd.Series | None:
    frame = load_universe()
    hit = frame.loc[frame["ticker"] == ticker]
    return None if hit.empty else hit.iloc[0]


def _slow_exchange(ticker: str) -> str:
    row = _slow_row(ticker)
    if row is not None:
        return str(row["exchange"])
    return {".HK": "XHKG", ".SS": "XSHG", ".SZ": "XSHE"}.get(ticker[ticker.rfind("."):], "XNYS")


def _slow_day0(date, time, exchange: str) -> tuple[pd.Timestamp, bool]:
    """First session whose tz-aware close is strictly after the instant (module doc of
    calendars); unknown time: 09:00, uncertain when 08:00 and 23:59 give different sessions."""
    cal = calendars.get_calendar(exchange)
    closes = cal.closes  # tz-aware UTC, indexed by session

    def first_after(clock: dt.time) -> pd.Timestamp:
        instant = pd.Timestamp.combine(pd.Timestamp(date).date(), clock).tz_localize(
            "Asia/Shanghai")
        return pd.Timestamp(closes.index[np.argmax((closes > instant).to_numpy())])

    if time:
        hour, minute = (int(x) for x in time.split(":"))
        return first_after(dt.time(hour, minute)), False
    return first_after(dt.time(9, 0)), first_after(dt.time(8, 0)) != first_after(
        dt.time(23, 59))


def _slow_firm_events(events: pd.DataFrame, tickers: list[str]) -> pd.DataFrame:
    rows = []
    for ev in events.itertuples(index=False):
        for ticker in tickers:
            exchange = _slow_exchange(ticker)
            day0, uncertain = _slow_day0(ev.date, ev.time_beijing, exchange)
            row = _slow_row(ticker)
            bench = str(row["benchmark"]) if row is not None else ""
            rows.append((str(ev.event_id), ticker, exchange, day0, uncertain, bench))
    fe = pd.DataFrame(rows, columns=["event_id", "ticker", "exchange", "day0",
                                     "day0_uncertain", "benchmark"])
    # constructed benchmarks without the tickers of the event (one call per firm-event)
    out = []
    for r in fe.itertuples(index=False):
        b = r.benchmark
        if b and is_constructed_benchmark(b):
            treated = set(fe.loc[fe["event_id"] == r.event_id, "ticker"])
            base, already = parse_benchmark_name(b)
            b = benchmark_name(base, set(already) | treated)
        out.append(b)
    fe["benchmark"] = out
    return fe


def _slow_confounders(fe: pd.DataFrame, others: pd.DataFrame, window) -> list[str]:
    out = []
    position = {mic: {d: i for i, d in enumerate(calendars.sessions(
        mic, calendars.CALENDAR_START, calendars.CALENDAR_END))} for mic in set(fe["exchange"])}
    for r in fe.itertuples(index=False):
        p0 = position[r.exchange][pd.Timestamp(r.day0)]
        hits = []
        for o in others.itertuples(index=False):
            if (o.ticker, o.exchange) != (r.ticker, r.exchange) or o.event_id == r.event_id:
                continue
            k = position[r.exchange][pd.Timestamp(o.day0)]  # day 0s are sessions
            if window[0] <= k - p0 <= window[1] and o.event_id not in hits:
                hits.append(o.event_id)
        out.append(";".join(hits))
    return out


# ------------------------------------------------------------------ tests
def test_universe_row_is_the_boolean_mask_row():
    frame = load_universe()
    for ticker in list(frame["ticker"]) + ["NOT_LISTED", "9988.HK "]:
        fast, slow = universe_row(ticker), _slow_row(ticker)
        if slow is None:
            assert fast is None
        else:
            pd.testing.assert_series_equal(fast, slow)
    fast = universe_row("BABA")
    fast["benchmark"] = "CHANGED"  # a copy: the table is not touched
    assert universe_row("BABA")["benchmark"] == "SPY"


def test_exchange_and_benchmark_per_ticker_match_the_table():
    frame = load_universe()
    for ticker, exchange, bench in zip(frame["ticker"], frame["exchange"], frame["benchmark"]):
        assert exchange_for_ticker(ticker) == exchange
        assert default_benchmark(ticker) == bench


def test_calendar_time_zones_are_exchange_calendars_own():
    for mic in calendars.SUPPORTED_EXCHANGES:
        assert calendars.calendar_tz(mic) == str(calendars.get_calendar(mic).tz)


@pytest.mark.parametrize("exchange", ["XNYS", "XHKG"])
def test_cached_sessions_and_closes_are_the_calendars(exchange):
    cal = calendars.get_calendar(exchange)
    days, closes = calendars._closes_utc(exchange)
    assert days.equals(pd.DatetimeIndex(cal.sessions, freq=None).as_unit("ns"))
    want = cal.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
    np.testing.assert_array_equal(closes, want)


def test_sessions_disk_cache_round_trip_and_damaged_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path))
    path = calendars._sessions_cache_file("XHKG")
    assert path is not None and path.parent == tmp_path / "calendars"
    assert calendars._read_sessions_cache(path) is None  # not written yet
    days, closes = calendars._closes_utc("XHKG")
    calendars._write_sessions_cache(path, days.to_numpy(), closes)
    back = calendars._read_sessions_cache(path)
    np.testing.assert_array_equal(back[0], days.to_numpy())
    np.testing.assert_array_equal(back[1], closes)
    path.write_bytes(b"not an npz file")
    assert calendars._read_sessions_cache(path) is None  # damaged: rebuilt, not trusted
    calendars._write_sessions_cache(path, days.to_numpy()[::-1], closes[::-1])
    assert calendars._read_sessions_cache(path) is None  # unsorted: not trusted
    # the key changes with what the sessions depend on
    monkeypatch.setitem(calendars.EXTRA_CLOSURES, "XHKG", ("2023-09-01",))
    assert calendars._sessions_cache_file("XHKG") != path


def test_confounders_match_a_loop_over_every_other_event():
    events = load_events()
    others = listing_day0s(events)
    lists = others[others["ticker"].isin(["BABA", "9988.HK", "TCEHY", "0700.HK", "DIDIY"])]
    fe = lists.iloc[::2].reset_index(drop=True)
    for window in [(-1, 1), (0, 0), (-5, 10)]:
        fast = confounders(fe, lists, window)
        assert fast == _slow_confounders(fe, lists, window)
    assert any(fast)  # the check sees confounded firm-events
    assert confounders(fe.iloc[:0], lists, (-1, 1)) == []
    assert confounders(fe, lists.iloc[:0], (-1, 1)) == [""] * len(fe)


def test_from_events_firm_events_equal_the_slow_path(prices_dir):
    events = load_events()
    chosen = events.iloc[::9].reset_index(drop=True)  # 11 events, known and unknown times
    assert (chosen["time_beijing"] == "").any() and (chosen["time_beijing"] != "").any()
    # platforms on both markets and a constituent of HK_NONTECH_EW (excluded from its own
    # events' benchmark)
    tickers = ["BABA", "9988.HK", "JD", "9618.HK", "0700.HK", "0005.HK"]
    study = EventStudy.from_events(chosen, tickers=tickers, prices_dir=prices_dir,
                                   other_events=events)
    fe = study.firm_events
    slow = _slow_firm_events(chosen, tickers)
    assert list(zip(fe["event_id"], fe["ticker"])) == list(zip(slow["event_id"],
                                                               slow["ticker"]))
    assert list(fe["exchange"]) == list(slow["exchange"])
    np.testing.assert_array_equal(fe["day0"].to_numpy(), slow["day0"].to_numpy("datetime64[ns]"))
    assert list(fe["benchmark"]) == list(slow["benchmark"])
    assert "HK_NONTECH_EW ex 0005.HK" in set(fe["benchmark"])
    info = study.firm_event_info
    assert [info[k]["day0_uncertain"] for k in zip(fe["event_id"], fe["ticker"])] == list(
        slow["day0_uncertain"])
    assert any(slow["day0_uncertain"])
    # notes: day_zero called afresh for every firm-event
    for ev in chosen.itertuples(index=False):
        for t in tickers:
            dz = calendars.day_zero(ev.date, ev.time_beijing or None, _slow_exchange(t))
            assert study.day0_notes[(str(ev.event_id), t)] == dz.note
    # confounders: the other events' day 0s of each listing (studied events first, then the
    # rest of the table, as from_events maps them), one loop per firm-event
    table = pd.concat([chosen, events[~events["event_id"].isin(chosen["event_id"])]])
    others = pd.DataFrame([
        (str(ev.event_id), t, _slow_exchange(t),
         _slow_day0(ev.date, ev.time_beijing, _slow_exchange(t))[0])
        for ev in table.itertuples(index=False) for t in ev.ticker_list
        if t in tickers], columns=["event_id", "ticker", "exchange", "day0"])
    want = _slow_confounders(fe, others, study.window)
    got = [info[k]["confounded_by"] for k in zip(fe["event_id"], fe["ticker"])]
    assert got == want
    assert any(got)
