"""Data-movement kernels: Concat, Crop, Reshape, Permute, Flatten, Slice, Split."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nnbuild.engine.registry import has_field, register
from nnbuild.errors import ModelError


def crop(x: np.ndarray, reference: np.ndarray, *, axis: int = 2,
         offset: Sequence[int] = ()) -> np.ndarray:
    """Caffe Crop: cut ``x`` to ``reference``'s shape on every axis from ``axis`` on.

    ``offset`` is empty (0 everywhere), one value (used on every cropped axis) or one per
    cropped axis, as in Caffe's crop_layer.cpp.
    """
    axis %= x.ndim
    index = []
    for i, size in enumerate(x.shape):
        if i < axis:
            index.append(slice(None))
            continue
        off = 0 if not offset else int(offset[0] if len(offset) == 1 else offset[i - axis])
        want = reference.shape[i]
        if off + want > size:
            raise ModelError("Crop", f"axis {i} cannot be cropped to the reference size",
                             expected=f"offset + {want} <= {size}", got=f"offset {off}",
                             hint="the input size makes the upsampled branch too small; use "
                                  "an input size the network's strides divide")
        index.append(slice(off, off + want))
    return x[tuple(index)]


def reshape(x: np.ndarray, *, shape: Sequence[int], axis: int = 0,
            num_axes: int = -1) -> np.ndarray:
    """Caffe Reshape: replace axes ``[axis, axis + num_axes)`` by ``shape`` (0 copies, -1 infers)."""
    start = axis if axis >= 0 else x.ndim + axis + 1
    end = x.ndim if num_axes == -1 else start + num_axes
    new = [x.shape[start + i] if d == 0 else int(d) for i, d in enumerate(shape)]
    full = list(x.shape[:start]) + new + list(x.shape[end:])
    try:
        return x.reshape(full)
    except ValueError:
        raise ModelError("Reshape", "the new shape does not hold the blob's elements",
                         expected=f"{x.size} elements", got=f"shape {full} from {x.shape}",
                         hint="check reshape_param.shape against the input size") from None


def permute(x: np.ndarray, *, order: Sequence[int] = ()) -> np.ndarray:
    """SSD Permute: ``order`` lists the leading axes; the missing ones follow in order."""
    order = [int(o) % x.ndim for o in order]
    order += [a for a in range(x.ndim) if a not in order]
    return np.ascontiguousarray(x.transpose(order))


def flatten(x: np.ndarray, *, axis: int = 1, end_axis: int = -1) -> np.ndarray:
    """Caffe Flatten: merge axes ``axis .. end_axis`` (inclusive) into one."""
    a, e = axis % x.ndim, end_axis % x.ndim
    return x.reshape(x.shape[:a] + (-1,) + x.shape[e + 1:])


def slice_blob(x: np.ndarray, *, axis: int = 1, slice_point: Sequence[int] = (),
               n_tops: int = 1) -> list[np.ndarray]:
    """Caffe Slice: cut ``x`` along ``axis`` at ``slice_point`` (or into ``n_tops`` equal parts)."""
    axis %= x.ndim
    size = x.shape[axis]
    if slice_point:
        points = [int(p) for p in slice_point]
    elif size % n_tops == 0:
        points = [size // n_tops * k for k in range(1, n_tops)]
    else:
        raise ModelError("Slice", "the axis does not split evenly into the tops",
                         expected=f"a multiple of {n_tops}", got=size, hint="give slice_point")
    if len(points) != n_tops - 1:
        raise ModelError("Slice", "wrong number of slice points", expected=n_tops - 1,
                         got=len(points), hint="one slice_point fewer than tops")
    return [np.ascontiguousarray(p) for p in np.split(x, points, axis=axis)]


@register("Concat")
def _concat(param, inputs, blobs, n_tops) -> list:
    cp = param.concat_param
    axis = int(cp.concat_dim) if has_field(cp, "concat_dim") else int(cp.axis)
    return [np.concatenate(inputs, axis=axis % inputs[0].ndim)]


@register("Crop")
def _crop(param, inputs, blobs, n_tops) -> list:
    cp = param.crop_param
    return [np.ascontiguousarray(crop(inputs[0], inputs[1], axis=int(cp.axis),
                                      offset=[int(o) for o in cp.offset]))]


@register("Reshape")
def _reshape(param, inputs, blobs, n_tops) -> list:
    rp = param.reshape_param
    return [reshape(inputs[0], shape=[int(d) for d in rp.shape.dim], axis=int(rp.axis),
                    num_axes=int(rp.num_axes))]


@register("Permute")
def _permute(param, inputs, blobs, n_tops) -> list:
    return [permute(inputs[0], order=list(param.permute_param.order))]


@register("Flatten")
def _flatten(param, inputs, blobs, n_tops) -> list:
    fp = param.flatten_param
    return [flatten(inputs[0], axis=int(fp.axis), end_axis=int(fp.end_axis))]


@register("Slice")
def _slice(param, inputs, blobs, n_tops) -> list:
    sp = param.slice_param
    axis = int(sp.slice_dim) if has_field(sp, "slice_dim") else int(sp.axis)
    return slice_blob(inputs[0], axis=axis, slice_point=list(sp.slice_point), n_tops=n_tops)


@register("Split")
def _split(param, inputs, blobs, n_tops) -> list:
    # Arrays are never written in place by the engine, so the tops may share the bottom.
    return [inputs[0]] * n_tops
