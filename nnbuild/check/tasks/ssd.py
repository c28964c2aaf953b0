"""The ``ssd`` task (yufacedetect): box agreement of the SSD ``DetectionOutput`` detections.

The CPU part (PriorBox/DetectionOutput, run by the float engine on the NNIE part's outputs) ends in
a ``(1, 1, N, 7)`` blob of ``[image, label, score, x1, y1, x2, y2]`` rows with coordinates relative
to the input (Caffe SSD's DetectionOutput). Its row count depends on the data (float and quantized
keep different numbers of detections), so the check stage never compares it element-wise
(``nnbuild.check.metrics.dynamic_blobs``): this task matches the detections instead.
``check.task_args``: ``output`` (default ``detection_out``), ``score_threshold`` (default 0.5).
"""

from __future__ import annotations

import numpy as np

from nnbuild.errors import RecipeError
from nnbuild.check.tasks import matching
from nnbuild.check.tasks.registry import task_metric


def detections(rows: np.ndarray, input_hw: tuple, threshold: float) -> list[dict]:
    """DetectionOutput rows -> detection dicts in input pixels, score >= threshold."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    h, w = input_hw
    keep = rows[(rows[:, 2] >= threshold) & (rows[:, 0] >= 0)]
    scale = np.array([w, h, w, h], dtype=np.float64)
    return [{"box": (r[3:7] * scale).tolist(), "score": float(r[2])} for r in keep]


ARGS = {"output": "detection_out", "score_threshold": 0.5}  # check.task_args, defaults


def _rows(outputs: dict, args: dict) -> np.ndarray:
    name = args.get("output", ARGS["output"])
    if name not in outputs:
        raise RecipeError("check.task_args.output", f"no output {name!r} for the ssd task",
                          expected="one of " + ", ".join(outputs), got=name,
                          hint="the ssd task reads the DetectionOutput blob of the CPU part")
    return outputs[name]


@task_metric("ssd")
class Ssd:
    """Float vs quantized SSD detections: recall/precision at IoU 0.5, box error in pixels."""

    ARGS = ARGS
    GATES = (("min_recall_vs_float", "recall_vs_float", "min", 0.9),
             ("max_box_px", "mean_box_px", "max", 4.0))

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        thr = float(args.get("score_threshold", ARGS["score_threshold"]))
        f = detections(_rows(float_out, args), args["input_hw"], thr)
        q = detections(_rows(quant_out, args), args["input_hw"], thr)
        return matching.agreement(f, q)

    @staticmethod
    def summarize(per_image: list, args: dict) -> dict:
        return matching.summarize(per_image)
