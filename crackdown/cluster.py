"""Run many independent tasks on a Dask cluster (dask.distributed), or in this process.

The one execution layer for large jobs (issue #15): specification sweeps
(:mod:`crackdown.analyses.sweep`) and batch reports (``crackdown report --scheduler``,
:mod:`crackdown.output.report_cluster`) hand their tasks to :func:`run_tasks` or open a client
with :func:`dask_client`; nothing here knows what a task computes. Dask is imported inside the
functions, so ``import crackdown.cluster`` stays cheap.

Where tasks run (:func:`resolve_scheduler`)
-------------------------------------------
=========================  ==================================================================
value                      meaning
=========================  ==================================================================
``None`` / ``""``          not chosen: the caller decides locally (``None`` first reads
                           ``$CRACKDOWN_DASK_SCHEDULER``; an explicit ``""`` does not)
``in-process``             no Dask at all: a plain loop in this process
``local``                  a :class:`distributed.LocalCluster` on 127.0.0.1 sized to the
                           machine (:func:`default_local_workers`, or the caller's hint)
``local:N``                the same with N worker processes
``tcp://HOST:PORT``        an existing scheduler (``dask scheduler``); ``HOST:PORT`` means
                           ``tcp://``; ``tls://``, ``ws://`` and ``wss://`` are accepted too
=========================  ==================================================================

Conventions
-----------
* A local cluster has one thread per worker process (``threads_per_worker=1``), no dashboard
  (the scheduler's health endpoint listens on a free port of 127.0.0.1), and states its memory
  limit: each worker gets ``floor(M / n)`` bytes, M the machine's memory (or its cgroup limit,
  :data:`distributed.system.MEMORY_LIMIT`) and n the number of workers; Dask spills a worker's
  data at 60 %, pauses it at 80 % and restarts it at 95 % of that. Its workers are started with
  SIGINT ignored, so a terminal's Ctrl-C reaches only this process, which cancels the tasks and
  closes the cluster (a Ctrl-C during the second or so of start-up is ignored). A worker that
  Dask restarts later (after a crash) no longer ignores it.
* Results do not depend on where a task runs: the same picklable (module-level) function runs
  on the same inputs; only the process changes. Dask workers set ``OMP_NUM_THREADS=1`` (and
  the MKL/OpenBLAS equivalents), so a task's linear algebra is single-threaded there.
* A task that raises is retried ``retries`` times (resubmitted by the client, so the retry may
  land on another worker and the attempts are counted exactly); a task that still fails is a
  :class:`TaskOutcome` with a one-line error, never dropped and never raised. A worker that dies
  under a task is handled by Dask first (the task is rescheduled on another worker, up to
  ``distributed.scheduler.allowed-failures`` times, then fails with ``KilledWorker``); that
  failure goes through the same ``retries``, which gives a task that merely waited on the dying
  worker behind the culprit another chance.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crackdown.errors import CrackdownError

__all__ = [
    "CONNECT_TIMEOUT",
    "IN_PROCESS",
    "LOCAL",
    "SCHEDULER_ENV",
    "ClusterError",
    "TaskOutcome",
    "check_scheduler",
    "dask_client",
    "default_local_workers",
    "is_dask",
    "local_workers",
    "one_line",
    "resolve_scheduler",
    "run_tasks",
]

SCHEDULER_ENV = "CRACKDOWN_DASK_SCHEDULER"
IN_PROCESS = "in-process"
LOCAL = "local"
#: seconds to wait for a scheduler to answer before :class:`ClusterError`
CONNECT_TIMEOUT = 10.0
PROTOCOLS = ("tcp", "tls", "ws", "wss")
FORMS = ("in-process, local, local:N (N worker processes), tcp://HOST:PORT or HOST:PORT "
         "(also tls://, ws://, wss://)")

_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)"
_ADDRESS = re.compile(rf"^(?:(?P<proto>[A-Za-z]+)://)?(?P<host>{_HOST}):(?P<port>[0-9]{{1,5}})$")
_LOCAL_N = re.compile(r"^local:(?P<n>.*)$", re.IGNORECASE)


class ClusterError(CrackdownError):
    """A scheduler value that is not one of the accepted forms, or a cluster that cannot be
    reached or started."""


# --------------------------------------------------------------------------------------------
# Which scheduler
# --------------------------------------------------------------------------------------------


def resolve_scheduler(scheduler: str | None) -> str | None:
    """Return the normalised scheduler: the explicit value, else ``$CRACKDOWN_DASK_SCHEDULER``.

    Parameters
    ----------
    scheduler
        ``None`` reads the environment variable :data:`SCHEDULER_ENV`; any string (also
        ``""``) is used as given, so an explicit value always wins over the variable.

    Returns
    -------
    str or None
        ``None`` (nothing chosen, or an empty/blank value: decide locally), ``"in-process"``,
        ``"local"``, ``"local:N"`` (N >= 1, leading zeros dropped) or ``"PROTO://HOST:PORT"``
        (``HOST:PORT`` gets ``tcp://``; the protocol is lower-cased). Keywords are
        case-insensitive and surrounding blanks are ignored.

    Raises
    ------
    ClusterError
        Any other value; the message names it (and where it came from) and lists the forms.
    """
    if scheduler is None:
        raw: Any = os.environ.get(SCHEDULER_ENV)
        source = f"${SCHEDULER_ENV}"
        if raw is None:
            return None
    else:
        raw, source = scheduler, "--scheduler"
    if not isinstance(raw, str):
        raise ClusterError(f"{source} {raw!r}: must be a string, one of: {FORMS}")
    text = raw.strip()
    if not text:
        return None

    def bad(why: str) -> ClusterError:
        return ClusterError(f"{source} {raw!r}: {why}; use one of: {FORMS}")

    if text.lower() in (IN_PROCESS, LOCAL):
        return text.lower()
    local = _LOCAL_N.match(text)
    if local:
        digits = local["n"].strip()
        if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
            raise bad("N of local:N must be a whole number of worker processes >= 1")
        return f"{LOCAL}:{int(digits)}"
    address = _ADDRESS.match(text)
    if not address:
        raise bad("not a scheduler form")
    proto = (address["proto"] or "tcp").lower()
    if proto not in PROTOCOLS:
        raise bad(f"protocol {proto}:// is not supported")
    port = int(address["port"])
    if not 1 <= port <= 65535:
        raise bad(f"port {port} is outside 1-65535")
    return f"{proto}://{address['host']}:{port}"


def is_dask(resolved: str | None) -> bool:
    """True when a resolved scheduler means Dask (``local``, ``local:N`` or an address)."""
    return resolved is not None and resolved != IN_PROCESS


def local_workers(resolved: str | None) -> int | None:
    """N of ``local:N``; None for any other value."""
    if resolved and resolved.startswith(f"{LOCAL}:"):
        return int(resolved.split(":", 1)[1])
    return None


def default_local_workers() -> int:
    """Worker processes of a ``local`` cluster: the CPUs this process may use, at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    return max(1, count)


def one_line(exc: BaseException) -> str:
    """``"ExcType: message"`` on one line (blanks collapsed, at most 500 characters)."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:500]


# --------------------------------------------------------------------------------------------
# A client
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside the block ignore SIGINT from their first instruction (Python
    keeps an inherited SIG_IGN); this process ignores it for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _memory_per_worker(n_workers: int) -> int:
    """Bytes per worker: the machine's (or cgroup's) memory divided by the workers."""
    from distributed.system import MEMORY_LIMIT

    return int(MEMORY_LIMIT // max(1, n_workers))


@contextlib.contextmanager
def dask_client(scheduler: str, *, n_workers: int | None = None,
                connect_timeout: float | None = None,
                memory_limit: int | str | None = None) -> Iterator[Any]:
    """Yield a :class:`distributed.Client` for ``scheduler``; close it (and a local cluster)
    on exit, also on an exception or ``KeyboardInterrupt``.

    Parameters
    ----------
    scheduler
        Any form :func:`resolve_scheduler` accepts except ``in-process`` and empty (callers do
        not ask for a client then).
    n_workers
        Worker processes of a ``local`` cluster (a caller's sizing hint, >= 1); ``local:N``
        wins over it; default :func:`default_local_workers`. Ignored for an address.
    connect_timeout
        Seconds to wait for a scheduler at an address (default :data:`CONNECT_TIMEOUT`).
    memory_limit
        Per-worker memory limit of a local cluster (bytes or a Dask string such as ``"2GB"``);
        default the machine's memory divided by the number of workers.

    Raises
    ------
    ClusterError
        ``in-process``/empty, a bad ``n_workers``, a local cluster that cannot start, or a
        scheduler that does not answer within ``connect_timeout``.
    """
    resolved = resolve_scheduler(scheduler if scheduler is not None else "")
    if not is_dask(resolved):
        raise ClusterError(f"dask_client({scheduler!r}): give a Dask scheduler ({FORMS}); "
                           "in-process work needs no client")
    assert resolved is not None
    if resolved == LOCAL or resolved.startswith(f"{LOCAL}:"):
        if n_workers is not None and (isinstance(n_workers, bool)
                                      or not isinstance(n_workers, int) or n_workers < 1):
            raise ClusterError(f"n_workers {n_workers!r}: must be a whole number >= 1")
        n = local_workers(resolved) or n_workers or default_local_workers()
        yield from _local_client(n, memory_limit)
        return
    client = _connect(resolved, connect_timeout)
    try:
        if not client.scheduler_info().get("workers"):
            print(f"crackdown: the Dask scheduler at {resolved} has no workers yet; the tasks "
                  f"wait until one joins (start one with `dask worker {resolved}`)",
                  file=sys.stderr)
        yield client
    finally:
        client.close()


def _connect(address: str, connect_timeout: float | None) -> Any:
    from distributed import Client

    timeout = CONNECT_TIMEOUT if connect_timeout is None else float(connect_timeout)
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, TLS/config errors
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {one_line(exc)}; "
                           "start one with `dask scheduler` or drop --scheduler") from None


def check_scheduler(scheduler: str | None, *, connect_timeout: float | None = None
                    ) -> int | None:
    """Connect to a scheduler at an address and return its number of workers (then
    disconnect); None, without connecting, for any other form. Lets a command fail on an
    unreachable scheduler (:class:`ClusterError`) before it writes anything."""
    resolved = resolve_scheduler(scheduler)
    if not is_dask(resolved) or resolved is None or resolved.startswith(LOCAL):
        return None
    client = _connect(resolved, connect_timeout)
    try:
        return len(client.scheduler_info().get("workers", {}))
    finally:
        client.close()


def _local_client(n: int, memory_limit: int | str | None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    limit = _memory_per_worker(n) if memory_limit is None else memory_limit
    try:
        with _children_ignore_sigint():
            cluster = LocalCluster(n_workers=n, processes=True, host="127.0.0.1",
                                   threads_per_worker=1, dashboard_address=None,
                                   silence_logs=logging.ERROR, memory_limit=limit,
                                   # no dashboard; its health/metrics server on a free port
                                   # (the default 8787 may be taken by another cluster)
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    except Exception as exc:  # noqa: BLE001 - ports, memory_limit strings, spawn failures
        raise ClusterError(f"cannot start a local Dask cluster of {n} worker(s): "
                           f"{one_line(exc)}; use --scheduler in-process or fewer workers"
                           ) from None
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one task of :func:`run_tasks`.

    Attributes
    ----------
    index
        Position of the task in ``tasks``.
    value
        The function's return value (None when the task failed).
    error
        ``"ExcType: message"`` (one line) when the task failed after its retries, else None.
    attempts
        Calls made: 1, or up to ``1 + retries`` when the first ones raised.
    """

    index: int
    value: Any
    error: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        """True when the task returned a value."""
        return self.error is None


def _call(func: Callable[..., Any], task: Any, kwargs: Mapping[str, Any]) -> Any:
    """The task on a worker: ``func(task, **kwargs)`` (kwargs' futures resolved by Dask)."""
    return func(task, **kwargs)


def run_tasks(func: Callable[..., Any], tasks: Sequence[Any], *, scheduler: str | None,
              broadcast: Mapping[str, Any] | None = None, retries: int = 1,
              progress: bool = False, desc: str = "tasks", n_workers: int | None = None,
              connect_timeout: float | None = None) -> list[TaskOutcome]:
    """Call ``func(task, **broadcast)`` for every task; return the outcomes in task order.

    Parameters
    ----------
    func
        A picklable (module-level) function; its return values must be picklable too.
    tasks
        The first argument of each call.
    scheduler
        Resolved with :func:`resolve_scheduler` (``None`` reads ``$CRACKDOWN_DASK_SCHEDULER``).
        Nothing chosen, or ``in-process``: a plain loop in this process. Otherwise
        :func:`dask_client`: every ``broadcast`` value is scattered once to every worker
        (``client.scatter(..., broadcast=True)``) and passed as a future; each task is one
        ``client.submit(..., key=<unique>, pure=False)``; results are collected with
        :func:`distributed.as_completed`.
    broadcast
        Keyword arguments shared by every call (large frames are sent once per worker).
    retries
        Extra calls of a task that raised an :class:`Exception` (>= 0).
        ``KeyboardInterrupt`` is never retried: it propagates, after the outstanding Dask
        tasks are cancelled.
    progress, desc
        A tqdm bar on stderr, labelled ``desc``.
    n_workers
        Size of a ``local`` cluster (default: :func:`default_local_workers`, at most one per
        task).
    connect_timeout
        Seconds to wait for a scheduler at an address (default :data:`CONNECT_TIMEOUT`).

    Returns
    -------
    list of TaskOutcome
        One per task, ``outcomes[i].index == i``; a task that still failed after its retries
        has ``error`` set and ``value`` None.

    Raises
    ------
    ClusterError
        A bad scheduler, ``retries`` or ``broadcast``; a scheduler that cannot be reached.
    """
    tasks = list(tasks)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ClusterError(f"retries {retries!r}: must be a whole number >= 0")
    shared = dict(broadcast or {})
    bad_names = [k for k in shared if not isinstance(k, str) or not k.isidentifier()]
    if bad_names:
        raise ClusterError(f"broadcast keys {bad_names!r}: must be keyword argument names of "
                           f"{getattr(func, '__name__', func)!r}")
    resolved = resolve_scheduler(scheduler)
    if not tasks:
        return []
    from tqdm import tqdm  # the plain bar on stderr (tqdm.auto warns in a notebook)

    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress, file=sys.stderr)
    try:
        if not is_dask(resolved):
            return _run_here(func, tasks, shared, retries, bar)
        assert resolved is not None
        size = n_workers or min(default_local_workers(), len(tasks))
        with dask_client(resolved, n_workers=size, connect_timeout=connect_timeout) as client:
            return _run_on(client, func, tasks, shared, retries, bar, desc)
    finally:
        bar.close()


