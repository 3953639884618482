"""The papermill side of the batch reports: a notebook's declared parameters, and the engine
that writes the executed notebook when it ends and runs a reused kernel through one client.

:func:`notebook_parameters` reads the ``parameters`` cell without importing papermill (see
there).

papermill's default engine (``nbclient``) writes the whole executed notebook to disk, JSON
encoding and schema validation included, when the run starts and before and after **every**
cell: about 47 writes for an event notebook, 0.24 s of its 1.8 s. ``crackdown report`` reads the
executed notebook only when it is complete, so :data:`ENGINE_NAME` writes it

- at the end of the run, whatever the outcome (papermill's ``notebook_complete``, also after
  a failing cell, a cell timeout or a dead kernel: the partial notebook with the error is
  what the report shows), and
- during a long run at most every ``autosave_cell_every`` seconds (papermill's setting,
  30 s by default), so a partial notebook of a slow report is still on disk while it runs.

The file written at the end is the one papermill's engine writes (same cells, outputs and
metadata); only the intermediate copies are skipped.

With ``kc=`` (a connected kernel client, see
:class:`crackdown.output.kernel_pool.ReusedKernel`) the notebook runs through that client
instead of a new one per notebook. A new client costs its zmq connections and
``wait_for_ready``, which ends by flushing the IOPub channel until it has been silent for
0.2 s: about 0.2 s per notebook. nbclient matches every reply and output to the request that
caused it (``parent_header.msg_id``), so messages left over from an earlier request on a
reused client are skipped, not attributed to a cell.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from crackdown.errors import StudyConfigError

__all__ = ["ENGINE_NAME", "is_per_event", "notebook_parameters", "register_engine"]

#: papermill engine name of the report runs (registered by :func:`register_engine`)
ENGINE_NAME = "crackdown"


@functools.cache
def register_engine() -> str:
    """Register the engine with papermill (once per process); returns :data:`ENGINE_NAME`."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class FinalSaveManager(NotebookExecutionManager):
        """Writes the notebook at the end of the run and at most every
        ``autosave_cell_every`` seconds before it (0: only at the end)."""

        _final = False

        def save(self, **kwargs: Any) -> None:
            every = self.autosave_cell_every
            elapsed = (self.now() - self.last_save_time).total_seconds()
            if self._final or (every and elapsed >= every):
                super().save(**kwargs)

        def notebook_complete(self, **kwargs: Any) -> None:
            self._final = True
            super().notebook_complete(**kwargs)

    class ReportEngine(NBClientEngine):
        """``nbclient`` with :class:`FinalSaveManager`; ``kc=`` reuses a connected client."""

        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                             progress_bar: bool = True, log_output: bool = False,
                             autosave_cell_every: int = 30, **kwargs: Any) -> Any:
            nb_man = FinalSaveManager(nb, output_path=output_path, progress_bar=progress_bar,
                                      log_output=log_output,
                                      autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output,
                                             **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str,
                                     log_output: bool = False, stdout_file: Any = None,
                                     stderr_file: Any = None, start_timeout: float = 60,
                                     execution_timeout: float | None = None, kc: Any = None,
                                     **kwargs: Any) -> Any:
            # the argument handling of NBClientEngine.execute_managed_notebook (papermill 2.6)
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout, kernel_name=kernel_name, log=_logger(),
                log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final_kwargs)
            if kc is not None:  # nbclient then neither creates nor closes a client
                kc.allow_stdin = False
                client.kc = kc
            return client.execute()

    papermill_engines.register(ENGINE_NAME, ReportEngine)
    return ENGINE_NAME


def _logger() -> Any:
    from papermill.log import logger

    return logger


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Parameters declared in the notebook's ``parameters`` cell, as papermill.inspect_notebook
    gives them: ``{name: {"name", "inferred_type_name", "default", "help"}}``.

    The first code cell tagged ``parameters`` is parsed with :mod:`ast` (its top-level
    assignments, in order; ``default`` is the value's source text, ``help`` the comment after
    it, ``inferred_type_name`` the annotation or ``"None"``), without importing papermill (about
    1 s for the batch's main process, which needs only the names). A cell that is not valid
    Python goes to papermill's own line-by-line inspection.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            nb = json.load(handle)
        cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"
                 and "parameters" in (c.get("metadata", {}).get("tags") or [])]
        source = cells[0]["source"] if cells else ""
        source = source if isinstance(source, str) else "".join(source)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise StudyConfigError(f"{path}: cannot read the notebook ({type(exc).__name__}: {exc})"
                               ) from None
    try:
        return _assignments(source)
    except SyntaxError:
        import papermill as pm

        try:
            return pm.inspect_notebook(str(path))
        except Exception as exc:  # noqa: BLE001 - nbformat validation, JSON errors
            raise StudyConfigError(f"{path}: cannot read the notebook "
                                   f"({type(exc).__name__}: {exc})") from None


def _assignments(source: str) -> dict[str, dict[str, Any]]:
    """``name = value  # help`` and ``name: type = value  # help`` at the top of ``source``."""
    import ast

    lines = source.splitlines()
    found: dict[str, dict[str, Any]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        default = ast.get_source_segment(source, node.value) or ""
        rest = lines[node.end_lineno - 1][node.end_col_offset:] if node.end_lineno else ""
        comment = rest.split("#", 1)[1].strip() if "#" in rest else ""
        found[target.id] = {
            "name": target.id,
            "inferred_type_name": ("None" if annotation is None
                                   else ast.get_source_segment(source, annotation)),
            "default": default, "help": comment}
    return found


def is_per_event(path: str | os.PathLike[str]) -> bool:
    """True when the notebook's ``parameters`` cell defines ``event_id`` (one run per event)."""
    return "event_id" in notebook_parameters(path)
