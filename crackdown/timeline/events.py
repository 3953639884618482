"""The crackdown event table: loading, validation and look-up.

The table (``events.csv`` at the repository root, or the file named by ``$CRACKDOWN_EVENTS_FILE``)
has one row per dated regulatory action. Its columns, in this order, are::

    event_id, date, time_beijing, time_source, agency, category, direction, firms, tickers, title,
    source, confidence, anticipated, notes

Conventions
-----------
* ``date`` is the **Beijing calendar date** (Asia/Shanghai) of the *first public information*:
  a leak, a wire report of a decision or the official release, whichever came first (the
  official release is then given in ``notes``). Written ``YYYY-MM-DD``.
* ``time_beijing`` is ``HH:MM`` (24-hour, Beijing time) of that first public information, or
  empty when no source gives it. ``time_source`` says where the time comes from (URL or wire,
  with ``approximate`` for a part-of-day time such as "after the close" and ``upper bound`` for
  the stamp of a report that followed the release); a time without a source is an error.
  :data:`TIMINGS`: the derived ``timing`` column is ``known`` (a stamp), ``approximate`` (the
  word "approximate" in ``time_source``) or ``unknown`` (no time). Mapping a date and time to a
  trading session ("day 0", and the policy for unknown times) is the job of
  :mod:`crackdown.timeline.calendars`, not of this module.
* ``anticipated`` is ``true`` for dates known in advance (a law's entry into force, a scheduled
  effective date, a scheduled vote), ``false`` for surprises.
* ``category`` ``market_confound`` marks non-regulatory market events researchers must control
  for (the SEC's HFCAA rules and lists, the PCAOB determination): they are studied like the
  others but are not crackdown actions (derived column ``crackdown_action`` is False).
* ``tickers`` is a ``;``-separated list of Yahoo Finance symbols (``BABA;9988.HK``), each
  listed once, checked by :mod:`crackdown.timeline.tickers` (the one ticker check; a lower-case
  symbol is an error that suggests the upper-case one).
* ``category`` is one of :data:`CATEGORIES`, ``direction`` one of :data:`DIRECTIONS`,
  ``confidence`` one of :data:`CONFIDENCE`.

Validation
----------
:func:`load_events` validates the file with a :mod:`pandera` schema (one check per column) plus
explicit checks that pandera cannot express with row positions (header, field counts, duplicate
ids naming both lines). The schema's cell checks (:data:`_CELL_CHECKS`, :data:`_ALLOWED`) are
first run in plain Python; pandera is imported and run only when one of them fails, to report
the failures (a valid file, the usual case, never imports pandera). Every problem is reported as an :class:`~crackdown.errors.EventsFileError`
whose message names the file, the CSV line number (the header is line 1, the first data row is
line 2), the column, the bad value and what to do. All problems are listed, one per line, sorted
by line; the first line of the message is self-contained.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crackdown import config
from crackdown.errors import EventsFileError, StudyConfigError
from crackdown.timeline.tickers import TICKER_PATTERN, ticker_problem

if TYPE_CHECKING:  # pandera (0.1 s to import) is loaded only to report a bad file
    import pandera.pandas as pa

__all__ = [
    "CATEGORIES",
    "COLUMNS",
    "CONFIDENCE",
    "DIRECTIONS",
    "EVENT_ID_PATTERN",
    "NON_CRACKDOWN_CATEGORIES",
    "TICKER_PATTERN",
    "TIME_PATTERN",
    "TIMINGS",
    "get_event",
    "load_events",
    "timing_of",
]

#: Allowed values of the ``category`` column.
CATEGORIES: tuple[str, ...] = (
    "antitrust",
    "data_security",
    "labor",
    "fintech",
    "education",
    "listing",
    "platform_rules",
    "algorithm",
    "support",
    "other",
    "market_confound",
)
#: Categories that are not crackdown actions (studied, but not counted as the crackdown).
NON_CRACKDOWN_CATEGORIES: tuple[str, ...] = ("market_confound",)
#: Values of the derived ``timing`` column.
TIMINGS: tuple[str, ...] = ("known", "approximate", "unknown")
#: Allowed values of the ``direction`` column.
DIRECTIONS: tuple[str, ...] = ("tightening", "easing")
#: Allowed values of the ``confidence`` column.
CONFIDENCE: tuple[str, ...] = ("high", "medium", "low")

#: The CSV columns, in file order.
COLUMNS: tuple[str, ...] = (
    "event_id",
    "date",
    "time_beijing",
    "time_source",
    "agency",
    "category",
    "direction",
    "firms",
    "tickers",
    "title",
    "source",
    "confidence",
    "anticipated",
    "notes",
)

#: snake_case identifier: lower-case letter first, then lower-case letters, digits, underscores.
EVENT_ID_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
#: 24-hour ``HH:MM``.
TIME_PATTERN = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
# TICKER_PATTERN (a Yahoo Finance symbol) lives in crackdown.timeline.tickers, the one ticker
# check; it is re-exported here.
_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Columns that may not be empty (after stripping blanks).
_REQUIRED_NONEMPTY = ("event_id", "date", "category", "direction", "tickers", "title", "source",
                      "confidence")


# ---------------------------------------------------------------------------------------------
# element-wise predicates (shared by the pandera schema and the error hints)
# ---------------------------------------------------------------------------------------------
def _is_valid_date(text: str) -> bool:
    if not _DATE_PATTERN.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _is_valid_time(text: str) -> bool:
    return text == "" or TIME_PATTERN.fullmatch(text) is not None


def _split_tickers(text: str) -> list[str]:
    return text.split(";")


def _ticker_problem(text: str) -> str | None:
    """Return a description of what is wrong with a ``tickers`` cell, or ``None`` if valid."""
    if text.strip() == "":
        return "no ticker given"
    seen: set[str] = set()
    for item in _split_tickers(text):
        if item == "":
            return "empty item between ';' separators"
        problem = ticker_problem(item)
        if problem is not None:
            return problem
        if item in seen:
            return f"{item!r} is listed twice; list each ticker once"
        seen.add(item)
    return None


def _nonempty(text: str) -> bool:
    return text.strip() != ""


_HINTS: dict[str, str] = {
    "event_id": "use a unique snake_case id: lower-case letters, digits and single underscores, "
    "starting with a letter (e.g. alibaba_antitrust_fine)",
    "date": "write the Beijing calendar date as YYYY-MM-DD (e.g. 2021-04-10)",
    "time_beijing": "write the Beijing time as 24-hour HH:MM (e.g. 21:25), or leave it empty "
    "when unknown",
    "category": "use one of: " + ", ".join(CATEGORIES),
    "direction": "use one of: " + ", ".join(DIRECTIONS),
    "confidence": "use one of: " + ", ".join(CONFIDENCE),
    "tickers": "give at least one Yahoo symbol, ';'-separated, upper case, no spaces, each "
    "once (e.g. BABA;9988.HK or ^HSI)",
    "source": "give the URL (or seed reference) of the source that dates the event",
    "title": "give a short title of the action",
    "time_source": "say where the time comes from (URL or wire; add 'approximate' for a "
    "part-of-day time, 'upper bound' for the stamp of a later report), or empty the time",
    "anticipated": "write true (the date was known in advance, e.g. an entry into force) or "
    "false (a surprise)",
}


#: Element-wise checks of the schema: column -> (check name, predicate on the stripped cell).
_CELL_CHECKS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "event_id": ("snake_case", lambda v: EVENT_ID_PATTERN.fullmatch(v) is not None),
    "date": ("valid_date", _is_valid_date),
    "time_beijing": ("hh_mm_or_empty", _is_valid_time),
    "tickers": ("yahoo_tickers", lambda v: _ticker_problem(v) is None),
    "title": ("nonempty", _nonempty),
    "source": ("nonempty", _nonempty),
}
#: ``isin`` checks of the schema: column -> allowed values (``anticipated`` is lower-cased).
_ALLOWED: dict[str, tuple[str, ...]] = {
    "category": CATEGORIES,
    "direction": DIRECTIONS,
    "confidence": CONFIDENCE,
    "anticipated": ("true", "false"),
}


def _element(fn, name: str) -> pa.Check:
    import pandera.pandas as pa

    return pa.Check(fn, element_wise=True, name=name)


def _schema() -> pa.DataFrameSchema:
    """The pandera schema of the raw (all-string) event table.

    Checks :data:`_CELL_CHECKS` and :data:`_ALLOWED`; every column a non-null string, in
    :data:`COLUMNS` order, no others.
    """
    import pandera.pandas as pa

    text = {"dtype": str, "nullable": False, "coerce": False}
    columns = {}
    for column in COLUMNS:
        checks = []
        if column in _CELL_CHECKS:
            name, predicate = _CELL_CHECKS[column]
            checks.append(_element(predicate, name))
        if column in _ALLOWED:
            checks.append(pa.Check.isin(list(_ALLOWED[column])))
        columns[column] = pa.Column(checks=checks or None, **text)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="crackdown events table")


def _cells_pass(raw: pd.DataFrame) -> bool:
    """Whether every cell passes the schema's checks, in plain Python (no pandera).

    ``raw`` is built by :func:`_validate` with exactly the :data:`COLUMNS`, in order, every
    cell a string: the schema's dtype, null, strict and order conditions hold by construction,
    so the schema passes exactly when these cell checks do.
    """
    for column, (_name, predicate) in _CELL_CHECKS.items():
        if not all(predicate(v) for v in raw[column]):
            return False
    for column, allowed in _ALLOWED.items():
        if not raw[column].isin(allowed).all():
            return False
    return True


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _problem(path: Path, line: int, column: str | None, value: object, what: str) -> str:
    where = f"{path}, line {line}"
    if column is not None:
        where += f", column {column!r}"
    text = f"{where}: {what}"
    if value is not None:
        text += f" (value {value!r})"
    hint = _HINTS.get(column or "")
    if hint:
        text += f"; {hint}"
    return text


def _raise(path: Path, problems: list[tuple[int, str]]) -> None:
    problems = sorted(problems, key=lambda item: item[0])
    lines = [message for _, message in problems]
    if len(lines) > 1:
        lines.append(f"({len(lines)} problems in {path}; fix them and reload)")
    raise EventsFileError("\n".join(lines))


def _read_records(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Read the CSV with the csv module, returning header, records and each record's first line."""
    records: list[list[str]] = []
    starts: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise EventsFileError(
                    f"{path}, line 1: the file is empty; it needs the header "
                    f"{','.join(COLUMNS)} and one row per event"
                ) from None
            last_line = reader.line_num
            for record in reader:
                start = last_line + 1
                last_line = reader.line_num
                if not record or all(cell.strip() == "" for cell in record):
                    continue  # blank line
                records.append(record)
                starts.append(start)
    except csv.Error as exc:
        raise EventsFileError(
            f"{path}, line {reader.line_num}: malformed CSV ({exc}); quote fields that contain "
            f"commas, quotes or line breaks with double quotes"
        ) from None
    except UnicodeDecodeError as exc:
        raise EventsFileError(f"{path}: not valid UTF-8 ({exc}); save the file as UTF-8") from None
    return header, records, starts


