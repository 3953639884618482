"""The papermill engine of the batch reports: the executed notebook is written when it ends,
and a reused kernel keeps one connected client.

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
from typing import Any

__all__ = ["ENGINE_NAME", "register_engine"]

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
