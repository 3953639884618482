"""Reused report kernels (crackdown.output.kernel_pool): one kernel per worker, no state leaks.

* A probe notebook changes every kind of state a notebook can change (names, rcParams, pandas
  options, warning registries and filters, environment, cwd, sys.path) and records what it
  found on arrival: on a reused kernel every run must find what a fresh kernel finds, while the
  kernel process is the same one (so the reuse is real).
* A kernel killed by its notebook fails that report only; the next one gets a new kernel.
* The shipped notebooks (three events and two run-once notebooks in one pool of two workers)
  give byte-identical headline.json and CSV files with reused and with fresh kernels.
* A figure saved as PNG and then shown is drawn once: the inline image is the file's bytes; a
  figure changed after saving is drawn again.
* ``crackdown report --notebook all`` is one batch (one pool); ``--fresh-kernels`` reaches it.
* No kernel process survives a batch, nor this module (psutil children checked at its end).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from _notebook_helpers import write_notebook

from crackdown.output import kernel_pool, reports
from crackdown.output.report_io import pid_alive


def _kernel_children() -> list:
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(autouse=True, scope="module")
def _no_kernel_left_behind():
    """Every kernel this module starts is gone at its end (the worker kernel is closed)."""
    yield
    kernel_pool.close_worker_kernel()
    import psutil

    _, alive = psutil.wait_procs(_kernel_children(), timeout=10)
    assert alive == [], f"kernel processes left behind: {[p.pid for p in alive]}"

PROBE_CELLS = [
    "# parameters\nevent_id = 'E0'\nreport_dir = None",
    ("import os, sys, warnings\nimport matplotlib\nimport pandas as pd\nimport leakmod\n"
    "from crackdown import record_headline"),
    # what this run finds on arrival
    ("shown = []\nold = warnings.showwarning\n"
    "warnings.showwarning = lambda message, *a, **k: shown.append(str(message))\n"
    "leakmod.warn()\nwarnings.showwarning = old\n"
    "found = {\n"
    "    'leaked_name': 'leak' in globals(),\n"
    "    'linewidth': float(matplotlib.rcParams['lines.linewidth']),\n"
    "    'max_rows': int(pd.get_option('display.max_rows')),\n"
    "    'env_leak': os.environ.get('CRACKDOWN_LEAK'),\n"
    "    'cwd_is_notebook_dir': os.getcwd() == os.path.dirname(leakmod.__file__),\n"
    "    'path_leak': '/leaked/path' in sys.path,\n"
    "    'warnings_shown': len(shown),\n"
    "    'ignore_filter': any(f[0] == 'ignore' and f[2] is UserWarning\n"
    "                         for f in warnings.filters),\n"
    "    'execution_count': get_ipython().execution_count,\n"
    "    'report_dir_env': os.environ.get('CRACKDOWN_REPORT_DIR') == report_dir,\n"
    "}"),
    # now change all of it
    ("leak = 1\nmatplotlib.rcParams['lines.linewidth'] = 9.0\n"
    "pd.set_option('display.max_rows', 3)\nos.environ['CRACKDOWN_LEAK'] = event_id\n"
    "sys.path.append('/leaked/path')\nwarnings.simplefilter('ignore', UserWarning)\n"
    "os.chdir('/')"),
    "if event_id == 'DIE':\n    os.kill(os.getpid(), 9)",
    "record_headline({**found, 'kernel_pid': os.getpid()}, report_dir=report_dir)",
]

LEAKMOD = "import warnings\n\n\ndef warn():\n    warnings.warn('from a module', UserWarning)\n"


def _probe(folder: Path) -> Path:
    path = write_notebook(folder / "probe.ipynb", PROBE_CELLS)
    (folder / "leakmod.py").write_text(LEAKMOD, encoding="utf-8")
    return path


def _headlines(result) -> list[dict]:
    return [dict(o.headline) for o in result.outcomes]


@pytest.mark.slow
def test_reused_kernel_finds_what_a_fresh_kernel_finds(tmp_path):
    nb = _probe(tmp_path)
    events = ["E1", "E2", "E3"]
    reused = reports.run_report(nb, event_ids=events, output=tmp_path / "reused", jobs=1,
                                progress=False)
    fresh = reports.run_report(nb, event_ids=events, output=tmp_path / "fresh", jobs=1,
                               progress=False, fresh_kernels=True)
    assert [o.status for o in reused.outcomes] == ["ok"] * 3
    assert [o.status for o in fresh.outcomes] == ["ok"] * 3
    got, want = _headlines(reused), _headlines(fresh)
    reused_pids = {h.pop("kernel_pid") for h in got}
    fresh_pids = {h.pop("kernel_pid") for h in want}
    assert len(reused_pids) == 1 and len(fresh_pids) == 3  # the reuse is real
    assert got == want
    assert want[0] == {"leaked_name": False, "linewidth": want[0]["linewidth"], "max_rows": 60,
                       "env_leak": None, "cwd_is_notebook_dir": True, "path_leak": False,
                       "warnings_shown": 1, "ignore_filter": False, "execution_count": 5,
                       "report_dir_env": True}
    assert want[0]["linewidth"] != 9.0
    # the executed notebooks number their cells as in a fresh kernel
    for label in events:
        a = nbformat.read(str(tmp_path / "reused/probe" / label / f"{label}.ipynb"), 4)
        b = nbformat.read(str(tmp_path / "fresh/probe" / label / f"{label}.ipynb"), 4)
        assert [c.get("execution_count") for c in a.cells] == \
            [c.get("execution_count") for c in b.cells]
    for pid in reused_pids | fresh_pids:  # no kernel outlives the batch
        assert not pid_alive(pid)


@pytest.mark.slow
def test_a_killed_kernel_fails_its_report_only(tmp_path):
    nb = _probe(tmp_path)
    result = reports.run_report(nb, event_ids=["E1", "DIE", "E3"], output=tmp_path / "out",
                                jobs=1, progress=False, start_timeout=60)
    assert [o.status for o in result.outcomes] == ["ok", "failed", "ok"]
    assert "DeadKernel" in result.outcomes[1].error or "died" in result.outcomes[1].error
    first, third = result.outcomes[0].headline, result.outcomes[2].headline
    assert first["kernel_pid"] != third["kernel_pid"]  # a new kernel after the dead one
    assert not third["leaked_name"] and third["execution_count"] == 5
    assert not pid_alive(third["kernel_pid"])


def _files(root: Path) -> dict[str, bytes]:
    """headline.json and every CSV under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (p.suffix == ".csv" or p.name == "headline.json")}


