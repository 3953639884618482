"""Kernels of the batch reports: the pinned ``python3`` kernel, one reused kernel per worker,
and figures rendered once.

The pinned kernel
-----------------
``kernel_name="python3"`` always runs **this interpreter** (``sys.executable -m
ipykernel_launcher``), whatever ``python3`` kernelspec another Jupyter installation registered
(:func:`kernel_manager_class`), and loads this module as an IPython extension
(``--IPKernelApp.extra_extensions``), which installs the render-once hook below.

Why reuse a kernel
------------------
A fresh kernel per notebook costs its start (about 0.4 s), the import cell (about 1 s: pandas,
matplotlib, scipy, ``crackdown``), the exchange-calendar builds and its shutdown (about 0.4 s):
about 70% of an event notebook. :class:`ReusedKernel` starts **one** kernel and runs many
notebooks on it, so the imports and the process-wide caches (calendars, price files, the
universe table; all keyed by their inputs) are paid once per worker.

A clean namespace per notebook
------------------------------
When a notebook has ended, :data:`_CLEAN` is sent to the kernel (``silent=True``: no output,
no execution count) without waiting for it: the kernel cleans up while the worker exports the
report, and its reply is checked before the next notebook starts (a failed clean-up stops the
batch's reuse of that kernel with an error naming ``--fresh-kernels``). It

1. closes every matplotlib figure and restores the rc file's ``rcParams``
   (``matplotlib.rc_file_defaults``; the backend is kept, and the notebook's own
   ``%matplotlib inline`` applies the inline settings again);
2. resets the pandas options (``pd.reset_option("all")``);
3. restores the warning filters the kernel had before its first notebook and invalidates the
   "shown once" registries (``warnings.resetwarnings``), so a warning is shown in every
   notebook that triggers it, as in a fresh kernel; restores ``sys.path``;
4. calls IPython's ``InteractiveShell.reset(new_session=True)``: every user name, the ``In`` /
   ``Out`` caches and the history go, and the execution counter restarts at 1 (the executed
   notebook numbers its cells as a fresh kernel does);
5. collects the notebook's garbage (IPython's reset runs its garbage collection *before* it
   clears the names) and moves every object that survived (the imported modules,
   crackdown's caches) to the permanent generation (:func:`gc.freeze`, as pre-fork servers
   do): the cyclic garbage collector then scans only what later notebooks allocate, instead
   of the whole process (about 150,000 objects, 70 ms per full pass) in each clean-up and in
   every full collection a notebook triggers. Reference counting still frees those
   objects; only a reference cycle among them that becomes garbage later is not reclaimed
   (crackdown's caches drop whole entries, which reference counting frees).

Before each notebook :data:`_ENTER` sets ``os.environ`` to the caller's environment *now* (what
a fresh kernel would inherit) plus the variables the kernel itself added at start
(``JPY_PARENT_PID``, ...), with ``CRACKDOWN_REPORT_DIR`` = the new report folder, and changes to
the notebook's folder. The kernel runs requests in order, so the clean-up is always complete
before the next notebook's first cell.

The notebooks run through one client connected when the kernel starts
(:mod:`crackdown.output.notebook_engine`: a new client per notebook costs about 0.2 s of
connection and IOPub flushing), and the executed notebook is written when it ends, not before
and after every cell.

Imported modules stay imported (that is the saving), so a module's own global state persists.
``crackdown`` keeps none that a notebook can change (its caches are keyed by their inputs and
return copies); ``tests/test_report_kernels.py`` runs the shipped notebooks both ways and
requires identical ``headline.json`` and CSV files. For notebooks of your own that change
module state, use fresh kernels (``crackdown report --fresh-kernels``,
``run_report(fresh_kernels=True)``): a new kernel process per notebook.

After a notebook that did not finish normally (a cell timeout, a dead kernel, an interruption)
the kernel is killed and the next notebook starts a new one; after a notebook whose cell raised
(the kernel is idle) it is reused. The kernel's stdout/stderr go to a log file of the worker;
the part written while a notebook ran is copied to that report's ``kernel.log``.

Figures rendered once
---------------------
A report notebook saves a figure (``save_figure(fig, out_dir / "x.png")``, 150 dpi) and then
shows it (``plt.show()``), which used to render it a second time for the inline output. The
extension wraps ``Figure.savefig``: after a figure is saved to a ``.png`` file it is marked
clean; when the inline backend then prints that figure to PNG for display and the figure has
not changed since (not ``stale``) and the file is unchanged (size and mtime), the saved file's
bytes are the inline image. The HTML therefore embeds the PNG written (shown at its 150 dpi,
scaled to the page width) and the extracted ``<label>-cellNN-K.png`` are the same bytes. A
figure changed after saving, or never saved, is rendered as before.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from crackdown.config import REPORT_DIR_ENV
from crackdown.errors import CrackdownError
from crackdown.output import notebook_engine, report_io

__all__ = [
    "KERNEL_NAME",
    "ReusedKernel",
    "close_worker_kernel",
    "kernel_manager_class",
    "load_ipython_extension",
    "worker_kernel",
]

KERNEL_NAME = "python3"
#: the IPython history setting nbclient gives the kernels it starts (no sqlite file)
_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]
#: this module as an IPython extension of every report kernel (the render-once hook)
_EXTENSION_ARG = f"--IPKernelApp.extra_extensions={__name__}"

#: run when a notebook has ended (sent without waiting: the kernel cleans up while the
#: worker exports the report); the kernel answers the next request only after it
_CLEAN = r'''
def _crackdown_clean():
    import os, sys, warnings
    ip = get_ipython()
    state = getattr(ip, "_crackdown_pool_state", None) or {
        "path": list(sys.path), "filters": list(warnings.filters)}
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
    mpl = sys.modules.get("matplotlib")
    pd = sys.modules.get("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mpl is not None:
            mpl.rc_file_defaults()
        if pd is not None:
            pd.reset_option("all")
    warnings.resetwarnings()
    warnings.filters[:] = state["filters"]
    getattr(warnings, "_filters_mutated", lambda: None)()
    sys.path[:] = state["path"]
    ip.reset(new_session=True)
    import gc
    gc.collect()  # the notebook's names are gone now (IPython collects before clearing them)
    gc.freeze()  # what survived: left out of every later collection's scan
_crackdown_clean()
'''

#: run before each notebook: the environment, report folder and working directory
_ENTER = r'''
def _crackdown_enter(cwd, report_dir, env_name, start_env, env):
    import json, os, sys, warnings
    ip = get_ipython()
    start_env, env = json.loads(start_env), json.loads(env)
    state = getattr(ip, "_crackdown_pool_state", None)
    if state is None:
        added = {k: v for k, v in os.environ.items() if start_env.get(k) != v}
        added.pop(env_name, None)
        state = ip._crackdown_pool_state = {
            "added": added, "path": list(sys.path), "filters": list(warnings.filters)}
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(state["added"])
    os.environ[env_name] = report_dir
    os.chdir(cwd)
_crackdown_enter(%r, %r, %r, %r, %r)
del _crackdown_enter
'''


# --------------------------------------------------------------------------------------------
# Render once (runs inside the kernel, loaded as an IPython extension)
# --------------------------------------------------------------------------------------------

_SAVED = "_crackdown_saved_png"


def _install_render_once() -> bool:
    """Wrap ``Figure.savefig`` and ``FigureCanvasBase.print_figure`` (once per process)."""
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.figure import Figure

    if getattr(Figure.savefig, "_crackdown", False):
        return True
    savefig, print_figure = Figure.savefig, FigureCanvasBase.print_figure

    def saving(self: Any, fname: Any, *args: Any, **kwargs: Any) -> Any:
        result = savefig(self, fname, *args, **kwargs)
        self.__dict__.pop(_SAVED, None)
        fmt = kwargs.get("format")
        if isinstance(fname, (str, os.PathLike)) and not args and (
                fmt == "png" or (fmt is None and str(fname).lower().endswith(".png"))):
            with contextlib.suppress(OSError):
                stat = os.stat(fname)
                self.__dict__[_SAVED] = (os.path.abspath(fname), stat.st_size, stat.st_mtime_ns)
                self._stale = False  # drawn just now; a later change marks it stale again
        return result

    def printing(self: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        fig = getattr(self, "figure", None)
        saved = getattr(fig, "__dict__", {}).get(_SAVED)
        if (saved is not None and isinstance(filename, io.BytesIO) and not args
                and kwargs.get("format") == "png" and not fig.stale):
            path, size, mtime = saved
            with contextlib.suppress(OSError):
                stat = os.stat(path)
                if (stat.st_size, stat.st_mtime_ns) == (size, mtime):
                    with open(path, "rb") as handle:
                        filename.write(handle.read())
                    return None
        return print_figure(self, filename, *args, **kwargs)

    saving._crackdown = True  # type: ignore[attr-defined]
    Figure.savefig = saving  # type: ignore[method-assign]
    FigureCanvasBase.print_figure = printing  # type: ignore[method-assign]
    return True


def load_ipython_extension(ip: Any) -> None:
    """IPython extension hook: install the render-once wrappers as soon as matplotlib is
    imported (checked before each cell; matplotlib is not imported by this)."""

    def before(*_: Any) -> None:
        if "matplotlib.figure" in sys.modules and "matplotlib.backend_bases" in sys.modules:
            with contextlib.suppress(Exception):
                _install_render_once()
            with contextlib.suppress(ValueError):
                ip.events.unregister("pre_run_cell", before)

    ip.events.register("pre_run_cell", before)


# --------------------------------------------------------------------------------------------
# The pinned kernel manager
# --------------------------------------------------------------------------------------------


class _ThisInterpreterKernelSpecManager:
    """Factory for a KernelSpecManager whose ``python3`` spec runs ``sys.executable``."""

    @staticmethod
    def build():
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

        class Manager(KernelSpecManager):
            def get_kernel_spec(self, kernel_name: str, *args: Any, **kwargs: Any) -> KernelSpec:
                if kernel_name == KERNEL_NAME:
                    return KernelSpec(
                        argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                              "{connection_file}", _EXTENSION_ARG],
                        display_name=f"Python 3 ({sys.executable})",
                        language="python",
                        metadata={},
                        env={},
                        resource_dir="",
                    )
                return super().get_kernel_spec(kernel_name, *args, **kwargs)

        return Manager()


def kernel_manager_class(log_path: Path | None = None, *, register: bool = True):
    """AsyncKernelManager subclass using the pinned ``python3`` kernelspec.

    With ``log_path``, the kernel process's stdout/stderr (start-up warnings, crashes) go to
    that file instead of the terminal running the batch, and (``register=True``) the kernel's
    process group is registered for the report folder holding ``log_path``
    (:func:`crackdown.output.report_io.register_kernel`). The clients it hands out are kept
    in ``.clients`` so that a reused kernel's per-notebook clients can be closed.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class PinnedKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_ksm(self):
            return _ThisInterpreterKernelSpecManager.build()

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            self.__dict__.setdefault("clients", []).append(kc)
            return kc

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if log_path is not None:
                handle = open(log_path, "ab")  # noqa: SIM115, ASYNC230 - tiny, local
                kw["stdout"] = handle
                kw["stderr"] = handle
                try:
                    await super()._async_launch_kernel(kernel_cmd, **kw)
                finally:
                    handle.close()  # the child keeps its own copy of the descriptor
                if register:  # the kernel runs in its own session: kill its group on a signal
                    report_io.register_kernel(log_path.parent, _pgid(self))
            else:
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return PinnedKernelManager


