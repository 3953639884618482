"""The fast day-0 paths (integer instants + bisect, vectorised listing day 0s and confounders)
against straightforward references written here.

The references use only the definitions: pandas ``tz_localize`` / ``tz_convert`` of the Beijing
instant and a scan of the exchange_calendars calendar's tz-aware closes for the first close
strictly after it (day 0), the documented note texts, and a pair-by-pair scan of the other
events of a listing for confounders. Nothing here calls the code under test to get an expected
value.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crackdown import load_events
from crackdown.errors import CalendarError, CrackdownError
from crackdown.timeline import calendars
from crackdown.timeline.calendars import (
    CALENDAR_END,
    CALENDAR_START,
    day_zero,
    get_calendar,
    sessions,
)
from crackdown.timeline.clusters import confounders, listing_day0s
from crackdown.timeline.universe import exchange_for_ticker

EXCHANGES = ("XNYS", "XHKG", "XSHG", "XSHE")
POLICIES = ("span", "same-day", "next-session")
LOCAL_TZ = {"XNYS": "America/New_York", "XHKG": "Asia/Hong_Kong", "XSHG": "Asia/Shanghai",
            "XSHE": "Asia/Shanghai"}
RULE = {"span": "the earlier possible session", "same-day": "released before the Hong Kong "
        "close", "next-session": "released after the Hong Kong close"}


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------
@cache
def _reference_calendar(exchange: str) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Sessions (naive) and tz-aware UTC closes straight from the exchange_calendars object."""
    cal = get_calendar(exchange)
    return pd.DatetimeIndex(cal.sessions), pd.DatetimeIndex(cal.closes).tz_convert("UTC")


def _unknown(time) -> bool:
    return time is None or time == "" or (isinstance(time, float) and math.isnan(time))


def _local(ts: pd.Timestamp, exchange: str) -> str:
    return ts.tz_convert(LOCAL_TZ[exchange]).strftime("%Y-%m-%d %H:%M %Z")


def reference_day_zero(date, time, exchange: str, policy: str = "span") -> dict:
    """Day 0 by the module docstring's definition, with its note; raises CalendarError."""
    day = pd.Timestamp(date).normalize()
    days, closes = _reference_calendar(exchange)
    assumed = _unknown(time)
    clock = ("18:00" if policy == "next-session" else "09:00") if assumed else (
        time if isinstance(time, str) else f"{time:%H:%M:%S.%f}")

    def first_close_after(hhmm: str) -> tuple[pd.Timestamp, int]:
        instant = pd.Timestamp(f"{day:%Y-%m-%d} {hhmm}").tz_localize("Asia/Shanghai")
        after = np.flatnonzero(closes > instant)  # a scan, not a search
        return instant, (int(after[0]) if len(after) else len(closes))

    announced, pos = first_close_after(clock)
    if pos == 0 or pos >= len(days):
        raise CalendarError(
            f"announcement {announced:%Y-%m-%d %H:%M} Beijing is outside the {exchange} "
            f"calendar range (sessions {days[0]:%Y-%m-%d} .. {days[-1]:%Y-%m-%d}, built for "
            f"{CALENDAR_START:%Y-%m-%d} .. {CALENDAR_END:%Y-%m-%d}); day 0 needs a session close "
            "before and after the announcement")
    session = days[pos]
    where = (f"{exchange} day 0 {session:%Y-%m-%d}: first close after the announcement is "
             f"{_local(closes[pos], exchange)}")
    alternative = None
    if assumed:
        _, early = first_close_after("08:00")
        _, late = first_close_after("23:59")
        if late != early and late < len(days):
            alternative = days[late] if days[late] != session else days[early]
        note = (f"time unknown (timing_policy={policy}: {RULE[policy]}): assumed {clock} "
                f"Beijing on {day:%Y-%m-%d}; {where}")
        if alternative is not None:
            note += f"; a release between 08:00 and midnight could also give {alternative:%Y-%m-%d}"
    else:
        note = (f"announced {announced:%Y-%m-%d %H:%M} Beijing = {_local(announced, exchange)} "
                f"local; {where}")
    return {"session": session, "announced_at": announced, "time_assumed": assumed, "note": note,
            "uncertain": alternative is not None and policy == "span",
            "alternative": alternative}


