"""Transactional report folders, atomic writes, interruption and kernel clean-up.

The machinery behind :mod:`crackdown.output.reports` that makes a batch safe to interrupt:

* **Transactional folders.** A report is built in a hidden sibling folder
  ``OUTPUT/<notebook>/.<label>.partial-<pid>-<token>`` and renamed to ``<label>`` only when it
  is complete (:func:`commit`); the previous report of that label is replaced in one step, so a
  failed rerun never leaves the previous run's files (CSVs, PNGs) beside a "failed" status, and
  a crash leaves the previous report untouched. A hidden folder whose process is gone was left
  by a run that was killed (``kill -9``, power loss): the index lists it as *incomplete*, and
  the next run of that label removes it (:func:`remove_stale`).
* **Atomic files.** :func:`atomic_write` writes to a temporary file in the same folder, fsyncs
  and renames it over the target: a reader (or a full disk) never sees a truncated
  ``status.json`` or ``index.html``. Disk-full, read-only and permission errors become one-line
  :class:`~crackdown.errors.CrackdownError` messages naming the path (:func:`io_error`).
* **Interruption.** While a batch runs, SIGINT and SIGTERM raise :class:`ReportInterrupted` in
  the main thread (:func:`handle_signals`); the runner kills the kernel's process group, removes
  the unfinished folder, writes the index of the finished reports and re-raises. The CLI prints
  one line and exits ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM). Critical sections (the
  renames of :func:`commit`) defer the signal to their end (:func:`deferred_signals`). Worker
  processes ignore SIGINT (the parent stops them) and clean up on SIGTERM (:func:`worker_init`).
* **Kernels.** jupyter_client starts each kernel in its own session (process group), out of reach
  of the terminal's Ctrl-C; :func:`register_kernel` records its group id and :func:`kill_kernel`
  sends it SIGKILL, so no kernel outlives an interrupted batch. A kernel reused for many reports
  (:mod:`crackdown.output.kernel_pool`) is registered for each report while it runs it and
  unregistered (:func:`unregister_kernel`) when that report is done; while idle it is known to
  :func:`register_idle_kernel`, and an idle worker stopped by SIGTERM kills it before exiting.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from crackdown.errors import CrackdownError, StudyConfigError

__all__ = [
    "DISK_ERRNOS",
    "KERNEL_PID_FILE",
    "ReportInterrupted",
    "active_run",
    "atomic_write",
    "check_timeout",
    "children_ignore_sigint",
    "commit",
    "deferred_signals",
    "forget_idle_kernel",
    "handle_signals",
    "io_error",
    "kill_idle_kernels",
    "kill_kernel",
    "new_partial",
    "pid_alive",
    "prepare_output",
    "register_idle_kernel",
    "register_kernel",
    "remove_stale",
    "run_in_thread",
    "stale_folders",
    "unregister_kernel",
    "worker_init",
]

KERNEL_PID_FILE = "kernel.pid"
#: OS errors of the output folder that stop a batch (the next report would fail the same way)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
#: ``.<label>.partial-<pid>-<token>`` (being built) or ``.<label>.old-<pid>-<token>`` (the
#: previous report, set aside for the instant of the swap)
_HIDDEN = re.compile(r"^\.(?P<label>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


class ReportInterrupted(KeyboardInterrupt):
    """A batch stopped by SIGINT or SIGTERM.

    Attributes
    ----------
    signum
        The signal received.
    exit_code
        ``128 + signum``: 130 for SIGINT, 143 for SIGTERM (the shell convention).
    finished
        Outcomes of the reports completed before the signal (set by the runner).
    index
        ``index.html`` rewritten after the interruption, or None if it could not be written.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        self.finished: list[Any] = []
        self.index: Path | None = None
        super().__init__(self.signal_name)

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


# --------------------------------------------------------------------------------------------
# Errors, options, atomic files
# --------------------------------------------------------------------------------------------


def io_error(path: str | os.PathLike[str], exc: OSError, what: str = "write") -> CrackdownError:
    """One-line :class:`CrackdownError` for an OS error on ``path``, with the fix."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space or choose another --output"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable or choose another --output"
    else:
        fix = "check the path or choose another --output"
    return CrackdownError(f"cannot {what} {path}: {reason}; {fix} (reports written before are "
                          "unchanged)")


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename over ``path``.

    On any failure (e.g. a full disk) the temporary file is removed and ``path`` keeps its
    previous content (or stays absent); the :class:`OSError` propagates.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_timeout(value: Any, option: str) -> float | None:
    """Validate a timeout in seconds: None (no limit) or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StudyConfigError(f"{option} {value!r}: must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise StudyConfigError(f"{option} {value!r}: must be a positive, finite number of "
                               "seconds; omit it for no limit")
    return float(value)


