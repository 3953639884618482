"""Tests of crackdown.timeline.events: the real events table and the validator's error messages."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from crackdown.errors import EventsFileError, StudyConfigError
from crackdown.timeline import events as ev

REPO_EVENTS = Path(__file__).resolve().parents[1] / "events.csv"

HEADER = list(ev.COLUMNS)
GOOD_ROW = {
    "event_id": "good_event",
    "date": "2021-04-10",
    "time_beijing": "",
    "agency": "SAMR",
    "category": "antitrust",
    "direction": "tightening",
    "firms": "Alibaba",
    "tickers": "BABA;9988.HK",
    "title": "A good row",
    "source": "https://example.org/a",
    "confidence": "high",
    "anticipated": "false",
    "notes": "",
}


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    header = HEADER if header is None else header
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(name, "") for name in header])
    return path


def row(**changes: str) -> dict[str, str]:
    out = dict(GOOD_ROW)
    out.update(changes)
    return out


# ----------------------------------------------------------------------------- the real table
@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return ev.load_events(REPO_EVENTS)


def test_real_table_validates_and_is_large_enough(real):
    assert len(real) >= 80
    assert list(real.columns) == HEADER + ["ticker_list", "timing", "crackdown_action"]
    assert real["event_id"].is_unique
    assert str(real["date"].dtype) == "datetime64[ns]"
    assert isinstance(real.index, pd.RangeIndex)
    # ordered by date then event_id
    keys = list(zip(real["date"], real["event_id"]))
    assert keys == sorted(keys)
    # the table spans the crackdown and its easing
    assert real["date"].min() <= pd.Timestamp("2020-11-03")
    assert real["date"].max() >= pd.Timestamp("2023-07-07")
    assert set(real["direction"]) == {"tightening", "easing"}


def test_every_real_event_has_a_source_url_or_seed(real):
    for _, event in real.iterrows():
        assert re.search(r"https?://|seed:\d{3}_[0-9a-f]{16}", event["source"]), event["event_id"]


def test_real_time_and_tickers_are_well_formed(real):
    for _, event in real.iterrows():
        assert event["time_beijing"] == "" or re.fullmatch(r"\d\d:\d\d", event["time_beijing"])
        assert event["ticker_list"] == event["tickers"].split(";")
        assert len(event["ticker_list"]) >= 1


def test_tickers_without_prices_are_flagged_in_notes(real, prices_dir):
    """Every ticker without a price file must be explained in the row's notes."""
    available = {p.stem for p in prices_dir.glob("*.csv")}
    for _, event in real.iterrows():
        missing = [t for t in event["ticker_list"] if t not in available]
        if missing:
            assert "no prices" in event["notes"].lower(), (event["event_id"], missing)


@pytest.mark.parametrize(
    ("event_id", "date", "weekday", "time", "timing"),
    [
        ("alibaba_antitrust_fine", "2021-04-10", 5, "10:36", "known"),  # Saturday, Xinhua stamp
        ("didi_cybersecurity_review", "2021-07-02", 4, "19:00", "approximate"),  # Fri evening
        ("didi_app_removal", "2021-07-04", 6, "19:00", "approximate"),  # Sunday evening
        ("ant_ipo_suspended", "2020-11-03", 1, "21:25", "known"),  # Reuters 18:55 IST
        ("liu_he_fsdc_market_support", "2022-03-16", 2, "14:00", "approximate"),  # HK afternoon
        ("education_double_reduction", "2021-07-23", 4, "13:00", "approximate"),  # leak, HK pm
        # first public information: the Reuters leak in the HK session, not the 20:10 release
        ("ant_tenpay_fines", "2023-07-07", 4, "11:00", "approximate"),
        # Reuters reported the block on 07-05; SAMR's decision came on Saturday 07-10
        ("samr_blocks_huya_douyu", "2021-07-05", 0, "", "unknown"),
        ("data_security_law_in_force", "2021-09-01", 2, "", "unknown"),
    ],
)
def test_key_beijing_dates(real, event_id, date, weekday, time, timing):
    event = ev.get_event(event_id, real)
    assert event["date"] == pd.Timestamp(date)
    assert event["date"].weekday() == weekday
    assert event["time_beijing"] == time
    assert event["timing"] == timing
    assert bool(event["time_source"]) or not time  # every time has a source


