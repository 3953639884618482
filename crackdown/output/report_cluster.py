"""Where the notebook runs of a report batch execute: a Dask cluster's workers, or a local pool.

:func:`crackdown.output.reports.run_report` checks the batch, lists its runs and hands them
here as ``calls``, ``(label, args, kwargs)`` for ``run(*args, **kwargs)`` with ``run`` =
:func:`crackdown.output.reports.run_one` (which builds one report folder transactionally and
returns a ``ReportOutcome``; it is passed in, so this module does not import ``reports``):

* a Dask scheduler (``crackdown report --scheduler ADDRESS``, or ``$CRACKDOWN_DASK_SCHEDULER``):
  :func:`run_on_cluster`, one Dask task per run on the workers of
  :func:`crackdown.cluster.dask_client` (``local``/``local:N`` start a local cluster);
* no scheduler and ``--jobs`` > 1: :func:`run_pool`, ``jobs`` spawned worker processes; a
  call whose ``kernel`` keyword is ``"worker"`` runs on the worker's one reused kernel
  (:func:`crackdown.output.kernel_pool.worker_kernel`), which the worker kills when it exits
  (at the end of the batch, or on SIGTERM while idle).

The client writes ``index.html`` at the end as before; only where ``run_one`` runs changes.

On a cluster
------------
* **What the workers must see**: the notebook, the price folder, the events file and the output
  folder at the same absolute paths as the client (a shared file system), and the same Python
  environment (crackdown, papermill, ipykernel). The client's ``CRACKDOWN_*`` environment
  variables are set in the worker for each run (so a kernel resolves the prices, the cache and
  the offline mode as it would locally; the worker's own ``CRACKDOWN_*`` values are hidden
  meanwhile), except ``CRACKDOWN_REPORT_DIR`` (set per run by ``run_one``) and
  ``CRACKDOWN_DASK_SCHEDULER``, which is ``in-process`` there: a sweep inside a notebook runs in
  its kernel instead of waiting for the workers its own batch keeps busy.
* One run at a time per worker process (a lock; ``run_one`` sets process-wide state such as the
  environment): start workers with ``--nthreads 1`` and as many processes as notebooks should
  run at once (``--nworkers N``); each run starts its own kernel process.
* A failed notebook is an outcome with status ``failed``; a worker that dies under a run is
  rescheduled by Dask on another worker (up to ``distributed.scheduler.allowed-failures``
  times), after which the run is ``failed`` with ``KilledWorker``; a run is not retried
  otherwise (a notebook error would fail again). A :class:`~crackdown.errors.CrackdownError`
  from a run (an unwritable output, a full disk) stops the batch.
* An interruption (SIGINT/SIGTERM in the client: :class:`ReportInterrupted`) or a stopping
  error cancels the queued runs and aborts the running ones on their workers (their kernels
  are killed, their unfinished folders removed, as in the local path; it waits up to
  :data:`ABORT_WAIT` seconds), then closes the client (and a local cluster); ``run_report``
  then removes stale folders and rewrites the index.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from crackdown import cluster, config
from crackdown.errors import CrackdownError
from crackdown.output import report_io
from crackdown.output.report_io import ReportInterrupted

__all__ = ["ABORTED", "ABORT_WAIT", "run_on_cluster", "run_pool"]

#: One run: (label, positional arguments, keyword arguments) of ``run``.
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
#: ``failed(label, exception)`` -> the ``ReportOutcome`` of a run that crashed (client side).
Failed = Callable[[str, BaseException], Any]

#: Seconds the client waits for the workers to clean up aborted runs.
ABORT_WAIT = 20.0
#: Seconds after the clean-up wait during which a worker that aborted its runs keeps
#: papermill's log quiet (its processes are being shut down by then).
ABORT_QUIET_EXTRA = 30.0
#: What a run's task returns when it was aborted before or while it ran.
ABORTED = "crackdown-report-aborted"
#: Environment variables a cluster run does not take from the client.
_NOT_FORWARDED = (config.REPORT_DIR_ENV, cluster.SCHEDULER_ENV)


# --------------------------------------------------------------------------------------------
# Local pool (--jobs N)
# --------------------------------------------------------------------------------------------


def run_pool(run: Callable[..., Any], failed: Failed, calls: Sequence[Call], jobs: int,
             results: dict[str, Any], bar: Any) -> None:
    """Run the calls in ``jobs`` spawned workers; store each outcome in ``results[label]``.

    On an interruption or an output error, terminate the workers (each kills its kernel and
    removes its unfinished folder) and re-raise.
    """
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                  initializer=report_io.worker_init)
    try:
        with report_io.children_ignore_sigint():  # the workers are spawned by submit()
            futures = {pool.submit(_worker_run, run, *args, **kwargs): label
                       for label, args, kwargs in calls}
        for future in cf.as_completed(futures):
            label = futures[future]
            try:
                results[label] = future.result()
            except CrackdownError:
                raise  # the output cannot be written: stop the batch
            except Exception as exc:  # noqa: BLE001 - a crashed worker
                results[label] = failed(label, exc)
            bar.set_postfix_str(f"{label} {results[label].status}")
            bar.update(1)
    except BaseException:
        with report_io.deferred_signals(drop=True):
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
            for worker in workers:
                worker.join(20)
                if worker.is_alive():
                    worker.kill()
                    worker.join(5)
        raise
    pool.shutdown(wait=True)


def _worker_run(run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``run`` in a pool worker: an interruption ends the worker after its clean-up."""
    try:
        return run(*args, **kwargs)
    except ReportInterrupted as exc:
        report_io.kill_idle_kernels()  # the worker's reused kernel (os._exit skips finalizers)
        os._exit(exc.exit_code)


