"""``quant.bias_correction`` through the real pipeline: the calibrate stage writes the corrected
model, the mapper is given it, the package carries it, the check simulates it against the
uncorrected float model, and only recipes that use it key their calibration by ``quant``."""

from __future__ import annotations

import hashlib
import json

import pytest

from e2e.e2e_project import (STANDIN, ZOO, doit, env, override_text, pyproject_text, sha256,
                             write_recipe)

pytestmark = pytest.mark.slow
NAME = "mtcnn-pnet"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """mtcnn-pnet with and without bias correction, mapped by a stand-in that logs the sha256
    of the caffemodel it was handed."""
    import sys

    root = tmp_path_factory.mktemp("biascorrect")
    proj = root / "proj"
    (proj / "recipes").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(pyproject_text())
    base = override_text(NAME)
    write_recipe(proj, "plain", base)
    write_recipe(proj, "corrected", base + "quant: {bias_correction: true}\n")
    exe = root / "nnie_mapper_12"
    exe.write_text("#!/bin/sh\n"
                   f"\"{sys.executable}\" -c \"import hashlib,sys; print('handed', "
                   "hashlib.sha256(open('model.caffemodel','rb').read()).hexdigest()) "
                   "if __import__('os').path.exists('model.caffemodel') else None\"\n"
                   f'exec "{sys.executable}" "{STANDIN}" "$@"\n')
    exe.chmod(0o755)
    result = doit(proj, "build", "plain", "corrected", environ=env(NNIE_MAPPER=exe))
    assert result.returncode == 0, result
    return proj


def members(archive) -> dict[str, bytes]:
    """Archive member (below the recipe folder) -> bytes."""
    import tarfile

    with tarfile.open(archive) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()
                if m.isfile()}


def _out(proj, name: str, stage: str):
    return proj / "cache" / "v1" / "out" / name / stage


def test_calibrate_writes_the_corrected_model_and_its_report(built):
    calib = _out(built, "corrected", "calibrate")
    report = json.loads((calib / "bias-correction.json").read_text())
    assert set(report["layers"]) == {"conv1", "conv2", "conv3", "conv4-1", "conv4-2"}
    assert all(v["max_abs_delta"] > 0 for v in report["layers"].values())
    patched = _out(built, "corrected", "patch") / "model.caffemodel"
    assert sha256(calib / "model.caffemodel") != sha256(patched)
    assert (calib / "model.prototxt").read_text() == (patched.parent / "model.prototxt").read_text()
    assert not (_out(built, "plain", "calibrate") / "model.caffemodel").exists()


def test_the_mapper_and_the_package_get_the_corrected_model(built):
    corrected = sha256(_out(built, "corrected", "calibrate") / "model.caffemodel")
    log = (_out(built, "corrected", "map") / "mapper.log").read_text()
    assert f"handed {corrected}" in log
    files = members(built / "dist" / "corrected.tar.gz")
    assert hashlib.sha256(files["model.caffemodel"]).hexdigest() == corrected
    assert "bias-correction.json" in files
    plain = sha256(_out(built, "plain", "patch") / "model.caffemodel")
    assert f"handed {plain}" in (_out(built, "plain", "map") / "mapper.log").read_text()
    assert "bias-correction.json" not in members(built / "dist" / "plain.tar.gz")


def test_check_simulates_the_corrected_model_against_the_float_one(built):
    report = json.loads((_out(built, "corrected", "check") / "report.json").read_text())
    calib, patch = _out(built, "corrected", "calibrate"), _out(built, "corrected", "patch")
    assert report["inputs"]["compiled.caffemodel"] == sha256(calib / "model.caffemodel")
    assert report["inputs"]["model.caffemodel"] == sha256(patch / "model.caffemodel")
    plain = json.loads((_out(built, "plain", "check") / "report.json").read_text())
    assert "compiled.caffemodel" not in plain["inputs"]

    # the simulation ran on the corrected model: the same float reference, other quantized values
    assert report["outputs"] != plain["outputs"]
    assert report["layers"][0]["accumulated"] != plain["layers"][0]["accumulated"]


def test_only_corrected_recipes_key_their_calibration_by_quant():
    from nnbuild.stages import calibrate

    assert "quant.mode" not in calibrate.reads({"quant": {"mode": "int16"}})
    keyed = calibrate.reads({"quant": {"bias_correction": True}})
    assert {"quant.mode", "quant.high_precision", "quant.bias_correction"} <= set(keyed)


def test_the_zoo_recipes_that_enable_it_say_so_in_their_spec():
    from nnbuild.recipe.load import load

    spec = load("retinaface-640", ZOO).spec
    assert spec.quant.bias_correction is True
