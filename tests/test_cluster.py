"""The Dask execution layer (crackdown/cluster.py): scheduler forms, the same results in this
process and on a real LocalCluster (processes on 127.0.0.1), retries counted exactly, failures
reported not raised, broadcast values, an unreachable scheduler, no process left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from crackdown import cluster
from crackdown.cluster import ClusterError, TaskOutcome, resolve_scheduler, run_tasks
from crackdown.errors import CrackdownError

CLUSTER = "local:2"


@pytest.fixture(autouse=True)
def _no_scheduler_env(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)


def _free_port() -> int:
    """A port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------
# Task functions: module-level, so workers import them by reference
# ------------------------------------------------------------------------------------------


def ols_task(seed: int, design: np.ndarray) -> dict:
    """OLS of a seeded response on the broadcast design: coefficients, residual s.d., the
    design's checksum (did the broadcast arrive intact?) and where the task ran."""
    rng = np.random.default_rng(seed)
    y = design @ np.arange(1.0, design.shape[1] + 1) + rng.standard_t(4, size=design.shape[0])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    return {"beta": beta, "sigma": float(resid.std(ddof=design.shape[1])), "y": y,
            "checksum": float(design.sum()), "pid": os.getpid()}


def counted_task(task: int, folder: str, label: str = "") -> str:
    """Count calls in a file (workers are separate processes); task 1 fails on its first call,
    task 2 always, with a two-line message."""
    counter = Path(folder) / f"calls-{task}"
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if task == 1 and calls == 1:
        raise ValueError("first call fails")
    if task == 2:
        raise RuntimeError("always broken\nsecond line")
    return f"{label}{task}"


def dying_task(task: int, folder: str, deaths: int) -> int:
    """Task 0 kills the worker process running it on its first ``deaths`` calls."""
    if task == 0:
        counter = Path(folder) / "deaths"
        calls = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(calls))
        if calls <= deaths:
            os._exit(3)
    return task * task


def interrupted_task(task: int, folder: str) -> int:
    counted_task(task, folder)
    raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------
# resolve_scheduler
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("   ", None),
    ("in-process", "in-process"), (" IN-PROCESS ", "in-process"),
    ("local", "local"), ("Local", "local"), ("local:3", "local:3"), ("local:03", "local:3"),
    ("local: 2", "local:2"),
    ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"), ("10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("localhost:8786", "tcp://localhost:8786"), ("TLS://sched.example.org:8786",
                                                 "tls://sched.example.org:8786"),
    ("ws://node-1:9000", "ws://node-1:9000"), ("wss://node-1:443", "wss://node-1:443"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"), (" tcp://h:1 ", "tcp://h:1"),
])
def test_resolve_scheduler_forms(value, expected):
    assert resolve_scheduler(value) == expected


@pytest.mark.parametrize("value", [
    "local:0", "local:-1", "local:x", "local:", "local:1.5", "locale", "inprocess", "in process",
    "tcp://h", "h", "8786", "http://h:80", "udp://h:1", "tcp://h:0", "tcp://h:70000",
    "tcp://:8786", "tcp://-h:1", "tcp://h:1/path", "tcp://h h:1", "local:٣",
])
def test_resolve_scheduler_rejects_other_values(value):
    with pytest.raises(ClusterError) as info:
        resolve_scheduler(value)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--scheduler {value!r}: ")
    for form in ("in-process", "local:N", "tcp://HOST:PORT"):
        assert form in message


def test_environment_variable_and_its_precedence(monkeypatch):
    assert issubclass(ClusterError, CrackdownError)
    monkeypatch.setenv(cluster.SCHEDULER_ENV, " local:4 ")
    assert resolve_scheduler(None) == "local:4"            # not chosen: the variable
    assert resolve_scheduler("in-process") == "in-process"  # an explicit value wins
    assert resolve_scheduler("tcp://h:1") == "tcp://h:1"
    assert resolve_scheduler("") is None                    # explicitly "decide locally"
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "")
    assert resolve_scheduler(None) is None
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp//nope")
    with pytest.raises(ClusterError, match=r"^\$CRACKDOWN_DASK_SCHEDULER 'tcp//nope': "):
        resolve_scheduler(None)
    with pytest.raises(ClusterError, match="must be a string"):
        resolve_scheduler(8786)  # type: ignore[arg-type]