# --------------------------------------------------------------------------------------------
# Dask cluster (--scheduler ADDRESS)
# --------------------------------------------------------------------------------------------


def run_on_cluster(run: Callable[..., Any], failed: Failed, calls: Sequence[Call],
                   scheduler: str, results: dict[str, Any], bar: Any, *,
                   connect_timeout: float | None = None) -> None:
    """Run every call as a Dask task; store each outcome in ``results[label]``.

    Parameters
    ----------
    run, failed, calls
        See the module docstring (``run`` must be importable on the workers).
    scheduler
        A Dask scheduler (:func:`crackdown.cluster.resolve_scheduler`: ``local``,
        ``local:N`` or an address); a ``local`` cluster gets one worker per run, at most
        :func:`crackdown.cluster.default_local_workers`.
    results, bar
        Outcomes by label (filled as runs finish) and the batch's progress bar.
    connect_timeout
        Seconds to wait for a scheduler at an address.

    Raises
    ------
    crackdown.cluster.ClusterError
        The scheduler cannot be reached or the local cluster cannot start (nothing ran).
    crackdown.errors.CrackdownError
        A run could not write the output: the others are cancelled or aborted.
    ReportInterrupted
        SIGINT/SIGTERM in the client: the runs are cancelled or aborted.
    """
    from distributed import as_completed

    token = secrets.token_hex(6)
    environ = _run_environment()
    size = max(1, min(cluster.default_local_workers(), len(calls)))
    with cluster.dask_client(scheduler, n_workers=size, connect_timeout=connect_timeout) as client:
        futures = {client.submit(_cluster_task, run, token, environ, args, kwargs, pure=False,
                                 key=f"report-{label}-{token}"): label
                   for label, args, kwargs in calls}
        try:
            for future in as_completed(list(futures), loop=client.loop):
                label = futures.pop(future)
                value, error = _settle(future)
                if isinstance(error, CrackdownError):
                    raise error  # the output cannot be written: stop the batch
                if error is None and value == ABORTED:
                    error = RuntimeError("the run was aborted on its worker")
                results[label] = value if error is None else failed(label, error)
                bar.set_postfix_str(f"{label} {results[label].status}")
                bar.update(1)
        except BaseException:
            with report_io.deferred_signals(drop=True):
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)
                _abort(client, token)
            raise


