"""Helpers shared by converters: spatial attributes (pads, auto_pad) and constant checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnbuild.onnx.context import Context


def pair(values, default: int) -> tuple[int, int]:
    """An ONNX per-axis attribute for 2-D ops as (h, w)."""
    values = list(values) if values is not None else []
    return (int(values[0]), int(values[1])) if len(values) == 2 else (default, default)


def symmetric_pads(ctx: Context, attrs: dict, in_hw: tuple[int, int], kernel: tuple[int, int],
                   strides: tuple[int, int], dilations: tuple[int, int] = (1, 1)
                   ) -> tuple[int, int]:
    """(pad_h, pad_w) from ``pads``/``auto_pad``; refuses asymmetric padding.

    Caffe pads both sides of an axis by the same amount; an ONNX model padding one side more
    (TensorFlow-style SAME with an even kernel, or an explicit asymmetric ``pads``) has no
    equivalent without a Pad layer, which NNIE lacks.
    """
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
                  for n, k, s, d in zip(in_hw, kernel, strides, dilations)]
        begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in totals]
        pads = begin + [t - b for t, b in zip(totals, begin)]
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if len(pads) != 4:
        raise ctx.refuse(f"pads {pads} are not 2-D", "only 2-D (N, C, H, W) ops convert")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise ctx.refuse(f"asymmetric pads {pads} (begin h, w, end h, w)",
                         "Caffe pads both sides equally: re-export with symmetric padding "
                         "(PyTorch padding=k//2 with an odd kernel) or pad the input on the CPU")
    return pads[0], pads[1]


def weight(ctx: Context, tensor: str, what: str) -> np.ndarray:
    """The constant ``tensor`` as float32; refuses run-time weights."""
    value = ctx.const(tensor)
    if value is None:
        raise ctx.refuse(f"its {what} {tensor!r} is computed at run time",
                         "NNIE layers take constant weights; fold or export them as "
                         "initializers")
    return np.asarray(value, dtype=np.float32)


def four_d(ctx: Context, tensor: str) -> tuple[int, int, int, int]:
    """The (N, C, H, W) shape of ``tensor``; refuses other ranks."""
    shape = ctx.shape(tensor)
    if len(shape) != 4:
        raise ctx.refuse(f"input {tensor!r} has shape {list(shape)}, not (N, C, H, W)",
                         "only 2-D image ops convert (NNIE runs 4-D feature maps)")
    return shape  # type: ignore[return-value]


def set_geometry(cp: Any, kernel, stride, pad, dilation=(1, 1)) -> None:
    """Fill a Caffe ConvolutionParameter's spatial fields (explicit ``*_h``/``*_w`` form)."""
    cp.kernel_h, cp.kernel_w = kernel
    cp.stride_h, cp.stride_w = stride
    cp.pad_h, cp.pad_w = pad
    if tuple(dilation) != (1, 1):
        cp.dilation.extend(dilation if dilation[0] != dilation[1] else dilation[:1])
