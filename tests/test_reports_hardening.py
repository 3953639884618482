"""Issue #16, class 7 and the report side of classes 1 and 9: reports are transactional and
interruptible, ``--output`` and ``--timeout`` are checked, the index marks incomplete folders.

Most tests replace ``papermill.execute_notebook`` by a fake (no kernel): the runner's own logic
(hidden build folder, atomic status, rename into place, clean-up) is what is tested. Two slow
tests run ``crackdown report`` in a subprocess on a tiny notebook and interrupt it.
"""

from __future__ import annotations

import errno
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _notebook_helpers import SLEEPY_BODY, SLEEPY_PARAMETERS, write_notebook
from hypothesis import given, settings
from hypothesis import strategies as st

from crackdown.cli import main
from crackdown.errors import CrackdownError, StudyConfigError
from crackdown.output import report_io, reports
from crackdown.output.report_io import ReportInterrupted

DATA = Path(__file__).parent / "data"
EVENTS = ["ant_regulators_summon_jack_ma", "ant_ipo_suspended"]  # in the project's events.csv


def _notebook(path: Path, *, sleepy: bool = False) -> Path:
    """A per-event notebook: parameters cell, then a cell writing a marker (and sleeping)."""
    return write_notebook(path, [SLEEPY_PARAMETERS, SLEEPY_BODY if sleepy else "x = 1"])


