"""Shapes of layers that keep, join, split or rearrange tensors (and per-channel weights)."""

from __future__ import annotations

import math

from nnbuild.ir import Layer
from nnbuild.shapes.core import (Shape, canonical_axis, same_as_first, shape_error, shape_fn,
                                 weight_shapes)


# -- simple layers --------------------------------------------------------------------------------

@shape_fn("Input")
def _input(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shapes = [tuple(int(d) for d in s.dim) for s in layer.param.input_param.shape]
    if len(shapes) == 1:
        shapes = shapes * len(layer.tops)
    return shapes


shape_fn("ReLU", "PReLU", "BatchNorm", "Scale", "Dropout", "TanH", "AbsVal", "Sigmoid",
         "Power", "Normalize", "Softmax", "Split", "ELU", "BNLL", "Exp", "Log")(same_as_first)


@shape_fn("Eltwise")
def _eltwise(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    for shape in bottoms[1:]:
        if shape != bottoms[0]:
            raise shape_error(layer, "Eltwise inputs differ in shape", bottoms[0], shape,
                              "all bottoms of an Eltwise must have the same shape (after "
                              "upsampling, this input size needs a Crop or another size)")
    return [bottoms[0]]


@shape_fn("Concat")
def _concat(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    p = layer.param.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    axis = canonical_axis(layer, axis, len(bottoms[0]))
    for shape in bottoms[1:]:
        if len(shape) != len(bottoms[0]) or any(
                a != b for i, (a, b) in enumerate(zip(shape, bottoms[0])) if i != axis):
            raise shape_error(layer, f"Concat inputs differ outside axis {axis}", bottoms[0], shape,
                              "all bottoms must agree on every axis except the concat axis")
    out = list(bottoms[0])
    out[axis] = sum(s[axis] for s in bottoms)
    return [tuple(out)]


@shape_fn("Slice")
def _slice(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    p = layer.param.slice_param
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    axis = canonical_axis(layer, axis, len(bottoms[0]))
    size, n = bottoms[0][axis], len(layer.tops)
    points = list(p.slice_point)
    if points:
        if len(points) != n - 1 or points != sorted(points) or points[-1] >= size:
            raise shape_error(layer, "bad slice_point", f"{n - 1} increasing points < {size}",
                              points, "give one slice_point per top minus one")
        sizes = [b - a for a, b in zip([0] + points, points + [size])]
    elif size % n:
        raise shape_error(layer, f"axis {axis} does not split evenly", f"a multiple of {n}", size,
                          "set slice_point")
    else:
        sizes = [size // n] * n
    return [bottoms[0][:axis] + (s,) + bottoms[0][axis + 1:] for s in sizes]


@shape_fn("Flatten")
def _flatten(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.flatten_param
    start = canonical_axis(layer, p.axis, len(shape))
    end = canonical_axis(layer, p.end_axis, len(shape))
    return [shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]]


@shape_fn("Permute")
def _permute(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # SSD Caffe: the given order, then the axes it did not name, in their original order.
    shape = bottoms[0]
    order = [canonical_axis(layer, o, len(shape)) for o in layer.param.permute_param.order]
    if len(set(order)) != len(order):
        raise shape_error(layer, "Permute order repeats an axis", "distinct axes", order,
                          "list each axis at most once")
    order += [i for i in range(len(shape)) if i not in order]
    return [tuple(shape[i] for i in order)]


@shape_fn("Reshape")
def _reshape(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.reshape_param
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
    end = len(shape) if p.num_axes == -1 else start + p.num_axes
    if not 0 <= start <= end <= len(shape):
        raise shape_error(layer, "axis/num_axes outside the input", f"a range of {shape}",
                          (p.axis, p.num_axes), "fix reshape_param axis/num_axes")
    dims = [shape[start + i] if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
    known = math.prod(shape[start:end])
    if dims.count(-1) > 1:
        raise shape_error(layer, "more than one -1 in reshape dims", "at most one -1", dims,
                          "let only one dim be inferred")
    if -1 in dims:
        rest = math.prod(d for d in dims if d != -1)
        if rest == 0 or known % rest:
            raise shape_error(layer, "cannot infer the -1 dim", f"a divisor of {known}", rest,
                              "check the reshape dims against the input shape")
        dims[dims.index(-1)] = known // rest
    if math.prod(dims) != known:
        raise shape_error(layer, f"Reshape changes the element count of {shape}",
                          known, math.prod(dims), "the new dims must hold the same elements")
    return [shape[:start] + tuple(dims) + shape[end:]]


@shape_fn("Crop")
def _crop(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # Caffe Crop: dims before `axis` from the first bottom, from `axis` on the second's.
    a, b = bottoms
    p = layer.param.crop_param
    axis = canonical_axis(layer, p.axis, len(a))
    offsets = list(p.offset) or [0]
    if len(offsets) == 1:
        offsets = offsets * (len(a) - axis)
    if len(offsets) != len(a) - axis:
        raise shape_error(layer, "wrong number of crop offsets", f"1 or {len(a) - axis}",
                          len(offsets), "give one offset, or one per cropped axis")
    for i, off in zip(range(axis, len(a)), offsets):
        if b[i] + off > a[i]:
            raise shape_error(layer, f"crop window exceeds the input on axis {i}", a, b,
                              "the reference (second) bottom must not be larger than the first")
    return [a[:axis] + b[axis:]]



# -- per-channel weights ---------------------------------------------------------------------------

@weight_shapes("BatchNorm")
def _batchnorm_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # mean, variance, and the moving-average normaliser (one value).
    c = bottoms[0][1] if len(bottoms[0]) > 1 else 1
    return [(c,), (c,), (1,)]


@weight_shapes("Scale")
def _scale_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.scale_param
    axis = canonical_axis(layer, p.axis, len(shape))
    end = len(shape) if p.num_axes == -1 else axis + p.num_axes
    factor = shape[axis:end]
    return [factor] + ([factor] if p.bias_term else [])


@weight_shapes("PReLU")
def _prelu_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shared = layer.param.prelu_param.channel_shared
    return [(1,) if shared else (bottoms[0][1],)]


@weight_shapes("Normalize")
def _normalize_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # SSD stores a shared scale as a 0-d blob; _legacy4 makes () and (1,) compare equal.
    shared = layer.param.norm_param.channel_shared
    return [(1,) if shared else (bottoms[0][1],)]

