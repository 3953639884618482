"""A plain (non-editable) install: what the wheel ships, where files are looked up, and the
quiet interactive behaviour of the notebook helpers.

Fast tests check the wheel's force-include table against the checkout, the checkout > bundled
lookups (:func:`crackdown.config.project_file`, :func:`crackdown.output.reports.notebooks_dir`),
``crackdown notebooks DIR``, :func:`crackdown.config.output_folder` and
:func:`crackdown.output.reports.record_headline`. The ``slow`` test builds the wheel, installs
it into a fresh venv and runs ``crackdown report`` from a folder outside the checkout.
"""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import site
import subprocess
import sys
import tomllib
import warnings
import zipfile
from pathlib import Path

import pytest

from crackdown import config
from crackdown.cli import main
from crackdown.errors import StudyConfigError
from crackdown.output import reports

ROOT = config.repo_root()
#: Code that finds a file through the checkout (None / absent after ``pip install``).
CHECKOUT_ONLY = ("repo_root(", '/ "benchmarks"', 'Path("benchmarks', '"../', "__file__")
needs_checkout = pytest.mark.skipif(ROOT is None, reason="needs the repository checkout "
                                    "(pyproject.toml, notebooks/): crackdown is installed")


def _checkout_notebooks() -> list[str]:
    return sorted(p.name for p in (ROOT / config.NOTEBOOKS_FOLDER).glob("*.ipynb"))


def _force_include() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]


# ------------------------------------------------------------------------------------------
# What the wheel ships (the class: a file the checkout has and the install lacks)
# ------------------------------------------------------------------------------------------


@needs_checkout
def test_force_include_ships_every_notebook_and_bundled_file_at_the_same_path():
    table = _force_include()
    # one rule for every entry: <path> in the checkout -> crackdown/_bundled/<path>
    assert {src: f"crackdown/_bundled/{src}" for src in table} == table
    expected = set(config.BUNDLED_FILES) | {f"notebooks/{n}" for n in _checkout_notebooks()}
    assert set(table) == expected, (
        "pyproject.toml [tool.hatch.build.targets.wheel.force-include] must list every "
        "notebooks/*.ipynb and every crackdown.config.BUNDLED_FILES entry")
    for src in table:
        assert (ROOT / src).is_file(), f"{src} is force-included but missing from the checkout"


@needs_checkout
def test_notebooks_find_project_files_only_through_bundled_lookups():
    """``config.repo_root()`` is None after ``pip install``: a notebook using it (or a path
    relative to the checkout) would work in a checkout and fail for an installed user."""
    offenders = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        bad = [s for s in CHECKOUT_ONLY if s in code]
        if bad:
            offenders[path.name] = bad
    assert not offenders, (
        f"notebooks look up checkout-only paths: {offenders}; use "
        "config.project_file('benchmarks/results/size_power.csv') (see crackdown.config)")


def test_project_file_checkout_then_bundle_and_refuses_unshipped(tmp_path, monkeypatch):
    with pytest.raises(StudyConfigError, match=r"'notebooks/extra.csv'.*BUNDLED_FILES"):
        config.project_file("notebooks/extra.csv")
    if ROOT is not None:
        assert config.project_file("events.csv") == ROOT / "events.csv"
    bundle = tmp_path / "_bundled"
    (bundle / "benchmarks" / "results").mkdir(parents=True)
    (bundle / "benchmarks" / "results" / "size_power.csv").write_text("test\n")
    monkeypatch.setattr(config, "repo_root", lambda: None)
    monkeypatch.setattr(config, "BUNDLED_DIR", bundle)
    assert config.project_file("benchmarks/results/size_power.csv") == (
        bundle / "benchmarks" / "results" / "size_power.csv")
    assert config.project_file("events.csv") is None  # not in this bundle
    assert config.events_file() == bundle / "events.csv"


def test_notebooks_dir_falls_back_to_the_bundled_copies(tmp_path, monkeypatch):
    bundle = tmp_path / "_bundled"
    monkeypatch.setattr(config, "repo_root", lambda: None)
    monkeypatch.setattr(config, "BUNDLED_DIR", bundle)
    with pytest.raises(StudyConfigError, match="no report notebooks.*--notebooks-dir"):
        reports.notebooks_dir()
    (bundle / "notebooks").mkdir(parents=True)
    (bundle / "notebooks" / "demo.ipynb").write_text("{}")
    assert reports.notebooks_dir() == bundle / "notebooks"
    assert reports.resolve_notebook("demo") == bundle / "notebooks" / "demo.ipynb"
    explicit = tmp_path / "mine"
    explicit.mkdir()
    assert reports.notebooks_dir(explicit) == explicit  # --notebooks-dir still wins


