"""Bad input at the command line: one line naming the culprit, exit 2, never a traceback.

Classes of issue #16 handled in the CLI layer: window arithmetic (bounds, non-integer offsets,
argparse's own errors in the project's format) and misleading hints / exit codes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crackdown.cli import main
from crackdown.cli.study_cmd import parse_window
from crackdown.errors import StudyConfigError
from crackdown.estimation.inputs import MAX_WINDOW_OFFSET, check_window


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("argv, culprit", [
    (["--window", "-1.5:1"], "--window '-1.5:1' is not LO:HI with integer"),
    (["--window", "0:100000"], "--window 0:100000 reaches beyond 2500 sessions"),
    (["--estimation", "-100000:-11"], "--estimation -100000:-11 reaches beyond"),
    (["--window", "2:1"], "--window 2:1 ends before it starts"),
    (["--what", "nope"], "argument --what: invalid choice: 'nope'"),
    (["--placebo", "9"], "--placebo 9 needs --what tests"),
    (["--what", "tests", "--placebo", "-3"], "--placebo -3: give a number of draws >= 0"),
    (["--placebo", "x"], "argument --placebo: invalid int value: 'x'"),
])
def test_study_option_errors_are_one_line(capsys, argv, culprit):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["study", "alibaba_antitrust_probe", *argv]))
    assert exit_info.value.code == 2
    line = _one_line(capsys)
    assert line.startswith("crackdown study: error: ") and culprit in line


def test_unknown_command_and_missing_argument_are_one_line(capsys):
    for argv, culprit in ((["nosuch"], "invalid choice: 'nosuch'"),
                          (["study"], "the following arguments are required: EVENT")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert culprit in _one_line(capsys)


def test_no_computable_firm_event_exits_2_naming_why(prices_without, capsys):
    # the benchmarks have prices, the event's listings none (offline, see conftest)
    folder = prices_without("BABA", "9988.HK")
    assert main(["study", "alibaba_antitrust_probe", "--prices-dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = [e for e in err if "error:" in e]
    assert len(line) == 1 and "no listing of alibaba_antitrust_probe has abnormal returns" in (
        line[0]) and "BABA: no_price_data" in line[0]
    # the outcome log itself is still available, exit 0
    assert main(["study", "alibaba_antitrust_probe", "--prices-dir", str(folder),
                 "--what", "outcomes", "--format", "csv"]) == 0
    assert "no_price_data" in capsys.readouterr().out


def test_placebo_with_too_few_dates_says_so_on_stderr(prices_dir, capsys):
    assert main(["study", "alibaba_antitrust_probe", "--what", "tests", "--placebo", "5000",
                 "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert "placebo_portfolio_t: not computed: only" in err and "asked 5000" in err


def test_missing_prices_name_every_ticker(tmp_path):
    from crackdown.errors import PriceDataError
    from crackdown.marketdata.prices import load_prices

    with pytest.raises(PriceDataError) as info:
        load_prices(["SPY", "BABA", "JD"], "2021-01-01", "2021-02-01", prices_dir=tmp_path)
    text = str(info.value)
    assert "no prices for 3 tickers (SPY, BABA, JD)" in text
    assert "--start/--end or" not in text  # no hint about options a study does not have


# ------------------------------------------------------------------ property-based: windows
@given(st.integers(-MAX_WINDOW_OFFSET, MAX_WINDOW_OFFSET),
       st.integers(-MAX_WINDOW_OFFSET, MAX_WINDOW_OFFSET))
def test_parse_window_round_trips_every_valid_window(lo, hi):
    lo, hi = min(lo, hi), max(lo, hi)
    assert parse_window(f"{lo}:{hi}", "--window") == (lo, hi)
    assert parse_window(f" {lo} : {hi} ", "--window") == (lo, hi)
    assert check_window((lo, hi), "event window") == (lo, hi)


@settings(max_examples=300)
@given(st.text(max_size=20))
def test_parse_window_never_raises_anything_but_a_named_error(text):
    try:
        lo, hi = parse_window(text, "--window")
    except StudyConfigError as exc:
        assert "--window" in str(exc)
    else:
        assert lo <= hi and max(abs(lo), abs(hi)) <= MAX_WINDOW_OFFSET


@given(st.integers(), st.integers())
def test_check_window_bounds_any_integers(lo, hi):
    try:
        out = check_window((lo, hi), "estimation window")
    except StudyConfigError as exc:
        assert "estimation window" in str(exc)
        assert hi < lo or max(abs(lo), abs(hi)) > MAX_WINDOW_OFFSET
    else:
        assert out == (lo, hi)