def _check_header(path: Path, header: Sequence[str]) -> list[str]:
    names = [name.strip() for name in header]
    missing = [name for name in COLUMNS if name not in names]
    unknown = [name for name in names if name not in COLUMNS]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if duplicated:
        problems.append(f"duplicated column(s) {', '.join(duplicated)}")
    if problems:
        raise EventsFileError(
            f"{path}, line 1 (header): {'; '.join(problems)}; the header must be exactly "
            f"{','.join(COLUMNS)}"
        )
    return names


def _schema_problems(path: Path, raw: pd.DataFrame) -> list[tuple[int, str]]:
    """(line, message) of every failure of the pandera schema on ``raw`` (index = CSV line)."""
    import pandera.pandas as pa

    problems: list[tuple[int, str]] = []
    try:
        _schema().validate(raw, lazy=True)
    except pa.errors.SchemaErrors as exc:
        for _, case in exc.failure_cases.iterrows():
            column = case.get("column")
            index = case.get("index")
            value = case.get("failure_case")
            if column is None or pd.isna(index):
                problems.append((1, f"{path}: {case.get('check')} failed ({value!r})"))
                continue
            line = int(index)
            if column == "tickers":
                what = f"bad tickers: {_ticker_problem(str(value))}"
            elif str(value).strip() == "" and column in _REQUIRED_NONEMPTY:
                what = "is empty"
            else:
                what = f"invalid {column}"
            problems.append((line, _problem(path, line, column, value, what)))
    return problems


