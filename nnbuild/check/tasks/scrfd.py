"""The ``scrfd`` task: insightface SCRFD decoding, scored like RetinaFace (float vs quantized).

Decoding as insightface's ``scrfd.py``: per stride 8/16/32, two anchors per feature-map position
with centres at ``(x * stride, y * stride)``; boxes are ``centre -/+ distances * stride``
(left, top, right, bottom); five keypoints ``centre + offsets * stride``; greedy NMS at IoU 0.4.
Rows are ordered row, column, anchor: the export's ``Transpose(0, 2, 3, 1)`` + ``Reshape``.

Outputs are recognised by shape, as the RetinaFace decoder does: 4-D head maps (the graph cut
at the head convolutions, 2 / 8 / 20 channels at input / stride) carry score *logits* (the
export's Sigmoid comes after its Reshape, on the CPU side of the cut), so the decoder applies
the sigmoid; 3-D (1, N, 1 / 4 / 10) outputs of the complete export are already probabilities.
``check.task_args``: ``score_threshold`` (0.5), ``nms_iou`` (0.4).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nnbuild.check.tasks.registry import task_metric
from nnbuild.check.tasks.retinaface_metrics import RetinaFace, compare_faces
from nnbuild.errors import ModelError

STRIDES = (8, 16, 32)
ANCHORS = 2
WIDTH = {"score": 1, "bbox": 4, "kps": 10}  # values per anchor


def centres(height: int, width: int, stride: int) -> np.ndarray:
    """Anchor centres (H*W*2, 2) as (x, y), ordered row, column, anchor."""
    ys, xs = np.mgrid[:height, :width]
    xy = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float64) * stride
    return np.repeat(xy, ANCHORS, axis=0)


def _rows(arr: np.ndarray, kind: str) -> np.ndarray:
    """(N, WIDTH[kind]) rows from a 4-D head map or a 3-D output."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 4:
        rows = arr[0].transpose(1, 2, 0).reshape(-1, WIDTH[kind])
        return 1.0 / (1.0 + np.exp(-rows)) if kind == "score" else rows
    return arr.reshape(-1, WIDTH[kind])


def _by_stride(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int]) -> dict:
    """(stride, kind) -> output, found by shape (names change with cuts and patches)."""
    found: dict = {}
    for name, arr in outputs.items():
        shape = np.shape(arr)
        for s in STRIDES:
            h, w = -(-input_hw[0] // s), -(-input_hw[1] // s)
            for kind, k in WIDTH.items():
                if (len(shape) == 4 and shape[1:] == (ANCHORS * k, h, w)) or (
                        len(shape) == 3 and shape[1:] == (h * w * ANCHORS, k)):
                    found[(s, kind)] = arr
    missing = [f"{k}@stride{s}" for s in STRIDES for k in WIDTH if (s, k) not in found]
    if missing:
        raise ModelError("scrfd: outputs", "cannot find every SCRFD head output",
                         expected="2/8/20-channel maps (or (1, N, 1/4/10) rows) at input/8, "
                                  "/16, /32", got=sorted((n, tuple(np.shape(a)))
                                                         for n, a in outputs.items())[:9],
                         hint=f"missing {', '.join(missing)}; is this an SCRFD *_kps export?")
    return found


def _decode_stride(found: dict, stride: int, input_hw) -> tuple:
    h, w = -(-input_hw[0] // stride), -(-input_hw[1] // stride)
    scores = _rows(found[(stride, "score")], "score")[:, 0]
    dist = _rows(found[(stride, "bbox")], "bbox") * stride
    kps = _rows(found[(stride, "kps")], "kps").reshape(-1, 5, 2) * stride
    c = centres(h, w, stride)
    boxes = np.concatenate([c - dist[:, :2], c + dist[:, 2:]], axis=1)
    return scores, boxes, c[:, None, :] + kps


def decode(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *,
           score_threshold: float = 0.5, nms_iou: float = 0.4) -> list[dict]:
    """Faces ``{"box", "score", "landmarks"}`` in network-input pixels, best first."""
    from nnbuild.check.tasks.retinaface import nms

    found = _by_stride(outputs, input_hw)
    parts = [_decode_stride(found, s, input_hw) for s in STRIDES]
    scores, boxes, marks = (np.concatenate([p[i] for p in parts]) for i in range(3))
    sel = np.flatnonzero(scores >= score_threshold)
    keep = sel[nms(boxes[sel], scores[sel], nms_iou)] if sel.size else sel
    return [{"box": boxes[i].tolist(), "score": float(scores[i]),
             "landmarks": marks[i].tolist()} for i in keep]


def _detections(outputs: dict, args: dict) -> list[dict]:
    return decode(outputs, tuple(args["input_hw"]),
                  score_threshold=float(args.get("score_threshold", 0.5)),
                  nms_iou=float(args.get("nms_iou", 0.4)))


@task_metric("scrfd")
class SCRFD:
    """The RetinaFace metrics (recall/precision vs float, box/landmark px, WIDER recall)."""

    ARGS = RetinaFace.ARGS  # score_threshold 0.5, nms_iou 0.4 (insightface's defaults too)
    GATES = RetinaFace.GATES

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        return compare_faces(_detections(float_out, args), _detections(quant_out, args), args)

    summarize = staticmethod(RetinaFace.summarize)
