"""Affine and normalization kernels: BatchNorm, Scale and SSD's Normalize."""

from __future__ import annotations

import numpy as np

from nnbuild.engine.registry import has_field, register
from nnbuild.errors import ModelError


def _channel_shape(x: np.ndarray, axis: int, n_axes: int) -> list[int]:
    shape = [1] * x.ndim
    shape[axis:axis + n_axes] = x.shape[axis:axis + n_axes]
    return shape


def batch_norm(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
               scale_factor: np.ndarray | None = None, *, use_global_stats: bool = True,
               eps: float = 1e-5) -> np.ndarray:
    """Caffe BatchNorm (no affine part): ``(x - mean/s) / sqrt(var/s + eps)``, channel axis 1.

    Caffe stores running sums: the stored mean and variance are divided by the third blob
    ``s`` (``s == 0`` means "use 0"). With ``use_global_stats=False`` the statistics of ``x``
    itself (over every axis but 1, biased variance) are used, as Caffe does in training.
    """
    shape = _channel_shape(x, 1, 1)
    if use_global_stats:
        s = 1.0 if scale_factor is None else float(scale_factor.reshape(-1)[0])
        factor = np.float32(0.0 if s == 0 else 1.0 / s)
        m, v = mean.reshape(shape) * factor, var.reshape(shape) * factor
    else:
        axes = tuple(a for a in range(x.ndim) if a != 1)
        m = x.mean(axis=axes, keepdims=True, dtype=np.float32)
        v = ((x - m) ** 2).mean(axis=axes, keepdims=True, dtype=np.float32)
    inv = (np.float32(1) / np.sqrt(v + np.float32(eps))).astype(np.float32)
    # x * inv - m * inv: one multiply and one in-place add over the big blob.
    out = np.multiply(x, inv)
    out -= (m * inv).astype(np.float32)
    return out


def scale(x: np.ndarray, factor: np.ndarray, bias: np.ndarray | None = None, *, axis: int = 1,
          num_axes: int = 1) -> np.ndarray:
    """Caffe Scale: ``x * factor (+ bias)``, ``factor`` spanning ``num_axes`` axes from ``axis``.

    ``num_axes == -1`` means every axis from ``axis`` on (Caffe's convention).
    """
    axis %= x.ndim
    n_axes = x.ndim - axis if num_axes == -1 else num_axes
    shape = _channel_shape(x, axis, n_axes)
    out = x * factor.reshape(shape)
    if bias is not None:
        out += bias.reshape(shape)
    return out


def normalize(x: np.ndarray, factor: np.ndarray, *, across_spatial: bool = True,
              channel_shared: bool = True, eps: float = 1e-10) -> np.ndarray:
    """SSD Normalize: L2-normalize per sample (across_spatial) or per pixel over channels.

    As in ssd's normalize_layer.cpp the norm is ``sqrt(sum(x**2) + eps)``; the result is then
    multiplied by one learned scale (channel_shared) or one per channel.
    """
    axes = (1, 2, 3) if across_spatial else (1,)
    norm = np.sqrt((x * x).sum(axis=axes, keepdims=True) + np.float32(eps))
    f = np.float32(factor.reshape(-1)[0]) if channel_shared else factor.reshape(1, -1, 1, 1)
    return x / norm * f


@register("BatchNorm")
def _batch_norm(param, inputs, blobs, n_tops) -> list:
    bp = param.batch_norm_param
    if len(blobs) < 2:
        raise ModelError("BatchNorm", "the layer needs mean and variance blobs", expected="3 blobs",
                         got=len(blobs), hint="load the caffemodel")
    # Caffe's default is "global stats in the TEST phase", which is the only phase we run.
    use_global = bool(bp.use_global_stats) if has_field(bp, "use_global_stats") else True
    factor = blobs[2] if len(blobs) > 2 else None
    return [batch_norm(inputs[0], blobs[0], blobs[1], factor, use_global_stats=use_global,
                       eps=float(bp.eps))]


@register("Scale")
def _scale(param, inputs, blobs, n_tops) -> list:
    sp = param.scale_param
    x = inputs[0]
    # The scale comes from the second bottom if there is one, else it is the first blob; a bias
    # (bias_term) is then the next blob.
    factor, rest = (inputs[1], list(blobs)) if len(inputs) > 1 else (blobs[0], list(blobs[1:]))
    bias = rest[0] if sp.bias_term and rest else None
    # A scale given as a bottom spans as many axes as it has (Caffe ignores num_axes then).
    num_axes = factor.ndim if len(inputs) > 1 else int(sp.num_axes)
    return [scale(x, factor, bias, axis=int(sp.axis), num_axes=num_axes)]


@register("Normalize")
def _normalize(param, inputs, blobs, n_tops) -> list:
    npm = param.norm_param
    if not blobs:
        raise ModelError("Normalize", "the layer has no scale blob", hint="load the caffemodel")
    return [normalize(inputs[0], blobs[0], across_spatial=bool(npm.across_spatial),
                      channel_shared=bool(npm.channel_shared), eps=float(npm.eps))]
