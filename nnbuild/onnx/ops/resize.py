"""Resize / Upsample nearest 2x -> the grouped constant Deconvolution NNIE compiles.

NNIE's only upsampling is a Deconvolution with kernel 2, stride 2, group = channels and all
weights 1 (nnie-facts.md §5; RetinaFace's FPN does this): output pixel (y, x) copies input
(y // 2, x // 2). A Resize converts when its output is exactly twice the input in H and W and
its ``coordinate_transformation_mode`` / ``nearest_mode`` pick that same source pixel for every
output position; the check evaluates the spec's formulas (``source_index``) rather than trusting
a table of mode names.
"""

from __future__ import annotations

import math

import numpy as np

from nnbuild.onnx.ops.common import four_d, set_geometry
from nnbuild.onnx.registry import converter


def source_index(dst: int, in_len: int, out_len: int, transform: str, nearest: str) -> int:
    """The input index ONNX Resize (mode nearest) reads for output index ``dst`` (spec text)."""
    scale = out_len / in_len
    if transform == "asymmetric":
        x = dst / scale
    elif transform in ("half_pixel", "pytorch_half_pixel"):
        x = (dst + 0.5) / scale - 0.5 if (transform == "half_pixel" or out_len > 1) else 0.0
    elif transform == "align_corners":
        x = dst * (in_len - 1) / (out_len - 1) if out_len > 1 else 0.0
    elif transform == "tf_half_pixel_for_nn":
        x = (dst + 0.5) / scale
    else:
        return -1
    rounders = {"floor": math.floor, "ceil": math.ceil,
                "round_prefer_floor": lambda v: math.ceil(v - 0.5),
                "round_prefer_ceil": lambda v: math.floor(v + 0.5)}
    if nearest not in rounders:
        return -1
    return min(max(int(rounders[nearest](x)), 0), in_len - 1)


def _is_nearest_2x(length: int, transform: str, nearest: str) -> bool:
    return all(source_index(d, length, 2 * length, transform, nearest) == d // 2
               for d in range(2 * length))


@converter("Resize", "Upsample")
def resize(ctx, node, attrs) -> None:
    """See the module docstring."""
    n, c, h, w = four_d(ctx, node.input[0])
    out = tuple(ctx.shape(node.output[0]))
    mode = attrs.get("mode", "nearest")
    if ctx.opset >= 11 and node.op_type == "Resize":
        transform = attrs.get("coordinate_transformation_mode", "half_pixel")
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
    else:  # Upsample and opset-10 Resize: asymmetric, floor (the spec of those versions)
        transform, nearest = "asymmetric", "floor"
    if out != (n, c, 2 * h, 2 * w):
        raise ctx.refuse(f"it resizes {[n, c, h, w]} to {list(out)}, not exactly 2x",
                         "NNIE upsamples by 2x nearest only: for an FPN, choose an input size "
                         "divisible by its largest stride; otherwise resize on the CPU")
    if mode != "nearest" or not (_is_nearest_2x(h, transform, nearest)
                                 and _is_nearest_2x(w, transform, nearest)):
        raise ctx.refuse(f"mode {mode!r} ({transform}, {nearest}) is not nearest-neighbour "
                         "pixel doubling", "export nn.Upsample(scale_factor=2, mode='nearest')")
    weight = np.ones((c, 1, 2, 2), np.float32)
    param = ctx.add_layer("Deconvolution", [ctx.blob(node.input[0])], [ctx.output()], [weight])
    cp = param.convolution_param
    cp.num_output, cp.bias_term, cp.group = c, False, c
    set_geometry(cp, (2, 2), (2, 2), (0, 0))
