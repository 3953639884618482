"""Trading calendars and the mapping of announcement instants to event day 0.

Calendars come from :mod:`exchange_calendars` and are built once per exchange over
:data:`CALENDAR_START` .. :data:`CALENDAR_END` (cached).

Supported exchanges (ISO 10383 MIC of the *trading calendar*)
------------------------------------------------------------
``XNYS``
    Every US listing: NYSE, Nasdaq, NYSE Arca and OTC ADRs share the NYSE session calendar
    (holidays and 13:00 ET early closes).
``XHKG``
    Hong Kong Exchanges (incl. the 12:00 half days on Christmas Eve, New Year's Eve and Lunar
    New Year's Eve).
``XSHG``
    Shanghai Stock Exchange.
``XSHE``
    Shenzhen Stock Exchange. :mod:`exchange_calendars` has no ``XSHE`` calendar; Shenzhen keeps
    the same trading days and hours as Shanghai (both follow the State Council holiday notice),
    so the ``XSHG`` calendar is used.

Day-0 convention
----------------
An announcement is the instant ``date + time`` in Beijing time (Asia/Shanghai, UTC+8, no DST).
For an exchange, **day 0 is the first trading session whose close is strictly after that
instant** (closes are the exchange's scheduled closes, including early closes / half days).
An announcement made during a session therefore has day 0 = that session; one made after the
close (or on a holiday / weekend) has day 0 = the next session.

Unknown release times (:data:`TIMING_POLICIES`)
-----------------------------------------------
An event without a researched time could have been released at any time of its Beijing date
between 08:00 and midnight (official releases and wire reports; scheduled entries into force
are ``anticipated`` instead). New York's day 0 is the same for every such time (08:00 Beijing is
after the previous NYSE close, midnight is during the same-date New York session), but Hong
Kong's is the date's session for a release before its 16:00 close and the next session after
it. ``timing_policy`` says what to do:

``"span"`` (default)
    Day 0 is the earlier candidate (the date's Hong Kong session, as if released at 09:00) and
    ``DayZero.uncertain`` is True when the later candidate differs (``alternative``): a study
    then requires its event window to reach day +1, so that the reported reaction spans both
    possible sessions (:meth:`crackdown.estimation.study.EventStudy.from_events`).
``"same-day"``
    Released at 09:00 Beijing (before the Hong Kong close): the earlier candidate, not flagged.
``"next-session"``
    Released at 18:00 Beijing (after the Hong Kong close, before the New York open): the later
    candidate.

Every policy sets ``time_assumed=True`` and says so in the note.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import warnings
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from crackdown.errors import CalendarError, StudyConfigError

#: First and last calendar day of every calendar built here (wide enough for 250-session
#: estimation windows before 2015 events and for post-event windows up to 2026).
CALENDAR_START = pd.Timestamp("2010-01-01")
CALENDAR_END = pd.Timestamp("2026-12-31")

#: Time zone in which announcement dates and times are given.
BEIJING_TZ = "Asia/Shanghai"

#: Time assumed for an announcement whose time of day is unknown (Beijing time).
ASSUMED_TIME = dt.time(9, 0)
#: What an unknown release time means for day 0 (module docstring).
TIMING_POLICIES: tuple[str, ...] = ("span", "same-day", "next-session")
_POLICY_TIME = {"span": ASSUMED_TIME, "same-day": ASSUMED_TIME, "next-session": dt.time(18, 0)}
#: Earliest and latest Beijing time an unknown-time release is taken to have been made.
UNKNOWN_TIME_RANGE = (dt.time(8, 0), dt.time(23, 59))

#: Calendar MIC -> exchange_calendars calendar name.
SUPPORTED_EXCHANGES: dict[str, str] = {
    "XNYS": "XNYS",
    "XHKG": "XHKG",
    "XSHG": "XSHG",
    "XSHE": "XSHG",  # Shenzhen: same sessions as Shanghai (no XSHE calendar in the library)
}

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")

__all__ = [
    "ASSUMED_TIME", "BEIJING_TZ", "CALENDAR_END", "CALENDAR_START", "CALENDAR_TZ",
    "SUPPORTED_EXCHANGES", "TIMING_POLICIES", "UNKNOWN_TIME_RANGE", "DayZero", "calendar_tz",
    "day_zero", "day_zero_table", "early_closes", "get_calendar", "relative_sessions",
    "session_offset", "sessions",
]


# --------------------------------------------------------------------------------------------
# exchanges and calendars
# --------------------------------------------------------------------------------------------
def _check_exchange(exchange: str) -> str:
    if not isinstance(exchange, str) or exchange.strip().upper() not in SUPPORTED_EXCHANGES:
        raise CalendarError(
            f"unknown exchange {exchange!r}; supported: {', '.join(SUPPORTED_EXCHANGES)} "
            "(every US listing, incl. Nasdaq and NYSE Arca, uses XNYS)"
        )
    return exchange.strip().upper()


#: Whole-day closures that exchange_calendars does not know about, verified against the
#: exchange's own notices and the price snapshot (no Hang Seng or HK-stock prints on these days):
#: 2023-09-01 typhoon Saola (signal No. 8 all day) and 2023-09-08 black rainstorm warning.
EXTRA_CLOSURES: dict[str, tuple[str, ...]] = {
    "XHKG": ("2023-09-01", "2023-09-08"),
}


def _with_extra_closures(calendar_cls, closures: tuple[str, ...]):
    """Subclass an exchange_calendars class adding ``closures`` to its ad-hoc holidays."""
    extra = [pd.Timestamp(day) for day in closures]

    class Corrected(calendar_cls):  # type: ignore[misc, valid-type]
        @property
        def adhoc_holidays(self):
            return list(super().adhoc_holidays) + extra

    Corrected.__name__ = f"{calendar_cls.__name__}Corrected"
    return Corrected


@cache
def _build_calendar(name: str):
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars 4.x calls pandas APIs that pandas 3 deprecates; not our concern.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if name in EXTRA_CLOSURES:
            base = type(xcals.get_calendar(name))
            cls = _with_extra_closures(base, EXTRA_CLOSURES[name])
            return cls(start=CALENDAR_START, end=CALENDAR_END)
        return xcals.get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)


def get_calendar(exchange: str):
    """Return the (cached) :class:`exchange_calendars.ExchangeCalendar` of an exchange.

    Parameters
    ----------
    exchange : str
        Calendar MIC: ``XNYS``, ``XHKG``, ``XSHG`` or ``XSHE`` (case-insensitive).

    Returns
    -------
    exchange_calendars.ExchangeCalendar
        Built over :data:`CALENDAR_START` .. :data:`CALENDAR_END`. ``XSHE`` returns the
        ``XSHG`` calendar (identical sessions).

    Raises
    ------
    CalendarError
        Unknown exchange.
    """
    return _build_calendar(SUPPORTED_EXCHANGES[_check_exchange(exchange)])


#: Time zone of each calendar (``exchange_calendars``' ``tz``; tests check they agree), so that
#: local times need no calendar build.
CALENDAR_TZ: dict[str, str] = {
    "XNYS": "America/New_York",
    "XHKG": "Asia/Hong_Kong",
    "XSHG": "Asia/Shanghai",
    "XSHE": "Asia/Shanghai",
}


def calendar_tz(exchange: str) -> str:
    """Time zone name of an exchange's calendar (no calendar is built)."""
    return CALENDAR_TZ[_check_exchange(exchange)]