def _pgid(km: Any) -> int | None:
    provisioner = getattr(km, "provisioner", None)
    return getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)


def _run_sync(coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
    from jupyter_core.utils import run_sync

    return run_sync(coro_fn)(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# One kernel for many notebooks
# --------------------------------------------------------------------------------------------


class ReusedKernel:
    """One kernel that runs many notebooks, each in a clean namespace (module docstring).

    Every kernel operation runs in one dedicated thread (the asyncio loop of the kernel's zmq
    clients lives there; papermill installs no signal handlers outside the main thread), while
    the calling thread waits and turns SIGINT/SIGTERM into
    :class:`~crackdown.output.report_io.ReportInterrupted`
    (:func:`~crackdown.output.report_io.run_in_thread`). Use it as a context manager or call
    :meth:`close`; the kernel of :func:`worker_kernel` is also killed at process exit, an idle
    worker stopped by SIGTERM kills it (:func:`crackdown.output.report_io.worker_init`), and an
    orphaned kernel ends itself when its parent dies (ipykernel's parent poller).

    Parameters
    ----------
    start_timeout
        Seconds to wait for a new kernel to answer.

    Attributes
    ----------
    starts, notebooks
        Kernels started (1 unless one had to be replaced) and notebooks run.
    pid
        Process id of the running kernel (None when none runs).
    """

    def __init__(self, start_timeout: float = 120.0) -> None:
        self.start_timeout = float(start_timeout)
        self._thread = cf.ThreadPoolExecutor(1, thread_name_prefix="crackdown-kernel")
        self._km: Any = None
        self._control: Any = None
        self._client: Any = None
        self._cleaning: str | None = None
        self._log: Path | None = None
        self._start_env: dict[str, str] = {}
        self.starts = 0
        self.notebooks = 0
        self._runner: threading.Thread | None = None  # the thread running the notebooks

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        km = self._km
        return None if km is None else _pgid(km)

    # -- in the kernel thread ------------------------------------------------------------

    def _alive(self) -> bool:
        return self._km is not None and bool(_run_sync(self._km.is_alive))

    def _start(self, cwd: str) -> None:
        self._stop()
        fd, name = tempfile.mkstemp(prefix="crackdown-kernel-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        km = kernel_manager_class(self._log, register=False)(kernel_name=KERNEL_NAME)
        self._start_env = dict(os.environ)
        _run_sync(km.start_kernel, extra_arguments=list(_KERNEL_ARGS), cwd=cwd)
        self._km = km
        report_io.register_idle_kernel(_pgid(km))
        # its own session: the clients of one manager share the socket identity
        # (session.bsession), and the kernel would route our replies to papermill's client
        from jupyter_client.session import Session

        control = km.client(session=Session(key=km.session.key,
                                            signature_scheme=km.session.signature_scheme))
        control.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._control = control
        self.starts += 1
        self._run_code("pass", self.start_timeout, starting=True)
        # the notebooks' client: connected and ready once, reused by every notebook
        # (crackdown.output.notebook_engine; nbclient would otherwise make one per notebook)
        client = km.client()
        client.start_channels()
        _run_sync(client.wait_for_ready, timeout=self.start_timeout)
        self._client = client

    def _run_code(self, code: str, timeout: float, *, starting: bool = False) -> None:
        """Execute ``code`` silently and wait for its reply; raise if it failed."""
        self._wait_reply(self._send_code(code), timeout, "start" if starting else "reset")

    def _send_code(self, code: str) -> str:
        return self._control.execute(code, silent=True, store_history=False, allow_stdin=False)

    def _wait_reply(self, msg_id: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                verb = "start" if what == "start" else "reset its namespace"
                raise CrackdownError(f"the report kernel did not {verb} within {timeout:g} s; "
                                     "rerun, or use --fresh-kernels")
            try:
                reply = _run_sync(self._control.get_shell_msg, timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: not yet
                if not self._alive():
                    raise CrackdownError("the report kernel died while starting; see the "
                                         "kernel.log of the report, or use --fresh-kernels"
                                         ) from None
                continue
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            content = reply.get("content", {})
            if content.get("status") != "ok":
                raise CrackdownError(f"resetting the report kernel failed "
                                     f"({content.get('ename')}: {content.get('evalue')}); use "
                                     "--fresh-kernels")
            return

    def _prepare(self, cwd: str, folder: Path) -> int:
        cleaning, self._cleaning = self._cleaning, None
        if not self._alive():
            self._start(cwd)
        elif cleaning is not None:  # the previous notebook's clean-up (normally done by now)
            self._wait_reply(cleaning, 60.0, "reset")
        report_io.register_kernel(folder, _pgid(self._km))
        env = dict(os.environ)
        env.pop(REPORT_DIR_ENV, None)
        self._run_code(_ENTER % (cwd, str(folder), REPORT_DIR_ENV, json.dumps(self._start_env),
                                 json.dumps(env)), 60.0)
        return self._log.stat().st_size if self._log is not None else 0

    def _close_clients(self) -> None:
        """Close the clients a notebook made (none normally), not the control and notebook
        clients of this kernel."""
        clients = self._km.__dict__.get("clients", [])
        keep = [kc for kc in clients if kc is self._control or kc is self._client]
        for kc in clients:
            if not any(kc is k for k in keep):
                with contextlib.suppress(Exception):
                    kc.stop_channels()
        clients[:] = keep

    def _copy_log(self, offset: int, folder: Path) -> None:
        if self._log is None:
            return
        with contextlib.suppress(OSError), open(self._log, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
            with open(folder / "kernel.log", "ab") as out:
                out.write(data)

    def _execute(self, nb_path: str, executed: str, parameters: dict[str, Any], folder: Path,
                 execution_timeout: float | None) -> None:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        cwd = str(Path(nb_path).parent)
        offset = 0
        self._runner = threading.current_thread()
        try:
            offset = self._prepare(cwd, folder)
            pm.execute_notebook(nb_path, executed, parameters=parameters,
                                engine_name=notebook_engine.register_engine(),
                                kernel_name=KERNEL_NAME, progress_bar=False, cwd=cwd,
                                execution_timeout=execution_timeout,
                                start_timeout=self.start_timeout, km=self._km, kc=self._client)
        except PapermillExecutionError:
            self._clean()  # a cell raised: the kernel is idle and is reused
            raise
        except BaseException:
            self._stop()  # timeout, dead kernel, interruption: start afresh next time
            raise
        else:
            self._clean()
        finally:
            if self._km is not None:
                self._close_clients()
            self._copy_log(offset, folder)
            report_io.unregister_kernel(folder)
            report_io.run_ended()
            self.notebooks += 1

    def _clean(self) -> None:
        """Send :data:`_CLEAN` without waiting (its reply is checked before the next notebook)."""
        with contextlib.suppress(Exception):  # a kernel that cannot take it is replaced later
            self._cleaning = self._send_code(_CLEAN)

    def _stop(self) -> None:
        """Kill the kernel at once (nothing to save: outputs are read from the client)."""
        km, self._km = self._km, None
        control, self._control = self._control, None
        self._client = self._cleaning = None
        if control is not None:
            with contextlib.suppress(Exception):
                control.stop_channels()
        if km is not None:
            for kc in km.__dict__.get("clients", []):
                with contextlib.suppress(Exception):
                    kc.stop_channels()
            pgid = _pgid(km)
            report_io.forget_idle_kernel(pgid)
            if pgid and pgid > 1 and pgid != os.getpgrp():
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                _run_sync(km.shutdown_kernel, now=True)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.unlink()
            self._log = None

    # -- public (any thread) ---------------------------------------------------------------

    def execute(self, nb_path: str, executed: str, parameters: dict[str, Any], folder: Path,
                execution_timeout: float | None = None) -> None:
        """Run a notebook with papermill on this kernel into ``executed`` (in a clean namespace,
        ``CRACKDOWN_REPORT_DIR`` = ``folder``); papermill's exceptions propagate.

        On SIGINT/SIGTERM in the calling (main) thread the kernel is killed and
        :class:`~crackdown.output.report_io.ReportInterrupted` propagates.
        """
        def abort() -> None:
            report_io.mark_aborted(self._runner)  # its "Kernel died ..." line is dropped
            report_io.kill_kernel(folder)

        report_io.run_in_thread(
            lambda: self._thread.submit(self._execute, nb_path, executed, dict(parameters),
                                        folder, execution_timeout).result(),
            on_abort=abort)

    def close(self) -> None:
        """Kill the kernel and end the thread (idempotent)."""
        with contextlib.suppress(RuntimeError, cf.TimeoutError):  # already shut down
            self._thread.submit(self._stop).result(timeout=30)
        self._thread.shutdown(wait=False)


_WORKER_KERNEL: ReusedKernel | None = None


def worker_kernel(start_timeout: float = 120.0) -> ReusedKernel:
    """The reused kernel of this process (created on first use; killed by
    :func:`close_worker_kernel` or at process exit)."""
    global _WORKER_KERNEL
    if _WORKER_KERNEL is None:
        import multiprocessing.util

        _WORKER_KERNEL = ReusedKernel(start_timeout)
        multiprocessing.util.Finalize(_WORKER_KERNEL, _WORKER_KERNEL.close, exitpriority=50)
    return _WORKER_KERNEL


def close_worker_kernel() -> None:
    """Shut down this process's reused kernel, if one runs (the next use starts a new one)."""
    global _WORKER_KERNEL
    kernel, _WORKER_KERNEL = _WORKER_KERNEL, None
    if kernel is not None:
        kernel.close()
