"""Start-up cost of the command line (issue #14, item 3): what each command imports.

``crackdown --version`` must not import pandas, numpy or scipy; ``crackdown study EVENT --format
csv`` must not import scipy.stats, pandera or matplotlib. Checked in fresh interpreters (the test
process has imported everything already). No timing asserts: ``benchmarks/cli_speed.py`` times.
Also checked here: the lazy command table prints what the full parser prints, and the cheap
replacements behind the fast start (scipy.special tails, the plain-Python events check, the
disk cache of early closes) give what they replace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crackdown import cli
from crackdown.timeline import events as ev

HEAVY = ("pandas", "numpy", "scipy", "pandera")


def _python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout (fails on a non-zero exit)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _modules_after(argv: list[str], **env: str) -> tuple[str, list[str]]:
    """(stdout of ``crackdown argv``, the modules loaded by then) in a fresh interpreter."""
    code = (
        "import io, json, sys, contextlib\n"
        "from crackdown.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "print(json.dumps([code, out.getvalue(), sorted(sys.modules)]))\n"
    )
    code_, out, modules = json.loads(_python(code, **env).strip().splitlines()[-1])
    assert code_ in (0, None), out
    return out, modules


def _loaded(modules: list[str], roots) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots)


def test_version_imports_no_pandas_numpy_scipy():
    out, modules = _modules_after(["--version"])
    assert out == "crackdown 0.1.0\n"
    assert _loaded(modules, HEAVY) == []
    # and no command module either: the version is answered by the top-level parser
    assert not [m for m in modules if m.startswith("crackdown.cli.") and m.endswith("_cmd")]


def test_top_level_help_imports_no_command_module():
    out, modules = _modules_after(["--help"])
    assert "study" in out and "cross-section" in out
    assert _loaded(modules, HEAVY) == []


@pytest.mark.shared
def test_study_csv_imports_no_scipy_stats_pandera_or_matplotlib(prices_dir):
    out, modules = _modules_after(["study", "ant_ipo_suspended", "--format", "csv"],
                                  CRACKDOWN_PRICES_DIR=str(prices_dir))
    assert out.startswith("event_id,ticker,exchange,day0,rel_day,date,ar,car")
    assert len(out.strip().splitlines()) > 1
    banned = [m for m in modules if m == "scipy.stats" or m.startswith("scipy.stats.")
              or m.split(".")[0] in ("pandera", "matplotlib")]
    assert banned == []


# ---------------------------------------------------------------------------------------------
# the lazy command table against the full parser
# ---------------------------------------------------------------------------------------------
def _subcommands(parser) -> list[tuple[str, str]]:
    """(name, one-line help) of every sub-command of a parser, in order."""
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return [(choice.dest, choice.help) for choice in action._choices_actions]


def test_command_table_matches_the_modules_own_parsers():
    full = _subcommands(cli.build_parser())  # every module imported and registered
    table = [(name, text) for name, (module, text) in cli.COMMANDS.items()
             if cli._import_command_module(module) is not None]
    assert full == table
    assert [name for name, _ in full][:4] == ["events", "fetch", "data", "study"]


@pytest.mark.parametrize("real", [None, "crackdown.cli.study_cmd", "crackdown.cli.data_cmd"])
def test_lazy_parser_prints_the_full_help_and_choices(real, capsys):
    full = cli.build_parser()
    lazy = cli._build(real)
    assert lazy.format_help() == full.format_help()
    assert _subcommands(lazy) == _subcommands(full)
    for parser in (full, lazy):
        with pytest.raises(SystemExit):
            parser.parse_args(["nosuchcommand"])
    full_err, lazy_err = (capsys.readouterr().err.splitlines())
    assert full_err == lazy_err and "invalid choice: 'nosuchcommand'" in full_err


def test_chosen_command_gets_its_real_parser():
    args = cli._build("crackdown.cli.study_cmd").parse_args(
        ["study", "ant_ipo_suspended", "--window", "-2:3"])
    assert args.command == "study" and args.window == "-2:3" and callable(args.func)
    args = cli._build("crackdown.cli.data_cmd").parse_args(["data", "check"])
    assert args.command == "data" and args.data_command == "check"


@pytest.mark.parametrize("argv, module", [
    (["--version"], None),
    ([], None),
    (["study", "x"], "crackdown.cli.study_cmd"),
    (["-h", "fetch"], "crackdown.cli.data_cmd"),
    (["--", "events"], "crackdown.cli.events_cmd"),
    (["nosuch", "study"], None),  # the first positional is the command, and it is unknown
])
def test_command_module_is_the_first_positional(argv, module):
    assert cli._command_module(argv) == module


def test_absent_optional_module_is_skipped_other_import_errors_raise(monkeypatch):
    missing = "crackdown.cli.no_such_cmd_for_test"
    monkeypatch.setitem(cli.COMMANDS, "later", (missing, "a command whose file has not landed"))
    with pytest.raises(ModuleNotFoundError):  # not optional: a real error
        cli.build_parser()
    monkeypatch.setattr(cli, "OPTIONAL_MODULES", cli.OPTIONAL_MODULES | {missing})
    for parser in (cli.build_parser(), cli._build(None)):
        assert "later" not in [name for name, _ in _subcommands(parser)]
    assert cli._import_command_module(missing) is None
    assert not cli._module_exists(missing)


# ---------------------------------------------------------------------------------------------
# scipy.special tails == scipy.stats (the results and inference modules use them)
# ---------------------------------------------------------------------------------------------
_X = np.array([-np.inf, -40.0, -3.0, -0.0, 0.0, 1e-300, 1e-8, 0.5, 1.96, 2.0, 40.0, 1e6, np.inf,
               np.nan])
_Q = np.array([0.0, 1e-12, 0.025, 0.3, 0.5, 0.95, 0.975, 1 - 1e-12, 1.0, 1.5, -0.1, np.nan])
_DF = [0, -1, 0.5, 1, 2.5, 3, 30, 248, 1e6, np.inf, np.nan]


@pytest.mark.parametrize("df", _DF)
def test_special_tails_equal_scipy_stats(df):
    from scipy import stats

    from crackdown.inference.base import chi2_sf, f_sf, t_ppf, t_sf

    np.testing.assert_allclose(t_sf(_X, df), stats.t.sf(_X, df), rtol=1e-12, atol=0)
    np.testing.assert_allclose(t_ppf(_Q, df), stats.t.ppf(_Q, df), rtol=1e-12, atol=0)
    np.testing.assert_allclose(chi2_sf(_X, df), stats.chi2.sf(_X, df), rtol=1e-12, atol=0)
    for dfd in _DF:
        np.testing.assert_allclose(f_sf(_X, df, dfd), stats.f.sf(_X, df, dfd), rtol=1e-12,
                                   atol=0)
    # scalars stay scalars (float(...) of a result, as with scipy.stats)
    assert np.ndim(t_sf(2.0, df)) == 0 and np.ndim(f_sf(2.0, df, 5)) == 0


def test_special_tails_broadcast_like_scipy_stats():
    from scipy import stats

    from crackdown.inference.base import t_sf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 1)) * 3
    df = rng.integers(1, 300, size=5).astype(float)
    np.testing.assert_allclose(t_sf(x, df), stats.t.sf(x, df), rtol=1e-12, atol=0)
    assert t_sf(x, df).shape == (7, 5)


# ---------------------------------------------------------------------------------------------
# events: the plain-Python check decides exactly when pandera is needed
# ---------------------------------------------------------------------------------------------
def _raw_table() -> pd.DataFrame:
    """The real events table as ``_validate`` builds it before checking (index = CSV line)."""
    header, records, starts = ev._read_records(ev._resolve_path(None))
    raw = pd.DataFrame(records, columns=[h.strip() for h in header], dtype=object)
    raw = raw[list(ev.COLUMNS)]
    for column in raw.columns:
        raw[column] = raw[column].astype(object).map(lambda v: v.strip())
    raw = raw.astype(str)
    raw["anticipated"] = raw["anticipated"].str.lower()
    raw.index = pd.Index(starts, name="line")
    return raw


@pytest.mark.parametrize("column, value", [
    (None, None),
    ("event_id", "Bad_Id"), ("date", "2021-02-30"), ("time_beijing", "9:30"),
    ("category", "Antitrust"), ("direction", "loosening"), ("tickers", "BABA;BABA"),
    ("tickers", "baba"), ("title", ""), ("source", ""), ("confidence", "sure"),
    ("anticipated", "yes"), ("time_source", ""), ("notes", "anything"), ("firms", ""),
])
def test_plain_check_agrees_with_the_pandera_schema(column, value):
    import pandera.pandas as pa

    raw = _raw_table()
    if column is not None:
        raw.iloc[3, raw.columns.get_loc(column)] = value
    try:
        ev._schema().validate(raw, lazy=True)
        pandera_passes = True
    except pa.errors.SchemaErrors:
        pandera_passes = False
    assert ev._cells_pass(raw) == pandera_passes
    assert pandera_passes == (column in (None, "time_source", "notes", "firms"))


def test_valid_events_file_loads_without_pandera():
    out = _python("import sys\nfrom crackdown.timeline.events import load_events\n"
                  "print(len(load_events()), 'pandera' in sys.modules)")
    n, imported = out.split()
    assert int(n) > 50 and imported == "False"


# ---------------------------------------------------------------------------------------------
# calendars: early closes come from the disk cache (no calendar build once cached)
# ---------------------------------------------------------------------------------------------
def test_early_closes_come_from_the_disk_cache(tmp_path):
    code = ("import json, sys\nfrom crackdown.timeline.calendars import early_closes\n"
            "days = {x: [str(d.date()) for d in early_closes(x)] for x in ('XNYS', 'XHKG')}\n"
            "print(json.dumps([days, 'exchange_calendars' in sys.modules]))")
    env = {"CRACKDOWN_CACHE_DIR": str(tmp_path)}
    built, imported = json.loads(_python(code, **env))
    assert imported  # the first run builds the calendars and writes the cache
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "calendars").glob("*.npz")) == [
        "XHKG", "XNYS"]
    cached, imported = json.loads(_python(code, **env))
    assert not imported and cached == built
    assert "2020-11-27" in built["XNYS"] and "2020-12-24" in built["XHKG"]  # known half days
