"""The package layout: no import cycles, imports only point down the data flow, small modules,
a lazy public API.

Imports are read with :mod:`ast` from the source (function-local imports included), so a cycle
hidden inside a function body fails here too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import crackdown

PACKAGE = Path(crackdown.__file__).resolve().parent

#: Stage of each top-level part of the package: a module may import its own stage or lower ones.
STAGES = {
    "errors": 0, "config": 0, "cluster": 0,
    "timeline": 1,
    "marketdata": 2,
    "inference": 3,
    "estimation": 4,
    "analyses": 5,
    "output": 6,
    "cli": 7,
    "__main__": 8,
}
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("crackdown", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """crackdown modules that ``name`` imports (resolved to modules, not to names in them)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    deps = set()
    for target in found:
        if target not in MODULES or target == name:
            continue
        if MODULES[target].name == "__init__.py" and name.startswith(target + "."):
            continue  # a module's own parent package: part of Python's import of the module
        deps.add(target)
    return deps


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(name: str) -> int | None:
    parts = name.split(".")
    return STAGES.get(parts[1]) if len(parts) > 1 else None


def test_the_walker_sees_function_local_and_relative_imports(tmp_path):
    # the graph is only as good as the walker: it resolves the imports we know are there
    assert "crackdown.estimation.placebo" in GRAPH["crackdown.estimation.results"]  # in a method
    assert "crackdown.timeline.calendars" in GRAPH["crackdown.timeline.universe"]
    assert "crackdown.output.plots._style" in GRAPH["crackdown.output.plots.methods"]
    assert "crackdown.config" in GRAPH["crackdown.timeline.events"]  # from crackdown import config


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_point_down_the_flow():
    upward = []
    for name, deps in GRAPH.items():
        mine = _stage(name)
        if mine is None:  # crackdown/__init__.py: lazy strings only, checked below
            continue
        for dep in deps:
            theirs = _stage(dep)
            if theirs is not None and theirs > mine:
                upward.append(f"{name} (stage {mine}) imports {dep} (stage {theirs})")
    assert not upward, "\n".join(sorted(upward))


def test_every_top_level_part_has_a_stage():
    parts = {name.split(".")[1] for name in MODULES if name != "crackdown"}
    assert parts == set(STAGES), "give new folders/modules a stage in STAGES"


def test_no_module_is_longer_than_800_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules by job: {long}"


def test_the_package_docstring_maps_every_stage():
    doc = crackdown.__doc__
    for part in STAGES:
        if part not in {"__main__"}:
            assert part in doc, part


def test_public_api_resolves_lazily_and_is_listed():
    assert len(crackdown.__all__) == len(set(crackdown.__all__))
    assert set(crackdown.__all__) == set(crackdown._LAZY) | {"__version__"}
    for name in crackdown.__all__:
        assert getattr(crackdown, name) is not None, name
        assert name in dir(crackdown)
    assert crackdown.EventStudy.__module__ == "crackdown.estimation.study"
    assert crackdown.day_zero("2020-11-03", "21:25", "XHKG").session.strftime("%F") == \
        "2020-11-04"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        crackdown.nope  # noqa: B018
    code = "import sys, crackdown; print(sorted(m for m in ('pandas', 'numpy', 'scipy') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"import crackdown imported {out}"


def test_notebooks_use_only_the_public_api():
    import json

    folder = PACKAGE.parent / "notebooks"
    if not folder.is_dir():
        pytest.skip("no notebooks folder beside the package (installed without a checkout)")
    # the top-level API, and crackdown.inference (a public namespace of test statistics)
    allowed = ("from crackdown import ", "from crackdown.inference import ",
               "from crackdown.inference.simulation import ",
               "from crackdown.inference.two_calendars import ")
    for path in sorted(folder.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            for line in "".join(cell["source"]).splitlines():
                text = line.strip()
                if "crackdown" in text and text.startswith(("from ", "import ")):
                    ok = text.startswith(allowed) or text in {"import crackdown",
                                                              "import crackdown as cd"}
                    assert ok, f"{path.name}: {text}"