def test_helpers():
    assert cluster.is_dask("local") and cluster.is_dask("tcp://h:1")
    assert not cluster.is_dask(None) and not cluster.is_dask("in-process")
    assert cluster.local_workers("local:7") == 7
    assert cluster.local_workers("local") is None and cluster.local_workers("tcp://h:1") is None
    assert cluster.default_local_workers() == max(1, len(os.sched_getaffinity(0)))
    assert TaskOutcome(0, 5, None, 1).ok and not TaskOutcome(0, None, "E: x", 2).ok
    assert cluster.one_line(ValueError("a\n  b")) == "ValueError: a b"
    assert cluster.one_line(KeyError()) == "KeyError"


def test_import_is_cheap():
    code = "import sys, crackdown.cluster; print(sorted(m for m in ('dask', 'distributed', " \
           "'tqdm', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_argument_errors(tmp_path):
    with pytest.raises(ClusterError, match="retries -1"):
        run_tasks(counted_task, [0], scheduler="in-process", retries=-1)
    with pytest.raises(ClusterError, match="retries True"):
        run_tasks(counted_task, [0], scheduler="in-process", retries=True)
    with pytest.raises(ClusterError, match="broadcast keys"):
        run_tasks(counted_task, [0], scheduler="in-process", broadcast={"not a name": 1})
    with pytest.raises(ClusterError, match="--scheduler 'bogus'"):
        run_tasks(counted_task, [0], scheduler="bogus")
    with pytest.raises(ClusterError, match="in-process work needs no client"), \
            cluster.dask_client("in-process"):
        pass
    with pytest.raises(ClusterError, match="n_workers 0"), \
            cluster.dask_client("local", n_workers=0):
        pass
    assert run_tasks(counted_task, [], scheduler=CLUSTER) == []  # no cluster for no tasks
    assert cluster.check_scheduler("local:2") is None and cluster.check_scheduler(None) is None


# ------------------------------------------------------------------------------------------
# In this process
# ------------------------------------------------------------------------------------------


def test_in_process_retries_and_failures(tmp_path):
    outcomes = run_tasks(counted_task, range(4), scheduler=None, retries=1,
                         broadcast={"folder": str(tmp_path), "label": "t"})
    assert [o.index for o in outcomes] == [0, 1, 2, 3]
    assert [o.value for o in outcomes] == ["t0", "t1", None, "t3"]
    assert [o.attempts for o in outcomes] == [1, 2, 2, 1]
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert outcomes[2].error == "RuntimeError: always broken second line"
    calls = {t: int((tmp_path / f"calls-{t}").read_text()) for t in range(4)}
    assert calls == {0: 1, 1: 2, 2: 2, 3: 1}
    # no retries: the first failure is the outcome
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    again = run_tasks(counted_task, [1], scheduler="in-process", retries=0,
                      broadcast={"folder": str(fresh)})
    assert again == [TaskOutcome(0, None, "ValueError: first call fails", 1)]


