"""Shape and layout ops: Identity/Dropout (removed), Reshape/Squeeze/Unsqueeze/Flatten, Transpose,
Concat, Split and Slice; YOLOv5's Focus (four ``::2`` slices concatenated) as a fixed Convolution.

NNIE rules (nnie-facts.md §5): a Reshape must leave the batch dim alone (written ``dim: 0``) and
a Permute may only be (0,2,3,1); permutes other than that still convert (lint reports them, and
``cpu_split`` can move them to the CPU) but nothing that moves or merges the batch axis does.
"""

from __future__ import annotations

import numpy as np

from nnbuild.onnx.ops.common import set_geometry
from nnbuild.onnx.registry import converter


@converter("Identity", "Dropout")
def identity(ctx, node, attrs) -> None:
    """No layer: the output names the input's blob (Dropout is the identity at inference)."""
    if len(node.output) > 1 and node.output[1]:
        raise ctx.refuse("its mask output is used", "export in eval mode")
    ctx.alias(node.output[0], ctx.blob(node.input[0]))


@converter("Cast")
def cast(ctx, node, attrs) -> None:
    """A cast of a feature map to float is the identity; anything else has no NNIE form."""
    if int(attrs.get("to", 0)) != 1:  # TensorProto.FLOAT
        raise ctx.refuse(f"it casts a feature map to type {attrs.get('to')}",
                         "NNIE feature maps are float; cut before it")
    ctx.alias(node.output[0], ctx.blob(node.input[0]))


def _reshape_to(ctx, node, dims: list[int]) -> None:
    before, after = ctx.shape(node.input[0]), ctx.shape(node.output[0])
    if int(np.prod(before)) != int(np.prod(after)):
        raise ctx.refuse(f"its target {list(dims)} does not fit the input {list(before)}",
                         "the export may only work at its own input size; set input.shape to "
                         "it")
    if not after or after[0] != before[0]:
        raise ctx.refuse(f"it reshapes {list(before)} to {list(after)}, touching the batch "
                         "dimension", "NNIE Reshape keeps the batch dim (dim: 0 first); "
                         "reshape per image, or cut before it")
    rp = ctx.add_layer("Reshape", [ctx.blob(node.input[0])], [ctx.output()]).reshape_param
    rp.shape.dim.extend([0] + [int(d) for d in dims[1:]])


@converter("Reshape")
def reshape(ctx, node, attrs) -> None:
    """Caffe Reshape with the ONNX target (0 = copy and -1 = infer mean the same in both)."""
    target = attrs.get("shape") if ctx.opset < 5 else ctx.const(node.input[1])
    if target is None:
        raise ctx.refuse("its target shape is computed at run time and did not fold",
                         "give static input shapes (input.shape) so the shape arithmetic folds")
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    if attrs.get("allowzero", 0) and 0 in target:
        raise ctx.refuse("allowzero=1 with a 0 in the shape", "Caffe's 0 always copies a dim")
    _reshape_to(ctx, node, target)


@converter("Squeeze", "Unsqueeze")
def squeeze(ctx, node, attrs) -> None:
    """A Caffe Reshape to the (static) output shape."""
    _reshape_to(ctx, node, list(ctx.shape(node.output[0])))


@converter("Flatten")
def flatten(ctx, node, attrs) -> None:
    """Caffe Flatten for axis 1 (the PyTorch ``x.view(x.size(0), -1)`` export)."""
    axis = int(attrs.get("axis", 1)) % max(len(ctx.shape(node.input[0])), 1)
    if axis != 1:
        _reshape_to(ctx, node, list(ctx.shape(node.output[0])))
        return
    ctx.add_layer("Flatten", [ctx.blob(node.input[0])], [ctx.output()]).flatten_param.axis = 1


@converter("Transpose")
def transpose(ctx, node, attrs) -> None:
    rank = len(ctx.shape(node.input[0]))
    perm = [int(p) for p in attrs.get("perm", list(range(rank))[::-1])]
    if perm[0] != 0:
        raise ctx.refuse(f"perm {perm} moves the batch axis", "NNIE permutes within one image "
                         "only ((0,2,3,1)); cut before it")
    ctx.add_layer("Permute", [ctx.blob(node.input[0])],
                  [ctx.output()]).permute_param.order.extend(perm)


@converter("Concat")
def concat(ctx, node, attrs) -> None:
    """Caffe Concat; a Focus (four space-to-depth slices of one tensor) becomes a Convolution."""
    if node.input and all(t in ctx.deferred for t in node.input):
        _focus(ctx, node, int(attrs.get("axis", 0)))
        return
    rank = len(ctx.shape(node.output[0]))
    axis = int(attrs["axis"]) % rank
    if axis == 0:
        raise ctx.refuse("it concatenates along the batch axis", "NNIE runs one image; cut "
                         "before it")
    ctx.add_layer("Concat", [ctx.blob(t) for t in node.input],
                  [ctx.output()]).concat_param.axis = axis


