"""Shapes of SSD detection layers (PriorBox, DetectionOutput), which run on the CPU on NNIE."""

from __future__ import annotations

import math

from nnbuild.ir import Layer
from nnbuild.shapes.core import Shape, shape_error, shape_fn


# -- SSD detection layers (run on the CPU on NNIE: nnie-facts.md §5) -----------------------------

def prior_count(layer: Layer) -> int:
    """Priors per feature-map cell, counted exactly as SSD's PriorBoxLayer::LayerSetUp.

    Aspect ratios start with 1; each listed ratio not already present (|a - b| < 1e-6) is
    added, and with ``flip`` its reciprocal too. Each min_size gets every ratio; each max_size
    adds one more prior.
    """
    p = layer.param.prior_box_param
    ratios = [1.0]
    for ar in p.aspect_ratio:
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if p.flip:
                ratios.append(1.0 / ar)
    if p.max_size and len(p.max_size) != len(p.min_size):
        raise shape_error(layer, "max_size count differs from min_size count", len(p.min_size),
                          len(p.max_size), "give one max_size per min_size, or none")
    return len(ratios) * len(p.min_size) + len(p.max_size)


@shape_fn("PriorBox")
def _prior_box(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # SSD: (1, 2, H * W * priors * 4): box corners in channel 0, their variances in channel 1.
    h, w = bottoms[0][2], bottoms[0][3]
    return [(1, 2, h * w * prior_count(layer) * 4)]


@shape_fn("DetectionOutput")
def _detection_output(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    """(1, 1, N, 7) rows [image, label, score, x0, y0, x1, y1].

    N is dynamic in Caffe (the number of detections kept after NMS); the static estimate used
    here is the upper bound ``keep_top_k`` (else ``nms_param.top_k``, else 1).
    """
    p = layer.param.detection_output_param
    priors = bottoms[2][2] // 4 if len(bottoms) > 2 else None
    if priors is not None:
        loc_per_prior = 4 if p.share_location else 4 * p.num_classes
        for name, shape, per in (("location", bottoms[0], loc_per_prior),
                                 ("confidence", bottoms[1], p.num_classes)):
            if math.prod(shape[1:]) != priors * per:
                raise shape_error(layer, f"{name} input does not match the {priors} priors",
                                  f"{priors * per} values per image", f"{math.prod(shape[1:])} "
                                  f"{shape}", "check the mbox Concat/Flatten inputs and "
                                  "num_classes")
    top_k = p.nms_param.top_k if p.nms_param.HasField("top_k") else 1
    n = p.keep_top_k if p.keep_top_k > 0 else top_k
    return [(1, 1, n, 7)]

