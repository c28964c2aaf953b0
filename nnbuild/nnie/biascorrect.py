"""Bias correction: cancel the mean output error that NNIE's weight rounding gives every layer.

Why: the mapper rounds each weight once, when it compiles the model, to its logarithmic grid
(``nnbuild.nnie.quantize``; the rounding is deterministic and nnbuild's is checked against real
``.wk`` bytes, tests/nnie/wk/). A layer computes ``(W + dW) x`` instead of ``W x``: an error
``dW x`` whose mean over pictures and positions, ``dW E[x]``, is the same offset for every
picture. Offsets do not average out downstream; a network amplifies them (measured on
``retinaface-640`` int8: each layer run alone keeps cosine >= 0.9996, the whole network ends at
0.94 and moves between 0.909 and 0.946 when nothing but the rounding pattern of its depthwise
weights changes). NNIE keeps biases in its wide accumulator (nnie-facts.md §2), so subtracting
the expected offset from the float bias cancels it on the board too.

What: for every layer whose weights NNIE quantizes (Convolution, Deconvolution, InnerProduct),
``delta[o] = -mean over pictures and output positions of (dW * x)[o]`` with ``x`` the layer's
input in the *float* network on the calibration pictures (the values the quantized network
should reproduce) and ``dW`` the rounding error of its weights at the layer's precision (8/16-bit
per ``quant.mode`` and ``high_precision``; per-channel ranges for grouped layers). This is the
empirical bias correction of Nagel et al., "Data-Free Quantization Through Weight Equalization and
Bias Correction" (ICCV 2019, section 4.2), for NNIE's quantizer. Convolution offsets are
exact, padding and stride included: the sum of ``x`` under each kernel tap over all output positions
(``tap_sums``) times ``dW``; InnerProduct uses the input mean; Deconvolution runs the layer with
``dW`` and averages.

The corrected model is a different float model (biases moved by the deltas), so the calibrate
stage writes it, calibrates its ranges, and the map stage hands it to the mapper; the check
stage compares its simulation with the uncorrected float model. Activation rounding is not
corrected: its error depends on the picture.
"""

from __future__ import annotations

import pathlib
from typing import Iterable, Mapping

import numpy as np

from nnbuild.ir import Graph, Layer
from nnbuild.nnie.fastquant import group_codes
from nnbuild.nnie.quantpoints import quant_points

MODEL_FILES = ("model.prototxt", "model.caffemodel")
REPORT = "bias-correction.json"
BIAS_PARAM = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
              "InnerProduct": "inner_product_param"}


def rounding_errors(graph: Graph, mode: str | int) -> dict[str, np.ndarray]:
    """Layer -> ``dW`` (float64), NNIE's rounded weights minus the float ones, at ``mode``."""
    points = quant_points(graph, mode)
    errors = {}
    for layer in graph.layers:
        bits = points.weights.get(layer.name)
        if bits is None or layer.type not in BIAS_PARAM:
            continue
        groups = points.groups.get(layer.name, 1)
        weights = np.asarray(layer.blobs[0])
        # without ranges: each group's own abs-max, the calibrated weight range of simulate.prepare
        _, rounded = group_codes(weights, groups, bits)
        errors[layer.name] = np.asarray(rounded, np.float64) - weights.astype(np.float64)
    return errors


def tap_sums(x: np.ndarray, kernel: tuple[int, int], geometry: Mapping) -> tuple[np.ndarray, int]:
    """(``S[c, i, j]``, positions): the sum of input channel ``c`` under kernel tap ``(i, j)``
    over every output position of every picture of ``x`` (N, C, H, W), zero padding included,
    and the number of output positions (N * Ho * Wo)."""
    from nnbuild.engine.conv import _taps, conv_out_size
    from nnbuild.engine.depthwise import padded

    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (kernel, geometry["stride"], geometry["pad"],
                                              geometry["dilation"])
    n, c, h, w = x.shape
    out_hw = conv_out_size(h, kh, sh, ph, dh), conv_out_size(w, kw, sw, pw, dw)
    xp = padded(x, (ph, pw))
    sums = np.zeros((c, kh, kw))
    for i, j, rows, cols in _taps((kh, kw), (sh, sw), (dh, dw), out_hw):
        sums[:, i, j] = xp[:, :, rows, cols].sum(axis=(0, 2, 3), dtype=np.float64)
    return sums, n * out_hw[0] * out_hw[1]


def _conv_offset(layer: Layer, x: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, int]:
    """(sum over positions of ``(dW * x)[o]``, positions) for a Convolution."""
    from nnbuild.engine.conv import conv_geometry

    geometry = conv_geometry(layer.param.convolution_param)
    out, per_group, kh, kw = error.shape
    sums, positions = tap_sums(x, (kh, kw), geometry)
    groups = geometry["group"]
    total = np.empty(out)
    step = out // groups
    for g in range(groups):
        block = sums[g * per_group:(g + 1) * per_group]  # (C/group, kh, kw)
        total[g * step:(g + 1) * step] = np.tensordot(error[g * step:(g + 1) * step], block,
                                                      axes=3)
    return total, positions


