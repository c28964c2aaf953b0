"""Weight sanity checks that need no shape inference: blob counts and parameter-given dims.

Full checks against inferred input shapes (e.g. convolution input channels) live in
``nnbuild/shapes.py``; these catch a caffemodel that does not belong to the prototxt as soon as it
is loaded.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from nnbuild.errors import ModelError

# Layer types whose deploy form needs learned blobs (missing ones are reported by io.load).
NEEDS_WEIGHTS = frozenset({"Convolution", "Deconvolution", "InnerProduct", "BatchNorm", "Scale",
                           "PReLU", "Bias", "Normalize"})

_CHECKS: dict[str, Callable[[Any], None]] = {}


def _register(*types: str) -> Callable:
    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        for t in types:
            if t in _CHECKS:
                raise ValueError(f"weight check for {t!r} registered twice")
            _CHECKS[t] = fn
        return fn
    return wrap


def check_weights(layer: Any) -> None:
    """Raise ModelError when ``layer.blobs`` cannot belong to ``layer.param``.

    Layers without blobs are not checked here (``io.load`` reports them as missing).
    """
    if layer.blobs and layer.type in _CHECKS:
        _CHECKS[layer.type](layer)


def kernel_hw(conv: Any) -> tuple[int, int]:
    """(kernel_h, kernel_w) of a 2-D ConvolutionParameter."""
    if conv.HasField("kernel_h") or conv.HasField("kernel_w"):
        return int(conv.kernel_h), int(conv.kernel_w)
    ks = list(conv.kernel_size) or [0]
    return int(ks[0]), int(ks[1] if len(ks) > 1 else ks[0])


def _fail(layer: Any, what: str, expected: object, got: object) -> None:
    raise ModelError(f"layer {layer.name!r} ({layer.type})", what, expected=expected, got=got,
                     hint="the caffemodel does not match the prototxt; use the caffemodel "
                          "trained with this prototxt")


def _expect_count(layer: Any, n: int, why: str) -> None:
    if len(layer.blobs) != n:
        _fail(layer, f"wrong number of weight blobs ({why})", f"{n} blobs",
              f"{len(layer.blobs)} blobs with shapes {[list(b.shape) for b in layer.blobs]}")


def _expect_size(layer: Any, index: int, size: int, why: str) -> None:
    if layer.blobs[index].size != size:
        _fail(layer, f"blob {index} has the wrong size ({why})", f"{size} values",
              f"{layer.blobs[index].size} values (shape {list(layer.blobs[index].shape)})")


@_register("Convolution", "Deconvolution")
def _conv(layer: Any) -> None:
    p = layer.param.convolution_param
    _expect_count(layer, 1 + int(p.bias_term), f"bias_term: {str(p.bias_term).lower()}")
    w = layer.blobs[0]
    if w.ndim != 4:
        _fail(layer, "weight blob is not 4-D", "shape (out, in/group, kh, kw)", list(w.shape))
    # Convolution weights are (num_output, C/group, kh, kw); Deconvolution's are
    # (C, num_output/group, kh, kw) (Caffe swaps the roles of input and output).
    outs = w.shape[0] if layer.type == "Convolution" else w.shape[1] * p.group
    if outs != p.num_output:
        _fail(layer, "weight blob does not match num_output",
              f"num_output {p.num_output}", f"weight shape {list(w.shape)}")
    if tuple(w.shape[2:]) != kernel_hw(p):
        _fail(layer, "weight blob does not match the kernel size",
              f"kernel {list(kernel_hw(p))}", f"weight shape {list(w.shape)}")
    if p.bias_term:
        _expect_size(layer, 1, p.num_output, "one bias per output")


@_register("InnerProduct")
def _inner_product(layer: Any) -> None:
    p = layer.param.inner_product_param
    _expect_count(layer, 1 + int(p.bias_term), f"bias_term: {str(p.bias_term).lower()}")
    w = layer.blobs[0]
    # Weights are N x K (K x N with transpose); legacy files store them as 1 x 1 x N x K.
    rows = (w.shape[-1] if p.transpose else w.shape[-2]) if w.ndim >= 2 else -1
    if rows != p.num_output or math.prod(w.shape[:-2]) != 1:
        _fail(layer, "weight blob does not match num_output",
              f"num_output {p.num_output} ({'K x N' if p.transpose else 'N x K'})",
              f"weight shape {list(w.shape)}")
    if p.bias_term:
        _expect_size(layer, 1, p.num_output, "one bias per output")


@_register("BatchNorm")
def _batch_norm(layer: Any) -> None:
    _expect_count(layer, 3, "mean, variance, moving-average factor")
    _expect_size(layer, 1, layer.blobs[0].size, "one variance per mean")
    _expect_size(layer, 2, 1, "the moving-average factor is a scalar")


@_register("Scale")
def _scale(layer: Any) -> None:
    p = layer.param.scale_param
    # With two bottoms the scale comes from bottom[1]: only the optional bias is learned.
    n = int(p.bias_term) + (1 if len(layer.bottoms) == 1 else 0)
    _expect_count(layer, n, f"{len(layer.bottoms)} bottom(s), bias_term: "
                            f"{str(p.bias_term).lower()}")
    if n == 2:
        _expect_size(layer, 1, layer.blobs[0].size, "one bias per scale")


@_register("Bias")
def _bias(layer: Any) -> None:
    _expect_count(layer, 1 if len(layer.bottoms) == 1 else 0, f"{len(layer.bottoms)} bottom(s)")


@_register("PReLU")
def _prelu(layer: Any) -> None:
    _expect_count(layer, 1, "one slope blob")
    if layer.param.prelu_param.channel_shared:
        _expect_size(layer, 0, 1, "channel_shared: true")


@_register("Normalize")
def _normalize(layer: Any) -> None:
    _expect_count(layer, 1, "one scale blob")
    if layer.param.norm_param.channel_shared:
        _expect_size(layer, 0, 1, "channel_shared: true")
