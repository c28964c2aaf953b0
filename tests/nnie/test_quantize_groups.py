"""Per-group weight ranges (quantize.py rule 6, wk-format.md §4.2) vs an independent formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import MODELS

from nnbuild.caffe.io import load
from nnbuild.nnie import quantize as nq
from nnbuild.nnie.calibrate import Ranges
from nnbuild.nnie.quantfile import arrays, summary
from nnbuild.nnie.simulate import prepare


def reference_codes(values: np.ndarray, m: float, bits: int) -> np.ndarray:
    """nnie-facts.md §4 written out element by element, float64 (8-bit codes / 16-bit words)."""
    steps, qmax = {8: (16, 127), 16: (128, 1407)}[bits]
    k = math.floor(steps * math.log2(m))
    z = k - qmax
    out = []
    for x in values.astype(np.float64).ravel():
        sign = 0x80 if bits == 8 else 0x8000
        shift = 0 if bits == 8 else 2
        if x == 0 or abs(x) < 0.5 * 2 ** ((z + (1 if x < 0 else 0)) / steps):
            out.append(sign)
            continue
        q = math.floor(steps * math.log2(abs(x)) - z + 0.5)
        q = min(max(q, 1 if x < 0 else 0), qmax)
        out.append((sign if x < 0 else 0) | q << shift)
    return np.array(out).reshape(values.shape)


@pytest.fixture(scope="module")
def mnet():
    return load(MODELS / "retinaface-mnet25" / "mnet.prototxt",
                MODELS / "retinaface-mnet25" / "mnet.caffemodel").graph


@pytest.mark.parametrize("bits", [8, 16])
def test_depthwise_codes_per_channel(mnet, bits):
    weights = mnet.layer("mobilenet0_conv3").blobs[0]          # (16, 1, 3, 3), group 16
    codes = nq.encode_weights(weights, 16, bits)
    ranges = nq.weight_ranges(weights, 16)
    for channel in range(16):
        m = float(np.abs(weights[channel]).max())
        assert ranges[channel] == m
        np.testing.assert_array_equal(codes[channel], reference_codes(weights[channel], m, bits))
    # per layer would differ: the channel maxima differ, so do their top levels
    assert not np.array_equal(codes, nq.encode(weights, float(np.abs(weights).max()), bits))
    np.testing.assert_array_equal(nq.decode_weights(codes, ranges, 16, bits),
                                  nq.quantize_weights(weights, 16, bits))


def test_dense_layer_keeps_one_range(mnet):
    weights = mnet.layer("mobilenet0_conv4").blobs[0]
    np.testing.assert_array_equal(nq.quantize_weights(weights, 1, 8),
                                  nq.quantize(weights, float(np.abs(weights).max()), 8))


def test_groups_must_divide(mnet):
    with pytest.raises(ValueError, match="positive divisor"):
        nq.weight_ranges(np.zeros((6, 1, 3, 3)), 4)


def test_simulator_and_quant_npz_use_per_channel_ranges(mnet):
    from nnbuild.nnie.quantpoints import quant_points

    points = quant_points(mnet, "int8")
    plan = prepare(mnet, Ranges({b: 4.0 for b in points.blobs}, {}, {}, []), "int8")
    weights = mnet.layer("mobilenet0_conv5").blobs[0]           # depthwise, 32 channels
    assert points.groups["mobilenet0_conv5"] == 32 and points.groups["mobilenet0_conv4"] == 1
    data = arrays(plan)
    for channel in range(32):
        m = float(np.abs(weights[channel]).max())
        np.testing.assert_array_equal(plan.weights["mobilenet0_conv5"][0][channel],
                                      nq.quantize(weights[channel], m, 8))
        np.testing.assert_array_equal(data["codes/mobilenet0_conv5"][channel],
                                      reference_codes(weights[channel], m, 8))
    assert data["weight_ranges/mobilenet0_conv5"].shape == (32,)
    assert "weight_ranges/mobilenet0_conv4" not in data
    row = next(r for r in summary(plan)["layers"] if r["name"] == "mobilenet0_conv5")
    assert row["groups"] == 32 and row["max"] == float(np.abs(weights).max())
