"""The ``ultraface`` task: decode Ultra-Light-Fast-Generic-Face-Detector outputs, compare boxes.

The Caffe graph ends in ``scores`` (softmax, (1, N, 2)) and ``boxes`` (1, N, 4), but ``boxes`` are
still SSD regressions against priors: the repository's own Caffe demo
(caffe/ultra_face_opencvdnn_inference.py @ dffdddd) generates the priors and decodes them on the
CPU, and so does this module (same priors, variances 0.1/0.2, hard NMS at IoU 0.3, score 0.7).
``check.task_args``: ``score_threshold``, ``nms_iou``, ``top_k``.
"""

from __future__ import annotations

import math

import numpy as np

from nnbuild.errors import ModelError
from nnbuild.check.tasks import matching
from nnbuild.check.tasks.registry import task_metric

# Linzaer vision/ssd/config/fd_config.py: one stride per detection head, its anchor sizes (px).
STRIDES = (8, 16, 32, 64)
MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
CENTER_VARIANCE, SIZE_VARIANCE = 0.1, 0.2


def priors(input_hw: tuple) -> np.ndarray:
    """Prior boxes (N, 4) as (cx, cy, w, h) relative to the input, in the network's output order.

    Order: head by head, then rows, columns, anchor sizes (the graph permutes each head to NHWC
    before reshaping, so the anchors of one cell are adjacent).
    """
    h, w = input_hw
    rows = []
    for stride, sizes in zip(STRIDES, MIN_BOXES):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        # fd_config.py: scale = image_size / shrinkage, centres (i + 0.5) / scale.
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) * stride / h,
                             (np.arange(fw) + 0.5) * stride / w, indexing="ij")
        for cy, cx in zip(ys.ravel(), xs.ravel()):
            rows.extend([cx, cy, s / w, s / h] for s in sizes)
    return np.clip(np.array(rows, dtype=np.float64), 0.0, 1.0)


def decode(scores: np.ndarray, boxes: np.ndarray, input_hw: tuple, *, score_threshold=0.7,
           nms_iou=0.3, top_k=200) -> list[dict]:
    """Face detections in input pixels from the two raw outputs."""
    pri = priors(input_hw)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 2)[:, 1]
    loc = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if loc.shape[0] != pri.shape[0]:
        raise ModelError("ultraface: boxes", "number of boxes differs from the number of priors",
                         expected=pri.shape[0], got=loc.shape[0],
                         hint="the task assumes the Linzaer UltraFace heads (strides 8-64)")
    centre = loc[:, :2] * CENTER_VARIANCE * pri[:, 2:] + pri[:, :2]
    size = np.exp(loc[:, 2:] * SIZE_VARIANCE) * pri[:, 2:]
    corner = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    h, w = input_hw
    corner *= np.array([w, h, w, h], dtype=np.float64)
    keep = np.flatnonzero(scores >= score_threshold)
    kept = keep[matching.nms(corner[keep], scores[keep], nms_iou)][:top_k]
    return [{"box": corner[i].tolist(), "score": float(scores[i])} for i in kept]


ARGS = {"score_threshold": 0.7, "nms_iou": 0.3, "top_k": 200}  # check.task_args, defaults


def _decode(outputs: dict, args: dict) -> list[dict]:
    return decode(outputs["scores"], outputs["boxes"], tuple(args["input_hw"]),
                  score_threshold=float(args.get("score_threshold", ARGS["score_threshold"])),
                  nms_iou=float(args.get("nms_iou", ARGS["nms_iou"])),
                  top_k=int(args.get("top_k", ARGS["top_k"])))


@task_metric("ultraface")
class UltraFace:
    """Float vs quantized UltraFace detections after the model's own decoding."""

    ARGS = ARGS
    GATES = (("min_recall_vs_float", "recall_vs_float", "min", 0.9),
             ("max_box_px", "mean_box_px", "max", 4.0))

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        return matching.agreement(_decode(float_out, args), _decode(quant_out, args))

    @staticmethod
    def summarize(per_image: list, args: dict) -> dict:
        return matching.summarize(per_image)
