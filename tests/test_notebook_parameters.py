"""``reports.notebook_parameters`` parses the parameters cell itself (no papermill import) and
gives what ``papermill.inspect_notebook`` gives."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import papermill as pm
import pytest
from _notebook_helpers import write_notebook

from crackdown.errors import StudyConfigError
from crackdown.output import reports


def _flat(value: str) -> str:
    return " ".join(value.split()).replace(", ", ",")


@pytest.mark.parametrize("path", sorted(reports.notebooks_dir().glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_shipped_notebooks_as_papermill_inspects_them(path):
    ours, theirs = reports.notebook_parameters(path), pm.inspect_notebook(str(path))
    assert list(ours) == list(theirs) and ours
    for name, spec in theirs.items():
        assert ours[name]["help"] == spec["help"]
        assert ours[name]["inferred_type_name"] == spec["inferred_type_name"]
        # papermill joins a value written over several lines; we keep the source text
        assert _flat(ours[name]["default"]) == _flat(spec["default"])


def _write(tmp_path, source, tagged=True):
    return write_notebook(tmp_path / "nb.ipynb",
                          [nbformat.v4.new_markdown_cell("# t"), source, "x = 1"],
                          parameters=1 if tagged else None)


def test_annotations_comments_and_what_is_not_a_parameter(tmp_path):
    path = _write(tmp_path, "import os\nevent_id: str = 'a'  # the event\nn = [1,\n  2]\n"
                            "a = b = 3\nt.x = 4\nfor i in []:\n    y = 5\nwindow = (-1, 1)\n")
    found = reports.notebook_parameters(path)
    assert list(found) == ["event_id", "n", "window"]
    assert found["event_id"] == {"name": "event_id", "inferred_type_name": "str",
                                 "default": "'a'", "help": "the event"}
    assert found["n"]["default"] == "[1,\n  2]" and found["window"]["help"] == ""
    assert reports.is_per_event(path)
    assert reports.notebook_parameters(_write(tmp_path, "event_id = 1", tagged=False)) == {}


def test_invalid_python_goes_to_papermill_and_bad_json_is_one_error(tmp_path):
    path = _write(tmp_path, "event_id = 'a'\nthis is not python\n")
    assert list(reports.notebook_parameters(path)) == list(pm.inspect_notebook(str(path)))
    assert "event_id" in reports.notebook_parameters(path)
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(StudyConfigError, match="bad.ipynb: cannot read the notebook"):
        reports.notebook_parameters(bad)


def test_inspecting_a_notebook_imports_no_papermill():
    code = ("import sys\nfrom crackdown.output import reports\n"
            "assert reports.is_per_event(reports.resolve_notebook('event_study'))\n"
            "assert not reports.is_per_event(reports.resolve_notebook('crackdown_overview'))\n"
            "print('papermill' in sys.modules, 'nbformat' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
