"""Camera-frame inputs (nnbuild.board.frames): BT.601 conversion against the standard's reference
values, NV12/NV21 byte layout, cfg keys per format, per-pixel mean files, and a yvu420sp recipe
built and checked end to end like any other."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from board.conftest import MEAN_FILE, NV21
from board.hostcheck import check_photos
from nnbuild import preprocess
from nnbuild.board import frames
from nnbuild.errors import RecipeError
from nnbuild.nnie.cfg import make_cfg, parse_cfg
from nnbuild.recipe.spec import InputSpec, RecipeSpec

# ITU-R BT.601 video-range Y'CbCr of the primaries (8-bit, the standard's reference values).
REFERENCE = {(255, 255, 255): (235, 128, 128), (0, 0, 0): (16, 128, 128),
             (255, 0, 0): (81, 90, 240), (0, 255, 0): (145, 54, 34), (0, 0, 255): (41, 240, 110)}


@pytest.mark.parametrize("rgb, ycbcr", sorted(REFERENCE.items()))
def test_yuv_frames_carry_bt601_video_range_values(rgb, ycbcr):
    picture = np.tile(np.array(rgb, dtype=np.uint8), (2, 2, 1))
    nv12 = frames.encode(picture, "yuv420sp")
    nv21 = frames.encode(picture, "yvu420sp")
    y, cb, cr = ycbcr
    assert list(nv12) == [y] * 4 + [cb, cr] and list(nv21) == [y] * 4 + [cr, cb]
    # and back: the primaries survive the round trip within one level
    assert np.abs(frames.board_view(picture, "yvu420sp").astype(int) - rgb).max() <= 1


def test_nv21_layout_and_chroma_of_2x2_blocks():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    data = np.frombuffer(frames.encode(picture, "yvu420sp"), dtype=np.uint8)
    assert data.size == 4 * 6 * 3 // 2
    m = np.array(frames.FORWARD) / 255
    yuv = picture.astype(np.float64) @ m.T + frames.OFFSET
    assert np.array_equal(data[:24].reshape(4, 6), np.floor(yuv[..., 0] + 0.5))
    vu = data[24:].reshape(2, 3, 2)
    block = yuv[:2, :2, 2].mean()  # V of the top-left 2x2 block comes first in NV21
    assert vu[0, 0, 0] == np.floor(block + 0.5) and vu[0, 0, 1] == np.floor(yuv[:2, :2, 1].mean() + 0.5)


def test_planar_and_gray_frames():
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    assert frames.encode(picture, "bgr") == np.ascontiguousarray(
        picture[..., ::-1].transpose(2, 0, 1)).tobytes()
    assert frames.encode(picture, "rgb") == np.ascontiguousarray(picture.transpose(2, 0, 1)).tobytes()
    luma = np.floor(picture @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert np.array_equal(np.frombuffer(frames.encode(picture, "gray"), np.uint8).reshape(3, 4), luma)
    for fmt in ("bgr", "rgb"):
        assert np.array_equal(frames.board_view(picture, fmt), picture)


def _recipe(**inp):
    return RecipeSpec.from_data({"input": {"shape": [1, 3, 240, 320], "color": "RGB", **inp},
                                 "calibration": {"count": 4}, "target": {"chip": "hi3516dv300"}})


def test_cfg_image_type_rgb_order_and_norm_per_format():
    def keys(**inp):
        return {k: v[0] for k, v in parse_cfg(make_cfg(_recipe(**inp), instruction_name="m")[
            "nnie_mapper.cfg"]).items()}
    assert keys()["image_type"] == "1" and keys()["RGB_order"] == "RGB"
    assert keys(format="yvu420sp")["image_type"] == "3"
    assert keys(format="yuv420sp")["image_type"] == "3"
    assert keys(format="rgb")["RGB_order"] == "BGR"  # NNIE swaps plane 0 (taken as B) to R
    assert keys(mean_file={"path": "m"}, scale=0.5)["norm_type"] == "4"
    assert keys(mean_file={"path": "m"})["mean_file"] == "mean.binaryproto"
    assert keys(mean_file={"path": "m"})["norm_type"] == "1"
    gray = make_cfg(_recipe(format="gray", color=None, shape=[1, 1, 24, 24], mean=[100]),
                    instruction_name="m")
    assert gray["mean.txt"] == "100.0\n" and "[RGB_order] BGR\n" in gray["nnie_mapper.cfg"]


def test_format_errors_name_the_key_and_the_fix():
    with pytest.raises(RecipeError, match=r"^cam: input.format: 4:2:0 frames need an even width "
                                          r"and height. Expected even H and W, got 241 x 320"):
        RecipeSpec.from_data({"input": {"color": "RGB", "format": "yvu420sp",
                                        "shape": [1, 3, 241, 320]}}, "cam")
    with pytest.raises(RecipeError, match=r"^input.format: gray frames need a 1-channel input"):
        frames.frame_format(InputSpec(color="RGB", format="gray", shape=(1, 3, 24, 24)))
    with pytest.raises(RecipeError, match=r"^input.format: unknown camera frame format"):
        frames.frame_format(InputSpec(color="RGB", format="nv21"))


def test_mean_file_is_subtracted_per_pixel_before_the_scale(tmp_path):
    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    mean = rng.uniform(0, 255, (3, 6, 8)).astype(np.float32)
    path = frames.write_mean_file(mean, tmp_path / "mean.binaryproto")
    got = frames.network_input(picture, preprocess.to_tensor, color="BGR", scale=0.5,
                               mean_file=str(path))
    want = (picture[..., ::-1].transpose(2, 0, 1).astype(np.float32) - mean) * np.float32(0.5)
    assert got.shape == (1, 3, 6, 8) and np.array_equal(got[0], want)
    with pytest.raises(RecipeError, match=r"input.mean_file: the mean image does not fit the "
                                          r"network input. Expected 3 x 6 x 9"):
        frames.read_mean_file(path, (1, 3, 6, 9))


def test_default_format_is_exactly_the_old_preprocessing():
    picture = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    args = {"color": "RGB", "mean": [1.0, 2.0, 3.0], "scale": 0.25}
    assert np.array_equal(frames.network_input(picture, preprocess.to_tensor, **args),
                          preprocess.to_tensor(picture, **args))


def test_yvu420sp_recipe_builds_with_nv21_calibration_frames_and_checks(built):
    proj, recipes = built
    with tarfile.open(proj / "dist" / f"{NV21}.tar.gz") as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}
    cfg = parse_cfg(files["nnie_mapper.cfg"].decode())
    assert cfg["image_type"] == ["3"] and cfg["RGB_order"] == ["RGB"]
    listed = files["image_list.txt"].decode().split()
    assert listed and all(name.endswith(".nv21") for name in listed)
    assert not [f for f in files if f.endswith(".bgr")]
    assert json.loads(files["manifest.json"])["input"]["board_format"].startswith("NV21: Y plane")
    # each calibration frame is the recipe's picture as NV21 (Y plane, then V/U at half size)
    recipe = recipes[NV21]
    photos = check_photos(recipe, len(listed), "calibration")
    want = {frames.encode(preprocess.load_uint8(p, (240, 320)), "yvu420sp") for p in photos}
    assert {files[name] for name in listed} == want
    assert all(len(files[name]) == 240 * 320 * 3 // 2 for name in listed)
    # the check compared float and quantized on the board's view of the frames, like any other
    report = json.loads(files["report.json"])
    assert report["verdict"] == "pass" and report["task"]["name"] == "ultraface"
    plain = json.loads(tarfile.open(proj / "dist" / "ultraface-slim-320.tar.gz").extractfile(
        "ultraface-slim-320/report.json").read())
    assert report["outputs"] != plain["outputs"]  # the NV21 round trip changes the pictures


def test_mean_file_recipe_maps_with_norm_type_4_and_calibrates_as_the_channel_mean(built):
    proj, _ = built
    out = proj / "cache" / "v1" / "out"
    with tarfile.open(proj / "dist" / f"{MEAN_FILE}.tar.gz") as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}
    cfg = parse_cfg(files["nnie_mapper.cfg"].decode())
    assert cfg["norm_type"] == ["4"] and cfg["mean_file"] == ["mean.binaryproto"]
    assert files["mean.binaryproto"] == (proj / "recipes" / "mean127.binaryproto").read_bytes()
    assert "mean.txt" not in files
    # a mean image of 127 everywhere is the channel mean 127 of the plain recipe: same ranges
    plain = json.loads((out / "ultraface-slim-320" / "calibrate" / "ranges.json").read_text())
    with_file = json.loads((out / MEAN_FILE / "calibrate" / "ranges.json").read_text())
    assert with_file == plain


def test_gray_frames_feed_a_one_channel_network_their_luma():
    picture = np.random.default_rng(4).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    got = frames.network_input(picture, preprocess.to_tensor, format="gray", mean=[100.0],
                               scale=0.5)
    luma = np.floor(picture @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert got.shape == (1, 1, 4, 6)
    assert np.array_equal(got[0, 0], ((luma - 100.0) * 0.5).astype(np.float32))
