"""The study universe: which company each ticker is, where it trades and its benchmark.

The table lives in ``crackdown/timeline/universe.csv`` (shipped inside the wheel). One row per ticker:

``ticker``
    Yahoo Finance symbol (``BABA``, ``9988.HK``, ``^HSI``).
``company``
    Issuer or fund/index name.
``kind``
    ``stock`` (ordinary shares), ``adr`` (US depositary receipts, incl. the OTC ``TCEHY``),
    ``etf`` or ``index``.
``exchange``
    ISO 10383 MIC of the *trading calendar* that governs the ticker's sessions: ``XNYS`` for
    every US listing (NYSE, Nasdaq, NYSE Arca and OTC share the NYSE calendar), ``XHKG`` for
    Hong Kong, ``XSHG`` for Shanghai (the CSI 300 and SSE indices). This is the code
    :mod:`crackdown.timeline.calendars` uses.
``venue``
    MIC of the actual primary venue (``XNYS``, ``XNAS``, ``ARCX``, ``OTCM``, ``XHKG``), empty for
    indices. Informational.
``currency``
    Trading currency (ISO 4217).
``sector`` / ``industry``
    GICS sector (empty for funds and indices) and a short description of the business/exposure.
``role``
    The listing's part in the studies, one of :data:`ROLES`: ``platform`` (the consumer-internet
    platforms the crackdown targeted), ``rival`` (other Chinese internet and tech listings that
    compete with them), ``education``, ``fintech``, ``ev`` (electric vehicles),
    ``hardware_semis``, ``benchmark_constituent`` (the non-tech Hang Seng constituents of a
    market proxy without the platforms), ``index``, ``etf``.
``cross_listing``
    The paired listing of the same company on the other market (``BABA`` <-> ``9988.HK``), or
    empty. Both rows of a pair name each other.
``listed``
    First trading day of this listing on this exchange (``YYYY-MM-DD``), empty where it predates
    the sample and is not recorded.
``benchmark``
    Market proxy for market-model regressions: ``SPY`` for US listings, ``HK_NONTECH_EW`` for
    Hong Kong listings (the equal-weighted non-tech Hang Seng constituents, built by
    :mod:`crackdown.marketdata.benchmarks` without the firms an event names; ^HSI holds the
    treated platforms and stays selectable); empty for an instrument that is itself a market
    index (``SPY``, ``^GSPC``, ``^HSI``).
``notes``
    Free text (listing dates, caveats of the offline snapshot).

Tickers outside the table still work everywhere: their exchange is inferred from the symbol's
suffix by :func:`exchange_for_ticker` and their benchmark from the exchange
(:func:`default_benchmark`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from crackdown.errors import CalendarError
from crackdown.timeline.calendars import SUPPORTED_EXCHANGES

UNIVERSE_FILE = Path(__file__).resolve().parent / "universe.csv"

UNIVERSE_COLUMNS = (
    "ticker",
    "company",
    "kind",
    "exchange",
    "venue",
    "currency",
    "sector",
    "industry",
    "role",
    "cross_listing",
    "listed",
    "benchmark",
    "notes",
)
KINDS = ("stock", "adr", "etf", "index")
ROLES = ("platform", "rival", "education", "fintech", "ev", "hardware_semis",
         "benchmark_constituent", "index", "etf")

#: Market proxy per trading-calendar MIC, used for tickers that are not in the table.
EXCHANGE_BENCHMARKS = {
    "XNYS": "SPY",
    "XNAS": "SPY",
    "ARCX": "SPY",
    "XHKG": "HK_NONTECH_EW",
    "XSHG": "000300.SS",
    "XSHE": "000300.SS",
}


#: Ticker suffix (Yahoo Finance) -> exchange.
SUFFIX_EXCHANGES: dict[str, str] = {".HK": "XHKG", ".SS": "XSHG", ".SZ": "XSHE"}

#: Yahoo index symbols computed on Hong Kong sessions; any other ``^`` index maps to XNYS.
HK_INDICES = frozenset({"^HSI", "^HSCE", "^HSTECH"})

_PLAIN_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


@lru_cache(maxsize=1)
def _read_universe() -> pd.DataFrame:
    frame = pd.read_csv(UNIVERSE_FILE, dtype=str, keep_default_na=False)
    missing = [c for c in UNIVERSE_COLUMNS if c not in frame.columns]
    if missing:  # pragma: no cover - guards edits of the shipped file
        raise CalendarError(f"{UNIVERSE_FILE}: missing column(s) {missing}; restore the file")
    return frame.loc[:, list(UNIVERSE_COLUMNS)]


def load_universe() -> pd.DataFrame:
    """Return the universe table (a fresh copy; all columns are strings, '' = not applicable).

    Returns
    -------
    pandas.DataFrame
        Columns ``ticker, company, kind, exchange, venue, currency, sector, industry, role,
        cross_listing, listed, benchmark, notes``; one row per ticker, in file order.
    """
    return _read_universe().copy()


@lru_cache(maxsize=1)
def _row_positions() -> dict[str, int]:
    """Ticker -> position of its first row in the table (an index built once per process)."""
    positions: dict[str, int] = {}
    for pos, ticker in enumerate(_read_universe()["ticker"]):
        positions.setdefault(ticker, pos)
    return positions


#: ticker -> its universe row, built on first use (universe_row hands out copies)
_ROW_CACHE: dict[str, pd.Series] = {}


@lru_cache(maxsize=1)
def _column_maps() -> dict[str, dict[str, str]]:
    """``{"exchange": {ticker: value}, "benchmark": {ticker: value}}`` of the table.

    Built once per process from the table's columns, for the first row of each ticker (the row
    :func:`universe_row` returns): the per-ticker lookups of :func:`exchange_for_ticker` and
    :func:`default_benchmark` are then two dict look-ups, with no pandas row per ticker. The
    values are the cells as read (strings, ``''`` = empty).
    """
    frame = _read_universe()
    maps: dict[str, dict[str, str]] = {"exchange": {}, "benchmark": {}}
    tickers = frame["ticker"].tolist()
    for column, found in maps.items():
        for ticker, value in zip(tickers, frame[column].tolist()):
            found.setdefault(ticker, value)
    return maps


def universe_row(ticker: str) -> pd.Series | None:
    """Return the universe row of ``ticker`` (exact Yahoo symbol), or ``None`` if not listed.

    A dict lookup of the row's position (built once), not a boolean scan of the table; each
    row is taken out of the table once per process and every call returns a copy of it (the
    caller may change it: the table and later calls are not affected).
    """
    pos = _row_positions().get(ticker) if isinstance(ticker, str) else None
    if pos is None:
        return None
    row = _ROW_CACHE.get(ticker)
    if row is None:
        row = _ROW_CACHE[ticker] = _read_universe().iloc[pos].copy()
    return row.copy()


def cross_listing_pairs() -> pd.DataFrame:
    """Return the US/Hong Kong pairs of the same company.

    Returns
    -------
    pandas.DataFrame
        Columns ``us_ticker, hk_ticker, company``; one row per pair (each pair once).
    """
    frame = _read_universe()
    rows = []
    for row in frame.itertuples(index=False):
        if row.cross_listing and row.exchange == "XNYS":
            rows.append({"us_ticker": row.ticker, "hk_ticker": row.cross_listing,
                         "company": row.company})
    return pd.DataFrame(rows, columns=["us_ticker", "hk_ticker", "company"])


def default_benchmark(ticker_or_exchange: str) -> str:
    """Return the market proxy for a ticker or an exchange MIC.

    Rules (first match wins): a ticker listed in the universe -> its ``benchmark`` column (``''``
    for an instrument that is itself the market, e.g. ``SPY`` or ``^HSI``); a known MIC
    (``XNYS``/``XNAS``/``ARCX`` -> ``SPY``, ``XHKG`` -> ``HK_NONTECH_EW``, ``XSHG``/``XSHE`` ->
    ``000300.SS``); otherwise the ticker's exchange is inferred with
    :func:`exchange_for_ticker` and mapped as above.

    Raises
    ------
    CalendarError
        The exchange has no default benchmark.
    """
    key = ticker_or_exchange.strip()
    listed = _column_maps()["benchmark"].get(key)
    if listed is not None:
        return str(listed)
    if key in EXCHANGE_BENCHMARKS:
        return EXCHANGE_BENCHMARKS[key]
    exchange = exchange_for_ticker(key)
    try:
        return EXCHANGE_BENCHMARKS[exchange]
    except KeyError:
        raise CalendarError(
            f"no default benchmark for {key!r} (exchange {exchange}); pass a benchmark "
            f"ticker explicitly (known exchanges: {', '.join(sorted(EXCHANGE_BENCHMARKS))})"
        ) from None


def _listed_exchange(ticker: str) -> str | None:
    """Exchange of ``ticker`` in the universe table, or None when it is not listed there
    (the ``exchange`` cell of its row, :func:`_column_maps`)."""
    cell = _column_maps()["exchange"].get(ticker) if isinstance(ticker, str) else None
    if cell is None:
        return None
    value = str(cell).strip().upper()
    if value not in SUPPORTED_EXCHANGES:
        raise CalendarError(
            f"crackdown/timeline/universe.csv gives ticker {ticker!r} the exchange {value!r}, "
            f"which has no calendar here; use one of {', '.join(SUPPORTED_EXCHANGES)} in its "
            "'exchange' column"
        )
    return value


def exchange_for_ticker(ticker: str) -> str:
    """Return the calendar MIC that governs a ticker's trading sessions.

    Rules (first match wins):

    1. a ticker listed in ``crackdown/timeline/universe.csv`` -> its ``exchange`` column;
    2. Yahoo suffix ``.HK`` -> ``XHKG``, ``.SS`` -> ``XSHG``, ``.SZ`` -> ``XSHE``
       (case-insensitive);
    3. ``^HSI``, ``^HSCE``, ``^HSTECH`` -> ``XHKG``; any other ``^`` index -> ``XNYS``;
    4. a plain symbol (letters, digits, ``-`` as in ``BRK-B``) -> ``XNYS``.

    Parameters
    ----------
    ticker : str
        Yahoo Finance symbol.

    Returns
    -------
    str
        One of :data:`crackdown.timeline.calendars.SUPPORTED_EXCHANGES`.

    Raises
    ------
    CalendarError
        Empty ticker, unsupported suffix (``.L``, ``.T``, ...) or characters that no supported
        exchange uses.
    """
    if not isinstance(ticker, str) or not ticker.strip():
        raise CalendarError(f"ticker {ticker!r} is empty; give a Yahoo symbol such as BABA")
    symbol = ticker.strip()
    listed = _listed_exchange(symbol)
    if listed is not None:
        return listed
    upper = symbol.upper()
    if upper.startswith("^"):
        return "XHKG" if upper in HK_INDICES else "XNYS"
    supported = (
        ", ".join(f"{sfx} ({mic})" for sfx, mic in SUFFIX_EXCHANGES.items())
        + ", or no suffix for US listings (XNYS)"
    )
    if "." in symbol:
        suffix = upper[upper.rfind("."):]
        if suffix in SUFFIX_EXCHANGES and len(symbol) > len(suffix):
            return SUFFIX_EXCHANGES[suffix]
        raise CalendarError(
            f"ticker {symbol!r}: unsupported suffix {suffix!r}; supported suffixes: {supported}; "
            "US share classes use '-' as on Yahoo (BRK-B)"
        )
    if not _PLAIN_SYMBOL_RE.match(symbol):
        raise CalendarError(
            f"ticker {symbol!r} is not a supported Yahoo symbol (letters, digits and '-' for US "
            f"listings; suffixes {supported})"
        )
    return "XNYS"
