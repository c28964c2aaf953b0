"""Tests for nnbuild.nnie.simulate against an independent scalar NNIE quantizer and numpy math."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Layer
from nnbuild.nnie.calibrate import Ranges, calibrate
from nnbuild.nnie.simulate import fake_quant, prepare, simulate, simulate_layer

LEVELS = {8: (16, 127), 16: (128, 1407)}


def ref_quant(values: np.ndarray, max_abs: float, bits: int) -> np.ndarray:
    """nnie-facts.md §4 written out element by element (independent of the vectorised code)."""
    per_octave, top = LEVELS[bits]
    z = math.floor(per_octave * math.log2(max_abs)) - top
    out = []
    for x in np.asarray(values, np.float64).ravel():
        low = 1 if x < 0 else 0  # negatives have one level fewer (their q = 0 is the zero code)
        if x == 0 or abs(x) < 0.5 * 2.0 ** ((z + low) / per_octave):
            out.append(0.0)  # below half of the smallest level of its sign
            continue
        q = min(max(math.floor(per_octave * math.log2(abs(x)) - z + 0.5), low), top)
        out.append(math.copysign(2.0 ** ((z + q) / per_octave), x))
    return np.array(out, np.float32).reshape(np.shape(values))


def test_reference_quantizer_reproduces_published_vector():
    got = ref_quant(np.array([-9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9.0]), 9.0, 8)
    want = [-8.724, 0, 1, 2, 2.9537, 4, 4.9674, 5.9073, 7.0250, 8, 8.724]
    np.testing.assert_allclose(got, want, atol=6e-4)


def test_fake_quant_matches_reference_and_handles_zero_range():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, 2000).astype(np.float32)
    for bits in (8, 16):
        np.testing.assert_allclose(fake_quant(x, 5.0, bits), ref_quant(x, 5.0, bits), rtol=1e-6)
    assert not fake_quant(x, 0.0, 8).any()


def _conv(name, bottom, top, weight, bias=None):
    from nnbuild.caffe import caffe_pb2

    param = caffe_pb2.LayerParameter(name=name, type="Convolution")
    param.convolution_param.num_output = weight.shape[0]
    param.convolution_param.kernel_size.append(1)
    param.convolution_param.bias_term = bias is not None
    blobs = [weight] + ([bias] if bias is not None else [])
    return Layer(name, "Convolution", [bottom], [top], param, blobs)


def _relu(name, blob):
    from nnbuild.caffe import caffe_pb2

    return Layer(name, "ReLU", [blob], [blob], caffe_pb2.LayerParameter(name=name, type="ReLU"))


@pytest.fixture(scope="module")
def net():
    """data (1,3,5,5) -> 1x1 conv c1 (+bias) -> in-place ReLU -> 1x1 conv c2 -> y."""
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    w2 = rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32)

    def build(first="c1"):
        layers = [_conv(first, "data", "x", w1, b1), _relu("relu", "x"), _conv("c2", "x", "y", w2)]
        return Graph.from_caffe("t", {"data": (1, 3, 5, 5)}, layers)

    feeds = [{"data": rng.uniform(-3, 3, (1, 3, 5, 5)).astype(np.float32)} for _ in range(3)]
    with pytest.warns(UserWarning, match="20-50"):
        ranges = calibrate(build(), feeds)
    return build, (w1, b1, w2), ranges, feeds


def _expected(x, weights, ranges, bits1, bits2, hidden_bits):
    w1, b1, w2 = weights
    conv = lambda w, a: np.einsum("oc,nchw->nohw", w[:, :, 0, 0], a)  # noqa: E731
    hidden = np.maximum(conv(ref_quant(w1, np.abs(w1).max(), bits1), x) + b1[:, None, None], 0)
    hidden = ref_quant(hidden, ranges.blobs["x@1"], hidden_bits)
    y = conv(ref_quant(w2, np.abs(w2).max(), bits2), hidden)
    return np.round(y * 4096) / 4096, hidden


def test_calibrated_points_are_the_post_relu_blob_only(net):
    from nnbuild.engine import run

    build, (w1, _, w2), ranges, feeds = net
    assert list(ranges.blobs) == ["x@1"]
    hidden = [np.abs(run(build(), f, keep=["x@1"])["x@1"]).max() for f in feeds]
    assert ranges.per_image["x@1"] == pytest.approx(hidden, rel=1e-6)
    assert ranges.blobs["x@1"] == max(hidden)
    assert ranges.weights == pytest.approx({"c1": np.abs(w1).max(), "c2": np.abs(w2).max()})


@pytest.mark.parametrize("mode,bits", [("int8", 8), ("int16", 16), (0, 8), (1, 16)])
def test_simulate_equals_independent_formula(net, mode, bits):
    build, weights, ranges, feeds = net
    for feed in feeds:
        got = simulate(build(), ranges, mode, feed, keep=["x@1"])
        want, hidden = _expected(feed["data"], weights, ranges, bits, bits, bits)
        np.testing.assert_allclose(got["x@1"], hidden, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["y"], want, atol=1 / 4096 + 1e-6)


def test_mixed_mode_makes_hp_layer_and_its_blob_16_bit(net):
    build, weights, ranges, feeds = net
    graph = build("c1_hp")
    plan = prepare(graph, ranges, "mixed")
    assert plan.points.weights == {"c1_hp": 16, "c2": 8} and plan.points.blobs == {"x@1": 16}
    want, _ = _expected(feeds[0]["data"], weights, ranges, 16, 8, 16)
    got = simulate(graph, ranges, "mixed", feeds[0], plan=plan)["y"]
    np.testing.assert_allclose(got, want, atol=1 / 4096 + 1e-6)


def test_outputs_are_multiples_of_1_over_4096(net):
    build, _, ranges, feeds = net
    y = simulate(build(), ranges, "int8", feeds[0])["y"]
    np.testing.assert_array_equal(y * 4096, np.round(y * 4096))


def test_simulate_layer_isolates_one_layer(net):
    build, (w1, b1, w2), ranges, feeds = net
    graph = build()
    hidden = np.maximum(np.einsum("oc,nchw->nohw", w1[:, :, 0, 0], feeds[0]["data"])
                        + b1[:, None, None], 0).astype(np.float32)
    conv2 = lambda a: np.einsum("oc,nchw->nohw", ref_quant(w2, np.abs(w2).max(), 8)[:, :, 0, 0], a)  # noqa: E731
    (got,) = simulate_layer(graph, ranges, "int8", "c2", [hidden])
    want = np.round(conv2(ref_quant(hidden, ranges.blobs["x@1"], 8)) * 4096) / 4096
    np.testing.assert_allclose(got, want, atol=1 / 4096 + 1e-6)
    (raw,) = simulate_layer(graph, ranges, "int8", "c2", [hidden], quantize_inputs=False)
    np.testing.assert_allclose(raw, np.round(conv2(hidden) * 4096) / 4096, atol=1 / 4096 + 1e-6)
    # c1's output is fused into the ReLU: it stays float
    (pre,) = simulate_layer(graph, ranges, "int8", "c1", [feeds[0]["data"]])
    assert pre.min() < 0


def test_prepare_rejects_stale_ranges(net):
    build, _, ranges, _ = net
    stale = Ranges({}, {}, ranges.weights, ranges.images)
    with pytest.raises(ModelError, match=r"blob 'x': no calibrated range.*re-run the calibrate"):
        prepare(build(), stale, "int8")
