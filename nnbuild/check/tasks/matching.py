"""Detection agreement: IoU, greedy NMS and float-vs-quantized matching for detector tasks.

A detection is ``{"box": [x1, y1, x2, y2], "score": s}`` in network-input pixels, plus
``"landmarks": [[x, y], ...]`` for RetinaFace. The float detections are the reference: recall is
the fraction of them a quantized detection overlaps at IoU >= 0.5, precision the fraction of
quantized detections that overlap a float one (docs/report-json.md, task_result).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of corner boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    while order.size:
        best = order[0]
        keep.append(int(best))
        if order.size == 1:
            break
        overlap = iou_matrix(boxes[best:best + 1], boxes[order[1:]])[0]
        order = order[1:][overlap <= iou]
    return np.array(keep, dtype=np.int64)


def match(reference: Sequence[dict], other: Sequence[dict], iou: float = 0.5) -> list[tuple]:
    """Greedy one-to-one matching: each reference detection (best score first) takes the
    unmatched ``other`` detection with the highest IoU >= ``iou``. Returns (ref_i, other_j) pairs."""
    if not reference or not other:
        return []
    ious = iou_matrix([d["box"] for d in reference], [d["box"] for d in other])
    taken: set[int] = set()
    pairs = []
    for i in sorted(range(len(reference)), key=lambda k: -reference[k]["score"]):
        candidates = [(ious[i, j], j) for j in range(len(other))
                      if j not in taken and ious[i, j] >= iou]
        if candidates:
            j = max(candidates)[1]
            taken.add(j)
            pairs.append((i, j))
    return pairs


def agreement(reference: Sequence[dict], other: Sequence[dict], iou: float = 0.5) -> dict:
    """Per-image agreement of ``other`` (quantized) with ``reference`` (float) detections.

    Box error is the mean absolute corner difference of a matched pair in pixels; landmark error
    the mean Euclidean distance of its points.
    """
    pairs = match(reference, other, iou)
    box_err = [float(np.mean(np.abs(np.subtract(reference[i]["box"], other[j]["box"]))))
               for i, j in pairs]
    score = [abs(reference[i]["score"] - other[j]["score"]) for i, j in pairs]
    lm_err = [float(np.mean(np.linalg.norm(np.subtract(reference[i]["landmarks"],
                                                        other[j]["landmarks"]), axis=1)))
              for i, j in pairs if "landmarks" in reference[i]]
    return {"float": list(reference), "quant": list(other), "matched": len(pairs),
            "recall": len(pairs) / len(reference) if reference else 1.0,
            "precision": len(pairs) / len(other) if other else 1.0,
            "box_err": box_err, "landmark_err": lm_err, "score_diff": score}


def summarize(per_image: Sequence[dict]) -> dict:
    """Detection metrics over images: pooled recall/precision and mean errors of matched pairs."""
    n_float = sum(len(p["float"]) for p in per_image)
    n_quant = sum(len(p["quant"]) for p in per_image)
    matched = sum(p["matched"] for p in per_image)
    box = [e for p in per_image for e in p["box_err"]]
    lm = [e for p in per_image for e in p["landmark_err"]]
    score = [e for p in per_image for e in p["score_diff"]]
    out = {"recall_vs_float": matched / n_float if n_float else 1.0,
           "precision_vs_float": matched / n_quant if n_quant else 1.0,
           "mean_box_px": float(np.mean(box)) if box else 0.0,
           "score_drift": float(np.mean(score)) if score else 0.0,
           "float_detections": n_float, "quant_detections": n_quant}
    if any("landmarks" in d for p in per_image for d in p["float"]):
        out["mean_landmark_px"] = float(np.mean(lm)) if lm else 0.0
        out["max_landmark_px"] = float(np.max(lm)) if lm else 0.0
    return out


def recall_vs_truth(truth: np.ndarray, detections: Sequence[dict], iou: float = 0.5) -> tuple:
    """(matched, total) ground-truth boxes found by ``detections`` at IoU >= ``iou``."""
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    refs = [{"box": list(t), "score": 1.0} for t in truth]
    return len(match(refs, detections, iou)), len(refs)
