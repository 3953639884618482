"""Tests of ``crackdown events`` (crackdown/cli/events_cmd.py).

Expected day-0 values are reasoned by hand (see tests/test_calendars.py for the time-zone facts).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crackdown.cli import main

HEADER = (
    "event_id,date,time_beijing,time_source,agency,category,direction,firms,tickers,title,source,"
    "confidence,anticipated,notes"
)
ROWS = [
    # Saturday, no time -> Monday 2021-04-12 on both exchanges.
    (
        "alibaba_fine,2021-04-10,,SAMR,antitrust,tightening,Alibaba,BABA;9988.HK,"
        "Alibaba fined 18.2bn yuan,https://example.org/samr,high,"
    ),
    # 21:25 Beijing = 08:25 EST 3 Nov -> XNYS 2020-11-03; after the HK close -> XHKG 2020-11-04.
    (
        "ant_ipo_suspended,2020-11-03,21:25,SSE,fintech,tightening,Ant Group,BABA;9988.HK,"
        "Ant IPO suspended,https://example.org/sse,high,evening announcement"
    ),
    # Sunday 4 Jul 2021 -> XNYS Tue 6 Jul (5 Jul holiday), XHKG Mon 5 Jul.
    (
        "didi_app_removal,2021-07-04,,CAC,data_security,tightening,DiDi,DIDI,"
        "DiDi app removed from stores,https://example.org/cac,high,"
    ),
]


def _full_row(row: str) -> str:
    """Add time_source (a source when a time is given) and anticipated=false to a short row."""
    fields = next(csv.reader([row]))
    if len(fields) != 12:
        return row  # a deliberately malformed row stays as it is
    fields.insert(3, "https://example.org/time" if fields[2] else "")
    fields.insert(12, "false")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def write_events(tmp_path: Path, rows=ROWS, name="events.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *map(_full_row, rows)]) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def events_file(tmp_path) -> Path:
    return write_events(tmp_path)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["events", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_events_sorted_by_date(capsys, events_file):
    code, out, err = run_cli(capsys, "--events-file", str(events_file))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["event_id", "date", "time_beijing"]
    # load_events orders by date: 2020-11-03, 2021-04-10, 2021-07-04.
    ids = [line.split()[0] for line in lines[1:4]]
    assert ids == ["ant_ipo_suspended", "alibaba_fine", "didi_app_removal"]
    assert lines[-1].startswith("3 events in ") and "(file is valid)" in lines[-1]


def test_csv_with_day0(capsys, events_file):
    code, out, err = run_cli(
        capsys, "--events-file", str(events_file), "--day0", "--format", "csv"
    )
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
    cols = list(frame.columns)
    assert cols[cols.index("day0_XNYS"):] == ["day0_XNYS", "day0_XHKG", "time_assumed",
                                              "day0_uncertain", "cluster_id", "cluster_size"]
    assert {"time_source", "timing", "anticipated"} <= set(cols)
    timing = frame.set_index("event_id")["timing"]
    assert timing.to_dict() == {"alibaba_fine": "unknown", "ant_ipo_suspended": "known",
                                "didi_app_removal": "unknown"}
    # weekend releases: both possible sessions are Monday's, so nothing is uncertain
    assert set(frame["day0_uncertain"]) == {"False"}
    assert (frame["cluster_id"] == frame["event_id"]).all()
    # csv prints every file column (but not the derived ticker_list)
    assert "notes" in frame.columns and "ticker_list" not in frame.columns
    got = frame.set_index("event_id")[["date", "day0_XNYS", "day0_XHKG", "time_assumed"]]
    assert got.loc["alibaba_fine"].tolist() == ["2021-04-10", "2021-04-12", "2021-04-12", "True"]
    assert got.loc["ant_ipo_suspended"].tolist() == [
        "2020-11-03", "2020-11-03", "2020-11-04", "False"]
    assert got.loc["didi_app_removal"].tolist() == [
        "2021-07-04", "2021-07-06", "2021-07-05", "True"]


def test_json_with_exchanges_implies_day0(capsys, events_file):
    code, out, err = run_cli(
        capsys, "--events-file", str(events_file), "--exchanges", "XSHG,XNYS",
        "--format", "json", "--category", "fintech",
    )
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == 1
    rec = records[0]
    # 21:25 Beijing is after the 15:00 Shanghai close on Tue 3 Nov 2020 -> Wed 4 Nov.
    assert rec["event_id"] == "ant_ipo_suspended"
    assert rec["day0_XSHG"] == "2020-11-04"
    assert rec["day0_XNYS"] == "2020-11-03"
    assert rec["time_assumed"] is False
    assert "day0_XHKG" not in rec


def test_category_filter_several(capsys, events_file):
    code, out, _ = run_cli(
        capsys, "--events-file", str(events_file), "--category", "antitrust,data_security",
        "--format", "csv",
    )
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert sorted(frame["event_id"]) == ["alibaba_fine", "didi_app_removal"]


def test_empty_selection_is_reported(capsys, events_file):
    code, out, _ = run_cli(capsys, "--events-file", str(events_file), "--category", "labor")
    assert code == 0
    assert out.strip().startswith("no events in categories labor")


def test_unknown_category_is_one_line_error(capsys, events_file):
    code, out, err = run_cli(capsys, "--events-file", str(events_file), "--category", "taxes")
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "'taxes'" in err and "antitrust" in err


def test_unknown_exchange_is_one_line_error(capsys, events_file):
    code, _, err = run_cli(capsys, "--events-file", str(events_file), "--exchanges", "XLON")
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert "XLON" in err and "XNYS" in err


def test_empty_list_item_is_error(capsys, events_file):
    code, _, err = run_cli(capsys, "--events-file", str(events_file), "--category", "labor,")
    assert code != 0 and "--category" in err


def test_bad_row_is_one_line_error_naming_line_and_value(capsys, tmp_path):
    bad = ROWS[:1] + [ROWS[1].replace("21:25", "25:61")]
    path = write_events(tmp_path, bad)
    code, out, err = run_cli(capsys, "--events-file", str(path))
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "line 3" in err and "time_beijing" in err and "25:61" in err


def test_missing_file_is_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--events-file", str(tmp_path / "nope.csv"))
    assert code != 0
    assert "nope.csv" in err and "not found" in err


def test_out_of_range_event_names_event(capsys, tmp_path):
    rows = [ROWS[0].replace("2021-04-10", "2031-04-10")]
    path = write_events(tmp_path, rows)
    code, _, err = run_cli(capsys, "--events-file", str(path), "--day0")
    assert code != 0
    assert "alibaba_fine" in err and "2031-04-10" in err


def test_console_script_bad_file_exit_code_and_single_line(tmp_path):
    path = write_events(tmp_path, [ROWS[0].replace("antitrust", "antitrustt")])
    exe = Path(sys.executable).with_name("crackdown")
    if not exe.exists():
        pytest.skip(f"console script {exe} not installed")
    proc = subprocess.run(
        [str(exe), "events", "--events-file", str(path)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    err_lines = proc.stderr.strip().splitlines()
    assert len(err_lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert err_lines[0].startswith("crackdown events: error:")
    assert "line 2" in err_lines[0] and "antitrustt" in err_lines[0]


def test_table_shortens_long_cells_but_csv_does_not(capsys, tmp_path):
    tickers = "BABA;9988.HK;TCEHY;0700.HK;JD;9618.HK;3690.HK;PDD;BIDU"  # 53 characters
    path = write_events(tmp_path, [ROWS[0].replace("BABA;9988.HK", tickers)])
    _, table_out, _ = run_cli(capsys, "--events-file", str(path))
    assert tickers not in table_out
    assert tickers[:33] + "..." in table_out
    _, csv_out, _ = run_cli(capsys, "--events-file", str(path), "--format", "csv")
    assert pd.read_csv(io.StringIO(csv_out))["tickers"].iloc[0] == tickers


def test_clusters_and_timing_policy(capsys, tmp_path):
    rows = [
        # Thursday, unknown time: Hong Kong's day 0 is Thu 07-22 or Fri 07-23
        "gig,2021-07-22,,MOHRSS,labor,tightening,Meituan,3690.HK;BABA,Gig rules,https://e.org/a,high,",
        # Friday 10:00: Hong Kong Fri 07-23 -> shares 3690.HK's day 0 with gig under next-session
        "edu,2021-07-23,10:00,SC,education,tightening,Meituan,3690.HK,Rules,https://e.org/b,high,",
        # Thursday 20:00 (after the HK close): HK Fri 07-23, NY Thu 07-22 -> BABA overlaps gig
        "late,2021-07-22,20:00,SAMR,antitrust,tightening,Alibaba,BABA,Fine,https://e.org/c,high,",
    ]
    path = write_events(tmp_path, rows)
    out = {}
    for policy in ("span", "next-session", "same-day"):
        code, text, err = run_cli(capsys, "--events-file", str(path), "--day0", "--format",
                                  "csv", "--timing-policy", policy)
        assert code == 0, err
        out[policy] = pd.read_csv(io.StringIO(text), dtype=str,
                                  keep_default_na=False).set_index("event_id")
    span, nxt, same = out["span"], out["next-session"], out["same-day"]
    assert span.loc["gig", "day0_XHKG"] == "2021-07-22" and span.loc["gig", "day0_uncertain"] == "True"
    assert same.loc["gig", "day0_XHKG"] == "2021-07-22" and same.loc["gig", "day0_uncertain"] == "False"
    assert nxt.loc["gig", "day0_XHKG"] == "2021-07-23"
    assert {p: f.loc["gig", "day0_XNYS"] for p, f in out.items()} == dict.fromkeys(out, "2021-07-22")
    # BABA: gig and late share New York's 07-22 under every policy
    assert span.loc["late", "cluster_id"] == "gig" == span.loc["gig", "cluster_id"]
    assert span.loc["edu", "cluster_id"] == "edu" and span.loc["gig", "cluster_size"] == "2"
    # next-session also gives gig Hong Kong's 07-23, shared with edu on 3690.HK: one cluster of 3
    assert set(nxt["cluster_id"]) == {"gig"} and set(nxt["cluster_size"]) == {"3"}
