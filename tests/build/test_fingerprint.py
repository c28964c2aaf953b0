"""Code fingerprints from the import closure (nnbuild/build/fingerprint.py).

For every stage: an edit of any module in its closure changes its fingerprint, an edit of any
other module does not; the closure follows imports inside functions, relative imports and the
registries' run-time imports; the no-op path parses nothing once the table is warm.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from nnbuild.build import fingerprint as fp
from nnbuild.build.registry import STAGE_ORDER
from nnbuild.hashing import StatCache

PACKAGE = Path(fp.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the nnbuild package to edit."""
    root = tmp_path_factory.mktemp("src") / "nnbuild"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def fresh(root: Path, table: Path | None = None) -> fp.Fingerprints:
    return fp.Fingerprints(StatCache(None), table, root=root)


def test_read_imports_sees_function_level_relative_and_dynamic_imports():
    source = textwrap.dedent("""
        import os, numpy as np
        from . import sibling
        from ..engine import run
        def f():
            from nnbuild.check import svg
            import importlib
            return importlib.import_module("x")
        """)
    found = fp.read_imports(source, "nnbuild.check.tasks.mod", is_package=False)
    assert set(found["modules"]) >= {"nnbuild.check.tasks", "nnbuild.check.tasks.sibling",
                                     "nnbuild.check.engine", "nnbuild.check.engine.run",
                                     "nnbuild.check", "nnbuild.check.svg"}
    assert found["external"] == ["numpy"] and found["dynamic"] is True
    assert fp.read_imports("import json\n", "nnbuild.x", False) == {
        "modules": [], "external": [], "dynamic": False}


def test_an_edit_changes_exactly_the_stages_whose_closure_holds_it(tree, tmp_path):
    stats, table = StatCache(None), tmp_path / "imports.json"

    def digests():
        prints = fp.Fingerprints(stats, table, root=tree)
        return {s: prints.digest(f"nnbuild.stages.{s}") for s in STAGE_ORDER}, prints

    before, prints = digests()
    prints.save()
    inside = {s: {p.relative_to(tree).as_posix() for p in prints.closure(f"nnbuild.stages.{s}")[0]}
              for s in STAGE_ORDER}
    assert all(inside.values())
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        try:
            after, _ = digests()
        finally:
            path.write_text(original)
        for stage in STAGE_ORDER:
            assert (after[stage] != before[stage]) == (rel in inside[stage]), f"{stage}: {rel}"


def test_closures_hold_the_modules_each_stage_runs(tree):
    """The modules redesign.md found missing from the old hand-written CODE lists."""
    def rels(stage):
        return {p.relative_to(tree).as_posix() for p in fresh(tree).closure(
            f"nnbuild.stages.{stage}")[0]}

    assert {"nnie/segments.py", "nnie/chips.py", "passes/sizes.py"} <= rels("patch")
    assert {"shapes/stats.py", "shapes/core.py", "preprocess.py"} <= rels("map")
    assert {"check/svg.py", "preprocess.py", "nnie/simulate.py",
            "check/tasks/retinaface.py", "check/tasks/ultraface.py"} <= rels("check")
    assert {"caffe/io.py", "ir.py", "recipe/load.py"} <= rels("package")
    # bias correction: computed by calibrate, chosen as the compiled model by map and check
    for stage in ("calibrate", "map", "check"):
        assert "nnie/biascorrect.py" in rels(stage), stage
    # ... and not what they do not run: the report code is no input of patch.
    assert "check/svg.py" not in rels("patch") and "engine/conv.py" not in rels("package")


def test_library_versions_enter_the_fingerprint(tree):
    prints = fresh(tree).of("nnbuild.stages.map")
    assert prints["libraries"]["numpy"] == __import__("numpy").__version__
    assert set(prints["files"]) >= {"stages/map.py", "nnie/quantize.py"}


def test_warm_table_parses_nothing(tree, tmp_path, monkeypatch):
    table = tmp_path / "imports.json"
    first = fresh(tree, table)
    digest = first.digest("nnbuild.stages.check")
    first.save()
    calls = []
    monkeypatch.setattr(fp, "read_imports", lambda *a: calls.append(a))
    assert fresh(tree, table).digest("nnbuild.stages.check") == digest and calls == []
