"""Batch reports: papermill runs of tests/data notebooks (4 kernel starts in total), headline
recording, the index, the pinned kernel and the CLI's error messages (the batches run on
reused kernels, one per worker, as `crackdown report` does)."""

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
from crackdown.output import report_index, reports

DATA = Path(__file__).parent / "data"
EVENTS = ["E1", "FAIL-2", "EVENT3"]  # FAIL-* raises inside the notebook on purpose


class _Rows(HTMLParser):
    """Collect the text cells (``th`` of a row in ``heads``, ``td`` in ``cells``) and links of
    each table row of index.html, and the ``<h2>`` before each table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None
        self.section = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = {"class": attrs.get("class"), "cells": [], "heads": [], "links": [],
                         "section": self.section}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and self._row is not None:
            self._row["links"].append(attrs["href"])
        elif tag == "h2":
            self._h2 = []
        if tag in ("div", "br") and self._cell is not None:
            self._cell.append(" ")  # a line of its own in the cell

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells" if tag == "td" else "heads"].append(
                " ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "h2" and self._h2 is not None:
            self.section = "".join(self._h2).split(" (")[0]
            self._h2 = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._h2 is not None:
            self._h2.append(data)


def _index_rows(path: Path) -> dict[str, dict]:
    """Rows of the index's multi-report tables by report label (the first word of the first
    cell; the event title follows it), and of its one-report tables by their ``Report``."""
    parser = _Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    out = {}
    for row in parser.rows:
        if row["heads"] == ["Report"]:
            out[row["cells"][0]] = row
        elif row["cells"] and not row["heads"]:
            out[row["cells"][0].split(" ")[0]] = row
    return out


def _single_report(path: Path, notebook: str) -> dict[str, str]:
    """The two-column table of a notebook with one report: header -> value."""
    parser = _Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return {row["heads"][0]: row["cells"][0] for row in parser.rows
            if row["section"] == notebook and len(row["heads"]) == 1}


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
        assert f"<title>{label}</title>" in html_text
        assert "highlight hl-ipython3" not in html_text  # code cells hidden by default
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
    # status, event, value = 0.5 * len(label): floats, one format (3 decimals) in the column
    assert rows["E1"]["cells"][1:4] == ["ok", "E1", "1.000"]
    assert rows["EVENT3"]["cells"][1:4] == ["ok", "EVENT3", "3.000"]
    # the kernel path, the same text in every report, is stated once above the table
    assert f"In every report: kernel_python: {sys.executable}." in text
    assert "<table class='sortable'>" in text and "<script>" in text  # inline sort script
    assert "<script src" not in text and "http" not in text  # nothing from a CDN
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
                 "--output", str(out), "--no-progress", "--jobs", "2", "--show-input"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 of 1 report(s) written" in captured.out
    folder = out / "report_overview"  # a run-once report: OUTPUT/<notebook>/, not nested
    headline = json.loads((folder / "headline.json").read_text())
    assert headline == {"events": 3, "mean": 0.25, "missing": None}  # numpy -> JSON, NaN -> null
    assert not (folder / "report_overview").exists()
    assert "highlight hl-ipython3" in (folder / "report_overview.html").read_text()  # shown
    rows = _index_rows(out / "index.html")
    assert {"E1", "EVENT3", "FAIL-2", "report_overview"} <= set(rows)
    assert rows["report_overview"]["links"] == ["report_overview/report_overview.html"]
    assert _single_report(out / "index.html", "report_overview") == {
        "Report": "report_overview", "Status": "ok", "events": "3", "mean": "0.250",
        "missing": "n/a"}


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


def test_record_headline_outside_a_report_is_silent(monkeypatch):
    monkeypatch.delenv(reports.REPORT_DIR_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reports.record_headline({"x": 1}) is None
    assert caught == []


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


# ------------------------------------------------------------------------------------------
# Index layout, number formats, hidden code (no kernel)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "values", "expected"), [
    # percentages: 2 decimals for every value of the column (the 4.987, 23.55, 0.7701)
    ("CAAR (%)", [4.987, 23.55, 0.7701], ["4.99", "23.55", "0.77"]),
    # one decimal fewer per digit beyond three before the point of the largest value
    ("CAR (%)", [12345.678, -1.5], ["12,346", "-2"]),  # 5 digits: 2 - 2 = 0 decimals
    ("CAR (%)", [1234.5, 0.25], ["1,234.5", "0.2"]),  # 4 digits: 1 decimal (round half even)
    # other numbers: 3 decimals; a column of small numbers keeps 2 significant digits
    ("corr", [0.8981699, 1.0], ["0.898", "1.000"]),
    ("alpha", [-0.0004, 0.00012], ["-0.00040", "0.00012"]),  # 10**-4 <= 0.0004: 5 decimals
    # p-values: 3 decimals, scientific below 0.001, never 0.000
    ("headline p", [0.0657, 0.0004, 3.2e-7], ["0.066", "4.0e-04", "3.2e-07"]),
    ("KP p", [1.0, 0.001], ["1.000", "0.001"]),
    ("paired t p", [0.0], ["0.0e+00"]),
    ("clusters with p < 5% (headline test)", [10, 2], ["10", "2"]),  # counts stay integers
    ("HK mean |diff| (pp)", [2.38012, 0.5], ["2.38", "0.50"]),  # percentage points
    # integers: thousands separators; missing values
    ("firms used", [2, 12345], ["2", "12,345"]),
    ("x", [None, float("nan"), True, "text"], ["n/a", "n/a", "yes", "text"]),
])
def test_column_formatter(key, values, expected):
    from crackdown.output.report_index import column_formatter

    fmt = column_formatter(key, values)
    assert [fmt(v) for v in values] == expected


def test_p_value_keys_and_others():
    from crackdown.output.report_index import _P_KEY

    for key in ("headline p", "KP p", "placebo p", "p", "p (two-way)", "cross-section target p",
                "p-value", "pvalue"):
        assert _P_KEY.search(key), key
    for key in ("pairs", "pair-events", "CAAR (%)", "portfolio", "firms (portfolio)", "np"):
        assert not _P_KEY.search(key), key


def _status_folder(folder: Path, label: str, headline: dict, meta: dict | None = None,
                   status: str = "ok") -> None:
    folder.mkdir(parents=True)
    (folder / f"{label}.html").write_text("<html></html>")
    (folder / "status.json").write_text(json.dumps({
        "notebook": folder.parent.name if meta is not None else folder.name, "label": label,
        "status": status, "html": f"{label}.html", "figures": [], "headline": headline,
        "meta": meta or {}}))


def test_index_layouts_pairs_common_texts_and_old_run_once_folders(tmp_path):
    out = tmp_path / "out"
    for i, (label, caar) in enumerate([("ev_a", 4.987), ("ev_b", 23.55), ("ev_c", 0.7701)]):
        _status_folder(out / "event_study" / label, label,
                       {"window": "[-1,+1]", "CAAR (%)": caar, "CI low (%)": caar - 1,
                        "CI high (%)": caar + 1, "headline p": 10.0 ** -(i + 2), "n": i},
                       meta={"date": f"2021-0{i + 1}-01", "title": f"Title {label}",
                             "category": "antitrust"})
    _status_folder(out / "overview", "overview", {"events": 35, "share (%)": 12.3456})
    _status_folder(out / "methods" / "methods", "methods", {"sims": 300})  # earlier layout
    dead = out / ".spill.partial-999999999-0123abcd"  # a run-once report killed midway
    dead.mkdir()
    text = reports.write_index(out).read_text(encoding="utf-8")
    rows = _index_rows(out / "index.html")
    assert rows["ev_a"]["cells"][0] == "ev_a Title ev_a · antitrust"  # title under the link
    # headers: CI low/high share one column; the common text is stated above the table
    assert ("<th>date</th><th>CAAR (%)</th><th>CI (%)</th><th>headline p</th><th>n</th>"
            in text.replace("\n", ""))
    assert "In every report: window: [-1,+1]." in text
    assert [rows[k]["cells"][2:6] for k in ("ev_a", "ev_b", "ev_c")] == [
        ["2021-01-01", "4.99", "[3.99, 5.99]", "0.010"],
        ["2021-02-01", "23.55", "[22.55, 24.55]", "0.001"],
        ["2021-03-01", "0.77", "[-0.23, 1.77]", "1.0e-04"]]
    assert "data-v='4.987'" in text and "data-v='3.987'" in text  # raw values for sorting
    assert _single_report(out / "index.html", "overview") == {
        "Report": "overview", "Status": "ok", "events": "35", "share (%)": "12.35"}
    assert rows["overview"]["links"] == ["overview/overview.html"]
    assert rows["methods"]["links"] == ["methods/methods/methods.html"]  # still listed
    assert re.search(r"spill / spill</b>: <span class='error'>left by an interrupted run", text)


def test_run_once_rerun_replaces_the_earlier_nested_layout(tmp_path, monkeypatch):
    """OUTPUT/<nb>/<nb>/ of earlier versions is replaced by OUTPUT/<nb>/; a folder holding
    per-event reports of a notebook of that name is refused, not deleted."""
    out = tmp_path / "out"
    _status_folder(out / "report_overview" / "report_overview", "report_overview", {"x": 1})
    folder = reports.report_folder(out, "report_overview", "report_overview", per_event=False)
    assert folder == out / "report_overview"
    assert reports.report_folder(out, "nb", "E1", per_event=True) == out / "nb" / "E1"
    report_index.check_run_once_folder(folder)  # the earlier layout: fine, replaced by the rerun
    _status_folder(out / "report_overview" / "E1", "E1", {"x": 1}, meta={})
    with pytest.raises(StudyConfigError, match=r"holds per-event reports \(E1\) of an earlier"):
        reports.run_report(DATA / "report_overview.ipynb", output=out, progress=False)


def test_html_export_hides_code_unless_asked():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("secret_code_name = 1\nsecret_code_name",
                                          execution_count=1)]
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "4242"},
                                                  execution_count=1)]
    hidden, _ = reports._html_exporter(True).from_notebook_node(nb)
    shown, _ = reports._html_exporter(False).from_notebook_node(nb)
    assert "secret_code_name" not in hidden and "4242" in hidden and "Title" in hidden
    assert "secret_code_name" in shown and "4242" in shown
    prompts = ('class="jp-InputPrompt jp-InputArea-prompt"',
               'class="jp-OutputPrompt jp-OutputArea-prompt"')
    assert [hidden.count(c) for c in prompts] == [0, 0]
    assert all(shown.count(c) >= 1 for c in prompts)
    for body in (hidden, shown):  # nothing loaded from a CDN (offline reports, no errors)
        assert not re.search(r"<script[^>]+src=", body)


def test_cli_input_options(monkeypatch, tmp_path):
    """Hidden by default; --show-input shows; --no-input (older spelling) hides; not both."""
    seen = []
    monkeypatch.setattr(reports, "run_report",
                        lambda *a, **k: seen.append(k["exclude_input"]) or reports.BatchResult(
                            [], tmp_path / "index.html"))
    base = ["report", "--notebook", "report_overview", "--notebooks-dir", str(DATA),
            "--output", str(tmp_path), "--no-progress"]
    assert [main(base), main([*base, "--show-input"]), main([*base, "--no-input"])] == [0, 0, 0]
    assert seen == [True, False, True]
    with pytest.raises(SystemExit) as exc:
        main([*base, "--show-input", "--no-input"])
    assert exc.value.code == 2