def test_in_process_keyboard_interrupt_propagates_without_retry(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_tasks(interrupted_task, [5, 6], scheduler="in-process", retries=3,
                  broadcast={"folder": str(tmp_path)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls-5"]
    assert (tmp_path / "calls-5").read_text() == "1"


# ------------------------------------------------------------------------------------------
# On a LocalCluster (real processes)
# ------------------------------------------------------------------------------------------


def _children() -> set[int]:
    """Live child processes of this one, but multiprocessing's resource tracker (a per-process
    singleton started by the first spawned child, not a leak)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        found.add(child.pid)
    return found


def test_numpy_results_identical_in_process_and_on_a_cluster_and_nothing_left_behind():
    design = np.column_stack([np.ones(400), np.random.default_rng(7).normal(size=(400, 3))])
    seeds = list(range(6))
    before = _children()
    here = run_tasks(ols_task, seeds, scheduler="in-process", broadcast={"design": design})
    there = run_tasks(ols_task, seeds, scheduler=CLUSTER, broadcast={"design": design},
                      progress=True, desc="ols")
    deadline = time.monotonic() + 10
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children() - before == set()  # workers and nannies gone with the cluster
    assert all(o.ok and o.attempts == 1 for o in here + there)
    assert [o.index for o in there] == seeds  # task order, whatever the finishing order
    for a, b in zip(here, there):
        for key in ("beta", "y"):
            assert a.value[key].tobytes() == b.value[key].tobytes()  # bit for bit
        assert a.value["sigma"] == b.value["sigma"]
        assert b.value["checksum"] == float(design.sum())  # the broadcast arrived intact
    assert {o.value["pid"] for o in here} == {os.getpid()}
    assert os.getpid() not in {o.value["pid"] for o in there}  # ran in the workers
    # and the coefficients are the least-squares solution (normal equations, independently)
    for seed, outcome in zip(seeds, there):
        y = outcome.value["y"]
        expected = np.linalg.solve(design.T @ design, design.T @ y)
        np.testing.assert_allclose(outcome.value["beta"], expected, rtol=0, atol=1e-10)
        assert np.all(np.abs(outcome.value["beta"] - [1, 2, 3, 4]) < 0.5)


def test_cluster_retries_once_reports_failures_and_passes_broadcast(tmp_path, capsys):
    outcomes = run_tasks(counted_task, range(4), scheduler=CLUSTER, retries=1,
                         broadcast={"folder": str(tmp_path), "label": "w"})
    assert [o.value for o in outcomes] == ["w0", "w1", None, "w3"]
    assert [o.attempts for o in outcomes] == [1, 2, 2, 1]
    assert [o.error for o in outcomes] == [None, None,
                                           "RuntimeError: always broken second line", None]
    calls = {t: int((tmp_path / f"calls-{t}").read_text()) for t in range(4)}
    assert calls == {0: 1, 1: 2, 2: 2, 3: 1}  # the attempts are the calls made, exactly


def test_a_worker_that_dies_is_a_failure_that_is_retried(tmp_path):
    import dask

    once, always = tmp_path / "once", tmp_path / "always"
    once.mkdir()
    always.mkdir()
    # KilledWorker at the first death (by default Dask tries 3 more workers first)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        # dies once: retried, then ok; a task queued behind it on the dying worker is killed
        # too and retried (so the attempts of 1-3 are 1 or 2), never lost
        outcomes = run_tasks(dying_task, [0, 1, 2, 3], scheduler=CLUSTER, retries=1,
                             broadcast={"folder": str(once), "deaths": 1})
        assert [o.value for o in outcomes] == [0, 1, 4, 9]
        assert outcomes[0].attempts == 2 and (once / "deaths").read_text() == "2"
        # dies every time: the failure is reported after the retry, not raised
        (lost,) = run_tasks(dying_task, [0], scheduler=CLUSTER, retries=1,
                            broadcast={"folder": str(always), "deaths": 99})
    assert not lost.ok and lost.value is None and lost.attempts == 2
    assert lost.error.startswith("KilledWorker: ") and "\n" not in lost.error
    assert (always / "deaths").read_text() == "2"


def test_local_client_shape_memory_and_sigint():
    from distributed.system import MEMORY_LIMIT

    with cluster.dask_client("local", n_workers=2) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        for address, info in workers.items():
            assert address.startswith("tcp://127.0.0.1:")
            assert info["nthreads"] == 1
            assert info["memory_limit"] == MEMORY_LIMIT // 2
        # a terminal's Ctrl-C must reach only the client, which closes the cluster
        handlers = client.run(signal.getsignal, signal.SIGINT)
        assert set(handlers.values()) == {signal.SIG_IGN}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored here
    with cluster.dask_client("local:1", n_workers=3, memory_limit="1GB") as client:
        (info,) = client.scheduler_info()["workers"].values()  # local:N wins over the hint
        assert info["memory_limit"] == 10**9


def test_unreachable_scheduler_is_a_cluster_error_within_seconds(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    for attempt in (
        lambda: run_tasks(counted_task, [0], scheduler=address, connect_timeout=1.5,
                          broadcast={"folder": str(tmp_path)}),
        lambda: cluster.check_scheduler(address, connect_timeout=1.5),
    ):
        started = time.monotonic()
        with pytest.raises(ClusterError) as info:
            attempt()
        assert time.monotonic() - started < 8
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"cannot reach the Dask scheduler at {address}: ")
        assert message.endswith("start one with `dask scheduler` or drop --scheduler")
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_an_existing_scheduler_by_address(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      threads_per_worker=1,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local:
        address = local.scheduler_address
        host_port = address.removeprefix("tcp://")
        assert cluster.check_scheduler(host_port) == 1
        outcomes = run_tasks(counted_task, [0, 3], scheduler=host_port,
                             broadcast={"folder": str(tmp_path)})
        assert [o.value for o in outcomes] == ["0", "3"]
        assert len(local.scheduler_info["workers"]) == 1  # the cluster outlives the client