def _as_dict(result: calendars.DayZero) -> dict:
    return {"session": result.session, "announced_at": result.announced_at,
            "time_assumed": result.time_assumed, "note": result.note,
            "uncertain": result.uncertain, "alternative": result.alternative}


def _check(date, time, exchange: str, policy: str) -> None:
    """day_zero with an empty memo, then from the memo, and _day0_ns: equal to the reference."""
    try:
        expected = reference_day_zero(date, time, exchange, policy)
    except CalendarError as exc:
        for _ in range(2):
            calendars._DAY_ZERO_MEMO.clear()
            with pytest.raises(CalendarError) as got:
                day_zero(date, time, exchange, timing_policy=policy)
            assert str(got.value) == str(exc)
            with pytest.raises(CalendarError) as got:
                calendars._day0_ns(date, time, exchange, policy)
            assert str(got.value) == str(exc)
        return
    calendars._DAY_ZERO_MEMO.clear()
    assert calendars._day0_ns(date, time, exchange, policy) == expected["session"].value
    for _cold_then_memo in range(2):
        got = day_zero(date, time, exchange, timing_policy=policy)
        assert _as_dict(got) == expected, (date, time, exchange, policy)
        assert got.session.unit == "ns" and got.session.tzinfo is None
        assert got.announced_at.unit == "ns" and str(got.announced_at.tz) == "Asia/Shanghai"
        assert got.alternative is None or got.alternative.unit == "ns"
    assert calendars._day0_ns(date, time, exchange, policy) == expected["session"].value


# --------------------------------------------------------------------------------------------
# day_zero
# --------------------------------------------------------------------------------------------
def test_every_event_of_the_table_on_every_exchange_and_policy():
    events = load_events()
    assert len(events) > 20
    for date, time in zip(events["date"], events["time_beijing"], strict=True):
        for exchange in EXCHANGES:
            for policy in POLICIES:
                _check(pd.Timestamp(date), time or None, exchange, policy)


EDGE_DATES = [
    "2020-03-06", "2020-03-07", "2020-03-08", "2020-03-09",  # New York DST starts Sun 03-08
    "2020-10-31", "2020-11-01", "2020-11-02",  # and ends Sun 11-01
    "2021-03-13", "2021-03-14", "2021-03-15", "2021-11-06", "2021-11-07", "2021-11-08",
    "2021-02-10", "2021-02-11", "2021-02-12", "2021-02-15", "2021-02-16",  # Lunar New Year
    "2023-01-20", "2023-01-21", "2023-01-26",
    "2020-12-24", "2020-12-31", "2021-12-24", "2022-12-23",  # HK half days (12:00 close)
    "2020-11-25", "2020-11-26", "2020-11-27",  # NYSE Thanksgiving, 13:00 close the day after
    "2023-08-31", "2023-09-01", "2023-09-08",  # HK weather closures (EXTRA_CLOSURES)
    "2021-10-01", "2021-10-08",  # mainland Golden Week
    "2010-01-01", "2010-01-04", "2026-12-30", "2026-12-31",  # the calendar's ends
    "2009-06-01", "2027-02-01", "1990-06-01",  # outside it
]
EDGE_TIMES = [None, "", float("nan"), "00:00", "04:00", "04:59", "05:00", "05:01", "08:00",
              "09:00", "09:30", "11:59", "12:00", "12:01", "15:00", "15:59", "16:00", "16:01",
              "17:00", "21:25", "21:30", "22:30", "23:59", "9:05",
              dt.time(16, 0, 0, 1), dt.time(11, 59, 59, 999999), dt.time(4, 0, 30)]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_edge_dates_and_times(exchange):
    # DST switch days in New York, Lunar New Year, half days, 16:00:00 exactly, 23:59, no time
    for date in EDGE_DATES:
        for time in EDGE_TIMES:
            for policy in POLICIES:
                _check(date, time, exchange, policy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day=st.integers(0, (CALENDAR_END - CALENDAR_START).days + 20),
       minute=st.one_of(st.none(), st.integers(0, 24 * 60 - 1)),
       exchange=st.sampled_from(EXCHANGES), policy=st.sampled_from(POLICIES))
def test_random_dates_and_minutes(day, minute, exchange, policy):
    date = CALENDAR_START - pd.Timedelta(days=10) + pd.Timedelta(days=day)
    time = None if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"
    _check(date, time, exchange, policy)


