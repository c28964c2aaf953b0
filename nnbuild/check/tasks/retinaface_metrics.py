"""The ``retinaface`` task: float vs quantized RetinaFace detections, and recall vs WIDER truth.

Both output sets are decoded by ``nnbuild.check.tasks.retinaface`` (anchors, deltas, landmarks, NMS);
this module only scores them: recall/precision of the float detections at IoU 0.5, box and
landmark error in pixels, score drift (``nnbuild.check.tasks.matching``), and, when the check images
carry WIDER ground truth (``gt_boxes`` in the args), the recall of each model against it.
``check.task_args``: ``score_threshold`` (0.5), ``nms_iou`` (0.4).
"""

from __future__ import annotations

from nnbuild.check.tasks import matching
from nnbuild.check.tasks.registry import task_metric


ARGS = {"score_threshold": 0.5, "nms_iou": 0.4}  # check.task_args and their defaults


def detections(outputs: dict, args: dict) -> list[dict]:
    """Decoded faces as ``{"box", "score", "landmarks"}`` dicts in network-input pixels."""
    from nnbuild.check.tasks import retinaface

    faces = retinaface.decode(outputs, tuple(args["input_hw"]),
                              score_threshold=float(args.get("score_threshold", ARGS["score_threshold"])),
                              nms_iou=float(args.get("nms_iou", ARGS["nms_iou"])))
    return [_as_dict(face) for face in faces]


def _as_dict(face) -> dict:
    """Accept the decoder's records (dicts or objects with box/score/landmarks attributes)."""
    get = face.get if isinstance(face, dict) else lambda k: getattr(face, k)
    return {"box": [float(v) for v in get("box")], "score": float(get("score")),
            "landmarks": [[float(x), float(y)] for x, y in get("landmarks")]}


@task_metric("retinaface")
class RetinaFace:
    """Detections, landmarks and scores of the quantized model against the float model."""

    ARGS = ARGS
    GATES = (("min_recall_vs_float", "recall_vs_float", "min", 0.9),
             ("max_box_px", "mean_box_px", "max", 4.0),
             ("max_landmark_px", "mean_landmark_px", "max", 3.0))

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        f, q = detections(float_out, args), detections(quant_out, args)
        result = matching.agreement(f, q)
        truth = args.get("gt_boxes")
        if truth is not None:
            result["gt_float"], result["gt_total"] = matching.recall_vs_truth(truth, f)
            result["gt_quant"], _ = matching.recall_vs_truth(truth, q)
        return result

    @staticmethod
    def summarize(per_image: list, args: dict) -> dict:
        out = matching.summarize(per_image)
        with_truth = [p for p in per_image if "gt_total" in p]
        total = sum(p["gt_total"] for p in with_truth)
        if total:
            out["recall_gt_float"] = sum(p["gt_float"] for p in with_truth) / total
            out["recall_gt_quant"] = sum(p["gt_quant"] for p in with_truth) / total
        return out
