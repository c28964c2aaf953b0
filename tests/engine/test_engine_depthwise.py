"""Depthwise convolution paths (banded GEMM, GEMV, slices) against a float64 tap-by-tap formula."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nnbuild.engine import depthwise as dw
from nnbuild.engine.conv import convolution

RNG = np.random.default_rng(5)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def dw_ref(x, w, stride, pad, dil):
    """sum_ij w[c, i, j] * xpad[c, s*y + d*i, s*x + d*j], straight from the definition."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    out = np.zeros((n, c, ho, wo))
    for i, j in np.ndindex(kh, kw):
        r0, c0 = i * dil[0], j * dil[1]
        win = xp[:, :, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                 c0:c0 + stride[1] * (wo - 1) + 1:stride[1]]
        out += win * w[None, :, 0, i, j, None, None]
    return out


@pytest.mark.parametrize("shape,k,stride,pad,dil", [
    ((2, 8, 14, 14), (3, 3), (1, 1), (1, 1), (1, 1)),    # MobileFaceNet residual block, batch 2
    ((1, 8, 28, 28), (3, 3), (2, 2), (1, 1), (1, 1)),    # strided
    ((1, 6, 13, 11), (3, 3), (2, 2), (1, 1), (1, 1)),    # odd sizes, strided
    ((1, 5, 7, 7), (7, 7), (1, 1), (0, 0), (1, 1)),      # MobileFaceNet's global 7x7 (GDC)
    ((1, 4, 12, 10), (3, 2), (1, 2), (2, 1), (2, 1)),    # asymmetric kernel, dilation, pad
    ((1, 3, 5, 6), (3, 3), (1, 1), (4, 3), (1, 1)),      # pad wider than the kernel
    ((1, 4, 28, 28), (3, 3), (1, 1), (1, 1), (1, 1)),    # 2 tiles of 14 columns
    ((1, 4, 40, 38), (3, 3), (2, 2), (1, 1), (1, 1)),    # 19 columns: one 14-wide tile + rest
])
def test_banded_path_matches_formula(shape, k, stride, pad, dil):
    x, w, b = rand(*shape), rand(shape[1], 1, *k), rand(shape[1])
    assert shape[3] <= dw._BAND_MAX_RATIO * k[1]  # the banded path is the one under test
    got = convolution(x, w, stride=stride, pad=pad, dilation=dil, group=shape[1])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, dw_ref(x, w, stride, pad, dil), rtol=1e-4, atol=1e-4)
    with_bias = convolution(x, w, b, stride=stride, pad=pad, dilation=dil, group=shape[1])
    np.testing.assert_allclose(with_bias, dw_ref(x, w, stride, pad, dil) + b[:, None, None],
                               rtol=1e-4, atol=1e-4)


def test_band_matrix_places_each_weight_on_its_diagonal():
    w = rand(2, 1, 3, 3)
    bias = rand(2)
    band = dw.band_matrix(w, bias, 2, 1, 3, 7)  # stride 2, 3 columns per tile
    expected = np.zeros((2, 3, 7, 3), np.float32)
    for c, i, j, u in np.ndindex(2, 3, 3, 3):
        expected[c, i, 2 * u + j, u] = w[c, 0, i, j]
    np.testing.assert_array_equal(band[:, :-1].reshape(2, 3, 7, 3), expected)
    np.testing.assert_array_equal(band[:, -1], np.repeat(bias[:, None], 3, axis=1))


def test_reused_row_buffer_keeps_its_padding_zero():
    # The same geometry twice: the second call must not see rows of the first input.
    w = rand(4, 1, 3, 3)
    first = convolution(rand(1, 4, 9, 9) * 100, w, pad=(1, 1), group=4)
    x = rand(1, 4, 9, 9)
    again = convolution(x, w, pad=(1, 1), group=4)
    assert not np.allclose(first, again)
    np.testing.assert_allclose(again, dw_ref(x, w, (1, 1), (1, 1), (1, 1)), rtol=1e-4, atol=1e-4)


def test_new_weights_are_not_served_an_old_band():
    x = rand(1, 3, 8, 8)
    w1, b1 = rand(3, 1, 3, 3), rand(3)
    w2, b2 = w1 * 2, b1 * 2
    a = convolution(x, w1, b1, pad=(1, 1), group=3)
    np.testing.assert_allclose(convolution(x, w2, b2, pad=(1, 1), group=3), 2 * a,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(convolution(x, w1, b2, pad=(1, 1), group=3),
                               a + b1[:, None, None], rtol=1e-5, atol=1e-5)


def test_threads_do_not_share_row_buffers():
    w = rand(16, 1, 3, 3)
    inputs = [rand(1, 16, 20, 20) for _ in range(4)]
    expected = [dw_ref(x, w, (1, 1), (1, 1), (1, 1)) for x in inputs]
    errors = []

    def work(k):
        for _ in range(30):
            got = convolution(inputs[k], w, pad=(1, 1), group=16)
            errors.append(float(np.abs(got - expected[k]).max()))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 120 and max(errors) < 1e-3


@pytest.mark.parametrize("shape,stride", [((1, 3, 20, 70), (1, 2)), ((1, 2, 50, 64), (1, 1))])
def test_wide_inputs_take_the_other_paths(shape, stride):
    # Wider than _BAND_MAX_RATIO kernels: GEMV (small output) or slices (large output).
    x, w = rand(*shape), rand(shape[1], 1, 3, 3)
    assert shape[3] > dw._BAND_MAX_RATIO * 3
    got = convolution(x, w, stride=stride, pad=(1, 1), group=shape[1])
    np.testing.assert_allclose(got, dw_ref(x, w, stride, (1, 1), (1, 1)), rtol=1e-4, atol=1e-4)


def test_shared_row_temporary_serves_layers_of_different_geometry_in_turn():
    """The banded path's rows buffer is one temporary for every geometry (ones rewritten)."""
    cases = [((1, 8, 28, 28), (1, 1)), ((1, 16, 14, 14), (2, 2)), ((1, 8, 28, 28), (1, 1))]
    for shape, stride in cases + cases[::-1]:
        x, w, b = rand(*shape), rand(shape[1], 1, 3, 3), rand(shape[1])
        got = convolution(x, w, b, stride=stride, pad=(1, 1), group=shape[1])
        want = dw_ref(x, w, stride, (1, 1), (1, 1)) + b.reshape(1, -1, 1, 1)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
