"""Convolution and Deconvolution kernels (Caffe semantics) with fast paths for 1x1 and depthwise.

Fast paths, all float32:
* 1x1, stride 1, no pad, one group: a single GEMM on the (C, H*W) view of each image.
* depthwise (group == C == num_output): see nnbuild/engine/depthwise.py.
* general: im2col into a (C*kh*kw, Ho*Wo) buffer filled by kh*kw strided slice copies, then one
  GEMM per group.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nnbuild.engine import channelwise
from nnbuild.engine.depthwise import depthwise, padded
from nnbuild.engine.registry import has_field, register
from nnbuild.errors import ModelError

Pair = tuple[int, int]


def _taps(kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """Yield (i, j, row_slice, col_slice): the padded-input slice read by kernel tap (i, j)."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            yield i, j, rows, slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


def conv_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """Caffe's convolution output size (floor)."""
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def convolution(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                stride: Pair = (1, 1), pad: Pair = (0, 0), dilation: Pair = (1, 1),
                group: int = 1) -> np.ndarray:
    """Caffe Convolution: ``x`` (N, C, H, W), ``weight`` (O, C/group, kh, kw), ``bias`` (O,)."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if cg * group != c or o % group:
        raise ModelError("Convolution", "weight shape does not fit the input and group",
                         expected=f"weight (O, {c}/{group}, kh, kw) with O divisible by {group}",
                         got=f"input {x.shape}, weight {weight.shape}",
                         hint="check num_output, group and the caffemodel")
    out_hw = (conv_out_size(h, kh, stride[0], pad[0], dilation[0]),
              conv_out_size(w, kw, stride[1], pad[1], dilation[1]))
    if kh == kw == 1 and stride == (1, 1) and group == 1 and pad == (0, 0):
        out = np.matmul(weight.reshape(o, c), x.reshape(n, c, h * w)).reshape(n, o, h, w)
    elif group == c == o:  # the bias goes into the depthwise GEMMs themselves
        return depthwise(x, weight, bias, stride=stride, pad=pad, dilation=dilation,
                         out_hw=out_hw)
    else:
        out = _im2col_conv(padded(x, pad), weight, (kh, kw), stride, dilation, out_hw, group)
    if bias is not None:
        channelwise.add(out, bias, out=out)
    return out


def _im2col_conv(xp, weight, kernel, stride, dilation, out_hw, group) -> np.ndarray:
    n, c = xp.shape[:2]
    o, cg, kh, kw = weight.shape
    og, length = o // group, out_hw[0] * out_hw[1]
    out = np.empty((n, o, length), dtype=np.float32)
    cols = np.empty((c, kh, kw) + out_hw, dtype=np.float32)
    wmat = weight.reshape(group, og, cg * kh * kw)
    for b in range(n):
        for i, j, rows, cs in _taps(kernel, stride, dilation, out_hw):
            cols[:, i, j] = xp[b, :, rows, cs]
        flat = cols.reshape(group, cg * kh * kw, length)
        np.matmul(wmat, flat, out=out[b].reshape(group, og, length))
    return out.reshape((n, o) + out_hw)


def deconvolution(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                  stride: Pair = (1, 1), pad: Pair = (0, 0), dilation: Pair = (1, 1),
                  group: int = 1) -> np.ndarray:
    """Caffe Deconvolution (the transpose of Convolution): ``weight`` is (C, O/group, kh, kw).

    Output size is Caffe's ``stride * (H - 1) + dilation * (k - 1) + 1 - 2 * pad``.
    """
    n, c, h, w = x.shape
    cw, og, kh, kw = weight.shape
    if cw != c or c % group:
        raise ModelError("Deconvolution", "weight shape does not fit the input and group",
                         expected=f"weight ({c}, O/{group}, kh, kw)", got=f"weight {weight.shape}",
                         hint="check num_output, group and the caffemodel")
    o, cg = og * group, c // group
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, pad
    full = np.zeros((n, o, sh * (h - 1) + dh * (kh - 1) + 1, sw * (w - 1) + dw * (kw - 1) + 1),
                    dtype=np.float32)
    taps = list(_taps((kh, kw), stride, dilation, (h, w)))
    for b in range(n):
        if cg == 1 and og == 1:  # depthwise upsampling (RetinaFace's FPN): a scaled scatter
            for i, j, rows, cols in taps:
                full[b, :, rows, cols] += x[b] * weight[:, 0, i, j].reshape(c, 1, 1)
            continue
        for g in range(group):
            wg = weight[g * cg:(g + 1) * cg].reshape(cg, og * kh * kw)
            col = (wg.T @ x[b, g * cg:(g + 1) * cg].reshape(cg, h * w)).reshape(og, kh, kw, h, w)
            for i, j, rows, cols in taps:
                full[b, g * og:(g + 1) * og, rows, cols] += col[:, i, j]
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    out = np.ascontiguousarray(out)
    return out if bias is None else channelwise.add(out, bias, out=out)


def conv_geometry(cp) -> dict:
    """Read stride/pad/dilation/group from a ConvolutionParameter, resolving ``*_h``/``*_w``.

    Caffe allows either one value for both axes, two values (h, w), or explicit ``pad_h``/``pad_w``
    (and the same for stride); the explicit form wins.
    """
    def pair(name: str, default: int) -> Pair:
        if has_field(cp, f"{name}_h") or has_field(cp, f"{name}_w"):
            return int(getattr(cp, f"{name}_h")), int(getattr(cp, f"{name}_w"))
        values = list(getattr(cp, name))
        if not values:
            return default, default
        return (int(values[0]), int(values[-1]))
    dil = list(cp.dilation) or [1]
    return {"stride": pair("stride", 1), "pad": pair("pad", 0),
            "dilation": (int(dil[0]), int(dil[-1])), "group": int(cp.group)}


def _weights(blobs: Sequence[np.ndarray], cp, layer_type: str):
    if not blobs:
        raise ModelError(layer_type, "the layer has no weights",
                         hint="pass --weights / load the caffemodel together with the prototxt")
    bias = blobs[1].reshape(-1) if cp.bias_term and len(blobs) > 1 else None
    return blobs[0], bias


@register("Convolution")
def _convolution(param, inputs, blobs, n_tops) -> list:
    cp = param.convolution_param
    weight, bias = _weights(blobs, cp, "Convolution")
    return [convolution(x, weight, bias, **conv_geometry(cp)) for x in inputs]


@register("Deconvolution")
def _deconvolution(param, inputs, blobs, n_tops) -> list:
    cp = param.convolution_param
    weight, bias = _weights(blobs, cp, "Deconvolution")
    return [deconvolution(x, weight, bias, **conv_geometry(cp)) for x in inputs]


def run_folded(param, x: np.ndarray, blobs: Sequence[np.ndarray]) -> np.ndarray:
    """Convolution of ``x`` with ``blobs = [weight, bias]`` whatever ``bias_term`` says (used by
    the engine's BatchNorm folding)."""
    return convolution(x, blobs[0], blobs[1], **conv_geometry(param.convolution_param))