def prepare_output(output: str | os.PathLike[str]) -> Path:
    """Create the output folder (and parents) and check that it is a writable folder.

    Raises a one-line :class:`StudyConfigError` naming ``--output`` when the path is an
    existing file, lies under a file, cannot be created or is not writable.
    """
    out = Path(output).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise StudyConfigError(f"--output {out}: is an existing file, not a folder; give a folder "
                               "path (it is created if missing)")
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), out)
        raise StudyConfigError(f"--output {out}: {blocker} is a file, so the folder cannot be "
                               "created; choose another --output") from None
    except OSError as exc:
        raise StudyConfigError(f"--output {out}: cannot create the folder "
                               f"({exc.strerror or exc}); choose a writable --output") from None
    probe = out / f".crackdown-write-test-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        for path in created:  # deepest first: leave nothing behind
            with contextlib.suppress(OSError):
                path.rmdir()
        raise StudyConfigError(f"--output {out}: the folder is not writable "
                               f"({exc.strerror or exc}); choose a writable --output") from None
    return out.resolve()


# --------------------------------------------------------------------------------------------
# Transactional folders
# --------------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def new_partial(parent: Path, label: str) -> Path:
    """Create and return the hidden folder a report of ``label`` is built in."""
    path = parent / f".{label}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    return path