def _validate(path: Path) -> tuple[pd.DataFrame, list[int]]:
    header, records, starts = _read_records(path)
    names = _check_header(path, header)
    problems: list[tuple[int, str]] = []
    good_rows: list[list[str]] = []
    good_lines: list[int] = []
    for record, line in zip(records, starts):
        if len(record) != len(names):
            problems.append((line, _problem(
                path, line, None, None,
                f"has {len(record)} fields but the header has {len(names)}; quote fields that "
                f"contain commas with double quotes")))
            continue
        good_rows.append(record)
        good_lines.append(line)
    raw = pd.DataFrame(good_rows, columns=names, dtype=object)
    raw = raw[list(COLUMNS)]
    for column in raw.columns:
        raw[column] = raw[column].astype(object).map(lambda v: v.strip())
    raw = raw.astype(str)
    raw["anticipated"] = raw["anticipated"].str.lower()
    raw.index = pd.Index(good_lines, name="line")

    # pandera: one element-wise/isin check per column; failure cases carry the line as index.
    # Run (and imported) only when a plain-Python pass of the same checks finds a failure.
    if not _cells_pass(raw):
        problems.extend(_schema_problems(path, raw))

    # a time needs a source
    for line, time, source in zip(raw.index, raw["time_beijing"], raw["time_source"]):
        if time and not source:
            problems.append((line, _problem(
                path, line, "time_source", source,
                f"time_beijing {time} has no time_source")))

    # duplicate event ids name both lines
    seen: dict[str, int] = {}
    for line, event_id in zip(raw.index, raw["event_id"]):
        if event_id in seen:
            problems.append((line, _problem(
                path, line, "event_id", event_id,
                f"duplicate event_id, first used on line {seen[event_id]}")))
        elif event_id:
            seen[event_id] = line
    if problems:
        _raise(path, problems)
    return raw, good_lines


