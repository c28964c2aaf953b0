"""Shortcuts of the hot path: one-pass residual sums, memoised PReLU slope-range checks."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.engine.activation import leaky_inplace, prelu, prelu_slope
from nnbuild.engine.elementwise import eltwise

RNG = np.random.default_rng(8)


def test_sum_of_three_without_coeff_is_a_fresh_array():
    a, b, c = (RNG.standard_normal((1, 4, 3, 3)).astype(np.float32) for _ in range(3))
    before = a.copy()
    got = eltwise(a, b, c)
    np.testing.assert_allclose(got, a.astype(np.float64) + b + c, rtol=1e-6)
    assert not any(np.shares_memory(got, x) for x in (a, b, c))
    np.testing.assert_array_equal(a, before)


def caffe_prelu(x, slope):
    s = slope.reshape(1, -1, 1, 1).astype(np.float64)
    return np.maximum(x, 0) + s * np.minimum(x, 0)


def test_prelu_range_memo_follows_the_slope_values():
    x = RNG.standard_normal((1, 32, 3, 3)).astype(np.float32)
    unit = RNG.uniform(0, 1, 32).astype(np.float32)
    unit.flags.writeable = False
    steep = (unit * 3 - 1).astype(np.float32)  # outside [0, 1]: Caffe's 4-pass formula
    steep.flags.writeable = False
    for slope in (unit, steep, unit, steep):  # cached answers must not leak between blobs
        np.testing.assert_allclose(prelu(x, slope), caffe_prelu(x, slope), rtol=1e-6, atol=1e-7)
    writable = unit.copy()  # writable slopes are never memoised: an edit is seen at once
    np.testing.assert_allclose(prelu(x, writable), caffe_prelu(x, writable), rtol=1e-6)
    writable[:] = -2
    got = leaky_inplace(x.copy(), prelu_slope(x, writable, False))
    np.testing.assert_allclose(got, caffe_prelu(x, writable), rtol=1e-6, atol=1e-7)


def test_scratch_temporary_reuses_one_growing_buffer_per_slot():
    from nnbuild.engine import scratch

    a = scratch.temporary((4, 5))
    b = scratch.temporary((2, 10))
    assert np.shares_memory(a, b) and b.shape == (2, 10) and b.dtype == np.float32
    other = scratch.temporary((4, 5), slot=7)
    assert not np.shares_memory(a, other)
    big = scratch.temporary((1 << 17,))  # larger than the buffer so far: it grows
    assert big.size == 1 << 17


def test_prelu_in_a_fused_group_reports_a_slope_of_the_wrong_size():
    from google.protobuf import text_format

    from nnbuild.caffe import caffe_pb2
    from nnbuild.engine import run
    from nnbuild.errors import ModelError
    from nnbuild.ir import Graph, Layer

    def lay(name, kind, bottoms, tops, text="", blobs=()):
        frozen = [np.asarray(b, np.float32) for b in blobs]
        return Layer(name, kind, bottoms, tops, text_format.Parse(text, caffe_pb2.LayerParameter()),
                     frozen)

    layers = [lay("conv", "Convolution", ["data"], ["c"], "convolution_param { num_output: 4 "
                  "kernel_size: 1 }", [RNG.standard_normal((4, 3, 1, 1)), np.zeros(4)]),
              lay("act", "PReLU", ["c"], ["c"], "", [np.full(3, 0.25)])]
    g = Graph.from_caffe("t", {"data": (1, 3, 2, 2)}, layers)
    with pytest.raises(ModelError) as err:
        run(g, {"data": np.ones((1, 3, 2, 2), np.float32)})
    message = str(err.value)
    assert "act" in message and "one value per channel" in message and "4" in message
