"""Generated C for the ``embedding`` task: L2 normalisation, ``postprocess/embedding.{h,c}``.

The embedding output is ``check.task_args.output`` or the only output (as
``nnbuild.check.tasks.embedding``); it is read in NNIE's layout whatever its Caffe rank.
"""

from __future__ import annotations

import math

from nnbuild.board.common import input_values, output_values, task_files
from nnbuild.board.layout import nchw
from nnbuild.board.spec import BoardSpec
from nnbuild.errors import RecipeError


def _index(spec: BoardSpec) -> int:
    name = spec.task_args.get("output")
    names = [o.name for o in spec.outputs]
    if name is None and len(names) == 1:
        return 0
    if name not in names:
        raise RecipeError("check.task_args.output", "the embedding output is not a network output",
                          expected="one of " + ", ".join(names), got=name,
                          hint="set check.task_args.output")
    return names.index(name)


def generate(spec: BoardSpec) -> dict[str, str]:
    """``{"postprocess/embedding.h": text, "postprocess/embedding.c": text}``."""
    index = _index(spec)
    _, c, h, w = nchw(spec.outputs[index].shape)
    values = {**input_values(spec), **output_values(spec), "INDEX": str(index),
              "DIM": str(math.prod(spec.outputs[index].shape)), "CHANNELS": str(c),
              "HEIGHT": str(h), "WIDTH": str(w)}
    for unused in ("IN_W", "IN_H", "RESIZE"):
        values.pop(unused)
    return task_files("embedding", values)
