"""fastquant.group_codes is bit-exact with the specification's per-group quantizer."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS

from nnbuild.caffe.io import load
from nnbuild.nnie import quantize as nq
from nnbuild.nnie.fastquant import group_codes


def edge_weights(dtype, bits: int) -> np.ndarray:
    """Random channels over 20 octaves, plus exact levels, midpoints, half-smallest, zeros."""
    rng = np.random.default_rng(bits)
    w = rng.normal(0, 1, (64, 1, 3, 3)) * np.exp(rng.normal(0, 3, (64, 1, 1, 1)))
    w[0] = 0.0
    w[1, 0, 0, 0] = 1e-30
    steps, qmax = nq.FORMATS[bits]
    for channel in range(2, 10):
        k = nq.top_index(float(np.abs(w[channel]).max()), bits)
        z = k - qmax
        w[channel].flat[:5] = [2.0 ** ((z + 7) / steps), 2.0 ** ((z + 7.5) / steps),
                               -0.5 * 2.0 ** (z / steps), -0.5 * 2.0 ** ((z + 1) / steps),
                               0.5 * 2.0 ** (z / steps)]
    return w.astype(dtype)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_spec_on_edges(bits, dtype):
    w = edge_weights(dtype, bits)
    codes, values = group_codes(w, 64, bits)
    np.testing.assert_array_equal(codes, nq.encode_weights(w, 64, bits))
    np.testing.assert_array_equal(values, nq.quantize_weights(w, 64, bits))
    assert codes.dtype == nq.CODES[bits][0] and values.dtype == np.float32


@pytest.mark.parametrize("bits", [8, 16])
def test_matches_spec_on_every_depthwise_layer_of_retinaface(bits):
    graph = load(MODELS / "retinaface-mnet25" / "mnet.prototxt",
                 MODELS / "retinaface-mnet25" / "mnet.caffemodel").graph
    depthwise = [layer for layer in graph.layers if layer.type == "Convolution"
                 and layer.param.convolution_param.group > 1]
    assert len(depthwise) == 13
    for layer in depthwise:
        groups = layer.param.convolution_param.group
        codes, _ = group_codes(layer.blobs[0], groups, bits)
        np.testing.assert_array_equal(codes, nq.encode_weights(layer.blobs[0], groups, bits))


def test_dense_as_one_group():
    w = edge_weights(np.float32, 8).reshape(8, 72)
    np.testing.assert_array_equal(group_codes(w, 1, 8)[0], nq.encode(w, float(np.abs(w).max())))
