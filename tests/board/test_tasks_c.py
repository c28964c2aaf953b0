"""Generated UltraFace, SSD (yufacedetect CPU part) and embedding C against the Python decoders.

As tests/board/test_retinaface_c.py: the packaged C, compiled with ``-Werror``, reads the
simulator's quantized outputs of the recipe's check photos in NNIE's memory layout (padding
poisoned) and must give the Python decoder's detections in the same order within 1e-3 px
(UltraFace: ``nnbuild.tasks.ultraface.decode``; SSD: the float engine running the CPU part's
PriorBox/Softmax/DetectionOutput on the same outputs; embedding: numpy's L2 normalisation).
"""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest

from board import cc
from board.blobs import dump
from nnbuild import preprocess
from nnbuild.tasks import ssd, ultraface

pytestmark = cc.needs_cc
TOL = 1e-3


def packaged(proj, name) -> dict[str, str]:
    with tarfile.open(proj / "dist" / f"{name}.tar.gz") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar if m.isfile() and "/postprocess/" in m.name}


def _ultraface(spec, outputs):
    a = spec.task_args
    dets = ultraface.decode(outputs["scores"], outputs["boxes"], spec.input_hw,
                            score_threshold=float(a.get("score_threshold", 0.7)),
                            nms_iou=float(a.get("nms_iou", 0.3)), top_k=int(a.get("top_k", 200)))
    return [d["box"] + [d["score"]] for d in dets]


def _ssd(spec, outputs):
    thr = float(spec.task_args.get("score_threshold", 0.5))
    return [d["box"] + [d["score"]]
            for d in ssd.detections(outputs["detection_out"], spec.input_hw, thr)]


DETECTORS = {"ultraface-slim-320": ("ultraface", _ultraface),
             "yufacedetect-v1": ("ssd", _ssd)}


def _compare(c_rows, py_rows) -> None:
    assert len(c_rows) == len(py_rows)
    if py_rows:
        c, p = np.array(c_rows), np.array(py_rows)
        assert np.abs(c[:, :4] - p[:, :4]).max() <= TOL
        assert np.abs(c[:, 4] - p[:, 4]).max() <= 1e-6


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_c_detector_matches_python_on_check_photos(built, quantized, tmp_path, name):
    proj, _ = built
    task, reference = DETECTORS[name]
    spec, results = quantized(name)
    files = packaged(proj, name)
    assert set(files) == {f"postprocess/{task}.h", f"postprocess/{task}.c"}
    exe = cc.build(cc.write(files, tmp_path), task, tmp_path / task)
    total = 0
    for i, (photo, outputs) in enumerate(results):
        py_rows = reference(spec, outputs)
        _compare(cc.run(exe, dump(spec, outputs, tmp_path / f"{i}.bin")), py_rows)
        total += len(py_rows)
    assert total >= 4, "the check photos should show faces"
    # stretch resize: the source picture's pixels are the network's scaled per axis
    photo, outputs = results[0]
    h, w = spec.input_hw
    scale = np.array([w / 640, h / 480] * 2 + [1.0])
    _compare(cc.run(exe, dump(spec, outputs, tmp_path / "0.bin"), 640, 480),
             (np.array(reference(spec, outputs)).reshape(-1, 5) / scale).tolist())
    assert cc.run(exe, tmp_path / "0.bin", env=dict(os.environ, HARNESS_STRIDE_SHORT="1")) == -1


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_c_detector_is_clean_under_sanitizers(built, quantized, tmp_path, name):
    proj, _ = built
    task, reference = DETECTORS[name]
    spec, results = quantized(name, 2)
    exe = cc.build(cc.write(packaged(proj, name), tmp_path), task, tmp_path / task,
                   extra=cc.SANITIZE)
    for i, (photo, outputs) in enumerate(results):
        _compare(cc.run(exe, dump(spec, outputs, tmp_path / f"{i}.bin")), reference(spec, outputs))


def test_c_embedding_is_the_l2_normalised_output(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized("mobilefacenet", 3)
    files = packaged(proj, "mobilefacenet")
    assert set(files) == {"postprocess/embedding.h", "postprocess/embedding.c"}
    for extra, suffix in (((), ""), (cc.SANITIZE, "-asan")):
        exe = cc.build(cc.write(files, tmp_path), "embedding", tmp_path / f"emb{suffix}",
                       extra=extra)
        for i, (photo, outputs) in enumerate(results):
            (vector,), = [outputs.values()]
            want = np.asarray(vector, dtype=np.float64).ravel()
            want /= np.linalg.norm(want)
            rows = cc.run(exe, dump(spec, outputs, tmp_path / f"{i}.bin"))
            assert len(rows) == 2 and abs(rows[1][0] - 1.0) <= 1e-5
            assert np.abs(np.array(rows[0]) - want).max() <= 1e-6
