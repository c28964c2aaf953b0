"""Messages that point at the right place (issue 13): each one names what the user wrote (the
recipe's file, the argument given) and says what to do, never a cache copy, "Expected None",
"object or object", "Expected one of , got" or a hint to rename a file that is not one."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from e2e.e2e_project import ZOO, doit, executed, make_project, nnbuild, write_recipe

NAME = "mtcnn-pnet"
MTCNN = MODELS / "mtcnn"
PHOTO = IMAGES / "photos" / "ultraface-1.jpg"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("msg") / "p", [NAME])
    data = proj / "data"
    data.mkdir()
    (data / "empty.jpg").write_bytes(b"")
    (data / "cut.jpg").write_bytes(PHOTO.read_bytes()[:300])
    (data / "bad.prototxt").write_text('name: "x"\nlayer { name: "a" type: \n')
    (data / "cut.caffemodel").write_bytes((MTCNN / "det1.caffemodel").read_bytes()[:1000])
    zoo = ZOO / f"{NAME}.yaml"
    write_recipe(proj, "bad-proto", f"extends: {zoo}\nsource: {{prototxt: ../data/bad.prototxt,"
                 f" caffemodel: {MTCNN / 'det1.caffemodel'}}}\n")
    write_recipe(proj, "cut-weights", f"extends: {zoo}\nsource: {{prototxt: "
                 f"{MTCNN / 'det1.prototxt'}, caffemodel: ../data/cut.caffemodel}}\n")
    write_recipe(proj, "empty-picture", f"extends: {zoo}\n"
                 "calibration: {images: [../data/empty.jpg], count: 1}\n")
    write_recipe(proj, "cut-picture", f"extends: {zoo}\ncheck: {{images: [../data/cut.jpg], "
                 "count: 1}\n")
    return proj


def _task_error(run, task):
    out = run.stdout + run.stderr
    assert run.returncode != 0, run
    assert "Traceback" not in out and "cache/v1" not in out, out
    lines = out.splitlines()
    assert f"TaskError - taskid:{task}" in lines, out  # doit names the recipe and stage
    return lines[lines.index(f"TaskError - taskid:{task}") + 1]


def test_a_prototxt_error_names_the_recipes_file_and_line(project):
    line = _task_error(doit(project, "build", "bad-proto"), "patch:bad-proto")
    assert line.startswith(f"source.prototxt: {project / 'data' / 'bad.prototxt'}:3:1: prototxt "
                           "syntax error: "), line


def test_a_truncated_caffemodel_names_the_recipes_file(project):
    line = _task_error(doit(project, "build", "cut-weights"), "patch:cut-weights")
    assert line.startswith(
        f"source.caffemodel: {project / 'data' / 'cut.caffemodel'}: caffemodel does not decode "
        "as a Caffe NetParameter. Expected a binary Caffe model (NetParameter), got 1000 bytes "
        "that do not decode ("), line
    assert "Expected None" not in line


def test_an_empty_calibration_picture_names_the_recipes_file(project):
    line = _task_error(doit(project, "build", "empty-picture"), "calibrate:empty-picture")
    assert line == (f"calibration.images: {project / 'data' / 'empty.jpg'}: cannot decode the "
                    "picture. Expected a JPEG/PNG/BMP picture, got an empty file. Hint: replace "
                    "the file with a readable picture or remove it from the recipe's images.")


def test_a_truncated_check_picture_names_the_recipes_file(project):
    line = _task_error(doit(project, "build", "cut-picture"), "check:cut-picture")
    assert line == (f"check.images: {project / 'data' / 'cut.jpg'}: cannot decode the picture. "
                    "Expected a JPEG/PNG/BMP picture, got 300 bytes (Truncated File Read). Hint: "
                    "replace the file with a readable picture or remove it from the recipe's "
                    "images.")


def test_doit_build_takes_stage_recipe_targets(project):
    run = doit(project, "build", f"patch:{NAME}")
    assert run.returncode == 0, run
    assert executed(run.stdout) == [f"fetch:{NAME}", f"patch:{NAME}"], run
    typo = doit(project, "build", f"pach:{NAME}")
    assert typo.returncode == 2 and "rename the file" not in typo.stderr, typo
    assert typo.stderr.strip() == (
        f"doit build: error: pach:{NAME}: unknown stage 'pach' before ':'. Expected RECIPE or "
        "STAGE:RECIPE with a stage of fetch, patch, calibrate, map, check, package, got "
        f"'pach:{NAME}'. Hint: run doit build {NAME} (every stage) or fix the stage.")
    unknown = doit(project, "build", "patch:nosuch")
    assert unknown.returncode == 2, unknown
    assert unknown.stderr.startswith("doit build: error: nosuch: unknown recipe. Expected one of "
                                     "bad-proto, cut-picture, "), unknown
    slash = doit(project, "build", "a/b")
    assert slash.returncode == 2 and slash.stderr.strip().startswith(
        "doit build: error: recipe name: not a safe recipe name. Expected "), slash
    assert slash.stderr.strip().endswith(
        "got 'a/b'. Hint: give a recipe's name: its file name in recipes/ without .yaml."), slash
    explain = nnbuild(project, "explain", "a/b")
    assert explain.returncode == 2 and "rename the file" not in explain.stderr, explain


def test_an_unknown_recipe_in_a_project_without_recipes(tmp_path):
    proj = make_project(tmp_path / "p", [])
    want = ("foo: unknown recipe: recipes/ holds no recipe yet. Hint: write recipes/foo.yaml, "
            "e.g. one line `extends: zoo:retinaface-640` (`nnbuild zoo` lists the zoo).")
    build = doit(proj, "build", "foo")
    assert build.returncode == 2 and build.stderr.strip() == f"doit build: error: {want}", build
    explain = nnbuild(proj, "explain", "foo")
    assert explain.returncode == 2 and explain.stderr.strip() == f"nnbuild: error: {want}"


def test_an_all_digit_sha256_says_to_quote_it(tmp_path):
    proj = make_project(tmp_path / "p", [])
    digits = "1234567890" * 6 + "1234"
    write_recipe(proj, "digits", f"extends: {ZOO / (NAME + '.yaml')}\nsource:\n  prototxt: "
                 f"{{url: 'https://example.com/det1.prototxt', sha256: {digits}}}\n"
                 "  caffemodel: 5\n")
    run = nnbuild(proj, "validate", "digits")
    assert run.returncode == 2, run
    assert "object or object" not in run.stderr
    assert (f"source.prototxt.sha256: expected 64 lowercase hex digits (a sha256) as a string, "
            f"got the number {digits}; YAML reads an all-digit value as a number: quote it"
            ) in run.stderr, run.stderr
    assert ("source.caffemodel: expected string or {url, sha256, ...} or {path, ...}, got 5"
            in run.stderr), run.stderr


def test_run_writes_the_file_it_names(tmp_path):
    out = tmp_path / "outputs"  # no .npz: numpy's savez would have written outputs.npz
    run = nnbuild(tmp_path, "run", str(MTCNN / "det1.prototxt"), "--weights",
                  str(MTCNN / "det1.caffemodel"), "--image", str(PHOTO), "-o", str(out))
    assert run.returncode == 0, run
    assert run.stdout.splitlines()[-1] == f"saved 2 blob(s) to {out}"
    assert not (tmp_path / "outputs.npz").exists()
    assert sorted(np.load(out).files) == ["conv4-2", "prob1"]
