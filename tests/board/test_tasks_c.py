"""Generated UltraFace, SSD (yufacedetect CPU part) and embedding C against the Python decoders.

As tests/board/test_retinaface_c.py (board/hostcheck.py): the packaged C, compiled with
``-Werror``, reads the simulator's quantized outputs of the recipe's check photos in NNIE's memory
layout (padding poisoned) and must give the Python decoder's detections in the same order within
1e-3 px (UltraFace: ``nnbuild.check.tasks.ultraface.decode``; SSD: the float engine running the CPU
part's PriorBox/Softmax/DetectionOutput on the same outputs; embedding: numpy's L2 norm).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from board import cc
from board.blobs import dump
from board.hostcheck import REFERENCES, check_package, compare, packaged

pytestmark = cc.needs_cc
DETECTORS = ("ultraface-slim-320", "yufacedetect-v1")


@pytest.mark.parametrize("name", DETECTORS)
def test_c_detector_matches_python_on_check_photos(built, quantized, tmp_path, name):
    proj, _ = built
    spec, results = quantized(name)
    assert check_package(proj, name, spec, results, tmp_path) >= 4, "photos should show faces"


@pytest.mark.parametrize("name", DETECTORS)
def test_c_detector_maps_to_the_stretched_source_and_checks_strides(built, quantized, tmp_path,
                                                                    name):
    proj, _ = built
    spec, results = quantized(name, 2)
    exe = cc.build(cc.write(packaged(proj, name), tmp_path), spec.task, tmp_path / spec.task)
    photo, outputs = results[0]
    blobs = dump(spec, outputs, tmp_path / "0.bin")
    h, w = spec.input_hw
    scale = np.array([w / 640, h / 480] * 2 + [1.0])
    py = np.array(REFERENCES[spec.task][0](spec, outputs)).reshape(-1, 5)
    assert len(py)
    compare(spec.task, cc.run(exe, blobs, 640, 480), (py / scale).tolist())
    assert cc.run(exe, blobs, env=dict(os.environ, HARNESS_STRIDE_SHORT="1")) == -1


def test_c_embedding_is_the_l2_normalised_output(built, quantized, tmp_path):
    proj, _ = built
    spec, results = quantized("mobilefacenet", 3)
    assert check_package(proj, "mobilefacenet", spec, results, tmp_path) == 3