def _offset(layer: Layer, x: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, int]:
    """(sum over positions of the output error of ``dW``, positions) for one picture batch."""
    if layer.type == "Convolution":
        return _conv_offset(layer, x, error)
    if layer.type == "InnerProduct":
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        return error.reshape(error.shape[0], -1) @ flat.sum(axis=0), x.shape[0]
    from nnbuild.engine import run_layer

    zeros = np.zeros(error.shape[1] * int(layer.param.convolution_param.group))
    out = run_layer(layer, [x], weights=[error.astype(np.float32), zeros.astype(np.float32)])[0]
    return out.sum(axis=(0, 2, 3), dtype=np.float64), out.shape[0] * out.shape[2] * out.shape[3]


def corrections(graph: Graph, mode: str | int, feeds: Iterable[Mapping[str, np.ndarray]]
                ) -> dict[str, np.ndarray]:
    """Layer -> bias delta (float64, one per output channel) that cancels the mean output error
    of its rounded weights over ``feeds`` (see module docstring). Layers whose weights round
    exactly get zeros."""
    return corrections_for(graph, [mode], feeds)[mode]


def corrections_for(graph: Graph, modes: Iterable[str | int],
                    feeds: Iterable[Mapping[str, np.ndarray]]) -> dict:
    """``corrections`` for several modes from one pass over ``feeds``: mode -> layer -> delta.

    A layer's delta depends only on its own weights, its precision and its float input, so the
    int8 and int16 tables together give the deltas of any mixed layer set (``suggest-hp``)."""
    from nnbuild.engine import run

    errors = {mode: rounding_errors(graph, mode) for mode in modes}
    layers = [layer for layer in graph.layers if any(layer.name in e for e in errors.values())]
    sums = {mode: {name: np.zeros(e.shape[0]) for name, e in table.items()}
            for mode, table in errors.items()}
    counts = {layer.name: 0 for layer in layers}
    wanted = {layer.bottoms[0] for layer in layers}
    for feed in feeds:
        blobs = run(graph, dict(feed), sorted(wanted))
        for layer in layers:
            positions = 0
            for mode, table in errors.items():
                if layer.name in table:
                    total, positions = _offset(layer, blobs[layer.bottoms[0]], table[layer.name])
                    sums[mode][layer.name] += total
            counts[layer.name] += positions
    return {mode: {name: -total / max(counts[name], 1) for name, total in table.items()}
            for mode, table in sums.items()}


def apply(graph: Graph, deltas: Mapping[str, np.ndarray]) -> Graph:
    """A copy of ``graph`` with each named layer's bias moved by its delta (a bias is added,
    ``bias_term: true``, to a layer that has none)."""
    g = graph.copy()
    for layer in g.layers:
        delta = deltas.get(layer.name)
        if delta is None:
            continue
        sub = getattr(layer.param, BIAS_PARAM[layer.type])
        if sub.bias_term and len(layer.blobs) > 1:
            shape = np.shape(layer.blobs[1])
            bias = np.asarray(layer.blobs[1], np.float64).reshape(-1)
        else:
            sub.bias_term = True
            shape, bias = (len(delta),), np.zeros(len(delta))
        new = (bias + delta).astype(np.float32).reshape(shape)
        new.setflags(write=False)  # weight arrays are shared between graph copies
        layer.blobs = [layer.blobs[0], new] + list(layer.blobs[2:])
    return g


def summary(graph: Graph, deltas: Mapping[str, np.ndarray]) -> dict:
    """JSON-ready per-layer record: the largest |delta| and its size relative to the layer's
    largest |bias| before (``None`` for a layer without bias)."""
    layers = {}
    by_name = {layer.name: layer for layer in graph.layers}
    for name, delta in deltas.items():
        layer = by_name[name]
        largest = float(np.max(np.abs(delta))) if len(delta) else 0.0
        bias = (float(np.max(np.abs(layer.blobs[1]))) if len(layer.blobs) > 1
                and getattr(layer.param, BIAS_PARAM[layer.type]).bias_term else None)
        layers[name] = {"max_abs_delta": largest,
                        "relative_to_bias": largest / bias if bias else None}
    return {"version": 1, "method": "empirical bias correction of the weight rounding error "
            "(nnbuild.nnie.biascorrect)", "layers": layers}


def compiled_model(patch: pathlib.Path, calibrate: pathlib.Path) -> tuple[pathlib.Path, ...]:
    """(prototxt, caffemodel) the mapper compiles: the calibrate stage's bias-corrected model
    when it wrote one (``quant.bias_correction``), else the patch stage's."""
    folder = calibrate if (calibrate / MODEL_FILES[1]).is_file() else patch
    return tuple(folder / name for name in MODEL_FILES)