@pytest.mark.slow
def test_shipped_notebooks_identical_with_reused_and_fresh_kernels(tmp_path, prices_dir):
    """One batch of three events and two run-once notebooks on two workers (each worker runs
    several notebooks on its one kernel): every headline and CSV byte for byte as with a fresh
    kernel per notebook."""
    events = ["alibaba_antitrust_fine", "didi_cybersecurity_review", "ant_ipo_suspended"]
    names = ["event_study", "spillovers", "cross_listing"]
    out = {}
    for mode, fresh in (("reused", False), ("fresh", True)):
        root = tmp_path / mode
        result = reports.run_report(names, event_ids=events, output=root, jobs=2,
                                    progress=False, prices_dir=prices_dir, fresh_kernels=fresh)
        assert result.exit_code == 0, [o.error for o in result.failures]
        assert [o.label for o in result.outcomes] == [*events, "spillovers", "cross_listing"]
        out[mode] = _files(root)
    assert sorted(out["reused"]) == sorted(out["fresh"])
    assert sum(k.endswith(".csv") for k in out["fresh"]) >= 10
    assert sum(k.endswith("headline.json") for k in out["fresh"]) == 5
    for key in out["fresh"]:
        assert out["reused"][key] == out["fresh"][key], key
    heads = [json.loads(v) for k, v in out["fresh"].items() if k.endswith("headline.json")]
    assert all(heads)
    own = kernel_pool._WORKER_KERNEL.pid if kernel_pool._WORKER_KERNEL is not None else None
    # the workers' kernels went with the workers (this process's own reused kernel, e.g. of
    # tests/test_notebooks.py on the same pytest worker, is not the batch's)
    assert [p for p in _kernel_children() if p.pid != own] == []


