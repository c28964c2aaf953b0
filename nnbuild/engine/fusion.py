"""Run-time fusion of [Convolution +] BatchNorm + Scale [+ ReLU/PReLU] for unobserved blobs.

A BatchNorm followed by its Scale costs four passes over the blob and two allocations. After a
Convolution the pair folds into the convolution's weights and bias (``W * a``, ``bias * a + b``,
nnie-facts.md §5 "BatchNorm+Scale folded"), so it costs nothing; elsewhere it becomes one
``x * a + b``. Values agree with the layer-by-layer run up to float32 rounding (relative 1e-5
on RetinaFace, tested). Fusion is used only when the intermediate blobs are not kept, not seen
by an ``on_blob`` hook and read by the next layer of the group alone, so every blob the caller
can observe is still produced by its own layer; ``keep="all"`` disables it. A ReLU/PReLU
ending a group (also right after a lone Convolution) runs in place on the group's fresh result.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nnbuild.engine.normalization import batch_norm
from nnbuild.engine.registry import has_field


def _fusable_bn(layer) -> bool:
    bp = layer.param.batch_norm_param if layer.param is not None else None
    global_stats = bp is None or not has_field(bp, "use_global_stats") or bp.use_global_stats
    return (layer.type == "BatchNorm" and len(layer.bottoms) == len(layer.tops) == 1
            and global_stats)


def _fusable_scale(layer, blob: str) -> bool:
    sp = layer.param.scale_param if layer.param is not None else None
    return (layer.type == "Scale" and layer.bottoms == [blob] and len(layer.tops) == 1
            and (sp is None or (int(sp.axis) == 1 and int(sp.num_axes) == 1)))


def plan(layers: Sequence, kept: set[str] | None, readers: dict[str, int]) -> dict[int, int]:
    """Start index -> length of each fused group: [Convolution,] BatchNorm, Scale [, activation]
    or Convolution, activation.

    ``kept`` is None when every blob is kept (then nothing is fused); ``readers`` counts the
    layers reading each blob.
    """
    if kept is None:
        return {}
    groups: dict[int, int] = {}
    for i, (bn, sc) in enumerate(zip(layers, layers[1:])):
        mid = bn.tops[0] if bn.tops else None
        if not (_fusable_bn(bn) and _fusable_scale(sc, mid) and readers[mid] == 1
                and mid not in kept):
            continue
        conv = layers[i - 1] if i > 0 else None
        x = bn.bottoms[0]
        if conv is not None and conv.type == "Convolution" and conv.tops == [x] \
                and len(conv.bottoms) == 1 and readers[x] == 1 and x not in kept \
                and (i - 1) not in groups:
            groups[i - 1] = 3
        else:
            groups[i] = 2
    for i, layer in enumerate(layers):  # a lone Convolution may still take its activation
        if layer.type == "Convolution" and i not in groups and len(layer.tops) == 1:
            groups[i] = 1
    sized = {i: n + _takes_activation(layers, i + n - 1, kept, readers)
             for i, n in groups.items()}
    return {i: n for i, n in sized.items() if n > 1}


ACTIVATIONS = ("ReLU", "PReLU")


def _takes_activation(layers: Sequence, end: int, kept: set[str], readers) -> int:
    """1 if the layer after ``end`` is a ReLU/PReLU that may run in place on ``end``'s top."""
    if end + 1 >= len(layers):
        return 0
    act, top = layers[end + 1], layers[end].tops[0]
    return int(act.type in ACTIVATIONS and act.bottoms == [top] and len(act.tops) == 1
               and readers[top] == 1 and top not in kept)


def affine(bn_blobs: Sequence[np.ndarray], bn_param, scale_blobs: Sequence[np.ndarray],
           scale_param, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b), shaped (1, C, 1, 1), with Scale(BatchNorm(x)) == x * a + b."""
    eps = float(bn_param.eps) if bn_param is not None else 1e-5
    factor = bn_blobs[2] if len(bn_blobs) > 2 else None
    # BatchNorm applied to the identity's two points 0 and 1 gives its shift and slope, using
    # exactly the kernel's own reading of the stored statistics.
    probe = np.zeros((2, channels, 1, 1), np.float32)
    probe[1] = 1
    y = batch_norm(probe, bn_blobs[0], bn_blobs[1], factor, eps=eps)
    shift, slope = y[0], y[1] - y[0]
    s = scale_blobs[0].reshape(1, channels, 1, 1)
    bias_term = scale_param is not None and scale_param.bias_term and len(scale_blobs) > 1
    b = shift * s + (scale_blobs[1].reshape(1, channels, 1, 1) if bias_term else 0)
    return (slope * s).astype(np.float32), np.asarray(b, dtype=np.float32)


def _read_only(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Memoised results are shared by every later run: lock them like the weights they
    come from (kernels may then cache what they derive from them, e.g. ``channelwise``)."""
    for array in arrays:
        array.flags.writeable = False
    return arrays


_CACHE: dict[tuple[int, ...], tuple[list, tuple[np.ndarray, np.ndarray]]] = {}


def cached_affine(bn, scale, bn_blobs, scale_blobs, channels: int):
    """``affine`` memoised on the identity of the (read-only) weight arrays."""
    arrays = [*bn_blobs, *scale_blobs]
    bn_param = bn.param.batch_norm_param if bn.param is not None else None
    scale_param = scale.param.scale_param if scale.param is not None else None
    # the parameters that enter the result are part of the key: layers may be edited in place
    key = tuple(id(a) for a in arrays) + (channels, len(arrays),
                                          None if bn_param is None else float(bn_param.eps),
                                          None if scale_param is None else scale_param.bias_term)
    hit = _CACHE.get(key)
    if hit is not None and all(r is a for r, a in zip(hit[0], arrays)):
        return hit[1]
    result = _read_only(affine(bn_blobs, bn_param, scale_blobs, scale_param, channels))
    if len(_CACHE) > 512:  # weights of many graphs: start over rather than grow forever
        _CACHE.clear()
    _CACHE[key] = (arrays, result)  # holds the arrays, so their ids stay unique while cached
    return result


_FOLDED: dict[tuple[int, ...], tuple[list, tuple[np.ndarray, np.ndarray]]] = {}


def cached_fold(conv, conv_blobs: Sequence[np.ndarray], a: np.ndarray, b: np.ndarray):
    """Convolution weights and bias with the affine ``(a, b)`` folded in, memoised."""
    arrays = [*conv_blobs, a, b]
    has_bias = conv.param is None or conv.param.convolution_param.bias_term
    key = tuple(id(x) for x in arrays) + (len(arrays), has_bias)
    hit = _FOLDED.get(key)
    if hit is not None and all(r is x for r, x in zip(hit[0], arrays)):
        return hit[1]
    w = conv_blobs[0]
    scale = a.reshape(-1)
    bias = conv_blobs[1].reshape(-1) if has_bias and len(conv_blobs) > 1 else 0
    folded = _read_only(((w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32),
                         (bias * scale + b.reshape(-1)).astype(np.float32)))
    if len(_FOLDED) > 512:  # weights of many graphs: start over rather than grow forever
        _FOLDED.clear()
    _FOLDED[key] = (arrays, folded)
    return folded
