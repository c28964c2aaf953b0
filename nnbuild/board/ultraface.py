"""Generated C for the ``ultraface`` task: ``postprocess/ultraface.{h,c}``.

Priors as ``nnbuild.check.tasks.ultraface.priors`` (heads, strides and anchor sizes from there); the
two outputs are found by their last axis (4: box regressions, 2: scores), whatever their order
in the .wk. Thresholds from ``check.task_args`` with the Python decoder's defaults.
"""

from __future__ import annotations

import math

from nnbuild.board.common import geometry, input_values, output_values, sort_code, task_files
from nnbuild.board.render import c_double
from nnbuild.board.spec import BoardSpec
from nnbuild.errors import ModelError
from nnbuild.check.tasks import ultraface as reference


def _outputs(spec: BoardSpec, priors: int) -> tuple[int, int]:
    """(boxes index, scores index): the (1, N, 4) and (1, N, 2) outputs, N = number of priors."""
    found = {}
    for index, out in enumerate(spec.outputs):
        if len(out.shape) >= 2 and out.shape[-2] == priors and out.shape[-1] in (2, 4):
            found[out.shape[-1]] = index
    if set(found) != {2, 4}:
        raise ModelError("board: ultraface outputs", "cannot find the boxes and scores outputs",
                         expected=f"(1, {priors}, 4) and (1, {priors}, 2)",
                         got=[o.shape for o in spec.outputs],
                         hint="the task assumes the Linzaer UltraFace heads (strides 8-64)")
    return found[4], found[2]


def generate(spec: BoardSpec) -> dict[str, str]:
    """``{"postprocess/ultraface.h": text, "postprocess/ultraface.c": text}``."""
    h, w = spec.input_hw
    heads, priors = [], 0
    for stride, sizes in zip(reference.STRIDES, reference.MIN_BOXES):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        padded = [c_double(s) for s in sizes] + ["0.0"] * (3 - len(sizes))
        heads.append(f"    {{{stride}, {fh}, {fw}, {len(sizes)}, {{{', '.join(padded)}}}}},")
        priors += fh * fw * len(sizes)
    boxes, scores = _outputs(spec, priors)
    args = spec.task_args
    values = {**input_values(spec), **output_values(spec),
              "SCORE_THRESHOLD": c_double(args.get("score_threshold", 0.7)),
              "NMS_IOU": c_double(args.get("nms_iou", 0.3)),
              "TOP_K": str(int(args.get("top_k", 200))),
              "NUM_PRIORS": str(priors), "NUM_HEADS": str(len(heads)),
              "HEADS": "\n".join(heads).rstrip(","), "BOXES_INDEX": str(boxes),
              "SCORES_INDEX": str(scores), "SORT": sort_code(), "GEOMETRY": geometry(spec)}
    return task_files("ultraface", values)