def test_date_spellings_give_the_same_result():
    # Timestamps in every unit, strings, datetime.date and numpy dates take the fast path or
    # the general parse and agree; times of day and time zones are still rejected
    expected = reference_day_zero("2021-02-11", "11:00", "XHKG")
    for date in ("2021-02-11", dt.date(2021, 2, 11), np.datetime64("2021-02-11"),
                 pd.Timestamp("2021-02-11").as_unit("s"), pd.Timestamp("2021-02-11").as_unit("ms"),
                 pd.Timestamp("2021-02-11").as_unit("us"), pd.Timestamp("2021-02-11").as_unit("ns")):
        calendars._DAY_ZERO_MEMO.clear()
        assert _as_dict(day_zero(date, "11:00", "XHKG")) == expected, repr(date)
    for bad in (pd.Timestamp("2021-02-11 10:00"), pd.Timestamp("2021-02-11 00:00:00.5").as_unit("ns"),
                pd.Timestamp("2021-02-11", tz="Asia/Shanghai"), pd.Timestamp("2300-01-01 10:00")):
        with pytest.raises(CalendarError, match="time of day|time zone"):
            day_zero(bad, "11:00", "XHKG")
    with pytest.raises(ValueError):  # a date pandas cannot hold in nanoseconds: as before
        day_zero(pd.Timestamp("2300-01-01").as_unit("s"), "11:00", "XHKG")


def test_beijing_daylight_saving_of_1986_to_1991_is_localised_by_pandas():
    # wall times that do not exist / exist twice in Beijing: the pandas errors, as before
    with pytest.raises(ValueError, match="nonexistent"):
        day_zero("1986-05-04", "02:30", "XNYS")
    with pytest.raises(ValueError, match="ambiguous"):
        day_zero("1986-09-14", "01:30", "XNYS")
    with pytest.raises(CalendarError, match="1986-07-01 12:00 Beijing is outside"):
        day_zero("1986-07-01", "12:00", "XNYS")


# --------------------------------------------------------------------------------------------
# listing_day0s
# --------------------------------------------------------------------------------------------
def reference_listing_day0s(events: pd.DataFrame, policy: str = "span") -> pd.DataFrame:
    rows = []
    for ev in events.to_dict("records"):
        tickers = ev.get("ticker_list")
        if not isinstance(tickers, (list, tuple)):
            tickers = [t.strip() for t in str(ev.get("tickers", "")).split(";") if t.strip()]
        for ticker in tickers:
            try:
                exchange = exchange_for_ticker(ticker)
            except CrackdownError:
                continue
            time = ev.get("time_beijing")
            d0 = reference_day_zero(ev["date"], None if _unknown(time) else time, exchange,
                                    policy)["session"]
            rows.append((str(ev["event_id"]), ticker, exchange, d0))
    out = pd.DataFrame(rows, columns=["event_id", "ticker", "exchange", "day0"])
    out["day0"] = pd.to_datetime(out["day0"]).astype("datetime64[ns]")
    return out


def _shifted(events: pd.DataFrame, years: int) -> pd.DataFrame:
    copy = events.copy()
    copy["event_id"] = copy["event_id"] + f"@-{years}y"
    copy["date"] = pd.to_datetime(copy["date"]) - pd.DateOffset(years=years)
    return copy


@pytest.mark.parametrize("policy", POLICIES)
def test_listing_day0s_of_the_table_and_shifted_copies(policy):
    events = load_events()
    table = pd.concat([events, _shifted(events, 1), _shifted(events, 3)], ignore_index=True)
    for frame in (events, table):
        calendars._DAY_ZERO_MEMO.clear()
        got = listing_day0s(frame, timing_policy=policy)
        pd.testing.assert_frame_equal(got, reference_listing_day0s(frame, policy))
        assert got["day0"].dtype == "datetime64[ns]"


