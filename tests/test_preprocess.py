"""Tests for nnbuild.preprocess: decode/resize/colour/mean/scale and the planar .bgr format."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import IMAGES
from nnbuild import preprocess as pp
from nnbuild.errors import FetchError, RecipeError

DET39_JPG = IMAGES / "nnie-planar" / "det39.jpg"
DET39_BGR = IMAGES / "nnie-planar" / "det39.bgr"
PHOTO = IMAGES / "photos" / "ultraface-1.jpg"  # 720 x 478


def test_det39_planar_matches_opencv_file(tmp_path):
    rgb = pp.load_uint8(DET39_JPG, (640, 640))
    out = pp.write_planar_bgr(rgb, tmp_path / "det39.bgr")
    ours = np.fromfile(out, np.uint8).astype(np.float64)
    ref = np.fromfile(DET39_BGR, np.uint8).astype(np.float64)
    assert ours.size == ref.size == 640 * 640 * 3
    assert np.abs(ours - ref).mean() < 0.5
    # The plane order matters: RGB planes would be far off (proves B comes first).
    swapped = ours.reshape(3, -1)[::-1].ravel()
    assert np.abs(swapped - ref).mean() > 3.0


def test_planar_layout_independent(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data = np.fromfile(pp.write_planar_bgr(rgb, tmp_path / "x.bgr"), np.uint8)
    expected = np.concatenate([rgb[:, :, 2].ravel(), rgb[:, :, 1].ravel(), rgb[:, :, 0].ravel()])
    np.testing.assert_array_equal(data, expected)
    np.testing.assert_array_equal(pp.read_planar_bgr(tmp_path / "x.bgr", (5, 7)), rgb)


def test_read_planar_wrong_size(tmp_path):
    (tmp_path / "x.bgr").write_bytes(b"\0" * 10)
    with pytest.raises(FetchError, match="wrong size.*Expected 105 bytes"):
        pp.read_planar_bgr(tmp_path / "x.bgr", (5, 7))


def test_write_planar_rejects_float(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        pp.write_planar_bgr(np.zeros((2, 2, 3), np.float32), tmp_path / "x.bgr")


def test_same_size_is_not_resampled():
    ref = np.asarray(Image.open(DET39_JPG).convert("RGB"))
    np.testing.assert_array_equal(pp.load_uint8(DET39_JPG, (1, 3, 640, 640)), ref)


def test_tensor_color_mean_scale_formula():
    rgb = pp.load_uint8(PHOTO, (240, 320))
    mean, scale = (10.0, 20.0, 30.0), 0.5
    for color, order in (("RGB", [0, 1, 2]), ("BGR", [2, 1, 0])):
        t = pp.to_tensor(rgb, color=color, mean=mean, scale=scale)
        assert t.shape == (1, 3, 240, 320) and t.dtype == np.float32
        for c in range(3):
            expected = (rgb[:, :, order[c]].astype(np.float64) - mean[c]) * scale
            np.testing.assert_allclose(t[0, c], expected, rtol=0, atol=1e-5)


def test_mean_before_scale_ultraface():
    # (x - 127) / 128: 255 -> 1.0, 127 -> 0, 0 -> -127/128; scale-then-mean would give ~-125.
    rgb = np.array([[[255, 127, 0]]], dtype=np.uint8)
    t = pp.to_tensor(rgb, color="RGB", mean=127, scale=1 / 128)
    np.testing.assert_allclose(t.ravel(), [1.0, 0.0, -127 / 128], atol=1e-7)


def test_load_tensor_is_load_uint8_then_to_tensor():
    t = pp.load_tensor(PHOTO, (1, 3, 240, 320), color="BGR", mean=(1, 2, 3), scale=0.25,
                       resize="letterbox", pad_value=127)
    rgb = pp.load_uint8(PHOTO, (240, 320), resize="letterbox", pad_value=127)
    np.testing.assert_array_equal(t, pp.to_tensor(rgb, color="BGR", mean=(1, 2, 3), scale=0.25))


def test_stretch_of_linear_ramp_is_linear(tmp_path):
    # Bilinear (a symmetric filter) maps a linear ramp onto the same ramp sampled at pixel centres.
    src_w, dst_w = 200, 50
    ramp = np.tile(np.arange(src_w, dtype=np.uint8)[None, :, None], (40, 1, 3))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    out = pp.load_uint8(tmp_path / "ramp.png", (10, dst_w))
    assert out.shape == (10, dst_w, 3)
    centres = (np.arange(dst_w) + 0.5) * (src_w / dst_w) - 0.5
    np.testing.assert_allclose(out[5, 3:-3, 0], centres[3:-3], atol=1.0)


def test_letterbox_geometry_and_padding():
    scale, pad_x, pad_y = pp.letterbox_geometry((720, 478), (240, 320))
    assert scale == pytest.approx(320 / 720)
    assert pad_x == 0 and pad_y == (240 - round(478 * 320 / 720)) // 2 == 14
    out = pp.load_uint8(PHOTO, (240, 320), resize="letterbox", pad_value=(1, 2, 3))
    assert (out[:pad_y] == [1, 2, 3]).all() and (out[pad_y + 212:] == [1, 2, 3]).all()
    content = out[pad_y:pad_y + 212]
    assert not (content == [1, 2, 3]).all(axis=2).all(axis=1).any()


def test_grey_and_exif(tmp_path):
    Image.new("L", (8, 4), 77).save(tmp_path / "g.png")
    assert (pp.load_uint8(tmp_path / "g.png", (4, 8)) == 77).all()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (30, 10), (200, 0, 0)).save(tmp_path / "r.jpg", exif=exif)
    # Upright it is 10 wide, 30 tall: letterboxing into 30x30 pads left/right, not top/bottom.
    out = pp.load_uint8(tmp_path / "r.jpg", (30, 30), resize="letterbox", pad_value=0)
    assert out[:, :10].max() == 0 and out[15, 15, 0] > 150


@pytest.mark.parametrize("kwargs, match", [
    ({"color": "RBG"}, "input.color: unknown channel order"),
    ({"mean": (1, 2)}, "input.mean"),
    ({"scale": 0}, "input.scale"),
    ({"scale": (1, 2, 3)}, "input.scale"),
])
def test_to_tensor_errors(kwargs, match):
    with pytest.raises(RecipeError, match=match):
        pp.to_tensor(np.zeros((2, 2, 3), np.uint8), **kwargs)


def test_load_errors(tmp_path):
    with pytest.raises(FetchError, match="image file not found"):
        pp.load_uint8(tmp_path / "missing.jpg", (4, 4))
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    with pytest.raises(FetchError, match=r"bad\.jpg: cannot decode the picture\. Expected a "
                       r"JPEG/PNG/BMP picture, got 13 bytes in no format Pillow reads\. Hint: "
                       r"replace the file with a readable picture or remove it"):
        pp.load_uint8(tmp_path / "bad.jpg", (4, 4))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(FetchError, match=r"empty\.jpg: cannot decode the picture\. Expected a "
                       r"JPEG/PNG/BMP picture, got an empty file\."):
        pp.load_uint8(tmp_path / "empty.jpg", (4, 4))
    with pytest.raises(RecipeError, match="input.resize: unknown resize mode"):
        pp.load_uint8(PHOTO, (4, 4), resize="crop")
    with pytest.raises(RecipeError, match="input.pad_value"):
        pp.load_uint8(PHOTO, (4, 4), resize="letterbox", pad_value=300)
    with pytest.raises(RecipeError, match="input.shape"):
        pp.load_uint8(PHOTO, (3, 4, 4))


def test_write_image_list(tmp_path):
    files = [tmp_path / "images" / "0.bgr", tmp_path / "images" / "1.bgr"]
    out = pp.write_image_list(files, tmp_path / "image_list.txt", relative_to=tmp_path)
    assert out.read_text() == "images/0.bgr\nimages/1.bgr\n"
    pp.write_image_list(files, tmp_path / "abs.txt")
    assert out.parent.joinpath("abs.txt").read_text().splitlines() == [str(f) for f in files]
    with pytest.raises(RecipeError, match="no calibration pictures"):
        pp.write_image_list([], tmp_path / "empty.txt")