class FakePapermill:
    """Stand-in for ``papermill.execute_notebook``: copies the notebook, writes a CSV and a
    headline into the report folder, then does what ``mode`` says."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.folders: list[Path] = []

    def __call__(self, input_path, output_path, parameters=None, **kwargs):
        folder = Path(output_path).parent
        self.folders.append(folder)
        text = Path(input_path).read_text(encoding="utf-8")
        if self.mode == "enospc":  # the disk fills while papermill writes the notebook
            Path(output_path).write_text(text[: len(text) // 2], encoding="utf-8")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_path))
        Path(output_path).write_text(text, encoding="utf-8")
        if self.mode == "fail":
            raise RuntimeError("the notebook failed")
        (folder / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
        reports.record_headline({"n": len(parameters["event_id"])}, report_dir=folder)
        if self.mode == "sleep":
            kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                      start_new_session=True)
            report_io.register_kernel(folder, kernel.pid)  # as the kernel manager does
            self.kernel = kernel
            # only now may the test interrupt: before registration, the "kernel" is not yet
            # known to the run (on a loaded machine the Popen above takes long enough to race)
            (folder / "started").touch()
            while kernel.poll() is None:  # papermill notices a dead kernel
                time.sleep(0.05)
            raise RuntimeError("kernel died")


@pytest.fixture
def nb(tmp_path):
    return _notebook(tmp_path / "mini.ipynb")


def _run(nb_path, out, fake, monkeypatch, events=("E1",), **kw):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    kw.setdefault("fresh_kernels", True)  # the fake starts no kernel: none to reuse
    return reports.run_report(nb_path, event_ids=list(events), output=out, progress=False, **kw)


def _hidden(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*")]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _index_text(out: Path) -> str:
    return (out / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# Transactional report folders (fake papermill, no kernel)
# ------------------------------------------------------------------------------------------


def test_report_is_built_hidden_then_renamed(nb, tmp_path, monkeypatch):
    fake = FakePapermill()
    result = _run(nb, tmp_path / "out", fake, monkeypatch)
    final = tmp_path / "out" / "mini" / "E1"
    assert result.outcomes[0].ok and result.outcomes[0].report_dir == str(final)
    built_in = fake.folders[0]
    assert built_in.parent == final.parent and re.fullmatch(r"\.E1\.partial-\d+-[0-9a-f]{8}",
                                                             built_in.name)
    assert not built_in.exists()
    assert {p.name for p in final.iterdir()} == {"E1.ipynb", "E1.html", "table.csv",
                                                "headline.json", "status.json"}
    status = json.loads((final / "status.json").read_text())
    assert status["status"] == "ok" and status["headline"] == {"n": 2}
    assert _hidden(tmp_path / "out") == []


def test_failed_rerun_does_not_keep_the_previous_files(nb, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(nb, out, FakePapermill(), monkeypatch)
    result = _run(nb, out, FakePapermill("fail"), monkeypatch)
    final = out / "mini" / "E1"
    assert result.outcomes[0].status == "failed"
    assert "RuntimeError: the notebook failed" in result.outcomes[0].error
    names = {p.name for p in final.iterdir()}
    assert "table.csv" not in names and "headline.json" not in names  # the old run's outputs
    assert json.loads((final / "status.json").read_text())["status"] == "failed"
    assert "Failed (1)" in _index_text(out)


@pytest.mark.parametrize("where", ["notebook", "status"])
def test_full_disk_keeps_the_previous_report_and_leaves_no_truncated_file(
        nb, tmp_path, monkeypatch, capsys, where):
    out = tmp_path / "out"
    _run(nb, out, FakePapermill(), monkeypatch, events=EVENTS[:1])
    final = out / "mini" / EVENTS[0]
    before = _snapshot(final)
    if where == "status":  # the disk fills when status.json is flushed
        real_fsync = os.fsync

        def fsync(fd):
            if ".status.json.tmp" in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        monkeypatch.setattr(report_io.os, "fsync", fsync)
    fake = FakePapermill("enospc" if where == "notebook" else "ok")
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    code = main(["report", "--notebook", "mini", "--notebooks-dir", str(nb.parent), "--events",
                 EVENTS[0], "--output", str(out), "--no-progress", "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and "free disk space" in err
    assert str(final) in err
    assert _snapshot(final) == before  # previous report untouched
    assert _hidden(out) == []  # no half-written build folder, no temporary status file
    assert not [p for p in out.rglob("status.json") if p.stat().st_size == 0]


def test_run_one_raises_output_errors_and_cleans_up(nb, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", FakePapermill("enospc"))
    with pytest.raises(CrackdownError) as info:
        reports.run_one(str(nb), str(tmp_path / "out"), "E1", {}, event_id="E1")
    # the path named is the report's, not the hidden build folder's
    assert f"cannot write {tmp_path / 'out' / 'mini' / 'E1' / 'E1.ipynb'}: No space" in str(
        info.value)
    assert list((tmp_path / "out" / "mini").iterdir()) == []


def test_interrupt_kills_the_kernel_removes_the_folder_and_lists_the_finished(
        nb, tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "out"
    fakes = {"E1": FakePapermill(), "E2": FakePapermill("sleep")}

    def dispatch(input_path, output_path, parameters=None, **kw):
        return fakes[parameters["event_id"]](input_path, output_path, parameters, **kw)

    monkeypatch.setattr(papermill, "execute_notebook", dispatch)

    def interrupt_when_started():
        for _ in range(500):
            if glob.glob(str(out / "mini" / ".E2.partial-*" / "started")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(ReportInterrupted) as info:
        reports.run_report(nb, event_ids=["E1", "E2"], output=out, progress=False,
                           fresh_kernels=True)
    exc = info.value
    assert exc.exit_code == 130 and exc.signal_name == "SIGINT"
    assert [o.label for o in exc.finished] == ["E1"] and exc.index == out / "index.html"
    assert fakes["E2"].kernel.wait(timeout=10) == -signal.SIGKILL  # the "kernel" group killed
    assert sorted(p.name for p in (out / "mini").iterdir()) == ["E1"]
    rows = _index_text(out)
    assert "mini/E1/E1.html" in rows and "E2" not in rows
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_stale_folders_are_incomplete_in_the_index_and_removed_by_a_rerun(
        nb, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(nb, out, FakePapermill(), monkeypatch, events=("E1", "E2"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = out / "mini"
    (parent / f".E3.partial-{dead.pid}-0123abcd").mkdir()  # a run killed with kill -9
    (parent / f".E4.partial-{os.getpid()}-0123abcd").mkdir()  # a live run: not listed
    (parent / "E5").mkdir()  # half-written by an older crackdown
    (parent / "E5" / "kernel.log").write_text("")
    (parent / "E6").mkdir()
    (parent / "E6" / "status.json").write_text('{"status": "ok", "html": "E6.ht')
    (parent / "E7").mkdir()
    (parent / "E7" / "status.json").write_text('["not", "a", "status"]')
    (parent / "E2" / "E2.html").unlink()  # ok, but its HTML is gone
    (parent / "notes").mkdir()  # not a report folder
    reports.write_index(out)
    text = _index_text(out)
    incomplete = re.search(r"<h2>Incomplete \((\d+)\)</h2><ul class='incomplete'>(.*?)</ul>",
                           text, re.DOTALL)
    assert incomplete and incomplete[1] == "5", text
    for label, reason in [("E3", "left by an interrupted run"), ("E5", "status.json missing"),
                          ("E6", "status.json unreadable"), ("E7", "not a report status"),
                          ("E2", "file(s) missing: E2.html")]:
        assert re.search(rf"mini / {label}</b>: <span class='error'>[^<]*{re.escape(reason)}",
                         incomplete[2]), label
    assert "E4" not in text and "notes" not in text
    _run(nb, out, FakePapermill(), monkeypatch, events=("E3",))  # the rerun of E3
    assert not (parent / f".E3.partial-{dead.pid}-0123abcd").exists()
    assert "Incomplete (4)" in _index_text(out)


def test_a_swap_killed_midway_is_undone(tmp_path):
    parent = tmp_path / "nb"
    old = parent / ".E1.old-999999999-0123abcd"  # pid above pid_max: dead
    old.mkdir(parents=True)
    (old / "status.json").write_text("{}")
    report_io.remove_stale(parent, {"E1"})
    assert (parent / "E1" / "status.json").is_file() and not old.exists()


@settings(max_examples=60, deadline=None)
@given(before=st.binary(max_size=300), after=st.binary(max_size=300), fail=st.booleans())
def test_atomic_write_all_or_nothing(tmp_path_factory, before, after, fail):
    path = tmp_path_factory.mktemp("atomic") / "status.json"
    report_io.atomic_write(path, before)
    if fail:
        real = report_io.os.replace

        def replace(src, dst):
            raise OSError(errno.ENOSPC, "No space left on device")

        report_io.os.replace = replace
        try:
            with pytest.raises(OSError):
                report_io.atomic_write(path, after)
        finally:
            report_io.os.replace = real
    else:
        report_io.atomic_write(path, after)
    assert path.read_bytes() == (before if fail else after)
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


# ------------------------------------------------------------------------------------------
# --output and --timeout
# ------------------------------------------------------------------------------------------


def _cli_error(capsys, *args) -> str:
    code = main(["report", "--notebook", "report_overview", "--notebooks-dir", str(DATA),
                 "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_output_that_is_a_file_or_under_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    err = _cli_error(capsys, "--output", str(afile))
    assert f"--output {afile}: is an existing file" in err
    err = _cli_error(capsys, "--output", str(afile / "sub" / "reports"))
    assert f"{afile} is a file, so the folder cannot be created" in err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report_overview").write_text("x")  # where the notebook's folder goes
    err = _cli_error(capsys, "--output", str(tmp_path / "out"))
    assert f"{tmp_path / 'out' / 'report_overview'} is a file" in err
    assert afile.read_text() == "x"


def test_output_read_only(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:  # root writes anywhere: simulate below
        ro.chmod(0o555)
    real_open = report_io.os.open

    def deny(path, *args, **kwargs):
        if str(path).startswith(str(ro)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(report_io.os, "open", deny)
    err = _cli_error(capsys, "--output", str(ro))
    assert f"--output {ro}: the folder is not writable (Permission denied)" in err
    err = _cli_error(capsys, "--output", str(ro / "new"))
    assert str(ro / "new") in err
    ro.chmod(0o755)
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-0.5"])
def test_timeout_must_be_positive_and_finite(tmp_path, capsys, value):
    err = _cli_error(capsys, "--output", str(tmp_path), "--timeout", value)
    assert re.search(rf"--timeout {re.escape(repr(float(value)))}: must be a positive, finite "
                     "number of seconds; omit it for no limit", err), err
    assert not (tmp_path / "index.html").exists()


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                 st.none()))
def test_check_timeout_accepts_exactly_positive_finite_numbers(value):
    ok = value is None or (math.isfinite(value) and value > 0)
    if ok:
        assert report_io.check_timeout(value, "--timeout") == (None if value is None
                                                              else float(value))
    else:
        with pytest.raises(StudyConfigError, match="--timeout"):
            report_io.check_timeout(value, "--timeout")


def test_run_report_checks_its_options(tmp_path):
    with pytest.raises(StudyConfigError, match="--timeout -1"):
        reports.run_report(DATA / "report_overview.ipynb", output=tmp_path, execution_timeout=-1)
    with pytest.raises(StudyConfigError, match="--jobs 'x'"):
        reports.run_report(DATA / "report_overview.ipynb", output=tmp_path, jobs="x")
    with pytest.raises(StudyConfigError, match="start_timeout 0"):
        reports.run_report(DATA / "report_overview.ipynb", output=tmp_path, start_timeout=0)


def test_help_states_the_trust_boundary(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Trust boundary: a notebook is a program, run with your rights" in text
    assert "its notebooks are executed as code: use only a folder you trust" in text


# ------------------------------------------------------------------------------------------
# Real kernels: interrupt `crackdown report` in a subprocess
# ------------------------------------------------------------------------------------------


def _interrupted_cli(tmp_path, jobs: int, send) -> tuple[int, str, Path, list]:
    import psutil

    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "sleepy.ipynb", sleepy=True)
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crackdown", "report", "--notebook", "sleepy", "--notebooks-dir",
         str(folder), "--events", ",".join(EVENTS), "-p", f"slow={EVENTS[1]}", "--jobs",
         str(jobs), "--no-progress", "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=env)
    try:
        deadline = time.monotonic() + 120
        while not (glob.glob(str(out / "sleepy" / f".{EVENTS[1]}.partial-*" / "started"))
                   and (out / "sleepy" / EVENTS[0] / "status.json").is_file()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow report never started"
            time.sleep(0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("ipykernel" in " ".join(c.cmdline()) for c in children)
        send(proc)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    return proc.returncode, err, out, alive


def _check_consistent(out: Path) -> None:
    assert sorted(p.name for p in (out / "sleepy").iterdir()) == [EVENTS[0]]
    text = _index_text(out)
    assert f"sleepy/{EVENTS[0]}/{EVENTS[0]}.html" in text and EVENTS[1] not in text
    assert "Incomplete" not in text and "Failed" not in text


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_the_batch_with_exit_130(tmp_path, jobs):
    """Ctrl-C: SIGINT to the whole foreground process group (the terminal's behaviour), which
    reaches the worker processes too (jobs=2)."""
    code, err, out, alive = _interrupted_cli(tmp_path, jobs,
                                             lambda p: os.killpg(p.pid, signal.SIGINT))
    assert code == 130, err
    assert err.strip() == (f"crackdown: interrupted (SIGINT); 1 report(s) finished and kept, "
                           f"unfinished ones removed; index: {out / 'index.html'}")
    assert alive == []  # no orphan kernel
    _check_consistent(out)


@pytest.mark.slow
def test_sigterm_stops_a_parallel_batch_with_exit_143(tmp_path):
    code, err, out, alive = _interrupted_cli(tmp_path, 2, lambda p: p.send_signal(signal.SIGTERM))
    assert code == 143, err
    assert len(err.strip().splitlines()) == 1 and "interrupted (SIGTERM)" in err
    assert alive == []  # kernels and worker processes gone
    _check_consistent(out)


def test_an_aborted_run_drops_its_threads_papermill_records_until_it_ends(caplog):
    """``mark_aborted`` silences papermill's logger for the aborted run's thread only (its
    dying kernel's "Kernel died ..." line), and ``run_ended`` restores it."""
    import logging
    import threading

    log = logging.getLogger("papermill")
    marked, go, done = threading.Event(), threading.Event(), threading.Event()

    def run():
        log.error("before the abort")
        go.set()
        marked.wait(10)
        log.error("Kernel died while waiting for execute reply.")
        report_io.run_ended()
        log.error("after the run ended")
        done.set()

    with caplog.at_level(logging.ERROR, logger="papermill"):
        worker = threading.Thread(target=run)
        worker.start()
        go.wait(10)
        report_io.mark_aborted(worker)
        log.error("another thread meanwhile")
        marked.set()
        done.wait(10)
        worker.join(10)
        report_io.mark_aborted(worker)  # a finished thread: nothing to silence
        log.error("this thread later")
    assert [r.getMessage() for r in caplog.records] == [
        "before the abort", "another thread meanwhile", "after the run ended",
        "this thread later"]


def test_a_worker_aborting_its_runs_keeps_papermill_quiet_in_every_thread(caplog, monkeypatch):
    """``_abort_runs`` (a cluster worker told to abort) drops papermill's records of every
    thread for its clean-up window, so a dying kernel's "Kernel died ..." line cannot precede
    the batch's one line, whichever thread logs it; after the window the records pass again."""
    import asyncio
    import logging
    import threading

    from crackdown.output import report_cluster

    log = logging.getLogger("papermill")
    monkeypatch.setattr(report_io, "_QUIET_UNTIL", [0.0])
    monkeypatch.setattr(report_cluster, "ABORT_QUIET_EXTRA", 0.3)

    def from_a_thread(message):
        t = threading.Thread(target=log.error, args=(message,))
        t.start()
        t.join(10)

    with caplog.at_level(logging.ERROR, logger="papermill"):
        from_a_thread("before the abort")
        assert asyncio.run(report_cluster._abort_runs("no-such-token", 0.0)) == 0
        from_a_thread("Kernel died while waiting for execute reply.")
        log.error("this thread, during the clean-up")
        deadline = time.monotonic() + 10
        while time.monotonic() < report_io._QUIET_UNTIL[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        from_a_thread("after the window")
    assert [r.getMessage() for r in caplog.records] == ["before the abort", "after the window"]
