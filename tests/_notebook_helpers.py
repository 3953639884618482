"""Helpers of the report tests: small notebooks written to disk."""

from __future__ import annotations

from pathlib import Path

import nbformat

#: the kernelspec of every test notebook (the pinned kernel runs this interpreter)
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

#: a per-event notebook whose body marks its start, sleeps 120 s for ``slow``, records a headline
SLEEPY_PARAMETERS = 'event_id = "X"\nslow = ""\nreport_dir = None'
SLEEPY_BODY = ('import pathlib, time\npathlib.Path(report_dir, "started").touch()\n'
               'from crackdown.output.reports import record_headline\n'
               'time.sleep(120 if event_id == slow else 0)\nrecord_headline({"n": len(event_id)})')


def write_notebook(path: str | Path, cells: list, *, parameters: int | None = 0) -> Path:
    """Write a notebook of ``cells`` (code sources, or ``nbformat`` cells as they are) to
    ``path``; the cell at index ``parameters`` is tagged ``parameters`` (None: no cell)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    if parameters is not None:
        nb.cells[parameters].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.write(nb, str(path))
    return Path(path)
