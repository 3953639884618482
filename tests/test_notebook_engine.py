"""The report engine (crackdown.output.notebook_engine): the executed notebook is written when
the run ends (and at most every ``autosave_cell_every`` seconds before), it is the notebook
papermill's own engine writes, and a reused kernel runs every notebook through one client."""

from __future__ import annotations

import nbformat
import papermill as pm
import papermill.engines as pm_engines
import pytest
from _notebook_helpers import write_notebook
from papermill.exceptions import PapermillExecutionError

from crackdown.output import kernel_pool, notebook_engine

CELLS = [
    "# parameters\nlabel = 'x'",
    "import time\nprint('start', label)",
    "time.sleep(SLEEP)\nprint('middle')\ntime.sleep(SLEEP)\nprint('end')",
    "result = {'label': label, 'n': 3}\nresult",
]


def _notebook(path, sleep=0.0, fail=False):
    cells = [c.replace("SLEEP", repr(sleep)) for c in CELLS]
    if fail:
        cells.append("raise ValueError('boom')")
    return write_notebook(path, cells)


@pytest.fixture
def engine_writes(monkeypatch):
    """Count the engine's writes of the executed notebook (papermill's own final write in
    ``execute_notebook`` is a separate name and is not counted)."""
    writes = []
    original = pm_engines.write_ipynb

    def counting(nb, path):
        writes.append(path)
        return original(nb, path)

    monkeypatch.setattr(pm_engines, "write_ipynb", counting)
    return writes


def _run(src, out, engine, **kwargs):
    return pm.execute_notebook(str(src), str(out), parameters={"label": "run"},
                               kernel_name=kernel_pool.KERNEL_NAME, progress_bar=False,
                               engine_name=engine,
                               kernel_manager_class=kernel_pool.kernel_manager_class(),
                               **kwargs)


def _comparable(nb):
    """Cells' sources and outputs, without the timing metadata."""
    return [(c.cell_type, c.source, c.get("execution_count"), c.get("outputs"),
             c.metadata.get("tags"), c.metadata.get("papermill", {}).get("status"))
            for c in nb.cells]


def test_one_write_per_run_and_the_same_notebook_as_papermills_engine(tmp_path, engine_writes):
    src = _notebook(tmp_path / "nb.ipynb")
    _run(src, tmp_path / "default.ipynb", None)
    default_writes = len(engine_writes)
    engine_writes.clear()
    _run(src, tmp_path / "ours.ipynb", notebook_engine.register_engine())
    # papermill's engine writes at the start and before and after every cell (the 4 cells and
    # the injected parameters cell), then a final sync; ours once, at the end
    assert default_writes == 1 + 2 * (len(CELLS) + 1) + 1
    assert engine_writes == [str(tmp_path / "ours.ipynb")]
    ours = nbformat.read(tmp_path / "ours.ipynb", as_version=4)
    default = nbformat.read(tmp_path / "default.ipynb", as_version=4)
    assert _comparable(ours) == _comparable(default)
    assert ours.cells[-1].outputs[0]["data"]["text/plain"] == "{'label': 'run', 'n': 3}"
    assert ours.metadata.papermill["duration"] > 0


def test_a_failing_run_is_written_with_its_error(tmp_path, engine_writes):
    src = _notebook(tmp_path / "nb.ipynb", fail=True)
    out = tmp_path / "ours.ipynb"
    with pytest.raises(PapermillExecutionError, match="boom"):
        _run(src, out, notebook_engine.register_engine())
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[-1].outputs[0]["ename"] == "ValueError"
    assert nb.metadata.papermill["exception"] is True
    assert engine_writes == [str(out)]  # then papermill writes it again before raising


