"""Batch reports: papermill runs of tests/data notebooks (4 kernel starts in total), headline
recording, the index, the pinned kernel and the CLI's error messages."""

from __future__ import annotations

import json
import re
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crackdown.cli import main
from crackdown.errors import StudyConfigError
from crackdown.output import reports

DATA = Path(__file__).parent / "data"
EVENTS = ["E1", "FAIL-2", "EVENT3"]  # FAIL-* raises inside the notebook on purpose


class _Rows(HTMLParser):
    """Collect the text cells and links of each table row of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self._row: dict | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = {"class": attrs.get("class"), "cells": [], "links": []}
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and self._row is not None:
            self._row["links"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _index_rows(path: Path) -> dict[str, dict]:
    parser = _Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return {row["cells"][0]: row for row in parser.rows}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = reports.run_report(DATA / "report_event.ipynb", event_ids=EVENTS, output=out,
                                jobs=2, progress=False, parameters={"scale": 0.5})
    return out, result


@pytest.mark.slow
def test_batch_outcomes_files_and_exit_code(batch):
    out, result = batch
    assert [o.label for o in result.outcomes] == EVENTS  # request order, not finishing order
    assert [o.status for o in result.outcomes] == ["ok", "failed", "ok"]
    assert result.exit_code == 1
    assert [o.label for o in result.failures] == ["FAIL-2"]
    assert result.failures[0].error == "ValueError: deliberate failure for FAIL-2 (cell 4)"
    for label in ("E1", "EVENT3"):
        folder = out / "report_event" / label
        html_text = (folder / f"{label}.html").read_text(encoding="utf-8")
        assert "<html" in html_text and "data:image/png;base64," in html_text  # figure embedded
        assert label in html_text  # the injected event_id parameter
        assert (folder / f"{label}.ipynb").is_file()
        pngs = sorted(folder.glob("*.png"))
        assert [p.name for p in pngs] == [f"{label}-cell05-1.png"]
        assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        headline = json.loads((folder / "headline.json").read_text())
        # value = scale * len(event_id): the extra parameter reached the notebook
        assert headline["value"] == pytest.approx(0.5 * len(label))
        assert headline["event"] == label
    # the failed notebook is kept (with its traceback) and exported for debugging
    failed = out / "report_event" / "FAIL-2"
    assert "deliberate failure" in (failed / "FAIL-2.html").read_text(encoding="utf-8")
    assert not (failed / "headline.json").exists()
    status = json.loads((failed / "status.json").read_text())
    assert status["status"] == "failed" and "deliberate failure" in status["error"]


@pytest.mark.slow
def test_kernel_is_this_interpreter(batch):
    _, result = batch
    assert result.outcomes[0].headline["kernel_python"] == sys.executable


@pytest.mark.slow
def test_index_links_reports_with_numbers_and_failure(batch):
    out, result = batch
    assert result.index == out / "index.html"
    text = result.index.read_text(encoding="utf-8")
    assert "Failed (1)" in text
    rows = _index_rows(result.index)
    assert set(rows) == {"E1", "EVENT3", "FAIL-2"}
    assert rows["E1"]["links"][0] == "report_event/E1/E1.html"
    assert rows["E1"]["cells"][1:4] == ["ok", "E1", "1"]  # status, event, value = 0.5 * 2
    assert rows["EVENT3"]["cells"][1:4] == ["ok", "EVENT3", "3"]
    assert "report_event/EVENT3/EVENT3-cell05-1.png" in rows["EVENT3"]["links"]
    assert rows["FAIL-2"]["class"] == "failed"
    assert rows["FAIL-2"]["cells"][1].startswith("FAILED")
    assert "ValueError: deliberate failure for FAIL-2" in rows["FAIL-2"]["cells"][1]
    for link in rows["E1"]["links"] + rows["EVENT3"]["links"]:
        assert (out / link).is_file(), link


@pytest.mark.slow
def test_cli_run_once_notebook_adds_to_index(batch, capsys):
    out, _ = batch
    code = main(["report", "--notebook", "report_overview", "--notebooks-dir", str(DATA),
                 "--output", str(out), "--no-progress", "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 of 1 report(s) written" in captured.out
    headline = json.loads((out / "report_overview" / "report_overview" / "headline.json")
                          .read_text())
    assert headline == {"events": 3, "mean": 0.25, "missing": None}  # numpy -> JSON, NaN -> null
    rows = _index_rows(out / "index.html")
    assert {"E1", "EVENT3", "FAIL-2", "report_overview"} <= set(rows)
    assert rows["report_overview"]["cells"][1:5] == ["ok", "3", "0.25", "n/a"]


# ------------------------------------------------------------------------------------------
# No kernel below
# ------------------------------------------------------------------------------------------


def test_record_headline_merges_and_converts(tmp_path):
    path = reports.record_headline({"CAAR (%)": np.float64(-3.25), "n": np.int64(12)},
                                   report_dir=tmp_path)
    reports.record_headline({"p": 0.01, "n": 13, "inf": float("inf")}, report_dir=tmp_path)
    data = json.loads(path.read_text())
    assert list(data) == ["CAAR (%)", "n", "p", "inf"]
    assert data == {"CAAR (%)": -3.25, "n": 13, "p": 0.01, "inf": None}
    assert type(data["n"]) is int


def test_record_headline_uses_env_and_rejects_bad_values(tmp_path, monkeypatch):
    monkeypatch.setenv(reports.REPORT_DIR_ENV, str(tmp_path / "r"))
    path = reports.record_headline({"x": 1.5})
    assert path == tmp_path / "r" / "headline.json"
    with pytest.raises(StudyConfigError, match="value of 'arr' is ndarray"):
        reports.record_headline({"arr": np.array([1.0, 2.0])})
    with pytest.raises(StudyConfigError, match="non-empty string"):
        reports.record_headline({"": 1})


def test_record_headline_outside_a_report_warns(monkeypatch):
    monkeypatch.delenv(reports.REPORT_DIR_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reports.record_headline({"x": 1}) is None
    assert any("not running under `crackdown report`" in str(w.message) for w in caught)


def test_pinned_kernelspec_ignores_other_python3_specs(tmp_path, monkeypatch):
    """A foreign 'python3' kernelspec (another Python) must not be used for the reports."""
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "foreign", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    manager = reports._kernel_manager_class()(kernel_name="python3")
    assert manager.kernel_spec.argv[0] == sys.executable
    assert manager.kernel_spec.argv[1:3] == ["-m", "ipykernel_launcher"]


def test_is_per_event_and_resolve(tmp_path):
    assert reports.is_per_event(DATA / "report_event.ipynb")
    assert not reports.is_per_event(DATA / "report_overview.ipynb")
    assert reports.resolve_notebook("report_event", DATA) == DATA / "report_event.ipynb"
    with pytest.raises(StudyConfigError, match=r"available in .*report_event, report_overview"):
        reports.resolve_notebook("nope", DATA)


def test_run_report_argument_errors(tmp_path):
    with pytest.raises(StudyConfigError, match="runs per event"):
        reports.run_report(DATA / "report_event.ipynb", event_ids=None, output=tmp_path)
    with pytest.raises(StudyConfigError, match="runs once; drop --events"):
        reports.run_report(DATA / "report_overview.ipynb", event_ids=["E1"], output=tmp_path)
    with pytest.raises(StudyConfigError, match="listed twice"):
        reports.run_report(DATA / "report_event.ipynb", event_ids=["A", "A"], output=tmp_path)
    with pytest.raises(StudyConfigError, match="cannot name a report folder"):
        reports.run_report(DATA / "report_event.ipynb", event_ids=["../x"], output=tmp_path)
    with pytest.raises(StudyConfigError, match="--jobs 0"):
        reports.run_report(DATA / "report_event.ipynb", event_ids=["A"], output=tmp_path, jobs=0)


def test_cli_errors_are_one_line(tmp_path, capsys):
    code = main(["report", "--notebook", "missing_nb", "--notebooks-dir", str(DATA),
                 "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert re.search(r"--notebook 'missing_nb': .*missing_nb\.ipynb not found", err)
    code = main(["report", "--notebook", "report_overview", "--events", "E1",
                 "--notebooks-dir", str(DATA), "--output", str(tmp_path)])
    assert code == 2 and "drop --events" in capsys.readouterr().err
    code = main(["report", "--jobs", "0", "--notebooks-dir", str(DATA), "--notebook",
                 "report_event", "--output", str(tmp_path)])
    assert code == 2 and "--jobs 0" in capsys.readouterr().err
    code = main(["report", "--notebook", "report_event", "--notebooks-dir", str(DATA),
                 "--events", "E1", "--parameter", "bad", "--output", str(tmp_path)])
    assert code == 2 and "--parameter 'bad': use KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_notebook_all_runs_per_event_then_run_once(tmp_path, capsys):
    code = main(["report", "--notebook", "all", "--notebooks-dir", str(DATA),
                 "--events", "alibaba_antitrust_fine", "--output", str(tmp_path),
                 "--no-progress", "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 of 2 report(s) written" in captured.out
    value = json.loads((tmp_path / "report_event" / "alibaba_antitrust_fine" / "headline.json")
                       .read_text())["value"]
    assert value == len("alibaba_antitrust_fine")  # scale 1 x len(event_id), set by the notebook
    rows = _index_rows(tmp_path / "index.html")
    assert {"alibaba_antitrust_fine", "report_overview"} <= set(rows)


def test_rounded_rounds_numbers_and_leaves_dates(recwarn):
    from crackdown.output.reports import rounded

    frame = pd.DataFrame({"d": pd.to_datetime(["2021-04-12"]), "x": [1.23456], "t": ["a"]})
    out = rounded(frame, 2)
    assert out["x"].iloc[0] == 1.23 and out["d"].iloc[0] == pd.Timestamp("2021-04-12")
    assert out["t"].iloc[0] == "a"
    assert not [w for w in recwarn if "round" in str(w.message)]
