"""Pooling kernel with Caffe's exact output size, window clipping and AVE divisor."""

from __future__ import annotations

import math

import numpy as np

from nnbuild.engine.registry import has_field, register
from nnbuild.errors import ModelError

MAX, AVE = 0, 1  # PoolingParameter.PoolMethod values in caffe.proto


def pool_out_size(size: int, k: int, s: int, p: int, ceil: bool = True) -> int:
    """Caffe's pooled size: ceil rounding, minus one if the last window starts in the padding.

    Caffe (pooling_layer.cpp) rounds up so the last partial window is kept, then drops it again
    when it would start at or after ``size + pad`` (it would cover padding only).
    """
    rounding = math.ceil if ceil else math.floor
    out = int(rounding((size + 2 * p - k) / s)) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def _ave_counts(size: int, out: int, k: int, s: int, p: int) -> np.ndarray:
    """Per output position, Caffe's AVE divisor along one axis.

    The window is clipped to ``[-pad, size + pad)`` *before* counting (padding counts) and only
    afterwards to the real input, so the last window of a ceil-rounded output counts fewer cells.
    """
    starts = np.arange(out) * s - p
    ends = np.minimum(starts + k, size + p)
    return (ends - starts).astype(np.float32)


def pooling(x: np.ndarray, *, pool: int = MAX, kernel: tuple[int, int] = (1, 1),
            stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0),
            global_pooling: bool = False, ceil: bool = True) -> np.ndarray:
    """Caffe Pooling on ``x`` (N, C, H, W); ``pool`` is ``MAX`` (0) or ``AVE`` (1)."""
    if pool not in (MAX, AVE):
        raise ModelError("Pooling", "unsupported pooling method", expected="MAX (0) or AVE (1)",
                         got=pool, hint="STOCHASTIC pooling is training-only; use MAX or AVE")
    n, c, h, w = x.shape
    if global_pooling:
        kernel, stride, pad = (h, w), (1, 1), (0, 0)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    ho, wo = pool_out_size(h, kh, sh, ph, ceil), pool_out_size(w, kw, sw, pw, ceil)
    # Padded canvas large enough for every (clipped) window; MAX pads with -inf so padding never
    # wins, AVE with 0 so the sum only sees real cells.
    hp, wp = max((ho - 1) * sh + kh, h + ph), max((wo - 1) * sw + kw, w + pw)
    fill = -np.inf if pool == MAX else 0.0
    xp = np.full((n, c, hp, wp), fill, dtype=np.float32)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    reduce = np.maximum if pool == MAX else np.add
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            out = tap.copy() if out is None else reduce(out, tap, out=out)
    if pool == AVE:
        out /= np.outer(_ave_counts(h, ho, kh, sh, ph), _ave_counts(w, wo, kw, sw, pw))
    return out


def pool_geometry(pp) -> dict:
    """Keyword arguments of ``pooling`` from a PoolingParameter (``*_h``/``*_w`` win)."""
    def pair(name: str, default: int) -> tuple[int, int]:
        if has_field(pp, f"{name}_h") or has_field(pp, f"{name}_w"):
            return int(getattr(pp, f"{name}_h")), int(getattr(pp, f"{name}_w"))
        field = "kernel_size" if name == "kernel" else name
        value = int(getattr(pp, field)) if has_field(pp, field) else default
        return value, value
    # round_mode (CEIL=0 / FLOOR=1) exists only in some Caffe forks; BVLC always rounds up.
    ceil = not (has_field(pp, "round_mode") and int(pp.round_mode) == 1)
    return {"pool": int(pp.pool), "kernel": pair("kernel", 1), "stride": pair("stride", 1),
            "pad": pair("pad", 0), "global_pooling": bool(pp.global_pooling), "ceil": ceil}


@register("Pooling")
def _pooling(param, inputs, blobs, n_tops) -> list:
    return [pooling(inputs[0], **pool_geometry(param.pooling_param))]
