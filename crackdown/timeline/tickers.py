"""The one ticker check: every ticker that enters the package is validated here.

A ticker is a Yahoo Finance symbol matching :data:`TICKER_PATTERN`: an optional leading ``^``
(indices), then upper-case letters and digits, in parts joined by ``.``, ``-`` or ``=``
(``BABA``, ``9988.HK``, ``^HSI``, ``BRK-B``, ``CNY=X``, ``600519.SS``). The pattern is also the
file-name rule of the price folder and the cache (``<TICKER>.csv``): it has no ``/``, ``\\``,
no leading dot, no ``..`` and no blank, so a checked ticker can never name a path outside its
folder.

Where tickers enter and how they are checked
--------------------------------------------
* the command line's ``--tickers`` (and ``--rivals``/``--others``) of every command:
  :func:`parse_tickers_option` -- stripped, **upper-cased** (``baba`` -> ``BABA``,
  ``9988.hk`` -> ``9988.HK``), a duplicate is an error naming the option;
* the events file's ``tickers`` column: :func:`ticker_problem` with ``normalize=False`` -- the
  file is the record, so a lower-case symbol is an error that suggests the upper-case one, and a
  ticker listed twice in a row is an error naming the file and line;
* :meth:`crackdown.EventStudy.from_events` (``tickers=``): :func:`check_tickers`, duplicates are
  an error naming ``tickers=``;
* :func:`crackdown.load_prices`: :func:`check_tickers` with ``duplicates="drop"`` (documented
  de-duplication), so any symbol it accepts is safe as a cache file name;
* :func:`crackdown.marketdata.cache.cache_paths` refuses anything that is not already a valid,
  upper-case ticker (defence in depth against path traversal).

Every problem raises :class:`TickerError` (a :class:`~crackdown.errors.StudyConfigError` and a
:class:`~crackdown.errors.PriceDataError`), whose one-line message names the source of the bad
ticker (the option, the argument or the file and line), the value and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crackdown.errors import PriceDataError, StudyConfigError

__all__ = [
    "TICKER_PATTERN",
    "TickerError",
    "check_ticker",
    "check_tickers",
    "is_ticker",
    "parse_tickers_option",
    "ticker_problem",
]

#: A Yahoo Finance symbol: optional leading ``^`` (indices), upper-case letters and digits,
#: parts joined by ``.``, ``-`` or ``=`` (``BABA``, ``9988.HK``, ``^HSI``, ``BRK-B``, ``CNY=X``).
TICKER_PATTERN = re.compile(r"\^?[A-Z0-9]+(?:[.\-=][A-Z0-9]+)*")

#: Longest accepted symbol (Yahoo's are at most ~20 characters; also keeps file names short).
MAX_TICKER_LENGTH = 32

_EXAMPLE = "use Yahoo symbols such as BABA, 9988.HK, ^HSI or BRK-B"


class TickerError(StudyConfigError, PriceDataError):
    """A ticker is malformed, duplicated or unsafe as a file name (names its source)."""


def is_ticker(text: object) -> bool:
    """Whether ``text`` is exactly a valid ticker (a ``str`` matching :data:`TICKER_PATTERN`)."""
    return (isinstance(text, str) and len(text) <= MAX_TICKER_LENGTH
            and TICKER_PATTERN.fullmatch(text) is not None)


def _suggestion(text: str) -> str:
    """A corrected symbol to suggest for ``text``, or ``""``."""
    for candidate in (text.strip().upper(), "".join(text.split()).upper()):
        if candidate != text and is_ticker(candidate):
            return candidate
    return ""


def ticker_problem(text: object, *, normalize: bool = False) -> str | None:
    """What is wrong with one ticker, or ``None`` when it is valid.

    Parameters
    ----------
    text
        The candidate symbol.
    normalize
        Judge ``text.strip().upper()`` instead of ``text`` (then ``baba`` is valid).
    """
    if not isinstance(text, str):
        return f"{text!r} is not a string (a {type(text).__name__})"
    candidate = text.strip().upper() if normalize else text
    if candidate == "":
        return "empty ticker"
    if not text.isascii():
        return f"{text!r} is not a Yahoo symbol (it has non-ASCII characters)"
    if len(candidate) > MAX_TICKER_LENGTH:
        return f"{text[:40]!r}... is longer than {MAX_TICKER_LENGTH} characters"
    if is_ticker(candidate):
        return None
    hint = _suggestion(text)
    if hint:
        return f"{text!r} is not a Yahoo symbol (did you mean {hint!r}?)"
    if "/" in text or "\\" in text or ".." in text or text.strip().startswith("."):
        return (f"{text!r} is not a Yahoo symbol (it looks like a path; a ticker has only "
                f"letters, digits and single '.', '-' or '=' between them)")
    return f"{text!r} is not a Yahoo symbol"


def check_ticker(text: object, source: str, *, normalize: bool = True) -> str:
    """Return the valid (stripped, upper-cased when ``normalize``) ticker, or raise.

    Parameters
    ----------
    text
        The candidate symbol.
    source
        Where it comes from, for the message (``"--tickers"``, ``"tickers="``,
        ``"events.csv, line 7"``).
    normalize
        Strip blanks and upper-case before checking (``" baba"`` -> ``"BABA"``).

    Raises
    ------
    TickerError
        The symbol does not match :data:`TICKER_PATTERN` (the message names ``source``, the
        value and a suggestion).
    """
    problem = ticker_problem(text, normalize=normalize)
    if problem is not None:
        raise TickerError(f"{source}: {problem}; {_EXAMPLE}")
    assert isinstance(text, str)
    return text.strip().upper() if normalize else text


def check_tickers(
    tickers: str | Iterable[object],
    source: str,
    *,
    normalize: bool = True,
    duplicates: str = "raise",
) -> list[str]:
    """Check a list of tickers; return them (normalised, order kept).

    Parameters
    ----------
    tickers
        One symbol (a ``str``) or an iterable of symbols.
    source
        Where they come from, for the message (``"--tickers"``, ``"tickers="``).
    normalize
        See :func:`check_ticker`. Duplicates are judged after normalisation
        (``baba,BABA`` is a duplicate).
    duplicates
        ``"raise"`` (default): a ticker given twice is an error naming ``source``; ``"drop"``:
        later copies are dropped (order of first appearance kept).

    Raises
    ------
    TickerError
        No ticker, a malformed one (see :func:`check_ticker`) or, with
        ``duplicates="raise"``, one given twice.
    """
    if duplicates not in {"raise", "drop"}:
        raise StudyConfigError(f"duplicates={duplicates!r}; use 'raise' or 'drop'")
    items = [tickers] if isinstance(tickers, str) else list(tickers)
    out: list[str] = []
    for item in items:
        name = check_ticker(item, source, normalize=normalize)
        if name in out:
            if duplicates == "drop":
                continue
            raise TickerError(f"{source}: ticker {name} is given twice; list each ticker once")
        out.append(name)
    if not out:
        raise TickerError(f"{source}: no ticker given; {_EXAMPLE}")
    return out


def parse_tickers_option(text: str | None, option: str = "--tickers") -> list[str]:
    """Parse a comma-separated command-line list of tickers (``None`` -> ``[]``).

    Items are stripped and upper-cased; an empty item, a malformed ticker or a duplicate raises
    :class:`TickerError` naming ``option``.
    """
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise TickerError(f"{option} {text!r} has an empty item; use e.g. {option} BABA,9988.HK")
    return check_tickers(items, option)
