"""``crackdown notebooks DIR``: copy the report notebooks out, to edit and run in JupyterLab.

    crackdown notebooks DIR [--notebook NAME[,NAME...]] [--force]

Copies the report notebooks that ``crackdown report`` runs (:func:`crackdown.output.reports.
notebooks_dir`: ``notebooks/`` of the checkout, or the copies a plain ``pip install`` ships in
``crackdown/_bundled/notebooks``) into ``DIR``, created with its parents when missing. The
copies are ordinary files of yours: open them with ``jupyter lab DIR``, or run your edited
versions in a batch with ``crackdown report --notebooks-dir DIR``.

Rules
-----
* Every notebook is copied by default; ``--notebook`` copies only the ones named (names without
  ``.ipynb``, as for ``crackdown report --notebook``).
* A notebook that already exists in ``DIR`` is never overwritten without ``--force``: the
  command checks all targets first and copies nothing when one exists (one line naming it).
* Each file is written to a temporary name and renamed into place, so a full disk or a failed
  copy never leaves a half-written notebook; errors are one line (exit 2).
* Run by hand, the notebooks write no file unless you set their ``output_dir`` parameter, and
  record no headline unless ``report_dir`` (or ``CRACKDOWN_REPORT_DIR``) is set.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from crackdown.cli.common import split_list
from crackdown.errors import StudyConfigError


def register(subparsers) -> None:
    """Add the ``notebooks`` sub-command to the CLI parser."""
    parser = subparsers.add_parser(
        "notebooks",
        help="copy the report notebooks into a folder, to edit and run them in JupyterLab",
        description=(
            "Copy the report notebooks (notebooks/ of the checkout, or the copies shipped with "
            "the installed package) into DIR, created when missing. A notebook that already "
            "exists in DIR is overwritten only with --force; without it nothing is copied. "
            "Run edited "
            "copies in a batch with crackdown report --notebooks-dir DIR."
        ),
    )
    parser.add_argument("dir", metavar="DIR", help="folder to copy the notebooks into")
    parser.add_argument("--notebook", metavar="NAME[,NAME...]", default=None,
                        help="copy only these notebooks (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite notebooks that already exist in DIR")
    parser.set_defaults(func=run)


def copy_notebooks(target: str | os.PathLike[str], names: list[str] | None = None, *,
                   force: bool = False) -> list[Path]:
    """Copy report notebooks into ``target``; return the files written, in name order.

    Parameters
    ----------
    target
        Destination folder, created with its parents when missing.
    names
        Notebook names without ``.ipynb`` (``None``: every notebook of
        :func:`crackdown.output.reports.notebooks_dir`).
    force
        Overwrite existing files. Without it an existing target file is an error and nothing
        is copied.

    Raises
    ------
    StudyConfigError
        Unknown notebook name, an existing file without ``force``, ``target`` is a file, or an
        OS error (permissions, full disk) while creating the folder or copying.
    """
    from crackdown.output import reports

    if names is None:
        sources = sorted(reports.notebooks_dir().glob("*.ipynb"))
    else:
        sources = [reports.resolve_notebook(name) for name in names]
    folder = Path(target).expanduser()
    if folder.exists() and not folder.is_dir():
        raise StudyConfigError(f"crackdown notebooks {folder}: is a file, not a folder; give a "
                               "folder to copy the notebooks into")
    existing = [folder / src.name for src in sources if (folder / src.name).exists()]
    if existing and not force:
        shown = ", ".join(p.name for p in existing)
        raise StudyConfigError(f"{folder} already has {len(existing)} of the notebooks "
                               f"({shown}); nothing copied. Pass --force to overwrite them, or "
                               "choose another folder")
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for src in sources:
            dest = folder / src.name
            tmp = folder / f".{src.name}.partial"
            try:
                shutil.copyfile(src, tmp)
                tmp.replace(dest)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(dest)
    except OSError as exc:
        where = exc.filename or folder
        raise StudyConfigError(f"crackdown notebooks: cannot write {where} "
                               f"({exc.strerror or exc}); {len(written)} of {len(sources)} "
                               "notebooks copied") from None
    return written


def run(args: argparse.Namespace) -> int:
    """Copy the notebooks and print one line per file."""
    names = split_list(args.notebook, "--notebook") if args.notebook is not None else None
    written = copy_notebooks(args.dir, names, force=args.force)
    for path in written:
        print(path)
    print(f"copied {len(written)} notebook(s) to {Path(args.dir).expanduser()}; open them with "
          f"`jupyter lab {args.dir}`, run them in a batch with `crackdown report "
          f"--notebooks-dir {args.dir}`")
    return 0