def test_listing_day0s_of_hand_made_frames():
    base = pd.DataFrame({
        "event_id": ["a", "b", "c", "d", "e"],
        "date": pd.to_datetime(["2021-02-11", "2020-03-08", "2020-12-24", "2023-09-01",
                                "2021-07-06"]),
        "time_beijing": ["16:00", "", "12:00", None, "23:59"],
        "tickers": ["9988.HK;BABA", "BABA; JD ;", "9988.HK;???;", "0700.HK", "600519.SS;"],
    })
    listed = base.assign(ticker_list=[["9988.HK", "BABA"], None, ["9988.HK", "BAD TICKER"],
                                      ["0700.HK", "TCEHY"], []])
    cases = [base, listed, base.drop(columns="time_beijing"),
             base.assign(time_beijing=[np.nan, "09:15", np.nan, "16:01", None]),
             base.iloc[:0], base.assign(tickers="???")]
    for frame in cases:
        got = listing_day0s(frame)
        pd.testing.assert_frame_equal(got, reference_listing_day0s(frame))
    assert len(listing_day0s(base.iloc[:0])) == 0
    # duplicate column names (itertuples' renaming): the same rows as without the duplicate
    dup = pd.concat([base, base[["tickers"]].rename(columns={"tickers": "title"})], axis=1)
    dup.columns = ["event_id", "date", "time_beijing", "tickers", "event_id"]
    pd.testing.assert_frame_equal(listing_day0s(dup), reference_listing_day0s(base))


def test_listing_day0s_raises_the_day_zero_error_for_a_date_outside_the_calendar():
    frame = pd.DataFrame({"event_id": ["old"], "date": pd.to_datetime(["2009-03-02"]),
                          "time_beijing": ["10:00"], "tickers": ["BABA"]})
    with pytest.raises(CalendarError) as exc:
        reference_day_zero("2009-03-02", "10:00", "XNYS")
    with pytest.raises(CalendarError) as got:
        listing_day0s(frame)
    assert str(got.value) == str(exc.value)


# --------------------------------------------------------------------------------------------
# confounders
# --------------------------------------------------------------------------------------------
def reference_confounders(firm_events: pd.DataFrame, others: pd.DataFrame, window) -> list[str]:
    """Pair by pair: the other events of the same listing whose day 0 position on the
    exchange's session grid is within lo..hi of the firm-event's, each once, in others' order."""
    lo, hi = window
    grid_of: dict = {}
    known: dict = {}

    def position(exchange, day0) -> int:
        if (exchange, day0) not in known:
            if exchange not in grid_of:
                grid_of[exchange] = sessions(exchange, CALENDAR_START, CALENDAR_END)
            known[(exchange, day0)] = int(grid_of[exchange].searchsorted(
                pd.DatetimeIndex([day0]).as_unit("ns"))[0])
        return known[(exchange, day0)]

    listing: dict[tuple, list] = {}
    for row in others.itertuples(index=False):
        if not (pd.isna(row.ticker) or pd.isna(row.exchange)):
            listing.setdefault((row.ticker, row.exchange), []).append(row)
    out = []
    for row in firm_events.itertuples(index=False):
        found: list = []
        if not (pd.isna(row.ticker) or pd.isna(row.exchange)) and row.exchange:
            for other in listing.get((row.ticker, row.exchange), []):
                gap = position(row.exchange, other.day0) - position(row.exchange, row.day0)
                if lo <= gap <= hi and other.event_id != row.event_id \
                        and other.event_id not in found:
                    found.append(other.event_id)
        out.append(";".join(found))
    return out


def _broadcast(events: pd.DataFrame, tickers: list[str]) -> pd.DataFrame:
    """What a study with tickers=... builds: every event x every ticker, on its exchange."""
    rows = []
    for ev in events.itertuples(index=False):
        for ticker in tickers:
            exchange = exchange_for_ticker(ticker)
            d0 = reference_day_zero(ev.date, ev.time_beijing or None, exchange)["session"]
            rows.append((ev.event_id, ticker, exchange, d0))
    return pd.DataFrame(rows, columns=["event_id", "ticker", "exchange", "day0"])


WINDOWS = [(-1, 1), (0, 0), (-5, 5), (-250, -11), (2, 1), (0, 10**6), (-10**6, -4000),
           (np.int64(-2), np.int64(3))]


