"""doit's own commands on an nnbuild project: ``forget`` (no name, a task, a recipe, an unknown
name), ``info`` (an unknown name, a recipe), ``dumpdb`` (the sqlite state): no traceback, one
line for a mistake (issue 13)."""

from __future__ import annotations

import pytest

from e2e.e2e_project import doit, make_project

NAME = "mtcnn-pnet"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("dc") / "p", [NAME])


def _error_line(run, prog):
    assert run.returncode == 2, run
    assert "Traceback" not in run.stdout + run.stderr, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"doit {prog}: error: "), run
    return lines[0][len(f"doit {prog}: error: "):]


def test_forget_without_a_name_forgets_every_task(project):
    run = doit(project, "forget")
    assert run.returncode == 0, run
    assert run.stdout.strip() == "forgetting all tasks", run


def test_forget_a_recipe_forgets_its_stage_tasks(project):
    run = doit(project, "forget", NAME)
    assert run.returncode == 0, run
    assert sorted(run.stdout.split()[1::2]) == sorted(
        f"{s}:{NAME}" for s in ("fetch", "patch", "calibrate", "map", "check", "package"))
    one = doit(project, "forget", f"check:{NAME}")
    assert one.returncode == 0 and one.stdout.strip() == f"forgetting check:{NAME}", one


@pytest.mark.parametrize("command", ["forget", "info"])
def test_an_unknown_name_is_one_line(project, command):
    line = _error_line(doit(project, command, "nosuch"), command)
    assert line == ("nosuch: not a task or recipe. Expected a task of `doit list --all` "
                    f"(calibrate:{NAME}, check:{NAME}) or a recipe name, got 'nosuch'. "
                    "Hint: check the spelling (`doit list --all`).")


def test_info_of_a_recipe_names_its_tasks(project):
    line = _error_line(doit(project, "info", NAME), "info")
    assert line.startswith(f"{NAME}: a recipe, not one task. Expected one task, got "
                           f"calibrate:{NAME}, check:{NAME}, fetch:{NAME}"), line
    assert line.endswith(f"Hint: run doit info patch:{NAME}.")
    task = doit(project, "info", f"check:{NAME}")
    assert "Traceback" not in task.stderr and f"check {NAME}" in task.stdout, task


def test_dumpdb_reads_the_sqlite_state(tmp_path):
    proj = make_project(tmp_path / "p", [NAME])
    line = _error_line(doit(proj, "dumpdb"), "dumpdb")
    assert line == (f"{proj / 'cache' / 'doit.sqlite3'}: no doit state yet. Hint: run doit "
                    "build first."), line
    assert doit(proj, "forget").returncode == 0  # doit creates its state file
    run = doit(proj, "dumpdb")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run
    assert run.stdout.splitlines()[0] == f"doit state: {proj / 'cache' / 'doit.sqlite3'} (sqlite3)"
