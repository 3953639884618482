"""``crackdown report --scheduler``: notebook runs as Dask tasks on a real LocalCluster (worker
processes on 127.0.0.1). The same reports as in-process, byte for byte; bad or unreachable
schedulers fail before anything is written; an error or an interruption aborts the runs on the
workers (kernels killed, unfinished folders removed) and Ctrl-C exits 130 with one line."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest
from _notebook_helpers import SLEEPY_BODY, SLEEPY_PARAMETERS, write_notebook

from crackdown import cluster, config
from crackdown.cli import main
from crackdown.errors import CrackdownError
from crackdown.output import report_cluster

EVENTS = ["alibaba_antitrust_fine", "ant_ipo_suspended"]  # both have prices in the snapshot
SLEEPY_EVENTS = ["ant_regulators_summon_jack_ma", "ant_ipo_suspended"]  # in events.csv
#: the scheduler's health/metrics server on a free port, not 8787 (taken under pytest -n 2)
FREE_HTTP_PORT = {"dashboard_address": "127.0.0.1:0"}


@pytest.fixture(autouse=True)
def _no_scheduler_env(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)


@pytest.fixture(scope="module")
def workers():
    """A cluster that outlives each batch (as an external ``dask scheduler`` would)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, host="127.0.0.1", dashboard_address=None,
                      threads_per_worker=1, scheduler_kwargs=FREE_HTTP_PORT) as local:
        yield local


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------
# The CLI refuses a bad scheduler before writing anything
# ------------------------------------------------------------------------------------------


def test_bad_scheduler_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, monkeypatch):
    out = tmp_path / "reports"
    base = ["report", "--events", "ant_ipo_suspended", "--output", str(out), "--no-progress"]
    assert main([*base, "--scheduler", "tcp//10.0.0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("crackdown report: error: --scheduler 'tcp//10.0.0.5': not a "
                          "scheduler form; use one of: in-process, local, local:N")
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "local:0")
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$CRACKDOWN_DASK_SCHEDULER 'local:0'" in err
    monkeypatch.delenv(cluster.SCHEDULER_ENV)
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    assert main([*base, "--scheduler", address]) == 2
    assert time.monotonic() - started < 8
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot reach the Dask scheduler at {address}: " in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# The executor with a fake run (no kernel): failures, stopping errors, the abort
# ------------------------------------------------------------------------------------------


@dataclass
class FakeOutcome:
    label: str
    status: str = "ok"
    environ: str = ""


def fake_run(label: str, folder: str, behaviour: str) -> FakeOutcome:
    """A stand-in for run_one on a worker: ok, crash, a stopping error, or a long run that
    records how it ended."""
    here = Path(folder)
    if behaviour == "crash":
        raise RuntimeError(f"worker bug in {label}")
    if behaviour == "stop":  # once the long run is under way, as an unwritable output would
        deadline = time.monotonic() + 20
        while not (here / "started-long").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise CrackdownError(f"cannot write {folder}/{label}: Read-only file system; make it "
                             "writable or choose another --output")
    if behaviour == "long":
        (here / "started-long").touch()
        try:
            for _ in range(1200):
                time.sleep(0.05)
        except BaseException as exc:
            (here / f"ended-long-{type(exc).__name__}").touch()
            raise
    seen = {k: v for k, v in os.environ.items() if k.startswith("CRACKDOWN_")}
    return FakeOutcome(label, environ=json.dumps(seen, sort_keys=True))


def _failed(label: str, exc: BaseException) -> FakeOutcome:
    return FakeOutcome(label, status=f"failed: {cluster.one_line(exc)}")


def _bar():
    from tqdm.auto import tqdm

    return tqdm(total=0, disable=True)