def _settle(future: Any) -> tuple[Any, BaseException | None]:
    """(value, None) of a finished future, or (None, its exception); never raises."""
    try:
        if future.status == "finished":
            return future.result(), None
        exc = future.exception()
    except Exception as problem:  # noqa: BLE001 - CancelledError, unpicklable result
        return None, problem
    return None, exc if exc is not None else RuntimeError(f"task ended as {future.status}")


def _abort(client: Any, token: str) -> None:
    """Abort the runs of ``token`` on every worker and wait for their clean-up (bounded: a
    worker that does not answer is left to the cluster's shutdown)."""
    done = threading.Event()

    def call() -> None:
        with contextlib.suppress(Exception):
            client.run(_abort_runs, token, ABORT_WAIT, on_error="return")
        done.set()

    threading.Thread(target=call, name="crackdown-abort", daemon=True).start()
    done.wait(ABORT_WAIT + 10)


def _run_environment() -> dict[str, str]:
    """The ``CRACKDOWN_*`` variables a run sees on a worker (see the module docstring)."""
    environ = {k: v for k, v in os.environ.items()
               if k.startswith("CRACKDOWN_") and k not in _NOT_FORWARDED}
    environ[cluster.SCHEDULER_ENV] = cluster.IN_PROCESS
    return environ


@contextlib.contextmanager
def _environment(wanted: Mapping[str, str]) -> Iterator[None]:
    """Make this process's ``CRACKDOWN_*`` variables (but the report dir) exactly ``wanted``
    inside the block; restore them after."""

    def ours() -> dict[str, str]:
        return {k: v for k, v in os.environ.items()
                if k.startswith("CRACKDOWN_") and k != config.REPORT_DIR_ENV}

    saved = ours()
    for key in saved:
        if key not in wanted:
            del os.environ[key]
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key in ours():
            if key not in saved:
                del os.environ[key]
        os.environ.update(saved)


# worker-side state: one run at a time per process; the runs of each batch token by thread
_RUN_LOCK = threading.Lock()
_REGISTRY_LOCK = threading.Lock()
_RUNNING: dict[str, set[int]] = {}
_ABORTED_TOKENS: set[str] = set()


class _Aborted(ReportInterrupted):
    """Raised in a worker thread running a report of an aborted batch."""

    def __init__(self) -> None:
        super().__init__(signal.SIGINT)


def _cluster_task(run: Callable[..., Any], token: str, environ: Mapping[str, str],
                  args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One run on a worker: ``run(*args, **kwargs)`` under the client's environment, or
    :data:`ABORTED` when the batch was aborted (``run`` then cleaned up after itself)."""
    ident = threading.get_ident()
    try:
        with _RUN_LOCK:
            with _REGISTRY_LOCK:
                if token in _ABORTED_TOKENS:
                    return ABORTED
                _RUNNING.setdefault(token, set()).add(ident)
            try:
                with _environment(environ):
                    return run(*args, **kwargs)
            finally:
                with _REGISTRY_LOCK:
                    running = _RUNNING.get(token, set())
                    running.discard(ident)
                    if not running:
                        _RUNNING.pop(token, None)
    except ReportInterrupted:
        return ABORTED


async def _abort_runs(token: str, wait: float) -> int:
    """On a worker (``client.run``): raise :class:`_Aborted` in the threads running a report of
    ``token`` (``run_one`` kills the kernel and removes the unfinished folder), refuse its queued
    runs, and wait up to ``wait`` seconds for the clean-up. Returns the runs aborted."""
    import asyncio
    import ctypes

    # the dying kernels' "Kernel died ..." lines, from whichever thread notices them (the run's,
    # or this worker's shutdown when the client closes the cluster), stay off the terminal
    report_io.quiet_papermill(wait + ABORT_QUIET_EXTRA)
    with _REGISTRY_LOCK:
        _ABORTED_TOKENS.add(token)
        idents = sorted(_RUNNING.get(token, ()))
        for ident in idents:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(_Aborted))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with _REGISTRY_LOCK:
            if not _RUNNING.get(token):
                break
        await asyncio.sleep(0.1)
    return len(idents)
