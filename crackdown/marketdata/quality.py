"""Data-quality report: what is missing, extra or suspicious in each ticker's prices.

Nothing here changes the data: every finding is listed so the user can decide.

Checks per ticker (all on the ticker's own exchange calendar, :mod:`crackdown.timeline.calendars`)
--------------------------------------------------------------------------------------------
* **missing sessions**: exchange sessions between the first and the last priced date that have
  no price (no row, or a blank price cell). :func:`crackdown.marketdata.returns.compute_returns` turns these
  into NaN returns (or spanning returns with ``span_gaps=True``).
* **extra dates**: priced dates that are not sessions of the exchange (holidays, weekends);
  ``n_outside_calendar`` counts priced dates beyond the calendars' range
  (:data:`crackdown.timeline.calendars.CALENDAR_START` .. ``CALENDAR_END``), which cannot be
  checked.
* **invalid prices**: a price that is not finite (``inf``) or not > 0; **suspect prices**: a
  price outside :data:`crackdown.marketdata.returns.PRICE_BOUNDS` or 100 times above or below
  the median of its neighbourhood (:func:`crackdown.marketdata.returns.suspect_price_mask`).
  Both are listed with their value (``"2021-04-12 inf"``) and are missing prices for the
  returns (also counted in ``missing_sessions`` when they fall on a session).
* **zero-volume days**: ``volume == 0`` (e.g. Hong Kong half days in yfinance data, where
  O=H=L=C and the close is still valid). Listed, not treated as missing.
* **flat days**: the price equals the previous priced session's price exactly (return 0).
* **large moves**: :math:`|P_t / P_s - 1| >` ``large_move`` (default 25%), ``s`` the previous
  priced session (a move across a gap is marked ``(k sessions)``). Listed, never removed.
* **coverage** against a requested range: sessions between ``start`` and the first price, and
  between the last price and ``end`` (e.g. an offline file that ends before the range does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crackdown.errors import PriceDataError
from crackdown.marketdata.returns import (
    _check_long,
    align_to_calendar,
    price_items,
    session_returns,
)
from crackdown.timeline.calendars import sessions

DEFAULT_LARGE_MOVE = 0.25

#: Report columns that hold lists of ``YYYY-MM-DD`` strings (or of large moves).
LIST_COLUMNS = ("missing_sessions", "extra_dates", "invalid_prices", "suspect_prices",
                "zero_volume_dates", "placeholder_dates", "flat_dates", "large_moves")

REPORT_COLUMNS = (
    "ticker",
    "exchange",
    "source",
    "price_column",
    "first_date",
    "last_date",
    "n_rows",
    "n_sessions",
    "n_missing_sessions",
    "missing_sessions",
    "n_extra_dates",
    "extra_dates",
    "n_outside_calendar",
    "n_invalid_prices",
    "invalid_prices",
    "n_suspect_prices",
    "suspect_prices",
    "n_zero_volume",
    "zero_volume_dates",
    "n_placeholder",
    "placeholder_dates",
    "n_flat",
    "flat_dates",
    "n_large_moves",
    "large_moves",
    "sessions_before_first",
    "sessions_after_last",
    "status",
)


def _dates(index) -> list[str]:
    return [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(index)]


def _first(series: pd.Series, default: str = "") -> str:
    values = series.dropna().unique()
    return ";".join(str(v) for v in values) if len(values) else default


def quality_report(
    prices_long: pd.DataFrame,
    *,
    large_move: float = DEFAULT_LARGE_MOVE,
    start: object = None,
    end: object = None,
) -> pd.DataFrame:
    """Per-ticker data-quality report of a long price frame.

    Parameters
    ----------
    prices_long
        Output of :func:`crackdown.marketdata.prices.load_prices` (needs ``date, ticker, price``; uses
        ``volume``, ``source``, ``price_column`` when present).
    large_move
        Threshold on the absolute simple return for the "large moves" list (0.25 = 25%).
    start, end
        Requested range; when given, ``sessions_before_first`` / ``sessions_after_last`` count
        the exchange sessions in the range that lie before the first / after the last price.

    Returns
    -------
    pandas.DataFrame
        One row per ticker (input order) with columns :data:`REPORT_COLUMNS`. ``*_dates`` /
        ``missing_sessions`` / ``large_moves`` are lists of ``YYYY-MM-DD`` strings (large
        moves as ``"YYYY-MM-DD +39.72%"``); ``n_*`` are their lengths; ``n_sessions`` counts
        the exchange sessions from the first to the last priced date. ``status`` is ``"ok"``
        or a ``;``-separated summary of findings that affect returns (missing sessions, extra
        dates, uncovered range, placeholder rows, invalid or suspect prices).
        ``invalid_prices`` / ``suspect_prices``: ``"YYYY-MM-DD value"`` items.
        ``placeholder_dates``: full sessions whose
        row has Volume 0 and O=H=L=C (Yahoo placeholders, suspensions), which the returns
        treat as missing prices (:mod:`crackdown.marketdata.returns`); they are also counted
        in ``missing_sessions``. Half-day sessions with Volume 0 are real prices and are not
        listed.
    """
    if not large_move > 0:
        raise PriceDataError(f"large_move={large_move!r}; give a positive fraction, e.g. 0.25")
    _check_long(prices_long)
    start_ts = None if start is None else pd.Timestamp(start).normalize()
    end_ts = None if end is None else pd.Timestamp(end).normalize()
    rows = []
    for ticker in dict.fromkeys(prices_long["ticker"]):
        part = prices_long.loc[prices_long["ticker"] == ticker].sort_values("date")
        aligned = align_to_calendar(str(ticker), part)
        priced = part.loc[part["price"].notna()]
        price = aligned.price
        missing = aligned.sessions[np.isnan(price)] if len(price) else aligned.sessions
        ret, n_sess, _ = session_returns(price, "simple", span_gaps=True)
        ret_dates = aligned.sessions[1:]
        flat = ret_dates[(ret == 0.0)]
        big = np.flatnonzero(np.abs(np.nan_to_num(ret)) > large_move)
        moves = [
            f"{ret_dates[i]:%Y-%m-%d} {ret[i]:+.2%}"
            + (f" ({n_sess[i]} sessions)" if n_sess[i] > 1 else "")
            for i in big
        ]
        if "volume" in part.columns:
            zero_vol = pd.DatetimeIndex(part.loc[part["volume"] == 0, "date"])
        else:
            zero_vol = pd.DatetimeIndex([])
        before = after = 0
        if len(aligned.sessions):
            first, last = aligned.sessions[0], aligned.sessions[-1]
            if start_ts is not None and start_ts < first:
                before = len(sessions(aligned.exchange, start_ts, first - pd.Timedelta(days=1)))
            if end_ts is not None and end_ts > last:
                after = len(sessions(aligned.exchange, last + pd.Timedelta(days=1), end_ts))
        findings = []
        if len(aligned.invalid_prices):
            findings.append(f"{len(aligned.invalid_prices)} invalid price(s) (not finite or "
                            "<= 0) treated as missing")
        if len(aligned.suspect_prices):
            findings.append(f"{len(aligned.suspect_prices)} suspect price(s) treated as missing")
        if len(aligned.placeholder_dates):
            findings.append(f"{len(aligned.placeholder_dates)} placeholder row(s) treated as "
                            "missing")
        if len(missing):
            findings.append(f"{len(missing)} missing session(s)")
        if len(aligned.non_session_dates):
            findings.append(f"{len(aligned.non_session_dates)} non-session date(s)")
        if len(aligned.outside_calendar_dates):
            findings.append(f"{len(aligned.outside_calendar_dates)} date(s) outside calendar")
        if before:
            findings.append(f"starts {before} session(s) after start")
        if after:
            findings.append(f"ends {after} session(s) before end")
        if priced.empty:
            findings.append("no prices")
        rows.append(
            {
                "ticker": str(ticker),
                "exchange": aligned.exchange,
                "source": _first(part["source"]) if "source" in part.columns else "",
                "price_column": (_first(part["price_column"])
                                 if "price_column" in part.columns else ""),
                "first_date": priced["date"].min() if len(priced) else pd.NaT,
                "last_date": priced["date"].max() if len(priced) else pd.NaT,
                "n_rows": len(part),
                "n_sessions": len(aligned.sessions),
                "n_missing_sessions": len(missing),
                "missing_sessions": _dates(missing),
                "n_extra_dates": len(aligned.non_session_dates),
                "n_outside_calendar": len(aligned.outside_calendar_dates),
                "extra_dates": _dates(aligned.non_session_dates),
                "n_invalid_prices": len(aligned.invalid_prices),
                "invalid_prices": price_items(aligned.invalid_prices),
                "n_suspect_prices": len(aligned.suspect_prices),
                "suspect_prices": price_items(aligned.suspect_prices),
                "n_zero_volume": len(zero_vol),
                "zero_volume_dates": _dates(zero_vol),
                "n_placeholder": len(aligned.placeholder_dates),
                "placeholder_dates": _dates(aligned.placeholder_dates),
                "n_flat": len(flat),
                "flat_dates": _dates(flat),
                "n_large_moves": len(moves),
                "large_moves": moves,
                "sessions_before_first": int(before),
                "sessions_after_last": int(after),
                "status": "; ".join(findings) if findings else "ok",
            }
        )
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    for col in ("first_date", "last_date"):
        report[col] = pd.to_datetime(report[col]).astype("datetime64[ns]")
    return report


def format_report(report: pd.DataFrame, *, max_items: int | None = 5) -> pd.DataFrame:
    """Return a printable copy: list columns joined with ``;`` (first ``max_items`` + ``...``).

    ``max_items=None`` keeps every item (used for CSV output).
    """
    out = report.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, list)).any():
            def join(items: list, limit=max_items) -> str:
                if limit is not None and len(items) > limit:
                    return ";".join(items[:limit]) + f";...(+{len(items) - limit})"
                return ";".join(items)

            out[col] = out[col].map(join)
    for col in ("first_date", "last_date"):
        if col in out.columns:
            out[col] = out[col].dt.strftime("%Y-%m-%d").fillna("")
    return out.astype(object).where(out.notna(), "")
