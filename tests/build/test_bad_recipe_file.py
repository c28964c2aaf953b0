"""One bad file in recipes/ (a YAML error, a name like ``a..b.yaml``) is reported in one line by
``doit list``, ``nnbuild validate`` and ``doit build``, and the other recipes still go on."""

from __future__ import annotations

import pytest

from e2e.e2e_project import doit, make_project, nnbuild, write_recipe

BAD = {"broken": "schema_version: 1\ninput: {shape: [1, 3\n", "a..b": "schema_version: 1\n"}


@pytest.fixture()
def project(tmp_path):
    proj = make_project(tmp_path / "p", ["mtcnn-pnet"])
    for name, text in BAD.items():
        write_recipe(proj, name, text)
    return proj


def _one_line_each(stderr: str) -> None:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert sum("recipes/broken.yaml:3:" in line and "YAML syntax error" in line
               for line in lines) == 1, stderr
    assert sum("recipes/a..b.yaml" in line and "not a safe recipe name" in line
               for line in lines) == 1, stderr


def test_doit_list_reports_the_bad_files_and_lists_the_rest(project):
    run = doit(project, "list", "--all")
    assert run.returncode == 0, run
    assert "check:mtcnn-pnet" in run.stdout
    _one_line_each(run.stderr)


def test_validate_reports_each_bad_file_and_checks_the_others(project):
    run = nnbuild(project, "validate")
    assert run.returncode == 2, run
    assert run.stdout.splitlines() == ["mtcnn-pnet: ok"]
    _one_line_each(run.stderr)


@pytest.mark.slow
def test_doit_build_builds_the_good_recipe_and_exits_2(project):
    run = doit(project, "build")
    assert run.returncode == 2, run
    assert (project / "dist" / "mtcnn-pnet.tar.gz").is_file(), run
    _one_line_each(run.stderr)
    named = doit(project, "build", "broken")
    assert named.returncode == 2 and "YAML syntax error" in named.stderr, named
    assert len(named.stderr.strip().splitlines()) == 1
