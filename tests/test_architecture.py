"""The house rules of the package layout, checked on every test run (so CI fails when one breaks):
the import-linter contracts in pyproject.toml, no import circle (type-only imports included), small modules
and functions, and a public ``__all__`` on every public module."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "negbench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 85  # "about 80"


def test_the_import_contracts_are_kept():
    """Stages import only the stages before them; strategies and generators use only the plugin surface."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    assert "BROKEN" not in done.stdout and "0 broken" in done.stdout


def import_cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_circle_type_only_imports_included():
    graph = grimp.build_graph("negbench", include_external_packages=False, exclude_type_checking_imports=False)
    assert import_cycles(graph) == []


def test_a_circle_is_found():
    """The circle finder itself: a planted two-module circle is reported."""

    class Graph:
        modules = frozenset({"a", "b", "c"})

        @staticmethod
        def find_modules_directly_imported_by(module):
            return {"a": {"b"}, "b": {"a", "c"}, "c": set()}[module]

    assert import_cycles(Graph) == [["a", "b"]]


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_modules_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it by what its parts do"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: {', '.join(long)}"


PUBLIC_SURFACE = ["negbench.strategy", "negbench.context", "negbench.generators", "negbench.testing", "negbench.errors"]


def public_modules() -> list[str]:
    names = []
    for path in sources():
        parts = path.relative_to(ROOT).with_suffix("").parts
        if not any(part.startswith("_") and part != "__init__" for part in parts):
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("module", public_modules())
def test_public_modules_declare_what_they_export(module):
    imported = __import__(module, fromlist=["__all__"])
    assert isinstance(getattr(imported, "__all__", None), list), f"{module} has no __all__"
    assert all(hasattr(imported, name) for name in imported.__all__)


@pytest.mark.parametrize("module", PUBLIC_SURFACE)
def test_the_plugin_surface_exports_something(module):
    assert __import__(module, fromlist=["__all__"]).__all__


def test_moved_modules_keep_their_old_import_paths_with_a_warning():
    """Third-party code written against the flat layout (``negbench.runner``, ``negbench.results``) still runs."""
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import negbench.run.suite as new\n"
        "try:\n    import negbench.runner\nexcept DeprecationWarning as w:\n    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\nimport negbench.runner as old\nprint(old is new)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "warned: negbench.runner moved to negbench.run.suite" in done.stdout, done.stderr
    assert done.stdout.strip().endswith("True")


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_is_clean(args):
    """`ruff check` and `ruff format --check` over the project (pyproject.toml's settings), in the test command."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    done = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