def test_confounders_on_the_table():
    events = load_events()
    others = listing_day0s(pd.concat([events, _shifted(events, 1)], ignore_index=True))
    firm_events = [listing_day0s(events),
                   _broadcast(events, ["BABA", "9988.HK", "JD", "9618.HK", "0700.HK", "PDD",
                                       "TME", "3690.HK", "NOT-IN-OTHERS"])]
    for fe in firm_events:
        for window in WINDOWS:
            got = confounders(fe, others, window)
            assert got == reference_confounders(fe, others, window), window
        assert any(confounders(fe, others, (-1, 1)))
    assert confounders(firm_events[0].iloc[:0], others, (-1, 1)) == []
    assert confounders(firm_events[0], others.iloc[:0], (-1, 1)) == [""] * len(firm_events[0])


def test_confounders_on_random_frames_with_missing_and_odd_values():
    gen = np.random.default_rng(7)
    day0s = pd.to_datetime(["2020-11-02", "2020-11-03", "2020-11-04", "2020-11-07",  # a Saturday
                            "2020-11-09", "2021-02-12", "2021-02-15", None])

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "event_id": gen.choice(["e1", "e2", "e3", "e4"], n),
            "ticker": gen.choice(np.array(["BABA", "9988.HK", "JD", None], dtype=object), n),
            "exchange": gen.choice(np.array(["XNYS", "XHKG", "", "xnys", None], dtype=object),
                                   n),
            "day0": gen.choice(day0s, n)})

    for _ in range(300):
        fe, others = frame(int(gen.integers(1, 14))), frame(int(gen.integers(1, 14)))
        window = (int(gen.integers(-3, 2)), int(gen.integers(-1, 4)))
        assert confounders(fe, others, window) == reference_confounders(fe, others, window)
    # non-integer offsets and object columns: the same answer
    fe, others = frame(30), frame(30)
    assert confounders(fe, others, (-1.0, 2.0)) == reference_confounders(fe, others, (-1, 2))
    assert (confounders(fe.astype(object), others.astype(object), (-2, 2))
            == reference_confounders(fe, others, (-2, 2)))


def test_confounders_errors_are_those_of_the_definition():
    day0 = pd.Timestamp("2021-07-22")
    fe = pd.DataFrame({"event_id": ["a"], "ticker": ["X"], "exchange": ["XLON"], "day0": [day0]})
    with pytest.raises(CalendarError, match="unknown exchange 'XLON'"):
        confounders(fe, fe.assign(event_id="b"), (-1, 1))
    # an exchange without a calendar is not looked up when the listing has no other event
    assert confounders(fe, fe.assign(ticker="Y"), (-1, 1)) == [""]
    with pytest.raises(TypeError):  # an id that is not text cannot be listed
        confounders(fe.assign(exchange="XNYS"), fe.assign(exchange="XNYS", event_id=np.nan),
                    (-1, 1))


# --------------------------------------------------------------------------------------------
# event_clusters
# --------------------------------------------------------------------------------------------
def reference_clusters(events: pd.DataFrame) -> pd.DataFrame:
    """Pairwise links (a shared listing and day 0), connected components by search, members
    ordered by (date, event_id)."""
    day0s = list(reference_listing_day0s(events).itertuples(index=False))
    ids = [str(e) for e in events["event_id"]]
    links: dict[str, set] = {e: set() for e in ids}
    for a in day0s:
        for b in day0s:
            if (a.ticker, a.exchange, a.day0) == (b.ticker, b.exchange, b.day0) \
                    and a.event_id != b.event_id:
                links[a.event_id].add(b.event_id)
    rank = {e: (pd.Timestamp(d), e) for e, d in zip(ids, events["date"], strict=True)}
    rows = []
    for e in ids:
        seen, todo = {e}, [e]
        while todo:
            for other in links[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        group = sorted(seen, key=rank.__getitem__)
        rows.append((e, group[0], len(group), ";".join(g for g in group if g != e)))
    return pd.DataFrame(rows, columns=["event_id", "cluster_id", "cluster_size",
                                       "shares_day0_with"])


def test_event_clusters_match_the_pairwise_definition():
    from crackdown.timeline.clusters import event_clusters

    events = load_events()
    table = pd.concat([events, _shifted(events, 1)], ignore_index=True)
    # the same announcements again under other ids: every event is linked to its twin
    twins = pd.concat([events, events.assign(event_id=events["event_id"] + "_twin")],
                      ignore_index=True)
    for frame in (events, table, twins):
        got = event_clusters(frame)
        pd.testing.assert_frame_equal(got, reference_clusters(frame))
    assert (event_clusters(twins)["cluster_size"] >= 2).all()