RENDER_CELLS = [
    "# parameters\nevent_id = 'E0'\nreport_dir = None",
    ("import hashlib, io, os\nimport matplotlib.pyplot as plt\n"
     "from crackdown.output.plots import save_figure\n%matplotlib inline"),
    ("fig, ax = plt.subplots()\nax.plot([1, 2, 3])\n"
     "saved = save_figure(fig, os.path.join(report_dir, 'kept.png'))\nplt.show()"),
    ("fig, ax = plt.subplots()\nax.plot([3, 2, 1])\n"
     "save_figure(fig, os.path.join(report_dir, 'changed.png'))\n"
     "ax.set_title('changed after saving')\nplt.show()"),
]


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [False, True])
def test_a_saved_figure_is_drawn_once(tmp_path, fresh):
    path = write_notebook(tmp_path / "figs.ipynb", RENDER_CELLS)
    result = reports.run_report(path, event_ids=["E1", "E2"], output=tmp_path / "out", jobs=1,
                                progress=False, fresh_kernels=fresh)
    assert [o.status for o in result.outcomes] == ["ok", "ok"], result.outcomes[0].error
    for outcome in result.outcomes:
        folder = tmp_path / "out" / "figs" / outcome.label
        shown = {name.split("-")[1]: (folder / name).read_bytes() for name in outcome.figures}
        # (papermill's injected-parameters cell comes after the parameters cell)
        assert sorted(shown) == ["cell03", "cell04"]
        # the inline image of an unchanged figure is the saved file (150 dpi, white), byte for
        # byte: it was not drawn a second time
        assert shown["cell03"] == (folder / "kept.png").read_bytes()
        # a figure changed after saving is drawn again for its inline image
        assert shown["cell04"] != (folder / "changed.png").read_bytes()
        assert shown["cell04"][:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_runs_every_notebook_in_one_batch_and_passes_fresh_kernels(monkeypatch, tmp_path):
    from crackdown.cli import main

    seen = []

    def fake(notebooks, **kwargs):
        seen.append(([Path(n).stem for n in notebooks], kwargs["event_ids"],
                     kwargs["fresh_kernels"]))
        return reports.BatchResult([], tmp_path / "index.html")

    monkeypatch.setattr(reports, "run_report", fake)
    data = Path(__file__).parent / "data"
    base = ["report", "--notebook", "all", "--notebooks-dir", str(data), "--events",
            "alibaba_antitrust_fine", "--output", str(tmp_path), "--no-progress"]
    assert [main(base), main([*base, "--fresh-kernels"])] == [0, 0]
    assert seen == [(["report_event", "report_overview"], ["alibaba_antitrust_fine"], False),
                    (["report_event", "report_overview"], ["alibaba_antitrust_fine"], True)]


def test_a_list_of_notebooks_is_checked_like_one(tmp_path):
    from crackdown.errors import StudyConfigError

    data = Path(__file__).parent / "data"
    event, once = data / "report_event.ipynb", data / "report_overview.ipynb"
    with pytest.raises(StudyConfigError, match="runs per event .* no events"):
        reports.run_report([once, event], output=tmp_path, progress=False)
    with pytest.raises(StudyConfigError, match="runs once; drop --events"):
        reports.run_report([once], event_ids=["E1"], output=tmp_path, progress=False)
    with pytest.raises(StudyConfigError, match="listed twice"):
        reports.run_report([event, event], event_ids=["E1"], output=tmp_path, progress=False)
    with pytest.raises(StudyConfigError, match="no notebook given"):
        reports.run_report([], output=tmp_path, progress=False)
