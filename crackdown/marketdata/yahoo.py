"""Downloads from Yahoo Finance with yfinance; an empty download is an error, never a frame.

``yfinance.download(ticker, start, end + 1 day, auto_adjust=False, actions=False,
progress=False, multi_level_index=False)`` (yfinance's ``end`` is exclusive; ours is inclusive).
yfinance logs instead of raising when a symbol is unknown or the network is down; its log is
captured and turned into a :class:`~crackdown.errors.PriceDataError` naming the ticker, the dates
and what to do.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import pandas as pd

from crackdown.errors import PriceDataError
from crackdown.marketdata.price_files import (
    _WHAT_TO_DO,
    CANONICAL_COLUMNS,
    _canonical_name,
    _fmt,
    _range_text,
)
from crackdown.timeline.tickers import check_ticker


def normalize_yfinance_frame(raw: pd.DataFrame | None, ticker: str) -> pd.DataFrame:
    """Turn a ``yfinance.download`` result into the file layout (index ``Date``, naive dates).

    Copes with both column shapes: flat (``multi_level_index=False``) and MultiIndex, either
    ``("Close", "BABA")`` (``group_by="column"``) or ``("BABA", "Close")``
    (``group_by="ticker"``). Timezone-aware indexes are converted to their local calendar date.
    Rows whose prices are all NaN are dropped (yfinance's own ``keepna=False`` convention).
    """
    if raw is None or len(raw) == 0:
        return pd.DataFrame()
    frame = raw.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        fields = {c.lower().replace(" ", "") for c in CANONICAL_COLUMNS}
        field_level = None
        for level in range(frame.columns.nlevels):
            values = {str(v).lower().replace(" ", "") for v in frame.columns.get_level_values(level)}
            if values & fields:
                field_level = level
                break
        if field_level is None:
            raise PriceDataError(
                f"yfinance returned unexpected columns for {ticker}: {list(frame.columns)[:6]}"
            )
        for level in range(frame.columns.nlevels):
            if level == field_level:
                continue
            labels = frame.columns.get_level_values(level)
            if ticker in set(labels):
                frame = frame.loc[:, labels == ticker]
        frame.columns = frame.columns.get_level_values(field_level)
    frame.columns = [_canonical_name(c) for c in frame.columns]
    frame = frame.loc[:, ~pd.Index(frame.columns).duplicated()]
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize().astype("datetime64[ns]")
    frame.index.name = "Date"
    keep = [c for c in CANONICAL_COLUMNS if c in frame.columns]
    frame = frame.loc[:, keep].apply(pd.to_numeric, errors="coerce").astype(float)
    price_cols = [c for c in ("Open", "High", "Low", "Close", "Adj Close") if c in frame.columns]
    if price_cols:
        frame = frame.loc[frame[price_cols].notna().any(axis=1)]
    frame = frame.loc[~frame.index.duplicated(keep="last")].sort_index()
    return frame


class _CaptureYfinanceLog(logging.Handler):
    """Collect yfinance's log records during one download (it reports failures only there)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - trivial
        try:
            text = " ".join(record.getMessage().split())
        except Exception:  # noqa: BLE001 - a broken log record must not break a download
            return
        if text:
            self.messages.append(text)


@contextmanager
def _captured_yfinance_log():
    """Route the ``yfinance`` logger to a collector (not the console) for the duration."""
    logger = logging.getLogger("yfinance")
    handler = _CaptureYfinanceLog()
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers = [handler]
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate = saved


_NETWORK_HINTS = ("resolve host", "dnserror", "connection", "timed out", "timeout",
                  "network is unreachable", "ssl")


def _explain_empty(ticker: str, messages: list[str]) -> str:
    """Say why yfinance returned nothing, from its log messages (the same words for the same
    cause: the report of a missing ticker must not depend on what the process fetched
    before)."""
    relevant = [m for m in messages if ticker.lower() in m.lower() and "failed download" not in
                m.lower()] or messages
    text = relevant[-1] if relevant else ""
    lowered = " ".join(messages).lower()
    if any(hint in lowered for hint in _NETWORK_HINTS):
        # no yfinance text: it differs from one call to the next in a process (yfinance keeps
        # the failed look-ups), and the reason is all there is to say
        return "this machine cannot reach Yahoo Finance (no internet connection)"
    if any(h in lowered for h in ("delisted", "not found", "no data found", "no price data",
                                  "no timezone", "404")):
        return f"Yahoo Finance does not know {ticker!r} or has no data for it in the range"
    reason = (f"either this machine cannot reach Yahoo Finance (offline) or {ticker!r} is "
              f"not a Yahoo symbol with data in the range")
    if text:  # an unclassified failure: yfinance's own words are the only clue
        reason += f" (yfinance: {text[:200]})"
    return reason


def download_yfinance(
    ticker: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Download one ticker's daily prices from Yahoo Finance.

    ``end`` is inclusive here; yfinance's ``end`` is exclusive, so ``end + 1 day`` is passed.
    With no ``start`` the request starts at 1970-01-01 (the whole history).

    Raises
    ------
    TickerError
        ``ticker`` is not a valid upper-case Yahoo symbol
        (:func:`crackdown.timeline.tickers.check_ticker`).
    PriceDataError
        yfinance raised, or returned an empty frame (no internet connection, unknown or delisted
        symbol, or no trading in the range); the message names the ticker, the range and what to
        do.
    """
    import yfinance

    ticker = check_ticker(ticker, "ticker", normalize=False)  # never send a malformed symbol
    span = _range_text(start, end)
    kwargs = {
        "start": _fmt(start, "1970-01-01"),
        "end": None if end is None else _fmt(end + pd.Timedelta(days=1), ""),
        "auto_adjust": False,
        "actions": False,
        "progress": False,
        "threads": False,
        "multi_level_index": False,
    }
    try:
        with _captured_yfinance_log() as log, warnings.catch_warnings():
            # yfinance's own pandas deprecation warnings are not the user's concern
            warnings.simplefilter("ignore")
            try:
                raw = yfinance.download(ticker, **kwargs)
            except TypeError as exc:  # yfinance < 0.2.48 has no multi_level_index
                if "multi_level_index" not in str(exc):
                    raise
                kwargs.pop("multi_level_index")
                raw = yfinance.download(ticker, **kwargs)
    except AssertionError:  # the test suite's network guard: let it surface
        raise
    except Exception as exc:  # noqa: BLE001 - any yfinance failure becomes a user error
        raise PriceDataError(
            f"yfinance failed for {ticker} {span} ({type(exc).__name__}: {exc}); "
            + _WHAT_TO_DO.format(ticker=ticker)
        ) from None
    frame = normalize_yfinance_frame(raw, ticker)
    if frame.empty:
        raise PriceDataError(
            f"no prices for {ticker} {span}: yfinance returned an empty frame: "
            f"{_explain_empty(ticker, log.messages)}. What to do: "
            + _WHAT_TO_DO.format(ticker=ticker)
        )
    if "Close" not in frame.columns and "Adj Close" not in frame.columns:
        raise PriceDataError(
            f"yfinance returned no Close column for {ticker} {span} (columns {list(frame.columns)})"
        )
    return frame


# --------------------------------------------------------------------------- public API
