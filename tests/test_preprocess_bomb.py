"""Decompression bombs: a 75-byte PNG claiming 30000x30000 pixels is refused with one line that
names the recipe's picture (not its cache copy), in the library and in a real build."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from e2e.e2e_project import doit, make_project, write_recipe, ZOO
from nnbuild import preprocess
from nnbuild.errors import FetchError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path, side=30000):
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b""))
    return path


def test_the_bomb_is_75_bytes_and_refused_in_one_line(tmp_path):
    png = bomb_png(tmp_path / "bomb.png")
    assert png.stat().st_size <= 80
    with pytest.raises(FetchError) as info:
        preprocess.load_uint8(png, (1, 3, 12, 12))
    assert str(info.value) == (
        f"{png}: picture too large to decode. Expected at most {preprocess.MAX_PIXELS} pixels, "
        "got Image size (900000000 pixels) exceeds limit of 178956970 pixels. Hint: a "
        "decompression bomb or a huge photo: shrink it or remove it from the recipe's images.")


def test_below_pillows_limit_nnbuild_still_refuses(tmp_path):
    png = bomb_png(tmp_path / "big.png", side=9000)  # 81 M pixels: only a warning for Pillow
    with pytest.raises(FetchError, match=r"big.png: picture too large to decode\. Expected at "
                                         r"most 64000000 pixels, got 9000x9000 pixels"):
        preprocess.load_uint8(png, (1, 3, 12, 12))


@pytest.mark.slow
def test_a_build_names_the_recipes_picture(tmp_path):
    png = bomb_png(tmp_path / "bomb.png")
    digest = hashlib.sha256(png.read_bytes()).hexdigest()
    proj = make_project(tmp_path / "p", [])
    write_recipe(proj, "mtcnn-pnet", f"extends: {ZOO / 'mtcnn-pnet.yaml'}\n"
                 f"calibration: {{images: [{{path: {png}, sha256: {digest}}}], count: 1}}\n")
    run = doit(proj, "calibrate:mtcnn-pnet")
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "Traceback" not in out
    assert f"calibration.images: {png}: picture too large to decode" in out, out
    assert "cache/v1/cas" not in out
