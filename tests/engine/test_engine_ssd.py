"""PriorBox and DetectionOutput against a transcription of SSD's loops and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.engine import run_layer
from nnbuild.engine.ssd import CENTER_SIZE, detection_output
from nnbuild.ir import Layer


def layer(kind, text, n_bottoms):
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    return Layer("ssd_" + kind, kind, [f"b{i}" for i in range(n_bottoms)], ["t"], param, [])


def prior_ref(fh, fw, ih, iw, min_sizes, max_sizes, ars, flip, clip, variance, step, offset):
    """Straight transcription of weiliu89 prior_box_layer.cpp Forward_cpu."""
    ratios = [1.0]
    for ar in ars:
        if not any(abs(ar - r) < 1e-6 for r in ratios):
            ratios.append(ar)
            if flip:
                ratios.append(1 / ar)
    sh, sw = step if step else (ih / fh, iw / fw)
    top = []
    for h in range(fh):
        for w in range(fw):
            cx, cy = (w + offset) * sw, (h + offset) * sh
            for s, mn in enumerate(min_sizes):
                bw = bh = mn
                top += [(cx - bw / 2) / iw, (cy - bh / 2) / ih, (cx + bw / 2) / iw,
                        (cy + bh / 2) / ih]
                if max_sizes:
                    bw = bh = math.sqrt(mn * max_sizes[s])
                    top += [(cx - bw / 2) / iw, (cy - bh / 2) / ih, (cx + bw / 2) / iw,
                            (cy + bh / 2) / ih]
                for ar in ratios:
                    if abs(ar - 1) < 1e-6:
                        continue
                    bw, bh = mn * math.sqrt(ar), mn / math.sqrt(ar)
                    top += [(cx - bw / 2) / iw, (cy - bh / 2) / ih, (cx + bw / 2) / iw,
                            (cy + bh / 2) / ih]
    if clip:
        top = [min(max(v, 0.0), 1.0) for v in top]
    var = variance if len(variance) == 4 else variance * 4
    return np.array([top, var * (len(top) // 4)], np.float32)[None]


@pytest.mark.parametrize("text,args", [
    ("min_size: 10 min_size: 16 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 "
     "step: 8 offset: 0.5 clip: false",
     dict(min_sizes=[10, 16], max_sizes=[], ars=[], flip=True, clip=False,
          variance=[0.1, 0.1, 0.2, 0.2], step=(8, 8), offset=0.5)),
    ("min_size: 30 max_size: 60 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: true "
     "variance: 0.1",
     dict(min_sizes=[30], max_sizes=[60], ars=[2, 3], flip=True, clip=True, variance=[0.1],
          step=None, offset=0.5)),
    ("min_size: 20 aspect_ratio: 1 aspect_ratio: 2 flip: false img_h: 60 img_w: 90 "
     "step_h: 20 step_w: 30 offset: 0.25",
     dict(min_sizes=[20], max_sizes=[], ars=[1, 2], flip=False, clip=False, variance=[0.1],
          step=(20, 30), offset=0.25)),
])
def test_prior_box_matches_ssd_loops(text, args):
    feature, image = np.zeros((1, 8, 3, 4), np.float32), np.zeros((1, 3, 24, 32), np.float32)
    got = run_layer(layer("PriorBox", f"prior_box_param {{ {text} }}", 2), [feature, image])[0]
    ih, iw = (60, 90) if "img_h" in text else (24, 32)
    np.testing.assert_allclose(got, prior_ref(3, 4, ih, iw, **args), rtol=1e-6, atol=1e-7)


def test_detection_output_by_hand():
    # Three priors (normalized corner boxes), variances 0.1/0.2; two classes (0 = background).
    priors = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    prior = np.stack([priors.reshape(-1), np.tile([0.1, 0.1, 0.2, 0.2], 3)])[None]
    loc = np.zeros((1, 12), np.float32)
    loc[0, 8:12] = [1.0, 0.0, 0.0, np.log(2) / 0.2]   # prior 2: shift x by 0.1*0.2, double h
    conf = np.array([[0.1, 0.9, 0.2, 0.8, 0.6, 0.4]], np.float32)
    out = detection_output(loc, conf, prior.astype(np.float32), num_classes=2,
                           nms_threshold=0.45, code_type=CENTER_SIZE, keep_top_k=10,
                           confidence_threshold=0.3)
    assert out.shape == (1, 1, 2, 7)
    # prior 1 overlaps prior 0 with IoU 0.18/0.22 = 0.82 > 0.45: suppressed.
    np.testing.assert_allclose(out[0, 0, 0], [0, 1, 0.9, 0.1, 0.1, 0.3, 0.3], rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1], [0, 1, 0.4, 0.62, 0.5, 0.82, 0.9], rtol=1e-5)


def test_detection_output_keep_top_k_and_empty():
    prior = np.stack([np.array([0, 0, 0.1, 0.1, 0.5, 0.5, 0.6, 0.6]),
                      np.full(8, 0.1)])[None].astype(np.float32)
    conf = np.array([[0.2, 0.5, 0.3, 0.1, 0.7, 0.2]], np.float32)  # 2 priors, 3 classes
    out = detection_output(np.zeros((1, 8), np.float32), conf, prior, num_classes=3,
                           keep_top_k=2, nms_threshold=0.5)
    # best two of (p0,c1,.5) (p0,c2,.3) (p1,c1,.7) (p1,c2,.2); grouped by label, then score.
    np.testing.assert_allclose(out[0, 0, :, :3], [[0, 1, 0.7], [0, 1, 0.5]], rtol=1e-6)
    none = detection_output(np.zeros((1, 8), np.float32), conf, prior, num_classes=3,
                            confidence_threshold=0.99)
    np.testing.assert_array_equal(none, [[[[0, -1, -1, -1, -1, -1, -1]]]])


def test_detection_output_adapter_reads_params():
    text = ("detection_output_param { num_classes: 2 nms_param { nms_threshold: 0.45 } "
            "code_type: CENTER_SIZE keep_top_k: 5 confidence_threshold: 0.5 }")
    prior = np.stack([np.array([0.1, 0.1, 0.3, 0.3]), np.full(4, 0.1)])[None].astype(np.float32)
    out = run_layer(layer("DetectionOutput", text, 3),
                    [np.zeros((1, 4), np.float32), np.array([[0.2, 0.8]], np.float32), prior])[0]
    np.testing.assert_allclose(out, [[[[0, 1, 0.8, 0.1, 0.1, 0.3, 0.3]]]], rtol=1e-6)