def _resolve_path(path: str | os.PathLike[str] | None) -> Path:
    resolved = config.events_file(path)
    if not resolved.is_file():
        origin = "given path" if path is not None else (
            "$CRACKDOWN_EVENTS_FILE" if os.environ.get("CRACKDOWN_EVENTS_FILE")
            else "default location")
        raise EventsFileError(
            f"events file {resolved} not found ({origin}); pass an existing CSV path, or set "
            f"CRACKDOWN_EVENTS_FILE to one, or run from the repository checkout that has events.csv"
        )
    return resolved


def load_events(
    path: str | os.PathLike[str] | None = None,
    *,
    categories: Iterable[str] | None = None,
    event_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read and validate the events table.

    Parameters
    ----------
    path
        CSV file to read; ``None`` uses :func:`crackdown.config.events_file` (explicit argument >
        ``$CRACKDOWN_EVENTS_FILE`` > ``<repo>/events.csv`` > bundled copy).
    categories
        Keep only events whose ``category`` is in this list. Unknown names raise
        :class:`~crackdown.errors.StudyConfigError` listing the valid ones.
    event_ids
        Keep only these events (in table order). Unknown ids raise
        :class:`~crackdown.errors.StudyConfigError` listing close matches.

    Returns
    -------
    pandas.DataFrame
        The CSV columns in file order (:data:`COLUMNS`) with ``date`` as ``datetime64[ns]``
        (naive; the Beijing calendar date), ``time_beijing`` as ``"HH:MM"`` or ``""``, ``tickers``
        the raw ``;``-string, ``anticipated`` as bool, plus ``ticker_list`` (``list[str]``),
        ``timing`` (:data:`TIMINGS`) and ``crackdown_action`` (False for
        :data:`NON_CRACKDOWN_CATEGORIES`). Rows are sorted by ``date``
        then ``event_id``; the index is a fresh ``RangeIndex``.

    Raises
    ------
    EventsFileError
        The file is missing, or any row/column is invalid. The message names the file, the CSV
        line (header = line 1), the column, the bad value and the fix; all problems are listed.
    """
    resolved = _resolve_path(path)
    raw, _ = _validate(resolved)
    frame = raw.reset_index(drop=True)
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d").astype("datetime64[ns]")
    frame["ticker_list"] = [_split_tickers(text) for text in frame["tickers"]]
    frame["anticipated"] = frame["anticipated"] == "true"
    frame["timing"] = [timing_of(t, s) for t, s in zip(frame["time_beijing"],
                                                        frame["time_source"])]
    frame["crackdown_action"] = ~frame["category"].isin(NON_CRACKDOWN_CATEGORIES)
    frame = frame.sort_values(["date", "event_id"], kind="stable").reset_index(drop=True)

    if categories is not None:
        wanted = [categories] if isinstance(categories, str) else list(categories)
        unknown = [name for name in wanted if name not in CATEGORIES]
        if unknown:
            raise StudyConfigError(
                f"unknown event categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(repr(u) for u in unknown)}; valid categories are: "
                f"{', '.join(CATEGORIES)}"
            )
        frame = frame[frame["category"].isin(wanted)].reset_index(drop=True)
    if event_ids is not None:
        wanted_ids = [event_ids] if isinstance(event_ids, str) else list(event_ids)
        known = set(raw["event_id"])
        missing = [event_id for event_id in wanted_ids if event_id not in known]
        if missing:
            raise StudyConfigError(_unknown_ids_message(missing, sorted(known), resolved))
        frame = frame[frame["event_id"].isin(wanted_ids)].reset_index(drop=True)
    return frame


def timing_of(time_beijing: str, time_source: str) -> str:
    """``known``, ``approximate`` or ``unknown`` (see the module docstring)."""
    if not str(time_beijing or "").strip():
        return "unknown"
    return "approximate" if "approximate" in str(time_source or "").lower() else "known"


def _unknown_ids_message(missing: Sequence[str], known: Sequence[str], where: object) -> str:
    parts = []
    for event_id in missing:
        close = difflib.get_close_matches(event_id, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        parts.append(f"{event_id!r}{hint}")
    return (f"unknown event id(s) {'; '.join(parts)} in {where}; list the valid ids with "
            f"`crackdown events`")


def get_event(event_id: str, events: pd.DataFrame | None = None) -> pd.Series:
    """Return one event row by id.

    Parameters
    ----------
    event_id
        The ``event_id`` to look up.
    events
        A table from :func:`load_events`; ``None`` loads the default table.

    Raises
    ------
    StudyConfigError
        The id is not in the table; the message lists close matches.
    """
    table = load_events() if events is None else events
    match = table.loc[table["event_id"] == event_id]
    if match.empty:
        raise StudyConfigError(
            _unknown_ids_message([event_id], sorted(table["event_id"]), "the events table"))
    return match.iloc[0]