def test_cluster_executor_outcomes_and_the_client_environment(workers, tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKDOWN_TEST_MARKER", "from-the-client")
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp://should-not-reach-the-worker:1")
    calls = [(label, (label, str(tmp_path), behaviour), {})
             for label, behaviour in [("a", "ok"), ("b", "crash"), ("c", "ok")]]
    results: dict = {}
    report_cluster.run_on_cluster(fake_run, _failed, calls, workers.scheduler_address,
                                  results, _bar())
    assert sorted(results) == ["a", "b", "c"]
    assert results["a"].status == results["c"].status == "ok"
    assert results["b"].status == "failed: RuntimeError: worker bug in b"
    seen = json.loads(results["a"].environ)
    assert seen["CRACKDOWN_TEST_MARKER"] == "from-the-client"  # the client's settings
    assert seen["CRACKDOWN_OFFLINE"] == "1"
    assert seen[cluster.SCHEDULER_ENV] == "in-process"  # nested work stays in the kernel
    assert config.REPORT_DIR_ENV not in seen


def test_a_stopping_error_aborts_the_running_runs_on_live_workers(workers, tmp_path):
    calls = [("long", ("long", str(tmp_path), "long"), {}),
             ("stop", ("stop", str(tmp_path), "stop"), {})]
    results: dict = {}
    started = time.monotonic()
    with pytest.raises(CrackdownError, match=r"Read-only file system; make it writable"):
        report_cluster.run_on_cluster(fake_run, _failed, calls, workers.scheduler_address,
                                      results, _bar())
    assert time.monotonic() - started < 20  # not the minute the long run would take
    assert results == {}
    # the long run was interrupted inside the run (run_one then kills its kernel and removes
    # its folder), on workers that are still alive
    assert (tmp_path / "ended-long-_Aborted").is_file()
    assert len(workers.scheduler_info["workers"]) == 2


def test_environment_is_the_clients_inside_a_run_and_restored_after(monkeypatch):
    monkeypatch.setenv("CRACKDOWN_WORKER_ONLY", "w")
    monkeypatch.setenv("CRACKDOWN_SHARED_KEY", "worker")
    monkeypatch.setenv("CRACKDOWN_REPORT_DIR", "/kept")
    with report_cluster._environment({"CRACKDOWN_SHARED_KEY": "client",
                                      "CRACKDOWN_NEW": "n"}):
        assert os.environ["CRACKDOWN_SHARED_KEY"] == "client"
        assert os.environ["CRACKDOWN_NEW"] == "n"
        assert "CRACKDOWN_WORKER_ONLY" not in os.environ
        assert os.environ["CRACKDOWN_REPORT_DIR"] == "/kept"
    assert os.environ["CRACKDOWN_SHARED_KEY"] == "worker"
    assert os.environ["CRACKDOWN_WORKER_ONLY"] == "w"
    assert "CRACKDOWN_NEW" not in os.environ


# ------------------------------------------------------------------------------------------
# Real notebooks: the same reports in-process and on the cluster
# ------------------------------------------------------------------------------------------


def _files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(pattern))}


