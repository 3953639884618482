"""Batch reports: run a parameterised notebook per event, export HTML and PNGs, write an index.

How a batch works (``crackdown report``, or :func:`run_report` from Python)
---------------------------------------------------------------------------
* The notebook ``notebooks/<NAME>.ipynb`` of the repository checkout is executed with papermill.
  A notebook whose ``parameters`` cell defines ``event_id`` is **per event** (one run per event);
  any other notebook (e.g. an overview) runs **once**.
* Parameters injected (only those the notebook's ``parameters`` cell declares, plus any extra
  ones the caller passes): ``event_id``, ``prices_dir`` (str or None), ``events_file`` (str or
  None), ``output_dir`` and ``report_dir`` (both the folder the report is built in,
  as str; renamed to ``<label>`` when the run ends, see Transactions).
* Output layout::

      OUTPUT/index.html                       links every report found under OUTPUT
      OUTPUT/<folder>/<label>.ipynb           executed notebook (kept, also when it failed)
      OUTPUT/<folder>/<label>.html            nbconvert HTMLExporter, images embedded, code
                                              cells hidden unless exclude_input=False
      OUTPUT/<folder>/<label>-cellNN-K.png    every image/png output, extracted
      OUTPUT/<folder>/headline.json           written by record_headline() in the notebook
      OUTPUT/<folder>/status.json             outcome of the run (read by the index)
      OUTPUT/<folder>/kernel.log              the kernel process's own stdout/stderr

  ``<folder>`` is ``<notebook>/<event id>`` for a per-event notebook (``<label>`` = the event
  id) and ``<notebook>`` for a run-once notebook (``<label>`` = the notebook name), e.g.
  ``reports/event_study/alibaba_antitrust_fine/alibaba_antitrust_fine.html`` and
  ``reports/crackdown_overview/crackdown_overview.html``. Earlier versions put a run-once report
  one level deeper (``OUTPUT/<notebook>/<notebook>/``): the index still lists such a folder
  until the notebook is rerun, which replaces it by the new layout (update old bookmarks).
  **Figures**: PNGs are *extracted* from the executed notebook's ``image/png`` outputs, so any
  figure the notebook displays is saved, whatever the notebook does; a notebook may in addition
  save figures itself with :func:`crackdown.output.plots.save_figure` into ``output_dir``: a
  figure saved as PNG and then shown unchanged is not drawn again, its file is the inline image
  (:mod:`crackdown.output.kernel_pool`, "Figures rendered once").
* Headline numbers: the notebook calls :func:`record_headline` with a dict; it writes
  ``headline.json`` into the report folder, found from the ``report_dir`` argument or the
  ``CRACKDOWN_REPORT_DIR`` environment variable, which the runner sets for every kernel.
* Kernel: ``kernel_name="python3"`` pinned to **the running interpreter** (``sys.executable -m
  ipykernel_launcher``), whatever ``python3`` kernelspec another Jupyter installation may have
  registered, so the notebooks import the same ``crackdown`` as the caller (also in a fresh CI
  venv with no kernelspec registered).
* Parallelism: ``jobs`` worker processes (``spawn``; ``jobs=1``: this process). Each keeps
  **one kernel** for all its notebooks and gives every notebook a clean namespace (names,
  figures, rc and pandas options, warning filters, environment, cwd and the execution counter;
  :mod:`crackdown.output.kernel_pool`); ``fresh_kernels=True`` (``--fresh-kernels``) starts a
  new kernel per notebook instead, for full process isolation. Several notebooks (``--notebook
  all``) share one pool, the run-once notebooks first. Or, with ``scheduler``
  (``--scheduler``, ``$CRACKDOWN_DASK_SCHEDULER``), one Dask task per run on a cluster's
  workers (:mod:`crackdown.output.report_cluster`; a fresh kernel per run). A failing notebook
  does not stop the batch; it is marked failed in ``status.json`` and in the index, with a
  one-line error.
* Transactions (:mod:`crackdown.output.report_io`): each report is built in a hidden folder
  ``OUTPUT/<notebook>/.<label>.partial-*`` (``report_dir``/``output_dir`` point there while the
  notebook runs; do not store that path) and renamed to ``<label>`` when complete, replacing the
  previous report in one step; ``status.json`` and ``index.html`` are written atomically. A
  full disk or an unwritable output stops the batch with a one-line error, previous reports
  intact. SIGINT/SIGTERM stop the batch: kernels killed, unfinished folders removed, index
  rewritten, :class:`ReportInterrupted` raised. The index lists folders without a valid status
  as *incomplete* (:mod:`crackdown.output.report_index`).
* **Trust boundary**: a notebook is a program. :func:`run_report` (and ``crackdown report
  --notebooks-dir``) executes the notebook's code with the caller's rights; run only notebooks
  you trust.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import operator
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crackdown import cluster, config
from crackdown.errors import CrackdownError, StudyConfigError
from crackdown.output import kernel_pool, notebook_engine, report_cluster, report_io
from crackdown.output.html_export import html_exporter as _html_exporter
from crackdown.output.kernel_pool import KERNEL_NAME, ReusedKernel
from crackdown.output.kernel_pool import kernel_manager_class as _kernel_manager_class
from crackdown.output.notebook_engine import is_per_event, notebook_parameters
from crackdown.output.report_index import (
    STATUS_FILE,
    check_run_once_folder,
    report_folder,
    write_index,
)
from crackdown.output.report_io import ReportInterrupted

__all__ = [
    "HEADLINE_FILE",
    "KERNEL_NAME",
    "REPORT_DIR_ENV",
    "STATUS_FILE",
    "BatchResult",
    "ReportInterrupted",
    "ReportOutcome",
    "is_per_event",
    "notebook_parameters",
    "notebooks_dir",
    "read_headline",
    "record_headline",
    "report_folder",
    "resolve_notebook",
    "run_one",
    "run_report",
    "write_index",
]

REPORT_DIR_ENV = config.REPORT_DIR_ENV  # "CRACKDOWN_REPORT_DIR"
HEADLINE_FILE = "headline.json"
KERNEL_LOG_FILE = "kernel.log"

_SAFE_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


# --------------------------------------------------------------------------------------------
# Headline numbers (called from inside the notebooks)
# --------------------------------------------------------------------------------------------


def _json_value(key: str, value: Any) -> Any:
    """Convert numpy/pandas scalars to JSON types; NaN/inf -> None; reject containers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, (dt.date, dt.datetime)) or type(value).__name__ == "Timestamp":
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise StudyConfigError(
        f"record_headline: value of {key!r} is {type(value).__name__} ({value!r}); headline values "
        "must be numbers, strings, booleans, dates or None (record one number per key)"
    )