def commit(partial: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``partial`` folder (signals deferred meanwhile)."""
    with deferred_signals():
        (partial / KERNEL_PID_FILE).unlink(missing_ok=True)
        old = None
        if final.exists() or final.is_symlink():
            if not final.is_dir() or final.is_symlink():
                raise CrackdownError(f"{final} exists and is not a report folder; move it away "
                                     "and rerun the report")
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            final.rename(old)
        try:
            partial.rename(final)
        except BaseException:
            if old is not None:
                old.rename(final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def stale_folders(parent: Path) -> list[tuple[Path, str, int]]:
    """Hidden report folders under ``parent`` whose process is gone: (path, label, pid)."""
    found = []
    if not parent.is_dir():
        return found
    for path in sorted(parent.iterdir()):
        match = _HIDDEN.match(path.name)
        if match and path.is_dir() and not pid_alive(int(match["pid"])):
            found.append((path, match["label"], int(match["pid"])))
    return found


def remove_stale(parent: Path, labels: set[str] | None = None) -> None:
    """Remove stale hidden folders (of ``labels``, or all), killing a kernel they recorded.

    A stale ``.old`` folder whose report folder is missing (killed in the instant of the swap)
    is renamed back instead.
    """
    for path, label, _ in stale_folders(parent):
        if labels is not None and label not in labels:
            continue
        kill_kernel(path, verify=True)
        final = parent / label
        if ".old-" in path.name and not final.exists():
            path.rename(final)
        else:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------

_KERNELS: dict[str, int] = {}
_KERNELS_LOCK = threading.Lock()


def register_kernel(folder: Path, pgid: int | None) -> None:
    """Remember the process group of the kernel running the report built in ``folder``."""
    if not pgid:
        return
    with _KERNELS_LOCK:
        _KERNELS[str(folder)] = int(pgid)
    with contextlib.suppress(OSError):
        (folder / KERNEL_PID_FILE).write_text(str(int(pgid)), encoding="ascii")


_IDLE_KERNELS: set[int] = set()


def register_idle_kernel(pgid: int | None) -> None:
    """Remember the process group of this process's reused kernel: an idle worker stopped by
    SIGTERM kills it before exiting (:func:`worker_init`)."""
    if pgid:
        with _KERNELS_LOCK:
            _IDLE_KERNELS.add(int(pgid))


def forget_idle_kernel(pgid: int | None) -> None:
    """Undo :func:`register_idle_kernel` (the kernel was shut down)."""
    with _KERNELS_LOCK:
        _IDLE_KERNELS.discard(int(pgid or 0))


def unregister_kernel(folder: Path) -> None:
    """Forget the kernel of ``folder`` without killing it (a reused kernel moves on to the next
    report; its ``kernel.pid`` file goes with the commit of the folder)."""
    with _KERNELS_LOCK:
        _KERNELS.pop(str(folder), None)


def kill_idle_kernels() -> None:
    """SIGKILL the reused kernels of this process (:func:`register_idle_kernel`)."""
    for pgid in list(_IDLE_KERNELS):
        if pgid > 1 and pgid != os.getpgrp():
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)


def _is_kernel(pid: int) -> bool:
    try:
        return b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


#: threads whose notebook run was aborted (:func:`mark_aborted`) and has not ended yet
_ABORTED_RUNS: set[int] = set()


#: ``time.monotonic()`` until which papermill's records of every thread are dropped
#: (:func:`quiet_papermill`).
_QUIET_UNTIL = [0.0]


def _not_aborted(record: Any) -> bool:
    """Logging filter of papermill's logger: False for the records of an aborted run, and for
    every record while the process aborts its runs (:func:`quiet_papermill`)."""
    return record.thread not in _ABORTED_RUNS and time.monotonic() >= _QUIET_UNTIL[0]


def quiet_papermill(seconds: float) -> None:
    """Drop papermill's log records of every thread of this process for ``seconds``.

    For a cluster worker told to abort its runs
    (:func:`crackdown.output.report_cluster._abort_runs`): whichever thread notices a dying
    kernel first (the run's, or the worker's shutdown once the client closes the cluster), its
    "Kernel died while waiting for execute reply." must not reach the terminal before the
    batch's one line about the interruption. The outcomes are unaffected (a failed run is
    reported by its exception, not by its log).
    """
    import logging

    logging.getLogger("papermill").addFilter(_not_aborted)  # once: a logger keeps a set
    _QUIET_UNTIL[0] = max(_QUIET_UNTIL[0], time.monotonic() + seconds)


def mark_aborted(thread: threading.Thread | None) -> None:
    """The notebook run in ``thread`` is being aborted (its kernel is killed next): papermill's
    records from that thread are dropped until the run ends (:func:`run_ended`), so the dying
    kernel's "Kernel died while waiting for execute reply." does not precede the batch's one
    line about the interruption on the terminal."""
    import logging

    if thread is not None and thread.ident is not None and thread.is_alive():
        logging.getLogger("papermill").addFilter(_not_aborted)  # once: a logger keeps a set
        _ABORTED_RUNS.add(thread.ident)


def run_ended() -> None:
    """The notebook run in this thread has ended (call in its ``finally``): see
    :func:`mark_aborted`."""
    _ABORTED_RUNS.discard(threading.get_ident())


def kill_kernel(folder: Path, *, verify: bool = False) -> None:
    """SIGKILL the process group of the kernel of ``folder`` (if any is known).

    ``verify=True`` (for a group id read back from a stale folder, whose number may have been
    reused) kills only when the process is still an ipykernel.
    """
    with _KERNELS_LOCK:
        pgid = _KERNELS.pop(str(folder), None)
    if pgid is None:
        try:
            pgid = int((folder / KERNEL_PID_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return
        if not verify or not _is_kernel(pgid):
            return
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# Signals and the papermill thread
# --------------------------------------------------------------------------------------------


class _SignalState:
    defer = 0
    pending: int | None = None
    active_run = False


_STATE = _SignalState()


def _on_signal(signum: int, frame: Any) -> None:
    if _STATE.defer:
        _STATE.pending = signum
        return
    raise ReportInterrupted(signum)


@contextlib.contextmanager
def deferred_signals(*, drop: bool = False) -> Iterator[None]:
    """Hold SIGINT/SIGTERM (installed by :func:`handle_signals`) until the block ends.

    A signal received meanwhile is raised at the end, or dropped with ``drop=True`` (for
    clean-up blocks that already handle an interruption: a second Ctrl-C must not cut them).
    """
    _STATE.defer += 1
    try:
        yield
    finally:
        _STATE.defer -= 1
        if not _STATE.defer and _STATE.pending is not None:
            signum, _STATE.pending = _STATE.pending, None
            if not drop:
                raise ReportInterrupted(signum)


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Start child processes inside the block with SIGINT ignored from their first instruction.

    An ignored signal stays ignored across ``exec`` and Python then keeps it so, so a Ctrl-C
    while a spawned worker boots cannot print a traceback from it; :func:`worker_init` keeps it
    ignored. The parent ignores SIGINT for the few milliseconds of the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`ReportInterrupted` inside the block.

    Only in the main thread (elsewhere Python cannot install handlers; the block runs as is).
    The previous handlers are restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker_sigterm(signum: int, frame: Any) -> None:
    if _STATE.active_run:
        _on_signal(signum, frame)
    else:  # idle worker: kill its reused kernel, if any, and end
        kill_idle_kernels()
        os._exit(128 + signum)


def worker_init() -> None:
    """Initializer of the batch's worker processes.

    SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group; the parent stops the
    workers); SIGTERM from the parent raises :class:`ReportInterrupted` in a running report,
    which then cleans up (kernel, unfinished folder), or ends an idle worker at once.

    The optional package ``rfc3987_syntax`` is not imported in a worker: jsonschema (imported
    by nbformat) loads it when installed, for its ``iri`` format checkers, and it compiles 38
    lark grammars at import, about 1.1 s of CPU per worker (1.4 s instead of 0.3 s to import
    papermill and nbformat). A worker only validates notebooks, and nbformat's validation
    checks no formats, so the worker never uses it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


@contextlib.contextmanager
def active_run() -> Iterator[None]:
    """Mark a report as running in this process (see :func:`worker_init`)."""
    _STATE.active_run = True
    try:
        yield
    finally:
        _STATE.active_run = False


def run_in_thread(fn: Callable[[], Any], on_abort: Callable[[], None]) -> Any:
    """Run ``fn`` in a thread and wait for it; return its result or raise its exception.

    papermill's notebook client installs its own SIGINT/SIGTERM handlers when it runs in the
    main thread, and they only shut the kernel down while the batch carries on (Ctrl-C was
    swallowed). In another thread it installs none, so the signal reaches our handler in the
    main thread, which calls ``on_abort`` (kill the kernel), waits briefly for the thread to
    notice the dead kernel and re-raises.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="crackdown-papermill", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except BaseException:
        with deferred_signals(drop=True):
            on_abort()
            thread.join(15)
        raise
    if "error" in box:
        raise box["error"]
    return box.get("result")
