"""Generated RetinaFace C, compiled on the host, against the Python decoder on real photos.

The simulator's quantized outputs of the recipe's check photos are written in NNIE's memory
layout (int32, 12 fractional bits, rows padded to the stride, padding poisoned) and decoded by
the packaged C; the faces must be the Python decoder's, in the same order, within 1e-3 px.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile

import numpy as np
import pytest

from board import cc
from board.blobs import dump
from nnbuild import preprocess
from nnbuild.board import generate
from nnbuild.tasks import retinaface

pytestmark = cc.needs_cc
NAME = "retinaface-640"
TOL = 1e-3


def _packaged(proj, tmp_path) -> dict[str, str]:
    """The generated files as the package holds them."""
    with tarfile.open(proj / "dist" / f"{NAME}.tar.gz") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar if m.isfile() and "/postprocess/" in m.name}


def _python(spec, outputs) -> list[list[float]]:
    args = spec.task_args
    faces = retinaface.decode(outputs, spec.input_hw,
                              score_threshold=float(args.get("score_threshold", 0.5)),
                              nms_iou=float(args.get("nms_iou", 0.4)))
    return [f["box"] + [f["score"]] + [v for p in f["landmarks"] for v in p] for f in faces]


def _compare(c_rows, py_rows) -> None:
    assert len(c_rows) == len(py_rows)
    if py_rows:
        c, p = np.array(c_rows), np.array(py_rows)
        assert np.abs(c[:, [0, 1, 2, 3] + list(range(5, 15))] -
                      p[:, [0, 1, 2, 3] + list(range(5, 15))]).max() <= TOL
        assert np.abs(c[:, 4] - p[:, 4]).max() <= 1e-6  # scores are k/4096


def test_package_holds_the_generated_decoder(built, quantized, tmp_path):
    proj, _ = built
    spec, _ = quantized(NAME)
    files = _packaged(proj, tmp_path)
    assert set(files) == {"postprocess/retinaface.h", "postprocess/retinaface.c"}
    assert files == generate(spec)
    # the .wk's names (31 characters) and order are in the header, the strides in the source
    assert "[6] face_rpn_cls_prob_reshape_str32" in files["postprocess/retinaface.h"]
    flat = " ".join(files["postprocess/retinaface.c"].split())
    assert "retinaface_output_stride[RETINAFACE_NUM_OUTPUTS] = { 80, 160, 320, 80," in flat


@pytest.mark.parametrize("align", [16, 32])
def test_c_decoder_matches_python_on_check_photos(built, quantized, tmp_path, align):
    proj, _ = built
    spec, results = quantized(NAME)
    spec = dataclasses.replace(spec, align=align)  # 32: every row of the 20x20 heads is padded
    src = cc.write(_packaged(proj, tmp_path) if align == 16 else generate(spec), tmp_path)
    exe = cc.build(src, "retinaface", tmp_path / "rf")
    total = 0
    for i, (photo, outputs) in enumerate(results):
        blobs = dump(spec, outputs, tmp_path / f"{i}.bin")
        py_rows = _python(spec, outputs)
        _compare(cc.run(exe, blobs), py_rows)
        total += len(py_rows)
    assert total >= 4, "the check photos should show faces"


def test_c_maps_faces_to_the_source_picture_as_letterbox_geometry(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    exe = cc.build(cc.write(_packaged(proj, tmp_path), tmp_path), "retinaface", tmp_path / "rf")
    photo, outputs = results[0]
    blobs = dump(spec, outputs, tmp_path / "0.bin")
    for src_w, src_h in [(1024, 683), (333, 999), (640, 640)]:
        scale, pad_x, pad_y = preprocess.letterbox_geometry((src_w, src_h), (640, 640))
        py = np.array(_python(spec, outputs))
        shift = np.array([pad_x, pad_y] * 2 + [0] + [pad_x, pad_y] * 5, dtype=np.float64)
        div = np.array([scale] * 4 + [1] + [scale] * 10, dtype=np.float64)
        _compare(cc.run(exe, blobs, src_w, src_h), ((py - shift) / div).tolist())


def test_c_decoder_refuses_a_stride_shorter_than_the_row(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    exe = cc.build(cc.write(_packaged(proj, tmp_path), tmp_path), "retinaface", tmp_path / "rf")
    blobs = dump(spec, results[0][1], tmp_path / "0.bin")
    assert cc.run(exe, blobs, env=dict(os.environ, HARNESS_STRIDE_SHORT="1")) == -1


def test_c_decoder_is_clean_under_address_and_undefined_sanitizers(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized(NAME, 2)
    src = cc.write(_packaged(proj, tmp_path), tmp_path)
    exe = cc.build(src, "retinaface", tmp_path / "rf-asan", extra=cc.SANITIZE)
    for i, (photo, outputs) in enumerate(results):
        _compare(cc.run(exe, dump(spec, outputs, tmp_path / f"{i}.bin")), _python(spec, outputs))
