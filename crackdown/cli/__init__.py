"""The ``crackdown`` command line.

Each sub-command lives in its own module exposing ``register(subparsers)``; the parser it adds
sets ``func`` to a callable ``(args) -> int``. :func:`main` turns every
:class:`~crackdown.errors.CrackdownError` (and bad-option errors) into one line on stderr and a
non-zero exit code, never a traceback.

Start-up cost: :data:`COMMANDS` names every sub-command with its module and one-line help, so
:func:`main` imports only the module of the command on the command line (found by a look at the
first argument that is not an option: the top-level parser has no option taking a value). The
other commands get empty stand-in parsers with the same name and help, so ``crackdown --help``,
``crackdown`` without arguments and an unknown command print exactly what the full parser
(:func:`build_parser`) prints, and ``crackdown --version`` imports no command module (no pandas,
numpy or scipy).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Sequence

from crackdown import __version__
from crackdown.errors import CrackdownError

EXIT_USER_ERROR = 2

#: Sub-command -> (module that registers it, its one-line help), in the order of
#: ``crackdown --help``. A module may register several commands (``data_cmd``: ``fetch`` and
#: ``data``; they are listed next to each other). Each help must equal the one the module gives
#: its parser (``tests/test_cli_imports.py`` checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "events": ("crackdown.cli.events_cmd",
               ("list or validate the events table (optionally with day 0 per exchange, or "
                "with --coverage the price coverage of each event's listings)")),
    "fetch": ("crackdown.cli.data_cmd", "download prices from Yahoo Finance into the cache"),
    "data": ("crackdown.cli.data_cmd", "inspect local price data"),
    "study": ("crackdown.cli.study_cmd",
              "abnormal returns of one event (market model by default)"),
    "campaign": ("crackdown.cli.campaign_cmd",
                 "every event at once: p, cluster q-value and FWER-adjusted p per event"),
    "report": ("crackdown.cli.report_cmd",
               "run the report notebook(s) with papermill and write HTML reports and an index"),
    "notebooks": ("crackdown.cli.notebooks_cmd",
                  "copy the report notebooks into a folder, to edit and run them in JupyterLab"),
    "tickers": ("crackdown.cli.tickers_cmd",
                "list the study universe with each ticker's price coverage"),
    "spillovers": ("crackdown.cli.spillovers_cmd",
                   "targets vs rivals vs other tech listings, and the target-minus-rival test"),
    "cross-section": ("crackdown.cli.cross_section_cmd",
                      "regress firm-event CARs on characteristics (clustered by event cluster)"),
    "sweep": ("crackdown.cli.sweep_cmd",
              "specification curve: every model/window/benchmark choice of events"),
}

#: Command modules that may not exist yet in a checkout: skipped (with their commands) while
#: absent, registered as soon as the file lands.
OPTIONAL_MODULES: frozenset[str] = frozenset({"crackdown.cli.sweep_cmd"})


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors in the project's format: one line, the command named, exit 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)",
              file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def _module_exists(module: str) -> bool:
    """Whether a command module can be imported (a file lookup; the module is not imported)."""
    if module not in OPTIONAL_MODULES:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # pragma: no cover - the parent package is crackdown.cli itself
        return False


def _import_command_module(module: str):
    """Import a command module; None for an absent :data:`OPTIONAL_MODULES` entry only.

    An ImportError raised *inside* an optional module (a missing dependency of it) propagates.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if module in OPTIONAL_MODULES and exc.name == module:
            return None
        raise


def _build(real: str | None) -> argparse.ArgumentParser:
    """The top-level parser; ``real`` names the one command module to register (None: none).

    ``"*"`` registers every module (:func:`build_parser`). Commands of the other modules get a
    stand-in sub-parser with the name and help of :data:`COMMANDS` and no options: enough for
    the top-level help, the list of choices in an "invalid choice" error and ``--version``.
    """
    parser = _OneLineParser(
        prog="crackdown",
        description="Event studies of China's 2020-2023 tech crackdown.",
    )
    parser.add_argument("--version", action="version", version=f"crackdown {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    registered: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if module in registered:
            continue  # its register() added this command with the module's first one
        if real == "*" or module == real:
            registered.add(module)
            loaded = _import_command_module(module)
            if loaded is not None:
                loaded.register(sub)
        elif _module_exists(module):
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered (imports every module)."""
    return _build("*")


def _command_module(argv: Sequence[str]) -> str | None:
    """Module of the command named on the command line, or None (none, or not a command).

    The top-level options (``-h``, ``--version``) take no value, so the command is the first
    argument that does not start with ``-``; argparse reads it the same way.
    """
    for arg in argv:
        if arg == "-" or not arg.startswith("-"):
            entry = COMMANDS.get(arg)
            return entry[0] if entry is not None else None
    return None


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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build(_command_module(argv))
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
