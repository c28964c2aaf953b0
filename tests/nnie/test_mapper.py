"""Tests for nnbuild.nnie.mapper with the stand-in mapper in tests/fakes (the real one is closed)."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import IMAGES, MODELS
from nnbuild import preprocess as pp
from nnbuild.errors import MapperError
from nnbuild.nnie import cfg as nc
from nnbuild.nnie import mapper as nm
from nnbuild.recipe.spec import RecipeSpec

STANDIN = pathlib.Path(__file__).parent.parent / "fakes" / "nnie_mapper_12_standin.py"
RECIPE = {"input": {"color": "RGB", "mean": [127, 127, 127], "scale": 0.0078125},
          "calibration": {"count": 2}, "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"}}


def make_exe(directory: pathlib.Path, name: str, body: str) -> pathlib.Path:
    exe = directory / name
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def standin(tmp_path):
    return make_exe(tmp_path, "nnie_mapper_12", f'exec "{sys.executable}" "{STANDIN}" "$@"')


@pytest.fixture
def package(tmp_path):
    """A package-root-like directory: model, calibration .bgr files, image list, cfg, mean file."""
    root = tmp_path / "pkg"
    (root / "images").mkdir(parents=True)
    model = MODELS / "ultraface-slim-320"
    for src, dst in (("slim-320.prototxt", "model.prototxt"),
                     ("slim-320.caffemodel", "model.caffemodel")):
        (root / dst).symlink_to(model / src)
    files = []
    for i, name in enumerate(("ultraface-1.jpg", "ultraface-2.jpg")):
        rgb = pp.load_uint8(IMAGES / "photos" / name, (240, 320))
        files.append(pp.write_planar_bgr(rgb, root / "images" / f"{i:03d}.bgr"))
    pp.write_image_list(files, root / "image_list.txt", relative_to=root)
    for fname, text in nc.make_cfg(RecipeSpec.from_data(RECIPE), instruction_name="slim").items():
        (root / fname).write_text(text)
    return root


def test_run_end_to_end(standin, package):
    assert nm.bgr_list_to_png(package / "image_list.txt", (1, 3, 240, 320)) == 2
    result = nm.run_mapper(standin, nc.CFG_NAME, cwd=package)
    assert result.wk == package / "slim.wk" and result.wk.stat().st_size > 0
    log = result.log.read_text()
    assert "2 calibration images" in log and "RGB_order RGB" in log


def test_bgr_list_to_png_keeps_pixels(package):
    before = pp.read_planar_bgr(package / "images" / "001.bgr", (240, 320))
    nm.bgr_list_to_png(package / "image_list.txt", (240, 320))
    assert (package / "image_list.txt").read_text() == "images/000.png\nimages/001.png\n"
    np.testing.assert_array_equal(np.asarray(Image.open(package / "images" / "001.png")), before)


def test_planar_files_are_not_opencv_pictures(standin, package):
    # nnie-facts.md §2: the mapper's image_list names OpenCV-readable pictures, not .bgr files.
    with pytest.raises(MapperError, match="nnie_mapper failed.*cannot be read by OpenCV"):
        nm.run_mapper(standin, nc.CFG_NAME, cwd=package)


def test_failure_quotes_log_tail(standin, package, monkeypatch):
    nm.bgr_list_to_png(package / "image_list.txt", (240, 320))
    monkeypatch.setenv("STANDIN_FAIL", "1")
    with pytest.raises(MapperError, match=r"Expected exit status 0, got 3; log: .*simulated fail"):
        nm.run_mapper(standin, nc.CFG_NAME, cwd=package)


def test_missing_wk(standin, package, monkeypatch):
    nm.bgr_list_to_png(package / "image_list.txt", (240, 320))
    (package / "slim.wk").write_bytes(b"stale")  # a stale .wk from an earlier run must not count
    monkeypatch.setenv("STANDIN_NO_WK", "1")
    with pytest.raises(MapperError, match="wrote no .wk. Expected slim.wk"):
        nm.run_mapper(standin, nc.CFG_NAME, cwd=package)


def test_incomplete_cfg_is_refused_by_standin(standin, package):
    nm.bgr_list_to_png(package / "image_list.txt", (240, 320))
    text = (package / nc.CFG_NAME).read_text().replace("[instruction_name]", "[instructions_name]")
    (package / "bad.cfg").write_text(text)
    with pytest.raises(MapperError, match="unknown cfg key"):
        nm.run_mapper(standin, "bad.cfg", cwd=package, wk_name="slim")


def test_run_errors(tmp_path, package):
    with pytest.raises(MapperError, match="mapper cfg not found"):
        nm.run_mapper("/bin/true", "nope.cfg", cwd=package)
    with pytest.raises(MapperError, match="cannot start nnie_mapper"):
        nm.run_mapper(tmp_path / "no-such-mapper", nc.CFG_NAME, cwd=package)
    slow = make_exe(tmp_path, "slow_mapper", "sleep 5")
    with pytest.raises(MapperError, match="timed out after 0.3 s"):
        nm.run_mapper(slow, nc.CFG_NAME, cwd=package, timeout=0.3)


def test_mapper_version(standin, tmp_path):
    version = nm.mapper_version(standin)
    assert "version 1.2.0.0-standin" in version and "sha256:" in version
    other = make_exe(tmp_path, "other_mapper", "echo 'nnie_mapper 1.1'; exit 1")
    assert nm.mapper_version(other) != version
    assert nm.mapper_version(other).endswith("nnie_mapper 1.1")


def test_find_mapper(standin, tmp_path, monkeypatch):
    monkeypatch.delenv(nm.ENV_VAR, raising=False)
    assert nm.find_mapper(None) is None
    monkeypatch.setenv(nm.ENV_VAR, str(standin))
    assert nm.find_mapper(None) == standin
    other = make_exe(tmp_path, "mapper_from_recipe", "echo 'Mapper Version 1.2.2.3_B010 (NNIE_1.2)'")
    assert nm.mapper_for_recipe(RecipeSpec.from_data(
        {"input": {"color": "RGB"}, "mapper": {"path": str(other)}})) == other  # the recipe wins
    with pytest.raises(MapperError, match="wrong mapper version for hi3559av100.*nnie_mapper_11"):
        nm.find_mapper(None, chip="hi3559av100")
    eleven = make_exe(tmp_path, "nnie_mapper_11", "echo 'Mapper Version 1.1.2.0_B010 (NNIE_1.1)'")
    assert nm.find_mapper(eleven, chip="hi3559av100") == eleven
    plain = tmp_path / "not-executable"
    plain.write_text("")
    with pytest.raises(MapperError, match="^mapper.path: nnie_mapper is not an executable"):
        nm.find_mapper(plain)
    monkeypatch.setenv(nm.ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(MapperError, match=f"^{nm.ENV_VAR}: "):
        nm.find_mapper(None)


def test_cfg_value():
    assert nm.cfg_value("[a] 1\n[instruction_name] out/x\n", "instruction_name") == "out/x"
    assert nm.cfg_value("[a] 1\n", "b") is None


def test_a_program_without_an_nnie_banner_is_refused_before_it_runs(tmp_path):
    with pytest.raises(MapperError) as info:
        nm.find_mapper("/bin/true")
    assert str(info.value) == (
        "mapper.path: not an nnie_mapper: no version banner. Expected a banner like 'Mapper "
        "Version 1.2.x' when run without arguments, got no output. Hint: point it at "
        "HiSilicon's nnie_mapper_12 or unset it.")
    chatty = make_exe(tmp_path, "tool", "echo 'usage: tool FILE'")
    with pytest.raises(MapperError, match=r"no version banner.*got 'usage: tool FILE'"):
        nm.find_mapper(chatty)
    wrong = make_exe(tmp_path, "mapper", "echo 'Mapper Version 1.1.2.0_B010 (NNIE_1.1)'")
    with pytest.raises(MapperError, match=r"wrong mapper version in its banner\. Expected NNIE "
                                          r"1\.2 \(nnie_mapper_12\)"):
        nm.find_mapper(wrong, chip="hi3516dv300")


def test_a_build_with_bin_true_as_mapper_fails_in_one_line(tmp_path):
    from e2e.e2e_project import doit, env, make_project, override_text, write_recipe

    proj = make_project(tmp_path / "p", [])
    write_recipe(proj, "mtcnn-pnet", override_text("mtcnn-pnet") + "mapper: {path: /bin/true}\n")
    run = doit(proj, "build", "mtcnn-pnet", environ=env())
    assert run.returncode == 2, run
    assert "Traceback" not in run.stdout + run.stderr
    assert "mapper.path: not an nnie_mapper: no version banner" in run.stdout + run.stderr, run
    assert not (proj / "dist" / "mtcnn-pnet.tar.gz").exists()


def test_gray_frames_become_grayscale_pngs_of_the_same_bytes(standin, package):
    plane = np.random.default_rng(7).integers(0, 256, (240, 320), dtype=np.uint8)
    (package / "images" / "002.gray").write_bytes(plane.tobytes())
    (package / "image_list.txt").write_text("images/002.gray\n")
    assert nm.bgr_list_to_png(package / "image_list.txt", (1, 1, 240, 320)) == 1
    assert (package / "image_list.txt").read_text() == "images/002.png\n"
    png = Image.open(package / "images" / "002.png")
    assert png.mode == "L"
    np.testing.assert_array_equal(np.asarray(png), plane)
    assert "1 calibration images" in nm.run_mapper(standin, nc.CFG_NAME, cwd=package).log.read_text()
