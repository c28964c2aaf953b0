"""Generated C for the ``retinaface`` task: ``postprocess/retinaface.{h,c}``.

The nine head outputs are recognised by channel count and feature size exactly as the Python
decoder does (``nnbuild.check.tasks.retinaface._by_stride``), so the C reads each head from the .wk
output index where it really is, whatever order the recipe's ``nnie_order`` chose.
"""

from __future__ import annotations

from nnbuild.board.common import (face_nms_code, geometry, heads_by_shape, input_values,
                                  output_values, sort_code, task_files)
from nnbuild.board.layout import nchw
from nnbuild.board.render import c_double
from nnbuild.board.spec import BoardSpec
from nnbuild.errors import ModelError
from nnbuild.check.tasks import retinaface as reference


def _heads(spec: BoardSpec) -> dict[tuple[int, str], int]:
    """(stride, kind) -> output index, by shape (4/8/20 channels at ceil(input / stride))."""
    kind_of = {c: k for k, c in reference.CHANNELS.items()}
    found, missing = heads_by_shape(spec, kind_of, reference.STRIDES)
    if missing:
        raise ModelError("board: retinaface outputs", "cannot find every RetinaFace head",
                         expected="4/8/20-channel maps at input/32, /16, /8",
                         got=[o.shape for o in spec.outputs],
                         hint=f"missing {', '.join(missing)}; is this RetinaFace mnet?")
    return found


def generate(spec: BoardSpec) -> dict[str, str]:
    """``{"postprocess/retinaface.h": text, "postprocess/retinaface.c": text}``."""
    heads = _heads(spec)
    levels, anchors = [], 0
    for s in reference.STRIDES:
        _, _, fh, fw = nchw(spec.outputs[heads[(s, "cls")]].shape)
        big, small = reference.ANCHOR_SIZES[s]
        levels.append(f"    {{{s}, {fh}, {fw}, {heads[(s, 'cls')]}, {heads[(s, 'bbox')]}, "
                      f"{heads[(s, 'landmark')]}, {{{c_double(big)}, {c_double(small)}}}}},")
        anchors += 2 * fh * fw
    values = {**input_values(spec), **output_values(spec),
              "SCORE_THRESHOLD": c_double(spec.task_args.get("score_threshold", 0.5)),
              "NMS_IOU": c_double(spec.task_args.get("nms_iou", 0.4)),
              "NUM_ANCHORS": str(anchors), "LEVELS": "\n".join(levels).rstrip(","),
              "SORT": sort_code(), "FACE_NMS": face_nms_code("retinaface"), "GEOMETRY": geometry(spec)}
    return task_files("retinaface", values)
