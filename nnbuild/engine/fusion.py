"""Run-time fusion of BatchNorm + Scale into one affine pass, for blobs nobody observes.

A BatchNorm followed by its Scale costs four passes over the blob and two allocations; as one
``x * a + b`` written into the (dead) input it costs two passes and none. The fused pair gives
the same values up to float32 rounding (a few ulp). It is used only when the BatchNorm's output
is not kept, not seen by an ``on_blob`` hook and read by the Scale alone, so every blob the
caller can observe is still produced by its own layer.
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


def plan_pairs(layers: Sequence, kept: set[str] | None, readers: dict[str, int]) -> dict[int, int]:
    """Index of each fusable BatchNorm -> index of its Scale (the next layer).

    ``kept`` is None when every blob is kept (then nothing is fused); ``readers`` counts the
    layers reading each blob.
    """
    if kept is None:
        return {}
    pairs = {}
    for i, (bn, sc) in enumerate(zip(layers, layers[1:])):
        if _fusable_bn(bn) and _fusable_scale(sc, bn.tops[0]) and readers[bn.tops[0]] == 1 \
                and bn.tops[0] not in kept:
            pairs[i] = i + 1
    return pairs


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


_CACHE: dict[tuple[int, ...], tuple[list, tuple[np.ndarray, np.ndarray]]] = {}


def cached_affine(bn, scale, bn_blobs, scale_blobs, channels: int):
    """``affine`` memoised on the identity of the (read-only) weight arrays."""
    arrays = [*bn_blobs, *scale_blobs]
    key = tuple(id(a) for a in arrays) + (channels,)
    hit = _CACHE.get(key)
    if hit is not None and all(r is a for r, a in zip(hit[0], arrays)):
        return hit[1]
    result = affine(bn_blobs, bn.param.batch_norm_param if bn.param is not None else None,
                    scale_blobs, scale.param.scale_param if scale.param is not None else None,
                    channels)
    if len(_CACHE) > 4096:  # weights of many graphs: start over rather than grow forever
        _CACHE.clear()
    _CACHE[key] = (arrays, result)  # holds the arrays, so their ids stay unique while cached
    return result