def record_headline(values: Mapping[str, Any], *, report_dir: str | os.PathLike[str] | None = None
                    ) -> Path | None:
    """Record a report's headline numbers in ``<report_dir>/headline.json``.

    Call it from a report notebook, e.g.
    ``record_headline({"CAAR[-1,+1] (%)": 100 * caar, "t": t, "p": p, "firms": n})``.
    Successive calls merge (a later value for the same key wins); key order is kept and is the
    column order of the index.

    Parameters
    ----------
    values
        Mapping of label -> number/str/bool/date/None. numpy scalars are converted; NaN and
        infinities are stored as ``null`` (shown as "n/a").
    report_dir
        Folder of the report; default the ``CRACKDOWN_REPORT_DIR`` environment variable that
        ``crackdown report`` sets for the kernel (set it, or pass ``report_dir``, to record the
        headline of a run by hand).

    Returns
    -------
    pathlib.Path or None
        The file written, or ``None`` when the notebook runs outside ``crackdown report`` and
        no ``report_dir`` is given: an interactive run is quiet and writes nothing (the values
        are still validated, so a bad value fails in JupyterLab as it would in a batch).
    """
    if not isinstance(values, Mapping):
        raise StudyConfigError(f"record_headline: expected a dict of label -> number, got "
                               f"{type(values).__name__}")
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key.strip():
            raise StudyConfigError(f"record_headline: key {key!r} must be a non-empty string")
        clean[key] = _json_value(key, value)
    folder = report_dir if report_dir is not None else os.environ.get(REPORT_DIR_ENV)
    if not folder:
        return None
    path = Path(folder) / HEADLINE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = read_headline(path.parent) if path.is_file() else {}
    merged.update(clean)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def read_headline(report_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``headline.json`` of a report folder ({} when the notebook recorded nothing)."""
    path = Path(report_dir) / HEADLINE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CrackdownError(f"{path}: not valid JSON ({exc}); delete it and re-run the report")
    if not isinstance(data, dict):
        raise CrackdownError(f"{path}: expected a JSON object of label -> value")
    return data


# --------------------------------------------------------------------------------------------
# Notebook lookup and inspection
# --------------------------------------------------------------------------------------------


def notebooks_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of report notebooks: ``explicit`` > ``<repo checkout>/notebooks`` >
    the notebooks shipped in the wheel (:func:`crackdown.config.project_notebooks_dir`)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise StudyConfigError(f"notebooks folder {path} does not exist; pass an existing "
                                   "folder with --notebooks-dir")
        return path
    folder = config.project_notebooks_dir()
    if folder is None:
        raise StudyConfigError(
            f"no report notebooks: the crackdown installed at {config.PACKAGE_DIR} has no "
            "notebooks/ folder (neither a checkout nor a complete wheel); reinstall crackdown "
            "or pass --notebooks-dir DIR"
        )
    return folder


def resolve_notebook(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """Return ``<folder>/<name>.ipynb``; a missing notebook raises listing the available ones."""
    base = notebooks_dir(folder)
    stem = name.removesuffix(".ipynb")
    if not stem or "/" in stem or "\\" in stem:
        raise StudyConfigError(f"--notebook {name!r}: give a notebook name from {base} without "
                               "folder or extension, e.g. --notebook event_study")
    path = base / f"{stem}.ipynb"
    if not path.is_file():
        available = sorted(p.stem for p in base.glob("*.ipynb"))
        raise StudyConfigError(
            f"--notebook {name!r}: {path} not found; available in {base}: "
            f"{', '.join(available) if available else '(none)'}"
        )
    return path


# --------------------------------------------------------------------------------------------
# Running one notebook (in a worker process)
# --------------------------------------------------------------------------------------------


@dataclass
class ReportOutcome:
    """Result of one notebook run; also stored as ``status.json`` in the report folder."""

    notebook: str
    label: str
    event_id: str | None
    status: str  # "ok" | "failed"
    error: str = ""
    report_dir: str = ""
    html: str = ""
    executed_notebook: str = ""
    figures: list[str] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    finished: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _one_line(exc: BaseException) -> str:
    """A one-line description of a failure (notebook exceptions: the kernel's ename: evalue)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        text = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours from tracebacks
    return " ".join(text.split())[:500]


def _extract_pngs(nb: Any, folder: Path, label: str) -> list[str]:
    """Write every ``image/png`` output of the executed notebook; return the file names."""
    import base64

    names: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        k = 0
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if isinstance(output, Mapping) else {}
            png = data.get("image/png")
            if not png:
                continue
            k += 1
            name = f"{label}-cell{index:02d}-{k}.png"
            raw = png if isinstance(png, str) else "".join(png)
            (folder / name).write_bytes(base64.b64decode(raw))
            names.append(name)
    return names


def _is_disk_error(exc: BaseException) -> bool:
    """An OS error of the output folder (full disk, read-only, no permission): stops the batch."""
    return isinstance(exc, OSError) and exc.errno in report_io.DISK_ERRNOS


def run_one(
    notebook_path: str,
    output_root: str,
    label: str,
    parameters: Mapping[str, Any],
    *,
    event_id: str | None = None,
    kernel_name: str = KERNEL_NAME,
    execution_timeout: float | None = None,
    start_timeout: float = 120.0,
    exclude_input: bool = True,
    meta: Mapping[str, Any] | None = None,
    kernel: ReusedKernel | str | None = None,
) -> ReportOutcome:
    """Execute one notebook, export HTML and PNGs, write ``status.json``; never raises for a
    failing notebook (the outcome says ``failed`` with a one-line error).

    The report is built in a hidden folder beside ``<label>`` (``report_dir``/``output_dir``
    point there while the notebook runs) and renamed to ``<label>`` when complete, replacing
    the previous report of that label in one step. A full disk, a read-only or unwritable output
    folder raises :class:`~crackdown.errors.CrackdownError` (the previous report is unchanged);
    an interruption (:class:`~crackdown.output.report_io.ReportInterrupted`,
    ``KeyboardInterrupt``) kills the kernel, removes the unfinished folder and propagates.

    ``execution_timeout`` is papermill's per-cell limit in seconds (None: no limit). The
    report folder is ``<output_root>/<notebook>/<label>`` for a per-event run (``event_id``
    given) and ``<output_root>/<label>`` for a run-once notebook (``event_id`` None; ``label``
    is then normally the notebook name), see :func:`report_folder`.

    ``kernel``: None starts (and shuts down) a fresh kernel for this notebook; a
    :class:`~crackdown.output.kernel_pool.ReusedKernel` runs it on that kernel in a clean
    namespace; ``"worker"`` on this process's reused kernel
    (:func:`~crackdown.output.kernel_pool.worker_kernel`, kept for the next notebook).
    """
    started = time.perf_counter()
    if kernel == "worker":
        kernel = kernel_pool.worker_kernel(start_timeout)
    nb_path = Path(notebook_path)
    final = report_folder(output_root, nb_path.stem, label, per_event=event_id is not None)
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = report_io.new_partial(parent, label)
    except OSError as exc:
        raise report_io.io_error(parent, exc, "create the report folder in") from None
    try:
        with report_io.active_run():
            outcome = _build_report(nb_path, folder, final, label, parameters, event_id=event_id,
                                    kernel_name=kernel_name, execution_timeout=execution_timeout,
                                    start_timeout=start_timeout, exclude_input=exclude_input,
                                    meta=meta, started=started, kernel=kernel)
            try:
                report_io.commit(folder, final)
            except OSError as exc:
                raise report_io.io_error(final, exc, "move the finished report to") from None
    except BaseException:
        with report_io.deferred_signals(drop=True):
            report_io.kill_kernel(folder)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return outcome


def _build_report(nb_path: Path, folder: Path, final: Path, label: str,
                  parameters: Mapping[str, Any], *, event_id: str | None, kernel_name: str,
                  execution_timeout: float | None, start_timeout: float, exclude_input: bool,
                  meta: Mapping[str, Any] | None, started: float,
                  kernel: Any = None) -> ReportOutcome:
    """Run the notebook into ``folder`` and write its files; ``status.json`` last."""
    import nbformat
    import papermill as pm

    executed = folder / f"{label}.ipynb"
    html_path = folder / f"{label}.html"
    outcome = ReportOutcome(notebook=nb_path.stem, label=label, event_id=event_id, status="ok",
                            report_dir=str(final), meta=dict(meta or {}))
    declared = notebook_parameters(nb_path)
    offered = {"event_id": event_id, "output_dir": str(folder), "report_dir": str(folder)}
    offered.update(parameters)
    injected = {k: v for k, v in offered.items() if k in declared or k in parameters}
    if event_id is None:
        injected.pop("event_id", None)

    runner: list[threading.Thread] = []

    def execute() -> None:
        runner.append(threading.current_thread())
        try:
            pm.execute_notebook(
                str(nb_path), str(executed), parameters=injected, kernel_name=kernel_name,
                engine_name=notebook_engine.register_engine(), progress_bar=False,
                cwd=str(nb_path.parent), execution_timeout=execution_timeout,
                start_timeout=start_timeout,
                kernel_manager_class=_kernel_manager_class(folder / KERNEL_LOG_FILE),
            )
        finally:
            report_io.run_ended()

    def abort() -> None:
        report_io.mark_aborted(runner[0] if runner else None)
        report_io.kill_kernel(folder)

    previous_env = os.environ.get(REPORT_DIR_ENV)
    os.environ[REPORT_DIR_ENV] = str(folder)
    errors: list[str] = []
    try:
        if kernel is not None:
            kernel.execute(str(nb_path), str(executed), injected, folder, execution_timeout)
        else:
            report_io.run_in_thread(execute, on_abort=abort)
    except Exception as exc:  # noqa: BLE001 - every notebook failure is reported
        if _is_disk_error(exc):
            where = str(getattr(exc, "filename", None) or executed)
            raise report_io.io_error(where.replace(str(folder), str(final)), exc) from None
        errors.append(_one_line(exc))
    finally:
        if previous_env is None:
            os.environ.pop(REPORT_DIR_ENV, None)
        else:
            os.environ[REPORT_DIR_ENV] = previous_env
    report_io.kill_kernel(folder)  # normally gone already; never leave one behind

    if executed.is_file():
        try:
            nb = nbformat.read(str(executed), as_version=4)
            outcome.figures = _extract_pngs(nb, folder, label)
            body, _ = _html_exporter(exclude_input).from_notebook_node(
                nb, resources={"metadata": {"name": label}})  # the page title
            report_io.atomic_write(html_path, body)
            outcome.html = html_path.name
            outcome.executed_notebook = executed.name
        except Exception as exc:  # noqa: BLE001
            if _is_disk_error(exc):
                where = str(getattr(exc, "filename", None) or folder)
                raise report_io.io_error(where.replace(str(folder), str(final)), exc) from None
            errors.append(f"HTML export failed: {_one_line(exc)}")
    try:
        outcome.headline = read_headline(folder)
    except CrackdownError as exc:
        errors.append(str(exc).replace(str(folder), str(final)))
    if errors:
        outcome.status = "failed"
        outcome.error = "; ".join(errors)
    outcome.seconds = round(time.perf_counter() - started, 2)
    outcome.finished = dt.datetime.now().isoformat(timespec="seconds")
    status = folder / STATUS_FILE
    try:
        report_io.atomic_write(status, json.dumps(asdict(outcome), indent=1, default=str))
    except OSError as exc:
        raise report_io.io_error(final / STATUS_FILE, exc) from None
    return outcome


# --------------------------------------------------------------------------------------------
# Batch
# --------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """Outcomes of one ``run_report`` call (in the order requested) and the index written."""

    outcomes: list[ReportOutcome]
    index: Path

    @property
    def failures(self) -> list[ReportOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        """0 when every report succeeded, 1 otherwise."""
        return 1 if self.failures else 0


def _check_labels(event_ids: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    labels = []
    for event_id in event_ids:
        event_id = str(event_id)
        if not _SAFE_LABEL.match(event_id):
            raise StudyConfigError(f"event id {event_id!r} cannot name a report folder; use "
                                   "letters, digits, '.', '_' or '-'")
        if event_id in seen:
            raise StudyConfigError(f"event id {event_id!r} is listed twice")
        seen.add(event_id)
        labels.append(event_id)
    return labels


def run_report(
    notebook: str | os.PathLike[str] = "event_study",
    *,
    event_ids: Sequence[str] | None = None,
    output: str | os.PathLike[str] = "reports",
    jobs: int = 1,
    prices_dir: str | os.PathLike[str] | None = None,
    events_file: str | os.PathLike[str] | None = None,
    notebooks_folder: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    events_meta: Any = None,
    execution_timeout: float | None = None,
    start_timeout: float = 120.0,
    exclude_input: bool = True,
    progress: bool = True,
    scheduler: str | None = None,
    fresh_kernels: bool = False,
) -> BatchResult:
    """Run a report notebook per event (or once), in parallel, and write ``index.html``.

    **Trust boundary**: the notebook is executed as code with the caller's rights (like
    ``python notebook.py``); run only notebooks you trust (``notebook`` as a path, or a
    ``notebooks_folder`` of someone else's, executes whatever they contain).

    Parameters
    ----------
    notebook
        Notebook name in the notebooks folder (no extension) or a path to an ``.ipynb`` file,
        or a list of them: one batch, one pool, the run-once notebooks started first (the
        longest runs), outcomes in list order (per notebook, in ``event_ids`` order).
    event_ids
        Events to run the per-event notebooks for (required for them; forbidden when no
        notebook is per event). The caller resolves ``all`` (see ``crackdown report``).
    output
        Output folder (created); layout in the module docstring. An existing file, a path under
        a file or an unwritable folder raises :class:`~crackdown.errors.StudyConfigError`.
    jobs
        Worker processes (>= 1); each keeps one kernel for all its notebooks (a clean
        namespace per notebook, :mod:`crackdown.output.kernel_pool`), shut down when the
        batch ends. ``jobs=1`` runs in this process, on one kernel for the batch.
    prices_dir, events_file
        Passed to the notebook as the ``prices_dir`` / ``events_file`` parameters (str or None).
    parameters
        Extra papermill parameters for every run (override the defaults above).
    events_meta
        Optional events DataFrame (``crackdown.timeline.events.load_events``); its ``date``, ``title``,
        ``category`` and ``direction`` columns are shown in the index.
    execution_timeout
        Per-cell timeout in seconds (papermill ``execution_timeout``), > 0; None = no limit.
    start_timeout
        Seconds to wait for a kernel to start, > 0.
    exclude_input
        Hide the code cells (and In/Out prompts) in the HTML (default); False shows them
        (``crackdown report --show-input``).
    scheduler
        Run each notebook run as a task on a Dask cluster: ``local``, ``local:N`` or an address
        (:func:`crackdown.cluster.resolve_scheduler`; None reads ``$CRACKDOWN_DASK_SCHEDULER``);
        ``jobs`` is then ignored. None/empty/``in-process``: the local ``jobs`` path. On a
        cluster every run starts a fresh kernel.
    fresh_kernels
        Start (and shut down) a new kernel for every notebook: full process isolation, slower
        (``crackdown report --fresh-kernels``).

    Returns
    -------
    BatchResult
        Outcomes in request order; ``exit_code`` is 1 if any run failed.

    Raises
    ------
    ReportInterrupted
        On SIGINT/SIGTERM (a ``KeyboardInterrupt``): the running kernels are killed, unfinished
        folders removed and the index rewritten with the finished reports (``.finished``,
        ``.index``); the exit code to use is ``.exit_code`` (130 / 143).
    crackdown.errors.CrackdownError
        When the output cannot be written (full disk, read-only): the batch stops, reports
        already written (and the previous version of the failing one) are kept.
    """
    try:
        n_jobs = operator.index(jobs) if not isinstance(jobs, bool) else 0
    except TypeError:
        n_jobs = 0
    if n_jobs < 1:
        raise StudyConfigError(f"--jobs {jobs!r}: must be a positive integer")
    jobs = n_jobs
    dask_scheduler = cluster.resolve_scheduler(scheduler)
    execution_timeout = report_io.check_timeout(execution_timeout, "--timeout")
    start_timeout = report_io.check_timeout(start_timeout, "start_timeout") or 120.0
    fresh_kernels = bool(fresh_kernels)
    names = ([notebook] if isinstance(notebook, (str, os.PathLike))
             else list(notebook))
    if not names:
        raise StudyConfigError("no notebook given; name one with --notebook")
    plans = []
    for name in names:
        candidate = Path(name)
        if candidate.suffix == ".ipynb" and candidate.is_file():
            nb_path = candidate.resolve()
        else:
            nb_path = resolve_notebook(str(name), notebooks_folder)
        if any(nb_path.stem == other.stem for other, _ in plans):
            raise StudyConfigError(f"notebook {nb_path.stem} is listed twice")
        plans.append((nb_path, is_per_event(nb_path)))
    per_event_paths = [nb_path for nb_path, per_event in plans if per_event]
    if per_event_paths and not event_ids:
        raise StudyConfigError(f"notebook {per_event_paths[0].name} runs per event (its "
                               "parameters cell defines event_id) but no events were given; "
                               "use --events")
    if event_ids and not per_event_paths:
        raise StudyConfigError(f"notebook {plans[0][0].name} has no event_id parameter, so it "
                               "runs once; drop --events")
    labels = _check_labels(event_ids) if per_event_paths else []

    out = report_io.prepare_output(output)
    base_params: dict[str, Any] = {
        "prices_dir": None if prices_dir is None else str(Path(prices_dir).expanduser().resolve()),
        "events_file": None if events_file is None else str(Path(events_file).expanduser()
                                                             .resolve()),
    }
    base_params.update(parameters or {})
    meta = _event_meta(events_meta)
    kwargs: dict[str, Any] = {"execution_timeout": execution_timeout,
                              "start_timeout": start_timeout, "exclude_input": exclude_input}
    runs: list[tuple[str, Path, str, str | None]] = []  # key, notebook, label, event id
    stale: list[tuple[Path, set[str]]] = []
    params: dict[Path, dict[str, Any]] = {}
    for nb_path, per_event in plans:
        parent = out / nb_path.stem if per_event else out
        if parent.exists() and not parent.is_dir():
            raise StudyConfigError(f"--output {out}: {parent} is a file where the folder of "
                                   f"notebook {nb_path.stem} goes; move it away or choose "
                                   "another --output")
        mine = labels if per_event else [nb_path.stem]
        for label in mine:
            if (parent / label).exists() and not (parent / label).is_dir():
                raise StudyConfigError(f"--output {out}: {parent / label} is a file where the "
                                       f"report {label} goes; move it away or choose another "
                                       "--output")
        if not per_event:
            check_run_once_folder(out / nb_path.stem)
        runs += [(f"{nb_path.stem}/{label}" if per_event else label, nb_path, label,
                  label if per_event else None) for label in mine]
        stale.append((parent, set(mine)))
        declared = notebook_parameters(nb_path)
        # only offer the defaults the notebook declares; explicit extras always go through
        params[nb_path] = {k: v for k, v in base_params.items()
                           if k in declared or k in (parameters or {})}
    for parent, batch_labels in stale:
        report_io.remove_stale(parent, batch_labels)  # left by a killed run of these reports

    from tqdm.auto import tqdm

    results: dict[str, ReportOutcome] = {}
    desc = ", ".join(nb_path.stem for nb_path, _ in plans)
    bar = tqdm(total=len(runs), desc=f"report {desc}", unit="notebook",
               disable=not progress, file=sys.stderr)
    dask = cluster.is_dask(dask_scheduler)
    # the run-once notebooks (the longest) first, so that no core idles at the end
    order = sorted(runs, key=lambda run: run[3] is not None)
    calls = [(key, (str(nb_path), str(out), label, params[nb_path]),
              dict(event_id=event_id, meta=meta.get(label) if event_id else None,
                   kernel=None if fresh_kernels or dask else "worker", **kwargs))
             for key, nb_path, label, event_id in order]
    where = {key: (nb_path, label, event_id is not None)
             for key, nb_path, label, event_id in runs}
    try:
        with report_io.handle_signals():
            failed = functools.partial(_failed, where, out)
            if dask:
                report_cluster.run_on_cluster(run_one, failed, calls, dask_scheduler, results,
                                              bar)
            elif jobs == 1 or len(runs) == 1:
                kernel = None if fresh_kernels else ReusedKernel(start_timeout)
                try:
                    for key, args, call_kwargs in calls:
                        bar.set_postfix_str(key)
                        results[key] = run_one(*args, **{**call_kwargs, "kernel": kernel})
                        bar.update(1)
                finally:
                    if kernel is not None:
                        with report_io.deferred_signals(drop=True):
                            kernel.close()  # shut down at once, not at exit
            else:
                report_cluster.run_pool(run_one, failed, calls, jobs, results, bar)
    except BaseException as exc:
        with report_io.deferred_signals(drop=True):
            bar.close()
            for parent, batch_labels in stale:
                report_io.remove_stale(parent, batch_labels)
            try:
                index: Path | None = write_index(out)
            except CrackdownError:
                index = None
            if isinstance(exc, ReportInterrupted):
                exc.finished = [results[key] for key, *_ in runs if key in results]
                exc.index = index
        raise
    bar.close()
    outcomes = [results[key] for key, *_ in runs]
    return BatchResult(outcomes=outcomes, index=write_index(out))


def _failed(where: Mapping[str, tuple[Path, str, bool]], out: Path, key: str,
            exc: BaseException) -> ReportOutcome:
    """The outcome of a run whose worker crashed (the pool's or the cluster's)."""
    nb_path, label, per_event = where[key]
    return ReportOutcome(notebook=nb_path.stem, label=label,
                         event_id=label if per_event else None, status="failed",
                         error=_one_line(exc), report_dir=str(report_folder(
                             out, nb_path.stem, label, per_event=per_event)))


def _event_meta(events: Any) -> dict[str, dict[str, Any]]:
    """event_id -> {date, title, category, direction} from an events DataFrame (if given)."""
    if events is None:
        return {}
    keep = [c for c in ("date", "title", "category", "direction") if c in events.columns]
    meta = {}
    for row in events.to_dict("records"):
        item = {}
        for column in keep:
            value = row[column]
            item[column] = value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else value
        meta[str(row["event_id"])] = item
    return meta


def rounded(frame, digits: int = 3):
    """Return ``frame`` with its numeric columns rounded to ``digits`` (for display in reports).

    Unlike ``DataFrame.round`` this leaves date columns alone without a warning.
    """
    numeric = frame.select_dtypes("number").columns
    return frame.round(dict.fromkeys(numeric, digits))