@pytest.mark.shared
@pytest.mark.slow
def test_two_event_report_is_identical_in_process_and_on_a_cluster(prices_dir, tmp_path,
                                                                    capsys):
    from distributed import Client, LocalCluster, get_task_stream

    common = ["report", "--notebook", "event_study", "--events", ",".join(EVENTS),
              "--prices-dir", str(prices_dir), "--no-progress"]
    here, there = tmp_path / "in_process", tmp_path / "cluster"
    assert main([*common, "--jobs", "1", "--output", str(here)]) == 0
    assert "2 of 2 report(s) written" in capsys.readouterr().out
    with LocalCluster(n_workers=2, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs=FREE_HTTP_PORT) as local, \
            Client(local, set_as_default=False) as observer, \
            get_task_stream(client=observer) as stream:
        code = main([*common, "--jobs", "2", "--output", str(there), "--scheduler",
                     local.scheduler_address])
        workers = set(local.scheduler_info["workers"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 of 2 report(s) written" in captured.out
    assert captured.err == (f"crackdown: --jobs 2 ignored: the Dask workers of "
                            f"{local.scheduler_address} decide how many notebooks run at once\n")
    # the runs were Dask tasks (keys report-<notebook>/<label>-<token>) on the cluster's workers
    ran = {str(row["key"]).removeprefix("report-").rsplit("-", 1)[0]: row["worker"]
           for row in stream.data if str(row["key"]).startswith("report-")}
    assert set(ran) == {f"event_study/{event}" for event in EVENTS}
    assert set(ran.values()) <= workers

    for event in EVENTS:
        a, b = here / "event_study" / event, there / "event_study" / event
        status_a = json.loads((a / "status.json").read_text())
        status_b = json.loads((b / "status.json").read_text())
        for key in ("notebook", "label", "event_id", "status", "error", "figures", "headline",
                    "html", "executed_notebook", "meta"):
            assert status_a[key] == status_b[key], (event, key)
        assert status_b["status"] == "ok" and status_b["report_dir"] == str(b)
        assert (a / "headline.json").read_bytes() == (b / "headline.json").read_bytes()
        csvs = _files(a, "*.csv")
        assert len(csvs) == 5 and csvs == _files(b, "*.csv")  # byte for byte
        assert sorted(_files(a, "*.png")) == sorted(_files(b, "*.png"))
        # and the numbers are the right ones: the headline CAAR is the mean of the firm CARs
        firms = pd.read_csv(b / f"{event}_firm_cars.csv")
        head = json.loads((b / "headline.json").read_text())
        assert head["firms used"] == len(firms) >= 1
        assert head["CAAR[-1,+1] (%)"] == pytest.approx(100 * firms["car"].mean(), abs=1e-9)
    for out in (here, there):
        index = (out / "index.html").read_text(encoding="utf-8")
        for event in EVENTS:
            assert f"event_study/{event}/{event}.html" in index
        assert not [p for p in (out / "event_study").iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------
# Ctrl-C on the cluster path: exit 130, one line, nothing left running or half-written
# ------------------------------------------------------------------------------------------


def _sleepy_notebook(path: Path) -> None:
    write_notebook(path, [SLEEPY_PARAMETERS, SLEEPY_BODY])


def _kernels(processes) -> list:
    alive = []
    for proc in processes:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(proc.cmdline()):
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local:2", "external"])
def test_ctrl_c_on_the_cluster_path_exits_130_and_cleans_up(tmp_path, where, request):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _sleepy_notebook(folder / "sleepy.ipynb")
    out = tmp_path / "out"
    scheduler = (request.getfixturevalue("workers").scheduler_address if where == "external"
                 else where)
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop(cluster.SCHEDULER_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crackdown", "report", "--notebook", "sleepy", "--notebooks-dir",
         str(folder), "--events", ",".join(SLEEPY_EVENTS), "-p", f"slow={SLEEPY_EVENTS[1]}",
         "--scheduler", scheduler, "--no-progress", "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=env)
    slow = out / "sleepy" / f".{SLEEPY_EVENTS[1]}.partial-*" / "started"
    try:
        deadline = time.monotonic() + 120
        while not (glob.glob(str(slow))
                   and (out / "sleepy" / SLEEPY_EVENTS[0] / "status.json").is_file()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow report never started"
            time.sleep(0.1)
        mine = psutil.Process()  # an external cluster's workers (and kernels) are ours
        tree = (psutil.Process(proc.pid) if where != "external" else mine)
        from crackdown.output import kernel_pool

        own = kernel_pool._WORKER_KERNEL  # this process's reused kernel (other tests') is not
        own = own.pid if own is not None else None  # the cluster's
        kernels = [k for k in _kernels(tree.children(recursive=True)) if k.pid != own]
        assert len(kernels) == 1  # the slow notebook's kernel, started by a worker
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the client's group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    # the first report is complete on disk; whether the client had collected its result when
    # Ctrl-C came is a race (0 or 1 counted), the kept folder and the index below are not
    assert re.fullmatch(r"crackdown: interrupted \(SIGINT\); [01] report\(s\) finished and kept, "
                        rf"unfinished ones removed; index: {re.escape(str(out / 'index.html'))}\n",
                        err), err
    deadline = time.monotonic() + 10
    while _kernels(kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _kernels(kernels) == []  # no orphan kernel
    assert sorted(p.name for p in (out / "sleepy").iterdir()) == [SLEEPY_EVENTS[0]]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f"sleepy/{SLEEPY_EVENTS[0]}/{SLEEPY_EVENTS[0]}.html" in index
    assert SLEEPY_EVENTS[1] not in index and "Incomplete" not in index
    if where == "external":  # the abort ran on workers that are still there
        assert len(request.getfixturevalue("workers").scheduler_info["workers"]) == 2