def _sessions_cache_file(name: str):
    """Disk cache of one calendar's sessions, closes and early closes, keyed by their inputs.

    ``<cache_dir>/calendars/<name>-<key>.npz``, where the key hashes the exchange_calendars
    version, the range and :data:`EXTRA_CLOSURES`; None when the version is unknown.
    """
    import hashlib

    from crackdown import config

    version = _exchange_calendars_version()
    if version is None:  # pragma: no cover - a dependency
        return None
    text = (f"{name}|{version}|{CALENDAR_START:%Y-%m-%d}|{CALENDAR_END:%Y-%m-%d}|"
            f"{sorted(EXTRA_CLOSURES.get(name, ()))}|1")
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return config.cache_dir() / "calendars" / f"{name}-{key}.npz"


def _exchange_calendars_version() -> str | None:
    """Installed exchange_calendars version, without importing it or :mod:`importlib.metadata`.

    Reads ``Version:`` from the one ``exchange_calendars-*.dist-info/METADATA`` next to the
    package (a file read, ~0.1 ms; :mod:`importlib.metadata` costs ~20 ms to import); falls back
    to :func:`importlib.metadata.version` for any other layout. None when not installed.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("exchange_calendars")
    if spec is not None and spec.origin:
        infos = list(Path(spec.origin).parent.parent.glob("exchange_calendars-*.dist-info"))
        if len(infos) == 1:
            try:
                with (infos[0] / "METADATA").open(encoding="utf-8") as fh:
                    for line in fh:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():
                            break  # end of the headers
            except OSError:
                pass
    from importlib import metadata

    try:
        return metadata.version("exchange_calendars")
    except metadata.PackageNotFoundError:
        return None


def _read_sessions_cache(path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Sessions, closes and early-close sessions (None if not stored) from ``path``.

    None when the file is absent or damaged (unreadable, unsorted, lengths that disagree, early
    closes that are not sessions).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            days = data["sessions"].astype("datetime64[ns]")
            closes = data["closes"].astype("datetime64[ns]")
            early = (data["early_closes"].astype("datetime64[ns]")
                     if "early_closes" in data.files else None)
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if len(days) == 0 or len(days) != len(closes) or not (
            np.all(days[1:] > days[:-1]) and np.all(closes[1:] > closes[:-1])):
        return None  # a damaged file: rebuild
    if early is not None and not (np.all(early[1:] > early[:-1]) and np.isin(early, days).all()):
        return None
    return days, closes, early


def _write_sessions_cache(path, days: np.ndarray, closes: np.ndarray,
                          early: np.ndarray | None = None) -> None:
    """Atomic write (temporary file, then rename); a cache that cannot be written is skipped."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                arrays = {"sessions": days, "closes": closes}
                if early is not None:
                    arrays["early_closes"] = early
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


