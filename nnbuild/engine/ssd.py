"""SSD's PriorBox and DetectionOutput layers (weiliu89/caffe semantics), for CPU-side checks."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nnbuild.engine.registry import has_field, register

CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3  # PriorBoxParameter.CodeType values


def _aspect_ratios(ratios: Sequence[float], flip: bool) -> list[float]:
    """SSD's list: 1 first, then each new ratio (and its inverse when ``flip``)."""
    out = [1.0]
    for ar in ratios:
        if any(abs(ar - seen) < 1e-6 for seen in out):
            continue
        out.append(float(ar))
        if flip:
            out.append(1.0 / ar)
    return out


def _prior_sizes(min_sizes, max_sizes, ratios) -> list[tuple[float, float]]:
    """Box (width, height) per prior at one location, in SSD's order: min, max, ratios."""
    sizes = []
    for k, mn in enumerate(min_sizes):
        sizes.append((mn, mn))
        if max_sizes:
            side = math.sqrt(mn * max_sizes[k])
            sizes.append((side, side))
        for ar in ratios:
            if abs(ar - 1.0) >= 1e-6:
                sizes.append((mn * math.sqrt(ar), mn / math.sqrt(ar)))
    return sizes


def prior_box(feature_hw: tuple[int, int], image_hw: tuple[int, int], *,
              min_size: Sequence[float], max_size: Sequence[float] = (),
              aspect_ratio: Sequence[float] = (), flip: bool = True, clip: bool = False,
              variance: Sequence[float] = (0.1,), step: tuple[float, float] | None = None,
              offset: float = 0.5) -> np.ndarray:
    """SSD PriorBox output (1, 2, H*W*num_priors*4): normalized corner boxes, then variances."""
    (fh, fw), (ih, iw) = feature_hw, image_hw
    sh, sw = step if step else (ih / fh, iw / fw)
    sizes = np.array(_prior_sizes(list(min_size), list(max_size),
                                  _aspect_ratios(aspect_ratio, flip)), dtype=np.float64)
    cy, cx = np.meshgrid((np.arange(fh) + offset) * sh, (np.arange(fw) + offset) * sw,
                         indexing="ij")
    cx, cy = cx.reshape(-1, 1), cy.reshape(-1, 1)
    bw, bh = sizes[:, 0] / 2, sizes[:, 1] / 2
    boxes = np.stack([(cx - bw) / iw, (cy - bh) / ih, (cx + bw) / iw, (cy + bh) / ih], axis=-1)
    boxes = boxes.reshape(-1)
    if clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    var = np.array(variance if len(variance) == 4 else [variance[0]] * 4 if variance else
                   [0.1] * 4, dtype=np.float64)
    variances = np.tile(var, boxes.size // 4)
    return np.stack([boxes, variances]).reshape(1, 2, -1).astype(np.float32)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: np.ndarray, *,
                 code_type: int = CORNER, variance_encoded_in_target: bool = False) -> np.ndarray:
    """SSD DecodeBBoxes: ``loc`` (P, 4) offsets against ``priors`` (P, 4) corner boxes."""
    v = np.ones_like(variances) if variance_encoded_in_target else variances
    if code_type == CORNER:
        return priors + loc * v
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    if code_type == CORNER_SIZE:
        scale = np.stack([pw, ph, pw, ph], axis=1)
        return priors + loc * v * scale
    pcx, pcy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
    cx, cy = v[:, 0] * loc[:, 0] * pw + pcx, v[:, 1] * loc[:, 1] * ph + pcy
    w, h = np.exp(v[:, 2] * loc[:, 2]) * pw, np.exp(v[:, 3] * loc[:, 3]) * ph
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def nms_fast(boxes: np.ndarray, scores: np.ndarray, *, score_threshold: float,
             nms_threshold: float, top_k: int = -1, eta: float = 1.0) -> list[int]:
    """SSD ApplyNMSFast: greedy NMS with normalized-box IoU and adaptive threshold ``eta``."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    if top_k > -1:
        order = order[:top_k]
    keep: list[int] = []
    threshold = nms_threshold
    for i in order:
        if all(_iou_normalized(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(int(i))
            if eta < 1 and threshold > 0.5:
                threshold *= eta
    return keep


def _iou_normalized(a: np.ndarray, b: np.ndarray) -> float:
    """SSD JaccardOverlap for normalized boxes (no +1); 0 when they do not intersect."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih
    area = lambda r: max(r[2] - r[0], 0) * max(r[3] - r[1], 0)  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def detection_output(loc: np.ndarray, conf: np.ndarray, prior: np.ndarray, *, num_classes: int,
                     share_location: bool = True, background_label_id: int = 0,
                     nms_threshold: float = 0.3, top_k: int = -1, eta: float = 1.0,
                     code_type: int = CORNER, variance_encoded_in_target: bool = False,
                     keep_top_k: int = -1,
                     confidence_threshold: float = -np.inf) -> np.ndarray:
    """SSD DetectionOutput: (1, 1, D, 7) rows ``[image, label, score, x0, y0, x1, y1]``.

    Rows are grouped by image, then label (ascending), then score (descending). With no
    detection at all Caffe emits one row of -1 per image (with the image index in column 0).
    """
    n = loc.shape[0]
    priors = prior.reshape(2, -1, 4).astype(np.float64)
    num_p = priors.shape[1]
    loc_classes = 1 if share_location else num_classes
    rows = []
    for b in range(n):
        locs = loc[b].reshape(num_p, loc_classes, 4).astype(np.float64)
        scores = conf[b].reshape(num_p, num_classes).astype(np.float64)
        picked = []  # (score, label, box)
        for c in range(num_classes):
            if c == background_label_id:
                continue
            boxes = decode_boxes(locs[:, 0 if share_location else c], priors[0], priors[1],
                                 code_type=code_type,
                                 variance_encoded_in_target=variance_encoded_in_target)
            keep = nms_fast(boxes, scores[:, c], score_threshold=confidence_threshold,
                            nms_threshold=nms_threshold, top_k=top_k, eta=eta)
            picked += [(scores[i, c], c, boxes[i]) for i in keep]
        if keep_top_k > -1 and len(picked) > keep_top_k:
            picked = sorted(picked, key=lambda t: -t[0])[:keep_top_k]
        picked.sort(key=lambda t: (t[1], -t[0]))
        rows += [[b, label, score, *box] for score, label, box in picked]
    if not rows:
        rows = [[b] + [-1] * 6 for b in range(n)]
    return np.array(rows, dtype=np.float32).reshape(1, 1, -1, 7)