def _focus(ctx, node, axis: int) -> None:
    """Concat of strided slices ``x[:, :, dy::2, dx::2]`` -> a 2x2 stride-2 Convolution.

    Output channel ``k * C + c`` copies input channel ``c`` at tap ``(dy_k, dx_k)`` of the
    ``k``-th slice: a one-hot kernel, exact in float.
    """
    parts = [ctx.deferred[t] for t in node.input]
    sources = {p[0] for p in parts}
    _, c, h, w = ctx.shape(next(iter(sources)))
    if len(sources) != 1 or axis % 4 != 1 or h % 2 or w % 2:
        raise ctx.refuse("strided slices of different tensors, along another axis than "
                         "channels, or of an odd-sized map", "only YOLOv5's Focus converts")
    weight = np.zeros((c * len(parts), c, 2, 2), np.float32)
    for k, (_, dy, dx) in enumerate(parts):
        for ch in range(c):
            weight[k * c + ch, ch, dy, dx] = 1.0
    param = ctx.add_layer("Convolution", [ctx.blob(parts[0][0])], [ctx.output()], [weight],
                          suffix="focus")
    cp = param.convolution_param
    cp.num_output, cp.bias_term = weight.shape[0], False
    set_geometry(cp, (2, 2), (2, 2), (0, 0))


def _slice_args(ctx, node, attrs, rank: int) -> list[tuple[int, int, int]]:
    if ctx.opset < 10:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        values = [ctx.const(t) if t else None for t in list(node.input[1:]) + [""] * 4][:4]
        if any(v is None for v, t in zip(values[:2], node.input[1:3])):
            raise ctx.refuse("its bounds are computed at run time", "use constant bounds")
        starts, ends = values[0].tolist(), values[1].tolist()
        axes = values[2].tolist() if values[2] is not None else list(range(len(starts)))
        steps = values[3].tolist() if values[3] is not None else [1] * len(starts)
    return [(int(a) % rank, int(s), int(e), int(st)) for a, s, e, st in
            zip(axes, starts, ends, steps)]


@converter("Slice")
def slice_(ctx, node, attrs) -> None:
    """Channel ranges (step 1) -> a one-hot 1x1 Convolution; ``::2`` on H/W -> deferred Focus."""
    source = node.input[0]
    shape = ctx.shape(source)
    picks = {}
    for axis, start, end, step in _slice_args(ctx, node, attrs, len(shape)):
        index = range(shape[axis])[slice(start, end, step)]
        if list(index) != list(range(shape[axis])):
            picks[axis] = index
    if not picks:
        ctx.alias(node.output[0], ctx.blob(source))
    elif set(picks) <= {2, 3} and all(r.step == 2 and r.start in (0, 1) and
                                      len(r) == shape[a] // 2 for a, r in picks.items()):
        base = ctx.deferred.get(source, (source, 0, 0))
        offsets = [picks[a].start if a in picks else base[1 + a - 2] for a in (2, 3)]
        ctx.deferred[node.output[0]] = (base[0], offsets[0], offsets[1])
    elif set(picks) == {1} and picks[1].step == 1:
        _select_channels(ctx, node, list(picks[1]), shape[1])
    else:
        raise ctx.refuse(f"it slices axes {sorted(picks)} of {list(shape)}", "NNIE slices "
                         "whole channel ranges only; cut before it")


def _select_channels(ctx, node, channels: list[int], total: int) -> None:
    weight = np.zeros((len(channels), total, 1, 1), np.float32)
    weight[np.arange(len(channels)), channels, 0, 0] = 1.0
    param = ctx.add_layer("Convolution", [ctx.blob(node.input[0])], [ctx.output()], [weight])
    param.convolution_param.num_output, param.convolution_param.bias_term = len(channels), False
    set_geometry(param.convolution_param, (1, 1), (1, 1), (0, 0))


@converter("Split")
def split(ctx, node, attrs) -> None:
    """Caffe Slice at the cumulative split points."""
    shape = ctx.shape(node.input[0])
    axis = int(attrs.get("axis", 0)) % len(shape)
    if axis == 0:
        raise ctx.refuse("it splits the batch axis", "NNIE runs one image; cut before it")
    sizes = [ctx.shape(o)[axis] for o in node.output]
    points = np.cumsum(sizes)[:-1].tolist()
    sp = ctx.add_layer("Slice", [ctx.blob(node.input[0])], list(node.output)).slice_param
    sp.axis = axis
    sp.slice_point.extend(int(p) for p in points)