# ------------------------------------------------------------------------------------------
# crackdown notebooks DIR
# ------------------------------------------------------------------------------------------


def test_notebooks_command_copies_refuses_and_forces(tmp_path, capsys):
    source = reports.notebooks_dir()
    names = sorted(p.name for p in source.glob("*.ipynb"))
    assert names
    target = tmp_path / "a" / "b"
    assert main(["notebooks", str(target)]) == 0
    out, _ = capsys.readouterr()
    assert sorted(p.name for p in target.iterdir()) == names  # no temporary files left
    for name in names:
        assert filecmp.cmp(source / name, target / name, shallow=False)
    assert f"copied {len(names)} notebook(s)" in out

    # an existing notebook: refused, one line, and nothing else is copied either
    other = tmp_path / "other"
    other.mkdir()
    (other / names[-1]).write_text("mine")
    assert main(["notebooks", str(other)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and names[-1] in err and "--force" in err
    assert sorted(p.name for p in other.iterdir()) == [names[-1]]
    assert (other / names[-1]).read_text() == "mine"

    assert main(["notebooks", str(other), "--force", "--notebook", names[-1].removesuffix(
        ".ipynb")]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in other.iterdir()) == [names[-1]]
    assert filecmp.cmp(source / names[-1], other / names[-1], shallow=False)


def test_notebooks_command_errors_are_one_line(tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert main(["notebooks", str(afile)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "is a file" in err
    assert main(["notebooks", str(tmp_path / "n"), "--notebook", "nope"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "'nope'" in err and "available in" in err
    assert not (tmp_path / "n").exists()


# ------------------------------------------------------------------------------------------
# Interactive runs are quiet and write nothing unless asked
# ------------------------------------------------------------------------------------------


def test_record_headline_outside_a_report_is_silent_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(reports.REPORT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reports.record_headline({"x": 1}) is None
    assert caught == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(StudyConfigError, match="value of 'a' is list"):  # still validated
        reports.record_headline({"a": [1]})
    # asked: report_dir given, or the environment variable set
    path = reports.record_headline({"x": 2}, report_dir=tmp_path / "r")
    assert json.loads(path.read_text()) == {"x": 2}
    monkeypatch.setenv(reports.REPORT_DIR_ENV, str(tmp_path / "env"))
    assert reports.record_headline({"y": 3}) == tmp_path / "env" / reports.HEADLINE_FILE


def test_output_folder_contract(tmp_path, monkeypatch):
    monkeypatch.delenv(config.REPORT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.output_folder(None) is None and config.output_folder("") is None
    assert list(tmp_path.iterdir()) == []  # an interactive run creates nothing
    given = config.output_folder(tmp_path / "x" / "y")
    assert given == tmp_path / "x" / "y" and given.is_dir()
    monkeypatch.setenv(config.REPORT_DIR_ENV, str(tmp_path / "report"))
    assert config.output_folder(None) == tmp_path / "report" and (tmp_path / "report").is_dir()
    assert config.output_folder(str(tmp_path / "z")) == tmp_path / "z"  # explicit wins
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StudyConfigError, match=r"output_dir .*afile.*cannot create"):
        config.output_folder(tmp_path / "afile")
    assert reports.REPORT_DIR_ENV == config.REPORT_DIR_ENV


# ------------------------------------------------------------------------------------------
# The real thing: build the wheel, install it into a fresh venv, run outside the checkout
# ------------------------------------------------------------------------------------------


def _run(cmd: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                          **kw)


@pytest.mark.slow
@needs_checkout
def test_wheel_installed_outside_the_checkout_runs_a_report(tmp_path, request):
    """Build the wheel offline, install it into a fresh venv, run the CLI from another folder.

    How the fresh venv gets the wheel's ``crackdown`` and nothing of the checkout:

    * the wheel is built with ``pip wheel --no-build-isolation --no-index`` from the hatchling
      of this venv (a dev dependency), so nothing is downloaded; without hatchling the test
      skips;
    * ``python -m venv`` (pip from ``ensurepip``, offline) and ``pip install --no-deps
      --no-index WHEEL`` put the packaged ``crackdown`` into the new venv's site-packages;
    * the dependencies (numpy, pandas, papermill, ipykernel, ...) are reused from this
      interpreter's site-packages through one ``.pth`` file listing those folders. Python adds
      the listed folders to ``sys.path`` *after* the new venv's own site-packages and does not
      run the ``.pth`` files inside them, so the editable install's ``_editable_impl_*.pth``
      (which points at the checkout) stays inactive and the wheel's ``crackdown`` is the one
      imported; the dependencies' data files (nbconvert's HTML templates in
      ``<prefix>/share/jupyter``) are found the same way through ``JUPYTER_PATH``;
    * the commands run with ``PYTHONPATH`` removed and the working folder outside the
      checkout; the test asserts ``crackdown.__file__`` lies in the new venv, ``repo_root()``
      is None and the report's kernel read the bundled ``events.csv``.
    """
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("cannot build the wheel offline: hatchling is not installed in this venv "
                    "(pip install -e '.[dev]' installs it)")
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                  "--no-build-isolation", "--no-index", "-q", "-w", str(wheels)], timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("crackdown-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    bundled = {n.removeprefix("crackdown/_bundled/") for n in shipped
               if n.startswith("crackdown/_bundled/")}
    assert bundled == set(config.BUNDLED_FILES) | {f"notebooks/{n}" for n in
                                                   _checkout_notebooks()}
    assert "crackdown/timeline/universe.csv" in shipped

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv here: {made.stderr.strip()[-300:]}")
    python = venv / "bin" / "python"
    where_lib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run([str(python), "-c", where_lib], timeout=60).stdout.strip())
    deps = [p for p in [*site.getsitepackages(), site.getusersitepackages()]
            if Path(p).is_dir() and Path(p).resolve() != ROOT.resolve()]
    (purelib / "_crackdown_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    installed = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                      "--no-compile", "-q", str(wheel)], timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    jupyter_data = str(Path(sys.prefix) / "share" / "jupyter")
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="Agg",
               CRACKDOWN_CACHE_DIR=str(tmp_path / "cache"), CRACKDOWN_OFFLINE="1",
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"),
               JUPYTER_PATH=os.pathsep.join(filter(None, [jupyter_data, env.get("JUPYTER_PATH")])))
    code = ("import sys, crackdown; from crackdown import config; print(crackdown.__file__); "
            "print(config.repo_root()); print(sys.path)")
    probe = _run([str(python), "-c", code], timeout=120, cwd=elsewhere, env=env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, root_seen, path_seen = probe.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where
    assert root_seen == "None" and repr(str(ROOT)) not in path_seen

    crackdown = str(venv / "bin" / "crackdown")
    copied = _run([crackdown, "notebooks", "nb"], timeout=120, cwd=elsewhere, env=env)
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (elsewhere / "nb").iterdir()) == _checkout_notebooks()
    for name in _checkout_notebooks():
        assert filecmp.cmp(ROOT / "notebooks" / name, elsewhere / "nb" / name, shallow=False)

    prices = request.getfixturevalue("prices_dir")  # skips here without the price snapshot
    env["CRACKDOWN_PRICES_DIR"] = str(prices)
    report = _run([crackdown, "report", "--events", "alibaba_antitrust_fine", "--notebook",
                   "event_study", "--output", "out", "--no-progress", "--jobs", "1"],
                  timeout=600, cwd=elsewhere, env=env)
    assert report.returncode == 0, (report.stdout[-2000:], report.stderr[-2000:])
    folder = elsewhere / "out" / "event_study" / "alibaba_antitrust_fine"
    status = json.loads((folder / reports.STATUS_FILE).read_text())
    assert status["status"] == "ok", status
    assert (elsewhere / "out" / "index.html").is_file()
    assert (folder / "alibaba_antitrust_fine.html").is_file()
    assert json.loads((folder / reports.HEADLINE_FILE).read_text())
    executed = (folder / "alibaba_antitrust_fine.ipynb").read_text(encoding="utf-8")
    bundled_events = Path(where).resolve().parent / "_bundled" / "events.csv"
    assert str(bundled_events) in executed  # the kernel imported the installed crackdown
