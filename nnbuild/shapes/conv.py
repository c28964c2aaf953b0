"""Shapes and weight shapes of Convolution, Deconvolution, Pooling and InnerProduct."""

from __future__ import annotations

import math

from nnbuild.ir import Layer
from nnbuild.shapes.core import Shape, canonical_axis, shape_error, shape_fn, weight_shapes


# -- convolution, pooling, fully connected ---------------------------------------------------------

def _spatial(layer: Layer, p, name: str, n: int, default: int) -> list[int]:
    """A Caffe kernel/pad/stride/dilation value for ``n`` spatial axes.

    ``<name>_h``/``<name>_w`` win when set (2-D only); otherwise the repeated (convolution) or
    scalar (pooling) field gives one value for all axes or one per axis; unset gives ``default``.
    """
    fields = p.DESCRIPTOR.fields_by_name
    if f"{name}_h" in fields and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w")):
        if n != 2:
            raise shape_error(layer, f"{name}_h/{name}_w need 2 spatial axes", 2, n,
                              f"use the repeated {name} field")
        return [getattr(p, f"{name}_h"), getattr(p, f"{name}_w")]
    field = "kernel_size" if name == "kernel" else name
    if field not in fields:
        return [default] * n
    raw = getattr(p, field)
    if hasattr(raw, "__len__"):  # a repeated field (convolution), else a scalar (pooling)
        values = list(raw)
    else:
        values = [getattr(p, field)] if p.HasField(field) else []
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise shape_error(layer, f"{field} has the wrong number of values", f"1 or {n}",
                          len(values), f"give one {field} or one per spatial axis")
    return values


def _conv_geometry(layer: Layer, shape: Shape):
    """(spatial in-dims, kernel, pad, stride, dilation) of a Convolution/Deconvolution."""
    p = layer.param.convolution_param
    axis = canonical_axis(layer, p.axis, len(shape))
    n = len(shape) - axis - 1
    kernel = _spatial(layer, p, "kernel", n, 0)
    if 0 in kernel:
        raise shape_error(layer, "kernel size is missing or 0", "kernel_size >= 1", kernel,
                          "set kernel_size (or kernel_h and kernel_w)")
    return (shape[axis + 1:], kernel, _spatial(layer, p, "pad", n, 0),
            _spatial(layer, p, "stride", n, 1), _spatial(layer, p, "dilation", n, 1))


def _channels(layer: Layer, shape: Shape) -> tuple[int, int, int]:
    """(input channels, num_output, group), checking that group divides both."""
    p = layer.param.convolution_param
    cin = shape[canonical_axis(layer, p.axis, len(shape))]
    if p.group < 1 or cin % p.group or p.num_output % p.group:
        raise shape_error(layer, "group does not divide the channels",
                          f"group dividing {cin} input and {p.num_output} output channels", p.group,
                          "fix group or num_output")
    return cin, p.num_output, p.group


@shape_fn("Convolution")
def _convolution(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    p = layer.param.convolution_param
    out = []
    for shape in bottoms:  # Caffe convolves every bottom with the same filters
        dims, kernel, pad, stride, dil = _conv_geometry(layer, shape)
        _channels(layer, shape)
        sizes = [(d + 2 * pd - (dl * (k - 1) + 1)) // s + 1
                 for d, k, pd, s, dl in zip(dims, kernel, pad, stride, dil)]
        if min(sizes) < 1:
            raise shape_error(layer, f"kernel larger than the padded input {shape}", "output >= 1",
                              sizes, "use a larger input size or a smaller kernel")
        axis = canonical_axis(layer, p.axis, len(shape))
        out.append(shape[:axis] + (p.num_output,) + tuple(sizes))
    return out


@shape_fn("Deconvolution")
def _deconvolution(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    # Caffe: out = stride * (in - 1) + dilation * (kernel - 1) + 1 - 2 * pad.
    p = layer.param.convolution_param
    out = []
    for shape in bottoms:
        dims, kernel, pad, stride, dil = _conv_geometry(layer, shape)
        _channels(layer, shape)
        sizes = [s * (d - 1) + dl * (k - 1) + 1 - 2 * pd
                 for d, k, pd, s, dl in zip(dims, kernel, pad, stride, dil)]
        axis = canonical_axis(layer, p.axis, len(shape))
        out.append(shape[:axis] + (p.num_output,) + tuple(sizes))
    return out


@weight_shapes("Convolution", "Deconvolution")
def _conv_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    p = layer.param.convolution_param
    _, kernel, _, _, _ = _conv_geometry(layer, bottoms[0])
    cin, cout, group = _channels(layer, bottoms[0])
    # Caffe stores deconvolution filters as (Cin, Cout/group, k...), convolution (Cout, Cin/g, k).
    lead = (cin, cout // group) if layer.type == "Deconvolution" else (cout, cin // group)
    return [lead + tuple(kernel)] + ([(cout,)] if p.bias_term else [])


@shape_fn("Pooling")
def _pooling(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.pooling_param
    dims = shape[2:]
    if p.global_pooling:
        return [shape[:2] + (1,) * len(dims)]
    kernel = _spatial(layer, p, "kernel", len(dims), 0)
    pad = _spatial(layer, p, "pad", len(dims), 0)
    stride = _spatial(layer, p, "stride", len(dims), 1)
    if 0 in kernel:
        raise shape_error(layer, "kernel size is missing or 0", "kernel_size >= 1", kernel,
                          "set kernel_size or global_pooling")
    floor = "round_mode" in p.DESCRIPTOR.fields_by_name and p.round_mode == 1  # 1 = FLOOR
    sizes = []
    for d, k, pd, s in zip(dims, kernel, pad, stride):
        n = (d + 2 * pd - k) // s if floor else -(-(d + 2 * pd - k) // s)
        n += 1
        # Caffe: with padding, the last window must start inside the image (or the left pad).
        if pd and (n - 1) * s >= d + pd:
            n -= 1
        sizes.append(n)
    return [shape[:2] + tuple(sizes)]


@shape_fn("InnerProduct")
def _inner_product(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.inner_product_param
    axis = canonical_axis(layer, p.axis, len(shape))
    return [shape[:axis] + (p.num_output,)]


@weight_shapes("InnerProduct")
def _inner_product_weights(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    shape, p = bottoms[0], layer.param.inner_product_param
    k = math.prod(shape[canonical_axis(layer, p.axis, len(shape)):])
    weight = (k, p.num_output) if p.transpose else (p.num_output, k)
    return [weight] + ([(p.num_output,)] if p.bias_term else [])

