"""nniefacelib's BatchNorm fold, reproduced operation for operation (wk-format.md §4.1).

The 8-bit RetinaFace ``.wk`` was compiled from weights merged by nniefacelib's
``tools/caffe_merge_bn_tool.py``. A weight 2e-7 from a rounding boundary decides a code, so the
fold must be the tool's, in its dtypes and order:

    sf = 1 / scale_factor (if non-zero); mean = mean * sf; var = var * sf     (float32)
    rstd = 1 / sqrt(var + eps)                                                (float32)
    W = W * rstd * gamma      (per output channel; axis 1 for Deconvolution)  (float32)
    b = (b - mean) * rstd * gamma + beta                                      (float64 when the
                                                  conv has no bias: the tool starts from zeros)

and the results are stored as float32 (the caffemodel's type). A float64 fold flips one weight of
``rf_c1_red_conv``. Pairs are found as the tool finds them: a Convolution/Deconvolution whose
only reader is a BatchNorm, whose only reader is a Scale.
"""

from __future__ import annotations

import numpy as np

from nnbuild.ir import Graph, Layer


def _chain(graph: Graph, layer: Layer, consumers) -> tuple[Layer, Layer] | None:
    readers = consumers.get(layer.tops[0], [])
    if len(readers) != 1 or readers[0].type != "BatchNorm":
        return None
    batchnorm = readers[0]
    readers = consumers.get(batchnorm.tops[0], [])
    if len(readers) != 1 or readers[0].type != "Scale" or len(readers[0].blobs) < 2:
        return None
    return batchnorm, readers[0]


def fold_one(layer: Layer, batchnorm: Layer, scale: Layer) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) of ``layer`` with ``batchnorm`` + ``scale`` merged, as the tool does."""
    weights = np.asarray(layer.blobs[0], dtype=np.float32)
    deconv = layer.type == "Deconvolution"
    channels = weights.shape[1] if deconv else weights.shape[0]
    bias = (np.asarray(layer.blobs[1], dtype=np.float32) if len(layer.blobs) > 1
            else np.zeros(channels))
    mean, var, factor = (np.asarray(b, dtype=np.float32) for b in batchnorm.blobs[:3])
    gamma, beta = (np.asarray(b, dtype=np.float32) for b in scale.blobs[:2])
    if factor != 0:
        factor = 1.0 / factor
    mean, var = mean * factor, var * factor
    rstd = 1.0 / np.sqrt(var + batchnorm.param.batch_norm_param.eps)
    shape = (1, channels, 1, 1) if deconv else (channels, 1, 1, 1)
    weights = weights * rstd.reshape(shape) * gamma.reshape(shape)
    bias = (bias - mean) * rstd * gamma + beta
    return weights.astype(np.float32), bias.astype(np.float32)


def fold_nniefacelib(graph: Graph) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Layer name -> merged (weights, bias) for every conv the tool would merge."""
    consumers = graph.consumers()
    out = {}
    for layer in graph.layers:
        if layer.type in ("Convolution", "Deconvolution") and layer.blobs:
            chain = _chain(graph, layer, consumers)
            if chain is not None:
                out[layer.name] = fold_one(layer, *chain)
    return out