def test_real_table_flags_anticipated_dates_and_market_confounds(real):
    in_force = real.loc[real["event_id"].str.endswith("_in_force")]
    assert len(in_force) >= 4 and in_force["anticipated"].all()
    assert not real.loc[real["event_id"] == "alibaba_antitrust_probe", "anticipated"].item()
    confounds = real.loc[real["category"] == "market_confound"]
    assert len(confounds) >= 5 and not confounds["crackdown_action"].any()
    assert real.loc[real["category"] != "market_confound", "crackdown_action"].all()
    assert set(real["timing"]) == set(ev.TIMINGS)


def test_time_without_source_and_bad_anticipated_name_the_line(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        row(event_id="first", time_beijing="09:30"),
        row(event_id="second", anticipated="maybe"),
        row(event_id="third", time_beijing="20:00", time_source="approximate: evening (wire)",
            anticipated="TRUE"),
    ])
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    text = str(info.value)
    assert "line 2, column 'time_source': time_beijing 09:30 has no time_source" in text
    assert "line 3, column 'anticipated'" in text and "'maybe'" in text
    assert "line 4" not in text  # a sourced time and upper-case TRUE are fine
    ok = ev.load_events(write_csv(tmp_path / "ok.csv", [
        row(event_id="third", time_beijing="20:00", time_source="approximate: evening (wire)",
            anticipated="TRUE"),
        row(event_id="fourth", time_beijing="20:00", time_source="https://e.org (stamp)",
            category="market_confound")]))
    ok = ok.set_index("event_id").loc[["third", "fourth"]]
    assert ok["timing"].tolist() == ["approximate", "known"]
    assert ok["anticipated"].tolist() == [True, False]
    assert ok["crackdown_action"].tolist() == [True, False]


# ----------------------------------------------------------------------------- bad rows
BAD_CASES = [
    # (column, bad value, fragment expected in the message)
    ("date", "2021/04/10", "invalid date"),
    ("date", "2021-02-30", "invalid date"),
    ("date", "", "is empty"),
    ("time_beijing", "9:5", "invalid time_beijing"),
    ("time_beijing", "25:00", "invalid time_beijing"),
    ("category", "antitrusts", "invalid category"),
    ("direction", "loosening", "invalid direction"),
    ("confidence", "certain", "invalid confidence"),
    ("event_id", "Alibaba-Fine", "invalid event_id"),
    ("event_id", "double__underscore", "invalid event_id"),
    ("tickers", "BABA 9988.HK", "not a Yahoo symbol"),
    ("tickers", "baba", "not a Yahoo symbol"),
    ("tickers", "BABA;;JD", "empty item"),
    ("tickers", "", "no ticker given"),
    ("source", "", "is empty"),
]


@pytest.mark.parametrize(("column", "value", "fragment"), BAD_CASES)
def test_bad_cell_is_reported_with_file_line_column_and_value(tmp_path, column, value, fragment):
    path = write_csv(tmp_path / "events_bad.csv",
                     [row(), row(**{"event_id": "second_event", column: value})])
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    first = str(info.value).splitlines()[0]
    assert str(path) in first
    assert "line 3" in first  # header = 1, good row = 2, bad row = 3
    assert f"column '{column}'" in first
    assert repr(value) in first
    assert fragment in first


def test_line_numbers_count_physical_lines_of_quoted_multiline_fields(tmp_path):
    path = write_csv(tmp_path / "multi.csv", [
        row(notes="first line\nsecond line\nthird line"),  # occupies lines 2-4
        row(event_id="later_event", category="nonsense"),  # starts on line 5
    ])
    with pytest.raises(EventsFileError, match=r"line 5, column 'category'"):
        ev.load_events(path)