@cache
def _calendar_arrays(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sessions (naive), their closes (naive UTC) and the early-close sessions of a calendar.

    All ``datetime64[ns]``, sorted. Built from the exchange_calendars calendar ``name`` (a value
    of :data:`SUPPORTED_EXCHANGES`) once per machine and kept on disk
    (:func:`_sessions_cache_file`; building XNYS and XHKG costs about 0.25 s per process), then
    once per process in memory.
    """
    path = _sessions_cache_file(name)
    hit = None if path is None else _read_sessions_cache(path)
    if hit is not None and hit[2] is not None:
        return hit
    cal = _build_calendar(name)
    closes = cal.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(
        dtype="datetime64[ns]")
    days = pd.DatetimeIndex(cal.sessions, freq=None).as_unit("ns").to_numpy()
    early = pd.DatetimeIndex(cal.early_closes).astype("datetime64[ns]").to_numpy()
    if path is not None:
        _write_sessions_cache(path, days, closes, early)
    return days, closes, early


@cache
def _closes_utc(exchange: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Sessions (naive) and their closes as naive-UTC ``datetime64[ns]`` (sorted; disk cache)."""
    days, closes, _early = _calendar_arrays(SUPPORTED_EXCHANGES[exchange])
    return pd.DatetimeIndex(days, freq=None).as_unit("ns"), closes


def _session_index(exchange: str) -> pd.DatetimeIndex:
    return _closes_utc(exchange)[0]


@cache
def early_closes(exchange: str) -> pd.DatetimeIndex:
    """Sessions of ``exchange`` that close early (NYSE 13:00 days, Hong Kong half days).

    Naive ``datetime64[ns]`` dates, sorted, no ``freq``; from the disk cache of
    :func:`_calendar_arrays` (no calendar build once cached).
    """
    early = _calendar_arrays(SUPPORTED_EXCHANGES[_check_exchange(exchange)])[2]
    return pd.DatetimeIndex(early, freq=None).as_unit("ns")


def _range_text(exchange: str) -> str:
    idx = _session_index(exchange)
    return f"{idx[0]:%Y-%m-%d} .. {idx[-1]:%Y-%m-%d}"


# --------------------------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------------------------
def _to_date(value, what: str) -> pd.Timestamp:
    """Parse a calendar date to a naive midnight Timestamp (ns); reject times and time zones."""
    if type(value) is pd.Timestamp and value.tzinfo is None:  # the common case, < 1 us
        try:
            ts = value.as_unit("ns")
        except ValueError:  # out of the ns range: the checks below say what is wrong first
            ts = None
        if ts is not None and ts.value % _DAY_NS == 0:
            return ts
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"{what} {value!r} is not a date; write it as YYYY-MM-DD") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise CalendarError(f"{what} is missing (NaT); write it as YYYY-MM-DD")
    if ts.tzinfo is not None:
        raise CalendarError(
            f"{what} {value!r} has a time zone; give the naive Beijing calendar date "
            "(and the time separately)"
        )
    if ts != ts.normalize():
        raise CalendarError(
            f"{what} {value!r} has a time of day; give the date only (YYYY-MM-DD) and the "
            "time separately"
        )
    return ts.as_unit("ns")


