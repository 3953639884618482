"""The ``crackdown`` command line.

Each sub-command lives in its own module exposing ``register(subparsers)``; the parser it adds
sets ``func`` to a callable ``(args) -> int``. :func:`main` turns every
:class:`~crackdown.errors.CrackdownError` (and bad-option errors) into one line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from crackdown import __version__
from crackdown.errors import CrackdownError

EXIT_USER_ERROR = 2


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors in the project's format: one line, the command named, exit 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)",
              file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    from crackdown.cli import (
        campaign_cmd,
        cross_section_cmd,
        data_cmd,
        events_cmd,
        notebooks_cmd,
        report_cmd,
        spillovers_cmd,
        study_cmd,
        tickers_cmd,
    )

    parser = _OneLineParser(
        prog="crackdown",
        description="Event studies of China's 2020-2023 tech crackdown.",
    )
    parser.add_argument("--version", action="version", version=f"crackdown {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (events_cmd, data_cmd, study_cmd, campaign_cmd, report_cmd, notebooks_cmd,
                   tickers_cmd, spillovers_cmd, cross_section_cmd):
        module.register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings the commands let through, as one line on stderr (no source line, no path)."""
    print(f"crackdown: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        return _run(argv)
    finally:
        warnings.showwarning = shown


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CrackdownError as exc:
        message = " ".join(str(exc).split())
        print(f"crackdown {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error of ours.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("crackdown: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