def test_duplicate_event_id_names_both_lines(tmp_path):
    path = write_csv(tmp_path / "dup.csv", [row(), row(event_id="other"), row()])
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    message = str(info.value)
    assert "line 4, column 'event_id'" in message
    assert "first used on line 2" in message
    assert "'good_event'" in message


def test_all_problems_are_listed_one_per_line_sorted(tmp_path):
    path = write_csv(tmp_path / "many.csv", [
        row(),
        row(event_id="b_event", direction="up"),
        row(event_id="c_event", date="2021-13-01", confidence="sure"),
    ])
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    lines = str(info.value).splitlines()
    assert "line 3, column 'direction'" in lines[0]
    assert any("line 4, column 'date'" in line for line in lines)
    assert any("line 4, column 'confidence'" in line for line in lines)
    assert "3 problems" in lines[-1]


def test_missing_required_column(tmp_path):
    header = [name for name in HEADER if name != "source"]
    path = write_csv(tmp_path / "nosource.csv", [row()], header=header)
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    message = str(info.value)
    assert str(path) in message and "line 1" in message and "source" in message


def test_wrong_field_count(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(",".join(HEADER) + "\n" + "a_event,2021-01-01,,SAMR\n", encoding="utf-8")
    with pytest.raises(EventsFileError, match=r"line 2: has 4 fields but the header has 14"):
        ev.load_events(path)


def test_missing_file_names_path_and_environment_variable(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(EventsFileError) as info:
        ev.load_events(path)
    assert str(path) in str(info.value)
    assert "CRACKDOWN_EVENTS_FILE" in str(info.value)


def test_environment_variable_is_used(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "env.csv", [row()])
    monkeypatch.setenv("CRACKDOWN_EVENTS_FILE", str(path))
    assert list(ev.load_events()["event_id"]) == ["good_event"]


@pytest.mark.parametrize("ticker", ["BABA", "9988.HK", "^HSI", "BRK-B", "600519.SS", "CNY=X"])
def test_valid_yahoo_symbols_are_accepted(tmp_path, ticker):
    path = write_csv(tmp_path / "ok.csv", [row(tickers=f"{ticker};JD", time_beijing="09:30",
                                                 time_source="https://e.org")])
    loaded = ev.load_events(path)
    assert loaded.loc[0, "ticker_list"] == [ticker, "JD"]
    assert loaded.loc[0, "time_beijing"] == "09:30"


# ----------------------------------------------------------------------------- filters
def test_category_filter(real):
    education = ev.load_events(REPO_EVENTS, categories=["education"])
    assert len(education) == (real["category"] == "education").sum() >= 1
    assert set(education["category"]) == {"education"}
    two = ev.load_events(REPO_EVENTS, categories=("antitrust", "fintech"))
    assert len(two) == real["category"].isin(["antitrust", "fintech"]).sum()


def test_unknown_category_lists_valid_ones():
    with pytest.raises(StudyConfigError) as info:
        ev.load_events(REPO_EVENTS, categories=["antitrust", "gaming"])
    message = str(info.value)
    assert "'gaming'" in message
    for name in ev.CATEGORIES:
        assert name in message


def test_event_id_filter_and_unknown_id(real):
    chosen = ["didi_app_removal", "alibaba_antitrust_fine"]
    sub = ev.load_events(REPO_EVENTS, event_ids=chosen)
    assert sorted(sub["event_id"]) == sorted(chosen)
    assert list(sub["date"]) == sorted(sub["date"])
    with pytest.raises(StudyConfigError, match="alibaba_antitrust_fine"):
        ev.load_events(REPO_EVENTS, event_ids=["alibaba_antitrust_fin"])


def test_get_event_unknown_lists_close_matches(real):
    with pytest.raises(StudyConfigError, match="didi_app_removal"):
        ev.get_event("didi_app_remova", real)
