"""Issue #16, class 6: one ticker check (crackdown.timeline.tickers) wherever tickers enter.

Properties (hypothesis): the check accepts exactly the events file's pattern, normalisation is
idempotent and ``str.upper`` of the input, and nothing it accepts can name a path outside the
cache folder. Then every entry point: the CLI's ``--tickers`` (study, cross-section, fetch,
data check, spillovers' ``--rivals``), the events file's ``tickers`` column,
``EventStudy.from_events(tickers=...)``, ``load_prices`` and ``cache_paths``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from hypothesis import given, settings
from hypothesis import strategies as st

from crackdown.cli import main
from crackdown.errors import PriceDataError, StudyConfigError
from crackdown.marketdata import cache as cache_module
from crackdown.marketdata import prices as P
from crackdown.timeline import events as events_module
from crackdown.timeline.tickers import (
    TICKER_PATTERN,
    TickerError,
    check_ticker,
    check_tickers,
    is_ticker,
    parse_tickers_option,
    ticker_problem,
)

#: The pattern written out independently of the module (the README's definition).
_INDEPENDENT = re.compile(r"\A\^?[A-Z0-9]+([.=-][A-Z0-9]+)*\Z")  # \Z: no trailing newline

_PART = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=5)
_VALID = st.builds(
    lambda caret, first, rest: ("^" if caret else "") + first + "".join(s + p for s, p in rest),
    st.booleans(), _PART, st.lists(st.tuples(st.sampled_from(".-="), _PART), max_size=3))
_ANY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_TICKERY = st.text(alphabet="abcXYZ019.-=^/\\ _~", max_size=10)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_CACHE_DIR", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- properties
@settings(max_examples=200, deadline=None)
@given(_VALID)
def test_every_symbol_of_the_grammar_is_accepted_unchanged(symbol):
    assert is_ticker(symbol)
    assert check_ticker(symbol, "--tickers") == symbol
    assert check_ticker(symbol.lower(), "--tickers") == symbol  # baba -> BABA
    assert ticker_problem(symbol) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, _TICKERY))
def test_check_agrees_with_the_independent_pattern_and_never_crashes(text):
    expected = _INDEPENDENT.match(text) is not None and text.isascii() and len(text) <= 32
    assert is_ticker(text) == expected
    if expected:
        assert check_ticker(text, "x", normalize=False) == text
    else:
        with pytest.raises(TickerError) as info:
            check_ticker(text, "SOURCE-NAME", normalize=False)
        message = str(info.value)
        assert message.startswith("SOURCE-NAME: ") and "\n" not in message.strip()


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, _TICKERY))
def test_normalised_tickers_are_idempotent_and_safe_file_names(text):
    try:
        name = check_ticker(text, "--tickers")
    except TickerError:
        return
    assert name == text.strip().upper()
    assert check_ticker(name, "--tickers") == name
    # a safe file name: one path component, no parent reference, not hidden
    assert Path(f"{name}.csv").name == f"{name}.csv"
    assert "/" not in name and "\\" not in name and ".." not in name
    assert not name.startswith(".")
    assert TICKER_PATTERN.fullmatch(name)


@settings(max_examples=150, deadline=None)
@given(st.lists(_VALID, min_size=1, max_size=6))
def test_duplicates_raise_or_drop_judged_after_normalisation(symbols):
    unique = list(dict.fromkeys(symbols))
    assert check_tickers(symbols, "t", duplicates="drop") == unique
    mixed = [s.lower() if i % 2 else s for i, s in enumerate(symbols)]
    if len(unique) < len(symbols):
        with pytest.raises(TickerError, match=r"^t: ticker .* is given twice"):
            check_tickers(mixed, "t")
    else:
        assert check_tickers(mixed, "t") == symbols


@settings(max_examples=150, deadline=None)
@given(st.lists(_VALID, min_size=1, max_size=5))
def test_cli_option_parser_round_trips(symbols):
    unique = list(dict.fromkeys(symbols))
    text = " , ".join(s.lower() for s in unique)
    assert parse_tickers_option(text, "--tickers") == unique


def test_examples_and_messages():
    assert check_tickers("9988.hk", "x") == ["9988.HK"]
    assert check_tickers(["baba", " ^hsi ", "brk-b"], "x") == ["BABA", "^HSI", "BRK-B"]
    with pytest.raises(TickerError, match=r"--tickers: '\.\./\.\./X' is not a Yahoo symbol "
                                          r"\(it looks like a path"):
        check_ticker("../../X", "--tickers")
    with pytest.raises(TickerError, match=r"did you mean 'BABA'\?"):
        check_ticker("baba", "events.csv, line 3", normalize=False)
    with pytest.raises(TickerError, match="non-ASCII"):
        check_ticker("ß", "x")  # "ß".upper() == "SS" must not sneak through
    with pytest.raises(TickerError, match="no ticker given"):
        check_tickers([], "tickers=")
    with pytest.raises(TickerError, match="not a string"):
        check_tickers([700], "tickers=")
    with pytest.raises(TickerError, match=r"--rivals 'JD,,BIDU' has an empty item"):
        parse_tickers_option("JD,,BIDU", "--rivals")
    assert parse_tickers_option(None) == []
    # one class for both worlds: a study setting and a price-data problem
    assert issubclass(TickerError, StudyConfigError) and issubclass(TickerError, PriceDataError)


# ----------------------------------------------------------------------------- entry points
def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"crackdown {command}: error: "), err
    return err


@pytest.mark.parametrize("argv, command, needle", [
    (["fetch", "--tickers", "../../X"], "fetch", r"--tickers: '\.\./\.\./X' is not a Yahoo"),
    (["fetch", "--tickers", "BABA,baba"], "fetch", "--tickers: ticker BABA is given twice"),
    (["data", "check", "--tickers", "BABA,BABA"], "data", "--tickers: ticker BABA is given twice"),
    (["data", "check", "--tickers", "A/B"], "data", "--tickers: 'A/B' is not a Yahoo symbol"),
    (["study", "alibaba_antitrust_fine", "--tickers", "BABA,BABA"], "study",
     "--tickers: ticker BABA is given twice"),
    (["study", "alibaba_antitrust_fine", "--tickers", "BA BA"], "study",
     "--tickers: 'BA BA' is not a Yahoo symbol"),
    (["cross-section", "--tickers", "JD,JD"], "cross-section",
     "--tickers: ticker JD is given twice"),
    (["spillovers", "alibaba_antitrust_fine", "--rivals", "JD,..\\x"], "spillovers",
     r"--rivals: '\.\.\\\\x' is not a Yahoo symbol"),
])
def test_cli_ticker_options_give_one_line_naming_the_option(argv, command, needle, capsys,
                                                            monkeypatch, tmp_path):
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pytest.fail("downloaded"))
    assert main(argv) == 2
    assert re.search(needle, _one_line(capsys, command))
    # nothing was written anywhere near the cache (path traversal impossible)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))
    assert not (tmp_path.parent / "X.csv").exists()


def test_cli_lower_case_tickers_are_normalised(prices_dir, capsys):
    rc = main(["data", "check", "--tickers", "baba,0700.hk", "--start", "2023-08-01",
               "--end", "2023-08-31", "--prices-dir", str(prices_dir), "--format", "csv",
               "--offline"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "BABA" in out and "0700.HK" in out and "baba" not in out


def test_fetch_normalises_lower_case_before_caching(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CRACKDOWN_OFFLINE", raising=False)
    seen = []
    dates = pd.DatetimeIndex(["2021-01-04", "2021-01-05"], name="Date")
    frame = pd.DataFrame({"Close": [1.0, 2.0], "Volume": [5.0, 6.0]}, index=dates)

    def fake(ticker, **kwargs):
        seen.append(ticker)
        return frame

    monkeypatch.setattr(yfinance, "download", fake)
    assert main(["fetch", "--tickers", "9988.hk", "--cache-dir", str(tmp_path / "c")]) == 0
    assert seen == ["9988.HK"]
    assert sorted(p.name for p in (tmp_path / "c" / "prices").iterdir()) == [
        "9988.HK.csv", "9988.HK.json"]


def _write_events(path: Path, tickers: str) -> Path:
    header = ",".join(events_module.COLUMNS)
    row = {c: "" for c in events_module.COLUMNS}
    row.update(event_id="ev_one", date="2021-04-12", category="antitrust",
               direction="tightening", tickers=tickers, title="t", source="s",
               confidence="high", anticipated="false")
    path.write_text(header + "\n" + ",".join(row[c] for c in events_module.COLUMNS) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("tickers, needle", [
    ("BABA;BABA", r"line 2, column 'tickers': bad tickers: 'BABA' is listed twice"),
    ("BABA;9988.hk", (r"line 2, column 'tickers': bad tickers: '9988\.hk' is not a Yahoo "
                     r"symbol \(did you mean '9988\.HK'\?\)")),
    ("../../X", r"line 2, column 'tickers': bad tickers: '\.\./\.\./X' is not a Yahoo symbol"),
])
def test_events_file_ticker_column_names_file_and_line(tmp_path, tickers, needle):
    path = _write_events(tmp_path / "events.csv", tickers)
    with pytest.raises(events_module.EventsFileError) as info:
        events_module.load_events(path)
    assert re.search(needle, str(info.value)), str(info.value)
    assert str(path) in str(info.value)


def test_events_file_duplicate_is_one_line_in_the_cli(tmp_path, capsys):
    path = _write_events(tmp_path / "events.csv", "BABA;BABA")
    assert main(["study", "ev_one", "--events-file", str(path)]) == 2
    err = _one_line(capsys, "study")
    assert f"{path}, line 2" in err and "listed twice" in err


def test_events_pattern_is_the_check_pattern():
    assert events_module.TICKER_PATTERN is TICKER_PATTERN


def test_from_events_checks_tickers(prices_dir):
    import crackdown as cd

    ev = cd.load_events(event_ids=["alibaba_antitrust_fine"])
    with pytest.raises(TickerError, match=r"^tickers=: ticker BABA is given twice"):
        cd.EventStudy.from_events(ev, tickers=["BABA", "baba"], prices_dir=prices_dir)
    with pytest.raises(TickerError, match=r"^tickers=: '\.\./x' is not a Yahoo symbol"):
        cd.EventStudy.from_events(ev, tickers=["../x"], prices_dir=prices_dir)
    # a hand-made events frame with an own duplicate: named by its event
    own = ev.copy()
    own["ticker_list"] = [["9988.HK", "9988.HK"]]
    with pytest.raises(TickerError, match=r"^event alibaba_antitrust_fine: tickers: ticker "
                                          r"9988\.HK is given twice"):
        cd.EventStudy.from_events(own, prices_dir=prices_dir)
    # lower case is normalised: the same firm-events as the upper-case call
    lower = cd.EventStudy.from_events(ev, tickers=["baba"], prices_dir=prices_dir,
                                      window=(-1, 1))
    upper = cd.EventStudy.from_events(ev, tickers=["BABA"], prices_dir=prices_dir,
                                      window=(-1, 1))
    pd.testing.assert_frame_equal(lower.firm_events, upper.firm_events)


def test_load_prices_and_cache_paths_refuse_unsafe_names(tmp_path):
    with pytest.raises(TickerError, match=r"'\.\./\.\./etc/passwd' is not a Yahoo symbol"):
        P.load_prices("../../etc/passwd", prices_dir=tmp_path, offline=True)
    with pytest.raises(TickerError, match="empty ticker"):
        P.load_prices(["BABA", " "], prices_dir=tmp_path, offline=True)
    # load_prices keeps its documented de-duplication (after normalisation)
    assert P.normalize_tickers(["baba", "BABA", "9988.hk"]) == ["BABA", "9988.HK"]
    for bad in ("../X", "..", "a", "X/Y", "", ".X", "BABA\n", "X\\..\\Y"):
        with pytest.raises(TickerError, match="not a valid ticker for a cache file name"):
            cache_module.cache_paths(bad, tmp_path)
    csv_path, _meta_path = cache_module.cache_paths("9988.HK", tmp_path)
    assert csv_path.parent == tmp_path / "prices" and csv_path.name == "9988.HK.csv"
    # the folder file lookup stays case-insensitive: baba.csv serves BABA
    folder = tmp_path / "px"
    folder.mkdir()
    (folder / "baba.csv").write_text("Date,Close\n2021-01-04,1.5\n2021-01-05,1.6\n")
    long = P.load_prices("baba", prices_dir=folder, offline=True)
    assert long["ticker"].unique().tolist() == ["BABA"]
    np.testing.assert_array_equal(long["price"], [1.5, 1.6])


def test_data_check_lists_folder_files_that_are_not_tickers(tmp_path, capsys):
    folder = tmp_path / "px"
    folder.mkdir()
    (folder / "AAA.csv").write_text("Date,Close\n2021-01-04,1.5\n2021-01-05,1.6\n")
    (folder / "my notes.csv").write_text("Date,Close\n2021-01-04,1.5\n")
    rc = main(["data", "check", "--prices-dir", str(folder), "--offline", "--format", "csv"])
    assert rc == 0
    out = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out), dtype=str,
                      keep_default_na=False).set_index("ticker")
    assert "AAA" in out.index
    assert "my notes" in out.index  # reported, not dropped silently
    assert "is not a Yahoo symbol" in out.loc["my notes", "status"]
