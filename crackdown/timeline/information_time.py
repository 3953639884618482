"""Information time: which sessions of different exchanges price the same news.

A daily return of a session prices the news of its **information interval**: from the previous
close of the same exchange to its own close. New York and Hong Kong close at different instants
(Beijing time, UTC+8):

============================  =====================  ==========================
session                       close (Beijing time)   information interval
============================  =====================  ==========================
Hong Kong, Tuesday            Tue 16:00              Mon 16:00 .. Tue 16:00
New York, Monday (summer)     Tue 04:00              Mon 04:00 .. Tue 04:00
New York, Monday (winter)     Tue 05:00              Mon 05:00 .. Tue 05:00
Shanghai, Tuesday             Tue 15:00              Mon 15:00 .. Tue 15:00
============================  =====================  ==========================

**Pairing rule.** The information day of the study is the interval of a session of the
*anchor* exchange (:data:`INFORMATION_ANCHOR`, Hong Kong: the crackdown's news is released on
Beijing's clock, and the Hong Kong close at 16:00 is where the two markets' days are split). A
session of any other exchange belongs to the **first anchor session that closes strictly after
it**::

    Beijing time   Mon 16:00      Tue 04:00/05:00       Tue 16:00     Wed 04:00/05:00
    Hong Kong      |== HK Mon ==]                       |== HK Tue ==]
    New York                      |== NY Mon ==]                       |== NY Tue ==]
    information day of HK Tue:  (Mon 16:00, Tue 16:00]  holds NY Mon's close -> NY Mon ~ HK Tue

So New York's Monday is followed, in information time, by Hong Kong's Tuesday (news of
Monday in New York is priced in Hong Kong on Tuesday), and Shanghai's Tuesday (close 15:00)
shares Hong Kong's Tuesday. When the anchor is closed (a Hong Kong holiday), the other
exchange's sessions in the gap all belong to the next anchor session, whose return prices them
together; when the other exchange is closed, its listing has no session in that information
day. On the price snapshot the rule pairs the cross-listings well: the correlation of
market-model residuals of BABA (New York) and 9988.HK is 0.45 when New York's day *t* is paired
with Hong Kong's next session, 0.25 when paired with Hong Kong's same-dated session; 0.45 vs
0.21 for BIDU/9888.HK, 0.53 vs 0.18 for BILI/9626.HK (2020-2023).

Relative-day alignment (the *k*-th session before day 0 on each listing's own calendar) drifts
away from this pairing with every holiday one calendar has and the other does not: after 250
sessions the "same" relative day of BABA and 9988.HK is often a different week.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crackdown.errors import StudyConfigError
from crackdown.timeline.calendars import BEIJING_TZ, SUPPORTED_EXCHANGES

#: Exchange whose sessions define the information days when listings trade on several calendars.
INFORMATION_ANCHOR = "XHKG"

__all__ = [
    "INFORMATION_ANCHOR",
    "align_in_information_time",
    "information_day",
    "same_calendar",
    "session_closes",
]


def same_calendar(exchanges: Sequence[str]) -> bool:
    """True when every exchange in ``exchanges`` trades on one calendar (e.g. XNYS only)."""
    cals = {SUPPORTED_EXCHANGES.get(str(x).upper(), str(x)) for x in exchanges}
    return len(cals) <= 1


def _closes(exchange: str) -> tuple[np.ndarray, np.ndarray]:
    from crackdown.timeline.calendars import _check_exchange, _closes_utc

    sessions, closes = _closes_utc(_check_exchange(exchange))
    return sessions.to_numpy(dtype="datetime64[ns]"), closes


def session_closes(exchange: str, start=None, end=None) -> pd.Series:
    """The Beijing instant at which each session of ``exchange`` closes.

    Scheduled closes from :mod:`exchange_calendars`, including early closes (13:00 New York,
    12:00 Hong Kong half days).

    Returns
    -------
    pandas.Series
        Index: session dates (naive); values: tz-aware ``Asia/Shanghai`` close instants.
    """
    sessions, closes = _closes(exchange)
    out = pd.Series(pd.DatetimeIndex(closes).tz_localize("UTC").tz_convert(BEIJING_TZ),
                    index=pd.DatetimeIndex(sessions), name="close_beijing")
    if start is not None or end is not None:
        out = out.loc[start:end]
    return out


def information_day(dates, exchange: str, anchor: str = INFORMATION_ANCHOR) -> np.ndarray:
    """The anchor session whose information interval holds each session's close.

    ``key(s) = min{a : a an anchor session, close(a) > close(s)}`` for a session ``s`` of
    another calendar, and ``key(s) = s`` when ``exchange`` trades on the anchor's calendar.

    Parameters
    ----------
    dates : array-like of dates
        Sessions of ``exchange`` (NaT allowed and kept).
    exchange : str
        Their exchange (MIC).
    anchor : str
        Exchange whose sessions are the information days (default Hong Kong).

    Returns
    -------
    ndarray of datetime64[ns]
        Anchor session of each date; NaT for NaT input.

    Raises
    ------
    StudyConfigError
        A date that is not a session of ``exchange``.
    """
    d = np.asarray(pd.DatetimeIndex(np.ravel(np.asarray(dates, dtype="datetime64[ns]"))),
                   dtype="datetime64[ns]")
    if same_calendar([exchange, anchor]):
        return d.copy()
    sess, closes = _closes(exchange)
    a_sess, a_closes = _closes(anchor)
    ok = ~np.isnat(d)
    pos = np.searchsorted(sess, d[ok])
    bad = (pos >= len(sess)) | (sess[np.minimum(pos, len(sess) - 1)] != d[ok])
    if bad.any():
        first = pd.Timestamp(d[ok][bad][0])
        raise StudyConfigError(f"{first:%Y-%m-%d} is not a {exchange} session")
    k = np.searchsorted(a_closes, closes[pos], side="right")
    out = np.full(d.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    inside = k < len(a_sess)
    vals = np.full(pos.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    vals[inside] = a_sess[k[inside]]
    out[ok] = vals
    return out


def align_in_information_time(
    values: np.ndarray,
    dates: np.ndarray,
    exchanges: Sequence[str],
    origins: np.ndarray,
    *,
    anchor: str = INFORMATION_ANCHOR,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Re-grid per-row daily series from each row's own sessions onto anchor information days.

    Row ``i`` holds values on the sessions ``dates[i]`` of exchange ``exchanges[i]``. Each session
    goes to column ``pos(key(s)) - pos(origin_i)``, ``key`` from :func:`information_day` and
    ``pos`` the position on the anchor's session grid: rows that share an ``origin`` (the
    information day of an event's day 0) put the sessions that price the same news in the same
    column. Several sessions of one row in one information day (the anchor closed) are summed
    (the anchor's return prices their news together); the sum is NaN when any part is NaN.

    Parameters
    ----------
    values : (N, T) array
        Daily values (estimation residuals); NaN = missing.
    dates : (N, T) array of datetime64
        Session date of each cell (NaT = no session).
    exchanges : sequence of str (N,)
        Exchange of each row.
    origins : (N,) array of datetime64
        Anchor session that is relative information day 0 of each row.
    anchor : str

    Returns
    -------
    aligned : (N, K) array
        Values by relative information day; NaN where the row has no session.
    rel_days : (K,) int array
        Relative information day of each column.
    n_summed : int
        Cells that are sums of several sessions.
    """
    v = np.asarray(values, dtype=float)
    dts = np.asarray(dates, dtype="datetime64[ns]")
    n, t_len = v.shape
    a_sess, _ = _closes(anchor)
    cols = np.full((n, t_len), -1, dtype=np.int64)
    ok = np.zeros((n, t_len), dtype=bool)
    ex = np.asarray([str(x) for x in exchanges])
    origin_pos = np.searchsorted(a_sess, np.asarray(origins, dtype="datetime64[ns]"))
    for x in pd.unique(ex):
        rows = np.flatnonzero(ex == x)
        keys = information_day(dts[rows], x, anchor).reshape(len(rows), t_len)
        have = ~np.isnat(keys)
        pos = np.searchsorted(a_sess, keys)
        cols[rows] = np.where(have, pos - origin_pos[rows, None], -1)
        ok[rows] = have
    if not ok.any():
        return np.full((n, 0), np.nan), np.zeros(0, dtype=int), 0
    lo, hi = int(cols[ok].min()), int(cols[ok].max())
    width = hi - lo + 1
    flat = np.flatnonzero(ok)
    r_idx = flat // t_len
    c_idx = cols.ravel()[flat] - lo
    cell = r_idx * width + c_idx
    vals = v.ravel()[flat]
    total = np.bincount(cell, weights=np.where(np.isnan(vals), 0.0, vals), minlength=n * width)
    count = np.bincount(cell, minlength=n * width)
    n_nan = np.bincount(cell, weights=np.isnan(vals).astype(float), minlength=n * width)
    aligned = np.where((count > 0) & (n_nan == 0), total, np.nan).reshape(n, width)
    n_summed = int(((count > 1) & (n_nan == 0)).sum())
    return aligned, np.arange(lo, hi + 1), n_summed
