"""A 1-channel recipe end to end: MTCNN P-Net reduced to one input channel (board/gray_pnet.py),
fed gray frames (``input.format: gray``, no ``input.color``), built by ``doit`` through
fetch/patch/calibrate/map/check/package like any zoo recipe.

What the mapper reads for it (nnie-facts.md §2): ``image_type`` 1 (a U8 picture), a calibration
list of one-plane uint8 frames (``.gray``, H x W bytes: the BT.601 luma the board feeds), and a
per-channel mean file with one line for the one channel; the check compares float and quantized
outputs on the gray pictures like any other.
"""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import yaml

from board.gray_pnet import NAME, PNET, recipe_text, write_model
from board.hostcheck import check_photos, spec_of
from e2e.e2e_project import doit, env, executed, make_mapper, make_project, write_recipe
from nnbuild import preprocess
from nnbuild.board import frames
from nnbuild.nnie.cfg import parse_cfg


@pytest.fixture(scope="module")
def gray_build(tmp_path_factory):
    """(project, {member: bytes} of the package, build run)."""
    proj = make_project(tmp_path_factory.mktemp("gray") / "proj", [])
    write_model(proj / "recipes")
    write_recipe(proj, NAME, recipe_text())
    result = doit(proj, "build", NAME, timeout=900)
    assert result.returncode == 0, result
    with tarfile.open(proj / "dist" / f"{NAME}.tar.gz") as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}
    return proj, files, result


def test_the_1_channel_pnet_is_pnet_on_a_gray_picture(tmp_path):
    """The summed conv1 is exact: the 1-channel net on y equals P-Net on (y, y, y)."""
    from nnbuild.caffe import io
    from nnbuild.engine import run

    gray = io.load(*write_model(tmp_path)).graph
    rgb = io.load(PNET / "det1.prototxt", PNET / "det1.caffemodel").graph
    y = np.random.default_rng(5).integers(0, 256, (1, 1, 12, 12)).astype(np.float32)
    x = (y - np.float32(127.5)) * np.float32(0.0078125)
    got = run(gray, {"data": x})
    want = run(rgb, {"data": np.repeat(x, 3, axis=1)})
    assert set(got) == set(want) and len(got) == 2
    for name in want:
        assert np.abs(got[name] - want[name]).max() <= 1e-5 * max(1.0, np.abs(want[name]).max())


def test_gray_recipe_builds_with_a_1_channel_cfg_and_gray_frames(gray_build):
    proj, files, _ = gray_build
    cfg = parse_cfg(files["nnie_mapper.cfg"].decode())
    assert cfg["image_type"] == ["1"] and cfg["norm_type"] == ["5"]
    assert cfg["data_scale"] == ["0.0078125"] and cfg["mean_file"] == ["mean.txt"]
    assert files["mean.txt"] == b"127.5\n"  # one value for the one channel
    assert cfg["RGB_order"] == ["BGR"]  # the mapper's default: no order to swap on one plane
    listed = files["image_list.txt"].decode().split()
    assert len(listed) == 4 and all(name.endswith(".gray") for name in listed)
    assert not [f for f in files if f.endswith((".bgr", ".rgb", ".nv21", ".nv12"))]
    # each calibration frame is the picture's BT.601 luma, one uint8 plane of 12 x 12
    recipe = spec_of(proj / "recipes" / f"{NAME}.yaml")
    photos = check_photos(recipe, len(listed), "calibration")
    want = [frames.encode(preprocess.load_uint8(p, (12, 12)), "gray") for p in photos]
    assert sorted(files[name] for name in listed) == sorted(want)
    assert all(len(files[name]) == 12 * 12 for name in listed)
    manifest = json.loads(files["manifest.json"])
    assert manifest["input"]["board_format"] == "one uint8 plane (image_type 1)"
    assert manifest["input"]["network_color_order"] == "GRAY"
    assert manifest["input"]["shape"] == [1, 1, 12, 12]


def test_gray_recipe_checks_like_any_other(gray_build):
    proj, files, _ = gray_build
    report = json.loads(files["report.json"])
    assert report["verdict"] == "pass" and report["task"]["name"] == "raw"
    assert len(report["images"]) == 2
    cosines = {o["blob"]: o["metrics"]["cosine_min"] for o in report["outputs"]}
    assert set(cosines) == {"conv4-2", "prob1"} and min(cosines.values()) >= 0.99, cosines
    recipe = yaml.safe_load(files["recipe.yaml"])
    assert recipe["input"]["color"] == "GRAY" and recipe["input"]["format"] == "gray"


def test_gray_recipe_maps_with_a_mapper_reading_1_channel_pngs(gray_build, tmp_path):
    """With a (stand-in) nnie_mapper, the map stage hands it the gray frames as 8-bit
    grayscale PNGs (OpenCV-readable, nnie-facts.md §2) and a one-value mean file, which the
    stand-in checks against the prototxt's one input channel."""
    proj, _, _ = gray_build
    mapper = make_mapper(tmp_path / "bin")
    result = doit(proj, "build", NAME, environ=env(NNIE_MAPPER=mapper), timeout=900)
    assert result.returncode == 0, result
    assert "map:" + NAME in executed(result.stdout)
    with tarfile.open(proj / "dist" / f"{NAME}.tar.gz") as tar:
        log = tar.extractfile(f"{NAME}/mapper.log").read().decode()
    assert "[INFO] 4 calibration images" in log and "[ERROR]" not in log
