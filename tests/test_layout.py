"""The package's shape, enforced: no import cycles, size budgets (docs/style.md), and tests
that mirror the package.

Imports are read statically (``nnbuild.build.fingerprint.read_imports``: function-level imports
count too, as the stage fingerprints do). An edge ``a -> b`` is an import of module ``b`` by
module ``a`` (``from b import name`` of a non-module name is an edge to ``b``); a package's
``__init__`` importing its own submodules is a registry, not a cycle, and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from nnbuild.build.fingerprint import PACKAGE_DIR, module_name, module_path, read_imports

HARD_MODULE_LINES = 500
HARD_FUNCTION_LINES = 80
TESTS = Path(__file__).resolve().parent


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts
                  and p.name != "caffe_pb2.py")


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sources():
        name = module_name(path)
        found = read_imports(path.read_text(), name, path.name == "__init__.py")
        edges = {m for m in found["modules"] if module_path(m) is not None and m != name}
        if path.name == "__init__.py":
            edges = {m for m in edges if not m.startswith(name + ".")}
        graph[name] = {m for m in edges if not name.startswith(m + ".")}  # parents run anyway
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_stages_and_commands_stay_in_their_lane():
    graph = import_graph()
    for name, edges in graph.items():
        if name.startswith("nnbuild.commands."):
            assert not {e for e in edges if e.startswith("nnbuild.stages.")}, name
        if name.startswith("nnbuild.stages."):
            assert not {e for e in edges if e.startswith(("nnbuild.stages.", "nnbuild.commands"))
                        }, f"{name} imports another stage or a command"


def test_module_and_function_budgets():
    over = []
    for path in sources():
        text = path.read_text()
        if text.count("\n") > HARD_MODULE_LINES:
            over.append(f"{path.relative_to(PACKAGE_DIR)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > HARD_FUNCTION_LINES:
                    over.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno} {node.name}: "
                                f"{length} lines")
    assert not over, over


def test_no_milestone_names_in_tests():
    names = [p.relative_to(TESTS).as_posix() for p in TESTS.rglob("*")
             if "__pycache__" not in p.parts]
    assert not [n for n in names if any(m in n for m in ("h5", "_h3", "h4"))], names