def _run_here(func: Callable[..., Any], tasks: list[Any], shared: dict[str, Any], retries: int,
              bar: Any) -> list[TaskOutcome]:
    outcomes = []
    for index, task in enumerate(tasks):
        attempts = 0
        while True:
            attempts += 1
            try:
                value = func(task, **shared)
            except Exception as exc:  # noqa: BLE001 - every task failure is reported
                if attempts <= retries:
                    continue
                outcomes.append(TaskOutcome(index, None, one_line(exc), attempts))
            else:
                outcomes.append(TaskOutcome(index, value, None, attempts))
            break
        bar.update(1)
    return outcomes


def _run_on(client: Any, func: Callable[..., Any], tasks: list[Any], shared: dict[str, Any],
            retries: int, bar: Any, desc: str) -> list[TaskOutcome]:
    from distributed import as_completed

    token = secrets.token_hex(6)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", desc)[:40] or "tasks"
    scattered = {name: client.scatter([value], broadcast=True, hash=False)[0]
                 for name, value in shared.items()}

    def submit(index: int, attempt: int) -> Any:
        return client.submit(_call, func, tasks[index], scattered, pure=False,
                             key=f"{stem}-{token}-{index}-{attempt}")

    pending = {submit(index, 1): (index, 1) for index in range(len(tasks))}
    outcomes: dict[int, TaskOutcome] = {}
    try:
        queue = as_completed(list(pending), loop=client.loop)
        for future in queue:
            index, attempt = pending.pop(future)
            error: BaseException | None = None
            if future.status == "finished":
                try:
                    outcomes[index] = TaskOutcome(index, future.result(), None, attempt)
                except Exception as exc:  # noqa: BLE001 - a result that cannot be unpickled
                    error = exc
            else:
                error = _future_error(future)
            future.release()
            if error is not None:
                if attempt <= retries:
                    retry = submit(index, attempt + 1)
                    pending[retry] = (index, attempt + 1)
                    queue.add(retry)
                    continue
                outcomes[index] = TaskOutcome(index, None, one_line(error), attempt)
            bar.update(1)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(pending), force=True)
        raise
    return [outcomes[index] for index in range(len(tasks))]


def _future_error(future: Any) -> BaseException:
    """The exception of an erred or cancelled future (never raises)."""
    try:
        exc = future.exception()
    except BaseException as cancelled:  # CancelledError (a BaseException) of a lost task
        if isinstance(cancelled, KeyboardInterrupt):
            raise
        return cancelled
    return exc if exc is not None else RuntimeError(f"task ended with status {future.status}")
