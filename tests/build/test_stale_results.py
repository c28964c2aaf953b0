"""No cached result outlives the code that computed it (issue: "Builds you can trust").

Each test builds a real recipe with a *copy* of the nnbuild package on PYTHONPATH, edits one
module of the copy, rebuilds, and checks that exactly the stages whose import closure holds the
module ran again — and, for the quantizer experiment of redesign.md, that the verdict follows
the code instead of a cached per-image result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2e.e2e_project import ROOT, doit, env, executed, make_project, nnbuild

RECIPE = "mtcnn-pnet"


@pytest.fixture()
def copy(tmp_path) -> tuple[Path, dict]:
    """(project, environment) building with a private copy of the nnbuild package."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "nnbuild", src / "nnbuild", ignore=shutil.ignore_patterns("__pycache__"))
    proj = make_project(tmp_path / "proj", [RECIPE])
    environ = env(PYTHONPATH=str(src))
    first = doit(proj, "build", RECIPE, environ=environ)
    assert first.returncode == 0, first
    return proj, environ, src / "nnbuild"


def rebuild(proj: Path, environ: dict):
    result = doit(proj, "build", RECIPE, environ=environ)
    return result, {task.split(":")[0] for task in executed(result.stdout)}


def test_quantizer_edit_changes_the_verdict_not_served_from_cache(copy):
    proj, environ, pkg = copy
    simulate = pkg / "nnie" / "simulate.py"
    text = simulate.read_text()
    call = "    return run(graph, dict(feeds), keep, weights=plan.weights, on_blob=plan.on_blob)\n"
    assert call in text
    simulate.write_text(text.replace(call, "    return {k: v + 0.25 for k, v in run(graph, "
                                     "dict(feeds), keep, weights=plan.weights, "
                                     "on_blob=plan.on_blob).items()}\n"))
    result, ran = rebuild(proj, environ)
    assert result.returncode == 1, result  # the gate fails: cosine collapses
    assert "0 image(s) cached" in result.stderr, result
    assert "min_output_cosine" in result.stdout + result.stderr
    assert {"map", "check"} <= ran and not {"fetch", "patch", "calibrate"} & ran
    simulate.write_text(text)  # reverting restores the passing results from the cache
    again, ran = rebuild(proj, environ)
    assert again.returncode == 0, again


def test_report_code_edit_reruns_the_check_stage_only(copy):
    proj, environ, pkg = copy
    svg = pkg / "check" / "svg.py"
    svg.write_text(svg.read_text() + "\n# an edit\n")
    why = nnbuild(proj, "explain", RECIPE, environ=environ)
    assert why.returncode == 0, why
    assert "check:mtcnn-pnet: would run\n  code_changed: nnbuild/check/svg.py\n" in why.stdout
    assert "patch:mtcnn-pnet: up to date" in why.stdout
    result, ran = rebuild(proj, environ)
    assert result.returncode == 0, result
    # the comment leaves report.html byte-identical, so package (keyed on it) stays current
    assert ran == {"check"}, result
    assert "image(s) cached, 0 to compute" in result.stderr  # per-image code did not change


def test_untouched_code_is_a_no_op(copy):
    proj, environ, pkg = copy
    (pkg / "commands" / "run.py").write_text((pkg / "commands" / "run.py").read_text() + "\n#\n")
    result, ran = rebuild(proj, environ)
    assert result.returncode == 0 and ran == set(), result
