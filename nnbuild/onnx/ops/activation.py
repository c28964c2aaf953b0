"""Activations -> Caffe ReLU / PReLU / Sigmoid / TanH / Softmax; Clip as ReLU(x) - ReLU(x - b).

NNIE has no ReLU6 or Clip layer (``nnbuild.nnie.segments.NNIE_TYPES``), but ``min(max(x, 0), b)`` is
exactly ``ReLU(x) - ReLU(x - b)`` for ``b > 0``: a Power (shift), two ReLUs and an Eltwise SUM
with coefficients (1, -1), all NNIE layers. Other clip ranges are refused.
"""

from __future__ import annotations

import math

import numpy as np

from nnbuild.onnx.registry import converter


def _unary(ctx, node, layer_type: str):
    return ctx.add_layer(layer_type, [ctx.blob(node.input[0])], [ctx.output()])


@converter("Relu")
def relu(ctx, node, attrs) -> None:
    _unary(ctx, node, "ReLU")


@converter("LeakyRelu")
def leaky_relu(ctx, node, attrs) -> None:
    _unary(ctx, node, "ReLU").relu_param.negative_slope = float(attrs.get("alpha", 0.01))


@converter("Sigmoid")
def sigmoid(ctx, node, attrs) -> None:
    _unary(ctx, node, "Sigmoid")


@converter("Tanh")
def tanh(ctx, node, attrs) -> None:
    _unary(ctx, node, "TanH")


@converter("PRelu")
def prelu(ctx, node, attrs) -> None:
    """Caffe PReLU: one slope per channel or one shared.

    ONNX broadcasts the slope right-aligned, so a (C,) slope is per channel only for (N, C)
    inputs; for NCHW it must be (C, 1, 1) or (1, C, 1, 1).
    """
    from nnbuild.onnx.ops.arith import per_channel
    from nnbuild.onnx.ops.common import weight

    slope = weight(ctx, node.input[1], "slope")
    vector = per_channel(slope, ctx.shape(node.input[0]))
    if slope.size == 1:
        param = ctx.add_layer("PReLU", [ctx.blob(node.input[0])], [ctx.output()],
                              [slope.reshape(1)])
        param.prelu_param.channel_shared = True
    elif vector is not None:
        ctx.add_layer("PReLU", [ctx.blob(node.input[0])], [ctx.output()], [vector])
    else:
        raise ctx.refuse(f"slope shape {list(slope.shape)} is not per channel",
                         "Caffe PReLU has one slope per channel or one for all")


def _clip_bounds(ctx, node, attrs) -> tuple[float, float]:
    if ctx.opset < 11:
        return float(attrs.get("min", -math.inf)), float(attrs.get("max", math.inf))
    bounds = []
    for i, default in ((1, -math.inf), (2, math.inf)):
        tensor = node.input[i] if len(node.input) > i else ""
        value = ctx.const(tensor) if tensor else np.asarray(default)
        if value is None:
            raise ctx.refuse("its bounds are computed at run time", "use constant bounds")
        bounds.append(float(value))
    return bounds[0], bounds[1]


@converter("Clip")
def clip(ctx, node, attrs) -> None:
    """Clip(0, inf) is ReLU; Clip(0, b) is ReLU(x) - ReLU(x - b) (module docstring)."""
    low, high = _clip_bounds(ctx, node, attrs)
    if low != 0.0 or not high > 0.0:
        raise ctx.refuse(f"clip range [{low:g}, {high:g}] has no NNIE form",
                         "only Clip(0, b) with b > 0 (ReLU, ReLU6) converts; cut before it or "
                         "replace it with ReLU6 in the PyTorch model")
    x = ctx.blob(node.input[0])
    if math.isinf(high):
        ctx.add_layer("ReLU", [x], [ctx.output()])
        return
    positive, shifted, excess = ctx.temp("pos"), ctx.temp("shift"), ctx.temp("excess")
    ctx.add_layer("ReLU", [x], [positive], suffix="relu")
    ctx.add_layer("Power", [x], [shifted], suffix="shift").power_param.shift = -high
    ctx.add_layer("ReLU", [shifted], [excess], suffix="excess")
    ep = ctx.add_layer("Eltwise", [positive, excess], [ctx.output()]).eltwise_param
    ep.operation = 1  # SUM
    ep.coeff.extend([1.0, -1.0])


@converter("Softmax")
def softmax(ctx, node, attrs) -> None:
    """Caffe Softmax over one axis.

    Before opset 13 ONNX Softmax flattens the input to 2-D at ``axis`` (default 1) and
    normalises over all trailing dims together; that is Caffe's single-axis softmax only when
    ``axis`` is the last axis with more than one element.
    """
    shape = ctx.shape(node.input[0])
    rank = len(shape)
    axis = int(attrs.get("axis", -1 if ctx.opset >= 13 else 1)) % rank
    if ctx.opset < 13 and any(d != 1 for d in shape[axis + 1:]):
        raise ctx.refuse(f"opset {ctx.opset} Softmax at axis {axis} of {list(shape)} "
                         "normalises over several axes", "re-export with opset >= 13, or "
                         "softmax over the last axis")
    ctx.add_layer("Softmax", [ctx.blob(node.input[0])], [ctx.output()]).softmax_param.axis = axis
