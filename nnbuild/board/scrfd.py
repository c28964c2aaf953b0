"""Generated C for the ``scrfd`` task: ``postprocess/scrfd.{h,c}``.

The nine head maps (the graph cut at the head convolutions: 2 / 8 / 20 channels of score logits,
box distances and keypoint offsets at input / 8, / 16, / 32) are recognised by shape exactly as
the Python decoder does (``nnbuild.check.tasks.scrfd._by_stride``), so the C reads each head from
the .wk output index where it really is. Only 4-D head maps are generated: the export's 3-D
``(1, N, k)`` rows come after a Reshape NNIE cannot run, so they never leave a ``.wk``.
"""

from __future__ import annotations

from nnbuild.board.common import (face_nms_code, geometry, heads_by_shape, input_values,
                                  output_values, sort_code, task_files)
from nnbuild.board.layout import nchw
from nnbuild.board.render import c_double
from nnbuild.board.spec import BoardSpec
from nnbuild.errors import ModelError
from nnbuild.check.tasks import scrfd as reference


def _heads(spec: BoardSpec) -> dict[tuple[int, str], int]:
    """(stride, kind) -> output index, by shape (2/8/20 channels at ceil(input / stride))."""
    kind_of = {reference.ANCHORS * k: kind for kind, k in reference.WIDTH.items()}
    found, missing = heads_by_shape(spec, kind_of, reference.STRIDES)
    if missing:
        raise ModelError("board: scrfd outputs", "cannot find every SCRFD head map",
                         expected="2/8/20-channel maps at input/8, /16, /32",
                         got=[o.shape for o in spec.outputs],
                         hint=f"missing {', '.join(missing)}; cut the export at its head "
                              "convolutions (source.outputs)")
    return found


def generate(spec: BoardSpec) -> dict[str, str]:
    """``{"postprocess/scrfd.h": text, "postprocess/scrfd.c": text}``."""
    heads = _heads(spec)
    levels, anchors = [], 0
    for s in reference.STRIDES:
        _, _, fh, fw = nchw(spec.outputs[heads[(s, "score")]].shape)
        levels.append(f"    {{{s}, {fh}, {fw}, {heads[(s, 'score')]}, {heads[(s, 'bbox')]}, "
                      f"{heads[(s, 'kps')]}}},")
        anchors += reference.ANCHORS * fh * fw
    values = {**input_values(spec), **output_values(spec),
              "SCORE_THRESHOLD": c_double(spec.task_args.get("score_threshold", 0.5)),
              "NMS_IOU": c_double(spec.task_args.get("nms_iou", 0.4)),
              "NUM_ANCHORS": str(anchors), "ANCHORS": str(reference.ANCHORS),
              "LEVELS": "\n".join(levels).rstrip(","), "SORT": sort_code(), "FACE_NMS": face_nms_code("scrfd"),
              "GEOMETRY": geometry(spec)}
    return task_files("scrfd", values)