def sessions(exchange: str, start, end) -> pd.DatetimeIndex:
    """Return the exchange's sessions between two dates, both inclusive.

    Parameters
    ----------
    exchange : str
        Calendar MIC (see :func:`get_calendar`).
    start, end : date-like
        Calendar dates (naive, no time of day).

    Returns
    -------
    pandas.DatetimeIndex
        Naive session dates (``datetime64[ns]``, no ``freq``), possibly empty.

    Raises
    ------
    CalendarError
        ``start > end`` or a bound outside the calendar's session range.
    """
    exchange = _check_exchange(exchange)
    start_ts, end_ts = _to_date(start, "start"), _to_date(end, "end")
    idx = _session_index(exchange)
    if start_ts > end_ts:
        raise CalendarError(f"start {start_ts:%Y-%m-%d} is after end {end_ts:%Y-%m-%d}")
    for name, ts in (("start", start_ts), ("end", end_ts)):
        if ts < CALENDAR_START or ts > CALENDAR_END:
            raise CalendarError(
                f"{name} {ts:%Y-%m-%d} is outside the {exchange} calendar range "
                f"{CALENDAR_START:%Y-%m-%d} .. {CALENDAR_END:%Y-%m-%d}; choose dates inside it"
            )
    return idx[(idx >= start_ts) & (idx <= end_ts)]


def _session_position(exchange: str, day0) -> int:
    idx = _session_index(exchange)
    ts = _to_date(day0, "day 0")
    pos = int(idx.searchsorted(ts))
    if pos < len(idx) and idx[pos] == ts:
        return pos
    if ts < idx[0] or ts > idx[-1]:
        raise CalendarError(
            f"day 0 {ts:%Y-%m-%d} is outside the {exchange} calendar range "
            f"{_range_text(exchange)}"
        )
    raise CalendarError(
        f"day 0 {ts:%Y-%m-%d} is not an {exchange} session (previous session "
        f"{idx[pos - 1]:%Y-%m-%d}, next {idx[pos]:%Y-%m-%d}); map announcement dates with "
        "day_zero() first"
    )


