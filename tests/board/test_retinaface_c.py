"""Generated RetinaFace C, compiled on the host, against the Python decoder on real photos.

The simulator's quantized outputs of the recipe's check photos are written in NNIE's memory
layout (int32, 12 fractional bits, rows padded to the stride, padding poisoned) and decoded by
the packaged C; the faces must be the Python decoder's, in the same order, within 1e-3 px
(board/hostcheck.py).
"""

from __future__ import annotations

import dataclasses
import os

from board import cc
from board.blobs import dump
from board.hostcheck import _retinaface, check_face_letterbox, check_package, packaged
from nnbuild.board.generate import generate

pytestmark = cc.needs_cc
NAME = "retinaface-640"


def test_package_holds_the_generated_decoder(built, quantized):
    proj, _ = built
    spec, _ = quantized(NAME)
    files = packaged(proj, NAME)
    assert files == generate(spec)
    # the .wk's names (31 characters) and order are in the header, the strides in the source
    assert "[6] face_rpn_cls_prob_reshape_str32" in files["postprocess/retinaface.h"]
    flat = " ".join(files["postprocess/retinaface.c"].split())
    assert "retinaface_output_stride[RETINAFACE_NUM_OUTPUTS] = { 80, 160, 320, 80," in flat


def test_c_decoder_matches_python_on_check_photos(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME)
    assert check_package(proj, NAME, spec, results, tmp_path) >= 4, "photos should show faces"


def test_c_decoder_reads_rows_padded_to_32_bytes(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME)
    spec = dataclasses.replace(spec, align=32)  # internal_stride 32: the 20x20 rows are padded
    assert spec.outputs[0].stride(32) == 96
    assert check_package(proj, NAME, spec, results, tmp_path, files=generate(spec)) >= 4


def test_c_maps_faces_to_the_source_picture_as_letterbox_geometry(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    exe = cc.build(cc.write(packaged(proj, NAME), tmp_path), "retinaface", tmp_path / "rf")
    photo, outputs = results[0]
    blobs = dump(spec, outputs, tmp_path / "0.bin")
    check_face_letterbox("retinaface", exe, blobs, _retinaface(spec, outputs))


def test_c_decoder_refuses_a_stride_shorter_than_the_row(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    exe = cc.build(cc.write(packaged(proj, NAME), tmp_path), "retinaface", tmp_path / "rf")
    blobs = dump(spec, results[0][1], tmp_path / "0.bin")
    assert cc.run(exe, blobs, env=dict(os.environ, HARNESS_STRIDE_SHORT="1")) == -1
