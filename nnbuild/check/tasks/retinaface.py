"""RetinaFace (mnet.25) decoder as in insightface's retinaface.py, plus WIDER FACE recall.

Decoding per stride 32/16/8: two square anchors per position, sizes (512, 256) / (128, 64) /
(32, 16), built from the base anchor [0, 0, 15, 15] (so centred at x*stride + 7.5), box deltas
and 5 landmark deltas per anchor in anchor order, the face score being the last two of the four
cls-prob channels; greedy NMS at IoU 0.4 with the original's "+1" box widths. Model input is RGB
0..255, no mean, no scale (nnie-facts.md, "RGB" note on RetinaFace).
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import numpy as np

from nnbuild.errors import ModelError

STRIDES = (32, 16, 8)
ANCHOR_SIZES = {32: (512, 256), 16: (128, 64), 8: (32, 16)}
BASE_CENTRE = 7.5  # centre of the base anchor [0, 0, 15, 15]
CHANNELS = {"cls": 4, "bbox": 8, "landmark": 20}  # per stride, for 2 anchors


def anchors(height: int, width: int, stride: int) -> np.ndarray:
    """Anchors (H*W*2, 4) as corner boxes, ordered row, column, anchor (size large first)."""
    ys, xs = np.meshgrid(np.arange(height) * stride, np.arange(width) * stride, indexing="ij")
    half = (np.array(ANCHOR_SIZES[stride], dtype=np.float64) - 1) / 2
    cx = xs[..., None] + BASE_CENTRE
    cy = ys[..., None] + BASE_CENTRE
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)
    return boxes.reshape(-1, 4)


def _by_stride(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int]) -> dict:
    """Find the cls/bbox/landmark outputs of each stride by channel count and feature size.

    Names change with patches (and SSA versions), shapes do not: 4/8/20 channels at
    ceil(input / stride).
    """
    found: dict = {}
    kind_of = {c: k for k, c in CHANNELS.items()}
    for name, arr in outputs.items():
        arr = np.asarray(arr)
        if arr.ndim != 4 or arr.shape[1] not in kind_of:
            continue
        for s in STRIDES:
            if arr.shape[2] == -(-input_hw[0] // s) and arr.shape[3] == -(-input_hw[1] // s):
                found[(s, kind_of[arr.shape[1]])] = arr
    missing = [f"{k}@stride{s}" for s in STRIDES for k in CHANNELS if (s, k) not in found]
    if missing:
        raise ModelError("retinaface: outputs", "cannot find every RetinaFace head output",
                         expected="4/8/20-channel maps at input/32, /16, /8",
                         got=sorted((n, tuple(np.shape(a))) for n, a in outputs.items())[:9],
                         hint=f"missing {', '.join(missing)}; is this RetinaFace mnet?")
    return found


def _decode_stride(found: dict, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, boxes, landmarks) of one stride, one row per anchor."""
    cls, bbox, lmk = (found[(stride, k)][0].astype(np.float64) for k in CHANNELS)
    h, w = cls.shape[1:]
    scores = cls[2:].transpose(1, 2, 0).reshape(-1)
    anc = anchors(h, w, stride)
    widths, heights = anc[:, 2] - anc[:, 0] + 1, anc[:, 3] - anc[:, 1] + 1
    cx, cy = anc[:, 0] + 0.5 * (widths - 1), anc[:, 1] + 0.5 * (heights - 1)
    d = bbox.transpose(1, 2, 0).reshape(-1, 4)
    px, py = d[:, 0] * widths + cx, d[:, 1] * heights + cy
    pw, ph = np.exp(d[:, 2]) * widths, np.exp(d[:, 3]) * heights
    boxes = np.stack([px - 0.5 * (pw - 1), py - 0.5 * (ph - 1),
                      px + 0.5 * (pw - 1), py + 0.5 * (ph - 1)], axis=1)
    ld = lmk.transpose(1, 2, 0).reshape(-1, 5, 2)
    marks = np.stack([ld[..., 0] * widths[:, None] + cx[:, None],
                      ld[..., 1] * heights[:, None] + cy[:, None]], axis=-1)
    return scores, boxes, marks


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS as the original's py_cpu_nms (areas with +1); indices, best score first."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return keep


def decode(outputs: Mapping[str, np.ndarray], input_hw: tuple[int, int], *,
           score_threshold: float = 0.5, nms_iou: float = 0.4) -> list[dict]:
    """Faces ``{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y] * 5]}``, best first.

    Coordinates are network-input pixels. ``outputs`` maps blob names to the nine head
    outputs (more arrays are ignored); they are recognised by shape, see ``_by_stride``.
    """
    found = _by_stride(outputs, input_hw)
    parts = [_decode_stride(found, s) for s in STRIDES]
    scores = np.concatenate([p[0] for p in parts])
    boxes = np.concatenate([p[1] for p in parts])
    marks = np.concatenate([p[2] for p in parts])
    sel = np.flatnonzero(scores >= score_threshold)
    keep = sel[nms(boxes[sel], scores[sel], nms_iou)] if sel.size else sel
    return [{"box": boxes[i].tolist(), "score": float(scores[i]),
             "landmarks": marks[i].tolist()} for i in keep]


def read_wider_gt(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """WIDER FACE ``gt.txt`` -> image name -> (N, 10) float array of the attribute lines.

    Columns: x, y, w, h, blur, expression, illumination, invalid, occlusion, pose. An image with
    no face is written with one all-zero line, which is dropped here.
    """
    lines = pathlib.Path(path).read_text().split("\n")
    out: dict[str, np.ndarray] = {}
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        count = int(lines[i + 1])
        rows = [[float(v) for v in lines[i + 2 + k].split()[:10]] for k in range(max(count, 1))]
        out[name] = np.array(rows[:count], dtype=np.float64).reshape(-1, 10)
        i += 2 + max(count, 1)
    return out


def gt_boxes(rows: np.ndarray, *, min_size: float = 0.0) -> np.ndarray:
    """Valid ground-truth faces as corner boxes (M, 4), longer side >= ``min_size``."""
    valid = rows[:, 7] == 0
    big = np.maximum(rows[:, 2], rows[:, 3]) >= min_size
    r = rows[valid & big]
    return np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1)


def found_faces(truth: np.ndarray, detections: Sequence[dict], iou: float = 0.5) -> int:
    """How many ``truth`` boxes (M, 4) some detection overlaps at IoU >= ``iou``."""
    if not len(truth) or not detections:
        return 0
    det = np.array([d["box"] for d in detections], dtype=np.float64)
    lt = np.maximum(truth[:, None, :2], det[None, :, :2])
    rb = np.minimum(truth[:, None, 2:], det[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_t = np.prod(truth[:, 2:] - truth[:, :2], axis=1)
    area_d = np.prod(np.clip(det[:, 2:] - det[:, :2], 0, None), axis=1)
    ious = inter / (area_t[:, None] + area_d[None, :] - inter)
    return int((ious.max(axis=1) >= iou).sum())