def test_a_long_run_is_autosaved_between_outputs(tmp_path, engine_writes):
    """A cell printing, sleeping 1.2 s, printing ...: with ``autosave_cell_every=1`` an output
    after more than 1 s since the last write triggers a write (papermill's autosave)."""
    src = _notebook(tmp_path / "nb.ipynb", sleep=1.2)
    _run(src, tmp_path / "ours.ipynb", notebook_engine.register_engine(),
         autosave_cell_every=1)
    assert len(engine_writes) == 3  # after 'middle', after 'end', the final one


def test_reused_kernel_runs_every_notebook_through_one_client(tmp_path):
    src = _notebook(tmp_path / "nb.ipynb")
    with kernel_pool.ReusedKernel() as kernel:
        seen = []
        for label in ("first", "second", "third"):
            folder = tmp_path / label
            folder.mkdir()
            kernel.execute(str(src), str(folder / "out.ipynb"), {"label": label}, folder)
            nb = nbformat.read(folder / "out.ipynb", as_version=4)
            # every output is this notebook's own: none from the clean-up or the last run
            assert nb.cells[2].outputs[0]["text"] == f"start {label}\n"
            assert nb.cells[-1].outputs[0]["data"]["text/plain"] == (
                f"{{'label': '{label}', 'n': 3}}")
            assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4, 5]
            seen.append((kernel._client, kernel.pid,
                         len(kernel._km.__dict__.get("clients", []))))
        assert kernel.starts == 1 and kernel.notebooks == 3
        clients = {id(c) for c, _, _ in seen}
        assert len(clients) == 1 and len({pid for _, pid, _ in seen}) == 1
        assert {n for _, _, n in seen} == {2}  # the control client and the notebooks' client


def test_a_report_worker_validates_notebooks_without_rfc3987_syntax(tmp_path):
    """``report_io.worker_init`` keeps jsonschema's optional rfc3987_syntax out of a worker;
    nbformat still validates (and rejects an invalid notebook) there."""
    import subprocess
    import sys

    good = _notebook(tmp_path / "nb.ipynb")
    code = (
        "import sys\n"
        "from crackdown.output import report_io\n"
        "report_io.worker_init()\n"
        "import nbformat, papermill\n"
        f"nb = nbformat.read({str(good)!r}, as_version=4)\n"
        "nbformat.validate(nb)\n"
        "nb.cells[0]['cell_type'] = 'no such type'\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid rejected')\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["invalid rejected", "None"]


def test_a_reused_kernel_freezes_what_survives_each_clean_up(tmp_path):
    """After a notebook's clean-up the survivors are in the permanent generation (gc.freeze):
    a fresh kernel has none frozen, the next notebook on the reused kernel finds them, and
    what a notebook leaves behind is still collected at its clean-up (not frozen)."""
    probe = ("import gc, weakref\n"
             "class Cycle:\n    pass\n"
             "print(gc.get_freeze_count())\n"
             "c = Cycle(); c.me = c\n"  # cyclic garbage once the namespace is reset
             "import builtins\nbuiltins._crackdown_probe = weakref.ref(c)")
    src = write_notebook(tmp_path / "gc.ipynb", [probe], parameters=None)
    frozen, probes = [], []
    with kernel_pool.ReusedKernel() as kernel:
        for label in ("first", "second"):
            folder = tmp_path / label
            folder.mkdir()
            kernel.execute(str(src), str(folder / "out.ipynb"), {}, folder)
            out = nbformat.read(folder / "out.ipynb", as_version=4)
            frozen.append(int(out.cells[-1].outputs[0]["text"]))
        check = write_notebook(tmp_path / "check.ipynb", [
            "import builtins\nprint(builtins._crackdown_probe() is None)"], parameters=None)
        folder = tmp_path / "check"
        folder.mkdir()
        kernel.execute(str(check), str(folder / "out.ipynb"), {}, folder)
        probes.append(nbformat.read(folder / "out.ipynb", as_version=4)
                      .cells[-1].outputs[0]["text"].strip())
    assert frozen[0] == 0 and frozen[1] > 10_000
    assert probes == ["True"]  # the second notebook's cycle was collected, not frozen