def relative_sessions(exchange: str, day0, lo: int, hi: int) -> pd.DatetimeIndex:
    """Return the sessions at offsets ``lo .. hi`` (inclusive) from day 0.

    Offset ``k`` is the ``k``-th session after day 0 on the exchange's calendar (``k < 0``:
    before; ``0``: day 0 itself), so the result has ``hi - lo + 1`` sessions.

    Parameters
    ----------
    exchange : str
        Calendar MIC.
    day0 : date-like
        A session of ``exchange`` (e.g. ``day_zero(...).session``).
    lo, hi : int
        First and last offset, ``lo <= hi``.

    Returns
    -------
    pandas.DatetimeIndex
        Naive session dates, ``datetime64[ns]``.

    Raises
    ------
    CalendarError
        ``day0`` is not a session, or an offset falls outside the calendar range.
    StudyConfigError
        ``lo > hi`` or non-integer offsets.
    """
    exchange = _check_exchange(exchange)
    for name, value in (("lo", lo), ("hi", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise StudyConfigError(f"offset {name}={value!r} must be an integer")
    if lo > hi:
        raise StudyConfigError(f"offsets lo={lo} > hi={hi}; write the window as (lo, hi)")
    idx = _session_index(exchange)
    pos = _session_position(exchange, day0)
    first, last = pos + int(lo), pos + int(hi)
    if first < 0 or last >= len(idx):
        raise CalendarError(
            f"offsets {lo}..{hi} from day 0 {idx[pos]:%Y-%m-%d} fall outside the {exchange} "
            f"calendar range {_range_text(exchange)} (available offsets {-pos}.."
            f"{len(idx) - 1 - pos})"
        )
    return idx[first:last + 1]


def session_offset(exchange: str, day0, k: int) -> pd.Timestamp:
    """Return the session ``k`` sessions after day 0 (``k < 0``: before).

    See :func:`relative_sessions` for the conventions and errors.
    """
    return relative_sessions(exchange, day0, k, k)[0]


# --------------------------------------------------------------------------------------------
# day 0
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DayZero:
    """Day 0 of an announcement on one exchange.

    Attributes
    ----------
    exchange : str
        Calendar MIC.
    session : pandas.Timestamp
        Naive session date of day 0.
    announced_at : pandas.Timestamp
        The announcement instant used (tz Asia/Shanghai); 09:00 when the time was unknown.
    time_assumed : bool
        True when the time of day was unknown and the policy's time was assumed.
    note : str
        Human-readable explanation (local times of the announcement and of day 0's close).
    uncertain : bool
        ``timing_policy="span"`` and an unknown time whose possible releases (08:00 to
        midnight Beijing) map to two sessions: ``session`` and ``alternative``.
    alternative : pandas.Timestamp or None
        The later possible day 0 when the time is unknown and it differs from ``session``.
    """

    exchange: str
    session: pd.Timestamp
    announced_at: pd.Timestamp
    time_assumed: bool
    note: str
    uncertain: bool = False
    alternative: pd.Timestamp | None = None


def _parse_time(time, what: str = "time") -> dt.time | None:
    """Parse 'HH:MM' (or a datetime.time); None / '' / NaN -> None (unknown)."""
    if time is None:
        return None
    if isinstance(time, dt.time):
        if time.tzinfo is not None:
            raise CalendarError(
                f"{what} {time!r} carries a time zone; give the naive Beijing time of day"
            )
        return time
    if isinstance(time, float) and np.isnan(time):
        return None
    if isinstance(time, str):
        text = time.strip()
        if not text:
            return None
        match = _TIME_RE.match(text)
        if match:
            hour, minute = int(match.group(1)), int(match.group(2))
            if hour < 24 and minute < 60:
                return dt.time(hour, minute)
    raise CalendarError(
        f"{what} {time!r} is not a Beijing time of day; write it as HH:MM (24-hour, e.g. "
        "21:25) or leave it empty when unknown"
    )


def check_timing_policy(policy: str) -> str:
    """Validate ``timing_policy`` (:data:`TIMING_POLICIES`)."""
    if policy not in TIMING_POLICIES:
        raise StudyConfigError(
            f"timing_policy {policy!r}; use one of {', '.join(TIMING_POLICIES)} (span: day 0 is "
            "the release date's session and the window must reach day +1; same-day: released "
            "before the Hong Kong close; next-session: released after it)")
    return policy


_DAY_NS, _MICROSECOND = 86_400 * 10**9, dt.timedelta(microseconds=1)
_EPOCH_DATE, _BEIJING = dt.date(1970, 1, 1), zoneinfo.ZoneInfo(BEIJING_TZ)
_CLOCKS: dict[dt.time, tuple[dt.time, dt.time, int]] = {}  # time -> its folds, ns after midnight


def _instant_ns(day: pd.Timestamp, clock: dt.time) -> int:
    """UTC nanoseconds since the epoch of ``day + clock`` in Beijing time.

    ``wall - utcoffset(wall)`` with the offset of :data:`BEIJING_TZ` at that wall time, exact
    whenever the wall time exists once (both ``fold`` values give the same offset: every time
    since 1992); otherwise pandas localises it (and raises for a time that does not exist).
    """
    folds = _CLOCKS.get(clock)
    if folds is None:  # the two folds of a time of day and its nanoseconds after midnight
        if len(_CLOCKS) > 10_000:
            _CLOCKS.clear()
        folds = _CLOCKS[clock] = (clock.replace(fold=0), clock.replace(fold=1), 1000 * (
            ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 10**6 + clock.microsecond))
    date = day.date()
    offset = _BEIJING.utcoffset(dt.datetime.combine(date, folds[0]))
    if offset != _BEIJING.utcoffset(dt.datetime.combine(date, folds[1])):  # DST in 1986-1991
        return pd.Timestamp.combine(date, clock).tz_localize(BEIJING_TZ).value
    return day.value + folds[2] - (offset // _MICROSECOND) * 1000


@dataclass(frozen=True)
class _Grid:
    """One exchange's sessions and closes as Python ints (ns) for :mod:`bisect` (per process)."""
    closes: np.ndarray  # the array of _closes_utc: a rebuilt calendar is another grid
    days: list[int]
    close_ns: list[int]
    tz: zoneinfo.ZoneInfo


_GRIDS: dict[str, _Grid] = {}


def _grid(exchange: str) -> _Grid:
    idx, closes = _closes_utc(exchange)
    grid = _GRIDS.get(exchange)
    if grid is None or grid.closes is not closes:
        grid = _GRIDS[exchange] = _Grid(closes, idx.asi8.tolist(), closes.view("i8").tolist(),
                                        zoneinfo.ZoneInfo(CALENDAR_TZ[exchange]))
    return grid


def _iso_day(ns: int) -> str:
    """``f"{pd.Timestamp(ns):%Y-%m-%d}"`` of a midnight (years 1000-9999)."""
    return (_EPOCH_DATE + dt.timedelta(days=ns // _DAY_NS)).isoformat()


def _local_text(ns: int, tz: zoneinfo.ZoneInfo) -> str:
    """``"YYYY-MM-DD HH:MM TZ"`` of the UTC instant ``ns`` in ``tz`` (wall time, abbreviation).

    The whole second of ``ns`` is converted: transitions fall on whole seconds, so its wall
    minute and abbreviation are those of ``ns`` itself.
    """
    x = dt.datetime.fromtimestamp(ns // 10**9, tz)
    return f"{x.year:04d}-{x.month:02d}-{x.day:02d} {x.hour:02d}:{x.minute:02d} {x.tzname()}"


def _request(date, time, exchange: str, timing_policy: str):
    """The checked arguments of :func:`day_zero`: ``(exchange, day, clock, time_assumed,
    grid, memo key)``, the policy's clock when the time is unknown."""
    exchange = _check_exchange(exchange)
    check_timing_policy(timing_policy)
    day = _to_date(date, "announcement date")
    clock = _parse_time(time)
    time_assumed = clock is None
    if time_assumed:
        clock = _POLICY_TIME[timing_policy]
    return (exchange, day, clock, time_assumed, _grid(exchange),
            (exchange, day.value, clock, time_assumed, timing_policy))


def _day0_ns(date, time, exchange: str, timing_policy: str = "span") -> int:
    """``day_zero(date, time, exchange, timing_policy=...).session.value`` without the note.

    The same checks and errors (an announcement outside the calendar raises through
    :func:`day_zero`); a result already in the :func:`day_zero` memo is read from it.
    """
    exchange, day, clock, _assumed, grid, key = _request(date, time, exchange, timing_policy)
    hit = _DAY_ZERO_MEMO.get(key)
    if hit is not None and hit[0] is grid.closes:
        return hit[1].session.value
    pos = bisect.bisect_right(grid.close_ns, _instant_ns(day, clock))
    if pos == 0 or pos >= len(grid.days):
        return day_zero(date, time, exchange, timing_policy=timing_policy).session.value
    return grid.days[pos]


def day_zero(date, time: str | dt.time | None = None, exchange: str = "XNYS", *,
             timing_policy: str = "span") -> DayZero:
    """Map an announcement (Beijing date + optional time) to day 0 on an exchange.

    Day 0 is the first session whose scheduled close (``exchange_calendars`` closes, including
    early closes / half days) is strictly after the announcement instant
    ``date + time`` in Asia/Shanghai. A missing time follows ``timing_policy`` (module
    docstring: ``span`` and ``same-day`` take 09:00 Beijing, ``next-session`` 18:00) and is
    flagged with ``time_assumed=True``; under ``span`` an unknown time whose possible release
    instants (:data:`UNKNOWN_TIME_RANGE`) map to two sessions sets ``uncertain=True``.

    Parameters
    ----------
    date : date-like
        Beijing calendar date of the announcement (naive, no time of day).
    time : str, datetime.time or None
        Beijing time ``"HH:MM"``; ``None``, ``""`` or NaN = unknown.
    exchange : str
        Calendar MIC (default ``XNYS``).
    timing_policy : {"span", "same-day", "next-session"}
        What an unknown time means (:data:`TIMING_POLICIES`).

    Returns
    -------
    DayZero
        Frozen; computed once per process for each (exchange, date, time or assumed time,
        policy) and calendar, then returned again.

    Raises
    ------
    CalendarError
        Unknown exchange, unparsable date/time, or an announcement that is not strictly between
        the first and the last close of the calendar (see :data:`CALENDAR_START`,
        :data:`CALENDAR_END`).

    Examples
    --------
    21:25 Beijing on 2020-11-03 is 08:25 in New York (EST) and after Hong Kong's 16:00 close:

    >>> day_zero("2020-11-03", "21:25", "XNYS").session
    Timestamp('2020-11-03 00:00:00')
    >>> day_zero("2020-11-03", "21:25", "XHKG").session
    Timestamp('2020-11-04 00:00:00')
    """
    exchange, day, clock, time_assumed, grid, key = _request(date, time, exchange,
                                                             timing_policy)
    hit = _DAY_ZERO_MEMO.get(key)
    if hit is not None and hit[0] is grid.closes:  # computed on this very calendar
        return hit[1]
    # integers and bisect on the grid's lists (exact: _instant_ns); strings from datetime
    instant = _instant_ns(day, clock)
    pos = bisect.bisect_right(grid.close_ns, instant)
    days = grid.days
    announced = pd.Timestamp(instant, tz=BEIJING_TZ)
    if pos == 0 or pos >= len(days):
        raise CalendarError(
            f"announcement {announced:%Y-%m-%d %H:%M} Beijing is outside the {exchange} "
            f"calendar range (sessions {_range_text(exchange)}, built for "
            f"{CALENDAR_START:%Y-%m-%d} .. {CALENDAR_END:%Y-%m-%d}); day 0 needs a session close "
            "before and after the announcement"
        )
    session = pd.Timestamp(days[pos])
    where = (
        f"{exchange} day 0 {_iso_day(days[pos])}: first close after the announcement is "
        f"{_local_text(grid.close_ns[pos], grid.tz)}"
    )
    alternative, uncertain = None, False
    if time_assumed:
        first = bisect.bisect_right(grid.close_ns, _instant_ns(day, UNKNOWN_TIME_RANGE[0]))
        last = bisect.bisect_right(grid.close_ns, _instant_ns(day, UNKNOWN_TIME_RANGE[1]))
        if last != first and last < len(days):
            alternative = pd.Timestamp(days[last] if days[last] != days[pos] else days[first])
            uncertain = timing_policy == "span"
        rule = {"span": "the earlier possible session", "same-day": "released before the Hong "
                "Kong close", "next-session": "released after the Hong Kong close"}[timing_policy]
        note = (
            f"time unknown (timing_policy={timing_policy}: {rule}): assumed {clock:%H:%M} "
            f"Beijing on {_iso_day(day.value)}; {where}"
        )
        if alternative is not None:
            note += (f"; a release between {UNKNOWN_TIME_RANGE[0]:%H:%M} and midnight could "
                     f"also give {_iso_day(alternative.value)}")
    else:
        note = (
            f"announced {_iso_day(day.value)} {clock:%H:%M} Beijing = "
            f"{_local_text(instant, grid.tz)} local; {where}"
        )
    result = DayZero(
        exchange=exchange,
        session=session,
        announced_at=announced,
        time_assumed=time_assumed,
        note=note,
        uncertain=uncertain,
        alternative=alternative,
    )
    if len(_DAY_ZERO_MEMO) >= _DAY_ZERO_MEMO_MAX:
        _DAY_ZERO_MEMO.clear()
    _DAY_ZERO_MEMO[key] = (grid.closes, result)
    return result


#: :func:`day_zero` results (frozen) by (exchange, date, time, assumed, policy), each with the
#: closes array it was computed on (a rebuilt calendar is a miss).
_DAY_ZERO_MEMO: dict[tuple, tuple[np.ndarray, DayZero]] = {}
_DAY_ZERO_MEMO_MAX = 200_000


DAY_ZERO_COLUMNS = ("event_id", "exchange", "day0", "time_assumed", "note", "day0_uncertain",
                    "day0_alternative")


def day_zero_table(
    events_df: pd.DataFrame, exchanges: Sequence[str] | Iterable[str] = ("XNYS", "XHKG"), *,
    timing_policy: str = "span",
) -> pd.DataFrame:
    """Day 0 of every event on every exchange (long format).

    Parameters
    ----------
    events_df : pandas.DataFrame
        Needs columns ``event_id``, ``date`` (Beijing calendar date) and ``time_beijing``
        (``"HH:MM"`` or empty), as returned by :func:`crackdown.timeline.events.load_events`.
    exchanges : sequence of str
        Calendar MICs.
    timing_policy : {"span", "same-day", "next-session"}
        Unknown release times (module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``event_id, exchange, day0, time_assumed, note, day0_uncertain,
        day0_alternative``; one row per (event, exchange) in event order, then exchange order;
        ``day0`` is ``datetime64[ns]``; ``day0_alternative`` the other possible day 0 of an
        unknown time (NaT when there is none).

    Raises
    ------
    CalendarError
        Missing columns, unknown exchange, or an event that cannot be mapped (the message names
        the event_id).
    """
    missing = [c for c in ("event_id", "date", "time_beijing") if c not in events_df.columns]
    if missing:
        raise CalendarError(
            f"events table lacks column(s) {missing}; pass the frame from "
            "crackdown.timeline.events.load_events()"
        )
    mics = [_check_exchange(mic) for mic in exchanges]
    if not mics:
        raise CalendarError("no exchanges given; use e.g. XNYS,XHKG")
    rows = []
    for event_id, date, time in zip(
        events_df["event_id"], events_df["date"], events_df["time_beijing"], strict=True
    ):
        for mic in mics:
            try:
                dz = day_zero(date, time, mic, timing_policy=timing_policy)
            except CalendarError as exc:
                raise CalendarError(f"event {event_id}: {exc}") from exc
            rows.append((event_id, mic, dz.session, dz.time_assumed, dz.note, dz.uncertain,
                         dz.alternative))
    table = pd.DataFrame(rows, columns=list(DAY_ZERO_COLUMNS))
    table["day0"] = pd.to_datetime(table["day0"]).astype("datetime64[ns]")
    table["day0_alternative"] = pd.to_datetime(table["day0_alternative"]).astype(
        "datetime64[ns]")
    table["day0_uncertain"] = table["day0_uncertain"].astype(bool)
    table["time_assumed"] = table["time_assumed"].astype(bool)
    return table
