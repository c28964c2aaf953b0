"""Pointwise activation kernels and Softmax: ReLU, PReLU, TanH, Sigmoid, AbsVal, Power, Dropout."""

from __future__ import annotations

import numpy as np

from nnbuild.engine import channelwise
from nnbuild.engine.registry import register
from nnbuild.errors import ModelError


# Which two-pass form of ``x if x > 0 else a * x`` holds for every slope ``a``:
#   all a <= 1:  max(x, a*x)  (x >= 0: a*x <= x;  x < 0: a*x >= x)
#   all a >= 1:  min(x, a*x)  (the mirror image)
# Learned PReLU slopes are almost always <= 1, often negative (MobileFaceNet: all 33 layers,
# 3,178 of 7,552 slopes below 0); mixed slopes take Caffe's own four-pass formula.
_SIDES: dict[int, tuple[np.ndarray, object]] = {}


def _two_pass_form(slope):
    """np.maximum, np.minimum or None (see above); memoised for read-only slope arrays."""
    if isinstance(slope, np.ndarray) and not slope.flags.writeable:
        hit = _SIDES.get(id(slope))
        if hit is not None and hit[0] is slope:
            return hit[1]
        if len(_SIDES) > 1024:  # slopes of many graphs: start over rather than grow forever
            _SIDES.clear()
        form = _form_of(slope)
        _SIDES[id(slope)] = (slope, form)  # holds the array, so its id stays unique
        return form
    return _form_of(slope)


def _form_of(slope):
    if np.all(slope <= 1):
        return np.maximum
    if np.all(slope >= 1):
        return np.minimum
    return None


def _leaky(x: np.ndarray, slope) -> np.ndarray:
    """``x if x > 0 else slope * x`` with a scalar or per-channel ``slope`` (see ``prelu_slope``).

    Two passes over the blob when every slope is on one side of 1 (``_two_pass_form``), else
    Caffe's formula ``max(x, 0) + slope * min(x, 0)`` in four.
    """
    form = _two_pass_form(slope)
    if form is not None:
        out = channelwise.mul(x, slope)
        return form(out, x, out=out)
    # np.where with a broadcast slope is ~5x slower than these 4 passes.
    neg = np.minimum(x, np.float32(0))
    channelwise.mul(neg, slope, out=neg)
    out = np.maximum(x, np.float32(0))
    out += neg
    return out


def relu(x: np.ndarray, *, negative_slope: float = 0.0) -> np.ndarray:
    """Caffe ReLU: ``max(x, 0) + negative_slope * min(x, 0)``."""
    if negative_slope == 0.0:
        return np.maximum(x, np.float32(0))
    return _leaky(x, np.float32(negative_slope))


def leaky_inplace(x: np.ndarray, slope) -> np.ndarray:
    """``_leaky`` written into ``x`` (which the caller owns and nobody else reads)."""
    form = _two_pass_form(slope)
    if form is not None:
        return form(x, channelwise.mul(x, slope), out=x)
    neg = np.minimum(x, np.float32(0))
    channelwise.mul(neg, slope, out=neg)
    np.maximum(x, np.float32(0), out=x)
    x += neg
    return x


def prelu_slope(x: np.ndarray, slope: np.ndarray, channel_shared: bool):
    """PReLU's slope blob as a scalar, or the blob itself (one value per channel of ``x``)."""
    if channel_shared:
        return np.float32(slope.reshape(-1)[0])
    if x.ndim < 2 or slope.size != x.shape[1]:
        raise ModelError("PReLU", "the slope blob does not have one value per channel",
                         expected=x.shape[1] if x.ndim > 1 else "an input with channels",
                         got=slope.size, hint="check channel_shared and the caffemodel")
    return slope


def prelu(x: np.ndarray, slope: np.ndarray, *, channel_shared: bool = False) -> np.ndarray:
    """Caffe PReLU: a learned negative slope per channel (axis 1), or one shared slope."""
    return _leaky(x, prelu_slope(x, slope, channel_shared))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Caffe Sigmoid, via tanh so large negative inputs do not overflow ``exp``."""
    return (np.tanh(x * np.float32(0.5)) + np.float32(1)) * np.float32(0.5)


def power(x: np.ndarray, *, power: float = 1.0, scale: float = 1.0,
          shift: float = 0.0) -> np.ndarray:
    """Caffe Power: ``(shift + scale * x) ** power``."""
    y = x * np.float32(scale) + np.float32(shift)
    return y if power == 1.0 else np.power(y, np.float32(power))


def softmax(x: np.ndarray, *, axis: int = 1) -> np.ndarray:
    """Caffe Softmax along ``axis`` (max-subtracted for stability)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


@register("ReLU")
def _relu(param, inputs, blobs, n_tops) -> list:
    return [relu(inputs[0], negative_slope=float(param.relu_param.negative_slope))]


@register("PReLU")
def _prelu(param, inputs, blobs, n_tops) -> list:
    if not blobs:
        raise ModelError("PReLU", "the layer has no slope blob", hint="load the caffemodel")
    return [prelu(inputs[0], blobs[0], channel_shared=bool(param.prelu_param.channel_shared))]


@register("TanH")
def _tanh(param, inputs, blobs, n_tops) -> list:
    return [np.tanh(inputs[0])]


@register("Sigmoid")
def _sigmoid(param, inputs, blobs, n_tops) -> list:
    return [sigmoid(inputs[0])]


@register("AbsVal")
def _absval(param, inputs, blobs, n_tops) -> list:
    return [np.abs(inputs[0])]


@register("Power")
def _power(param, inputs, blobs, n_tops) -> list:
    pp = param.power_param
    return [power(inputs[0], power=float(pp.power), scale=float(pp.scale), shift=float(pp.shift))]


@register("Dropout")
def _dropout(param, inputs, blobs, n_tops) -> list:
    # Caffe scales by 1/(1-p) while training, so inference is the identity.
    return [inputs[0]]


@register("Softmax")
def _softmax(param, inputs, blobs, n_tops) -> list:
    x = inputs[0]
    axis = int(param.softmax_param.axis)
    return [softmax(x, axis=axis % x.ndim)]