@register("PriorBox")
def _prior_box(param, inputs, blobs, n_tops) -> list:
    pp = param.prior_box_param
    feature, image = inputs[0], inputs[1]
    ih, iw = image.shape[2:]
    if has_field(pp, "img_h") or has_field(pp, "img_w"):
        ih, iw = int(pp.img_h), int(pp.img_w)
    elif has_field(pp, "img_size"):
        ih = iw = int(pp.img_size)
    step = None
    if has_field(pp, "step_h") or has_field(pp, "step_w"):
        step = (float(pp.step_h), float(pp.step_w))
    elif has_field(pp, "step"):
        step = (float(pp.step), float(pp.step))
    return [prior_box(feature.shape[2:], (ih, iw), min_size=list(pp.min_size),
                      max_size=list(pp.max_size), aspect_ratio=list(pp.aspect_ratio),
                      flip=bool(pp.flip), clip=bool(pp.clip), variance=list(pp.variance),
                      step=step, offset=float(pp.offset))]


@register("DetectionOutput")
def _detection_output(param, inputs, blobs, n_tops) -> list:
    dp = param.detection_output_param
    nms = dp.nms_param
    threshold = float(dp.confidence_threshold) if has_field(dp, "confidence_threshold") \
        else -np.inf
    return [detection_output(
        inputs[0], inputs[1], inputs[2], num_classes=int(dp.num_classes),
        share_location=bool(dp.share_location), background_label_id=int(dp.background_label_id),
        nms_threshold=float(nms.nms_threshold), top_k=int(nms.top_k) if has_field(nms, "top_k")
        else -1, eta=float(nms.eta), code_type=int(dp.code_type),
        variance_encoded_in_target=bool(dp.variance_encoded_in_target),
        keep_top_k=int(dp.keep_top_k), confidence_threshold=threshold)]
