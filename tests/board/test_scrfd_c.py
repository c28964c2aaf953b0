"""Generated SCRFD C, compiled on the host, against the Python decoder on real photos.

As tests/board/test_retinaface_c.py: the simulator's quantized head maps of scrfd-500m-640's
check photos (the ONNX export cut at its nine head convolutions) are written in NNIE's memory
layout (int32, 12 fractional bits, rows padded to the stride, padding poisoned) and decoded by the
packaged C (sigmoid of the score logits, distances and keypoints times the stride, NMS); the faces
must be ``nnbuild.check.tasks.scrfd.decode``'s, in the same order, within 1e-3 px.
"""

from __future__ import annotations

import dataclasses
import os

from board import cc
from board.blobs import dump
from board.hostcheck import _scrfd, check_face_letterbox, check_package, packaged
from nnbuild.board.generate import generate

pytestmark = cc.needs_cc
NAME = "scrfd-500m-640"


def test_package_holds_the_generated_decoder(built, quantized):
    proj, _ = built
    spec, _ = quantized(NAME)
    files = packaged(proj, NAME)
    assert files == generate(spec)
    header = files["postprocess/scrfd.h"]
    for i, out in enumerate(spec.outputs):
        assert f"[{i}] {out.nnie_name}" in header
    # stride 8 maps are 80 wide: 320-byte rows at internal_stride 16
    source = " ".join(files["postprocess/scrfd.c"].split())
    index = {o.name: i for i, o in enumerate(spec.outputs)}
    assert (f"{{8, 80, 80, {index['score_stride8']}, {index['bbox_stride8']}, "
            f"{index['kps_stride8']}}}") in source


def test_c_decoder_matches_python_on_check_photos(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME)
    assert check_package(proj, NAME, spec, results, tmp_path) >= 4, "photos should show faces"


def test_c_decoder_reads_rows_padded_to_32_bytes(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME)
    spec = dataclasses.replace(spec, align=32)  # the 20x20 rows (80 bytes) are padded to 96
    assert {o.stride(32) for o in spec.outputs} == {96, 160, 320}
    assert check_package(proj, NAME, spec, results, tmp_path, files=generate(spec)) >= 4


def test_c_maps_faces_to_the_source_picture_as_letterbox_geometry(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    assert spec.resize == "letterbox"
    exe = cc.build(cc.write(packaged(proj, NAME), tmp_path), "scrfd", tmp_path / "scrfd")
    photo, outputs = results[0]
    blobs = dump(spec, outputs, tmp_path / "0.bin")
    check_face_letterbox("scrfd", exe, blobs, _scrfd(spec, outputs))


def test_c_decoder_refuses_a_stride_shorter_than_the_row(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    exe = cc.build(cc.write(packaged(proj, NAME), tmp_path), "scrfd", tmp_path / "scrfd")
    blobs = dump(spec, results[0][1], tmp_path / "0.bin")
    assert cc.run(exe, blobs, env=dict(os.environ, HARNESS_STRIDE_SHORT="1")) == -1
