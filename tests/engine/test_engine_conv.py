"""Convolution, Deconvolution and Pooling against naive loop references (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.engine import run_layer
from nnbuild.engine.conv import convolution, deconvolution
from nnbuild.engine.pooling import AVE, MAX, pooling
from nnbuild.errors import ModelError
from nnbuild.ir import Layer

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def conv_ref(x, w, b, stride, pad, dil, group):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // group
    for b_, oc, y, xx in np.ndindex(n, o, ho, wo):
        g = oc // og
        acc = 0.0
        for ci, i, j in np.ndindex(cg, kh, kw):
            r = y * stride[0] - pad[0] + i * dil[0]
            s = xx * stride[1] - pad[1] + j * dil[1]
            if 0 <= r < h and 0 <= s < wd:
                acc += float(x[b_, g * cg + ci, r, s]) * float(w[oc, ci, i, j])
        out[b_, oc, y, xx] = acc + (b[oc] if b is not None else 0.0)
    return out


@pytest.mark.parametrize("cin,cout,k,stride,pad,dil,group", [
    (3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (4, 6, (3, 2), (2, 1), (1, 0), (1, 1), 2),      # asymmetric kernel/stride/pad, groups
    (4, 4, (3, 3), (1, 2), (2, 1), (2, 1), 2),      # dilated grouped conv
    (5, 5, (3, 3), (2, 2), (1, 1), (1, 1), 5),      # depthwise, strided
    (6, 6, (3, 3), (1, 1), (2, 2), (2, 2), 6),      # depthwise, dilated
    (4, 3, (1, 1), (1, 1), (0, 0), (1, 1), 1),      # 1x1 GEMM fast path
    (4, 3, (1, 1), (2, 2), (0, 0), (1, 1), 1),      # strided 1x1 (general path)
])
def test_convolution_matches_loops(cin, cout, k, stride, pad, dil, group):
    x = rand(2, cin, 7, 8)
    w, b = rand(cout, cin // group, *k), rand(cout)
    got = convolution(x, w, b, stride=stride, pad=pad, dilation=dil, group=group)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, conv_ref(x, w, b, stride, pad, dil, group), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("stride,pad,dil", [((1, 1), (1, 1), (1, 1)), ((2, 2), (2, 1), (2, 1))])
def test_depthwise_large_map_path(stride, pad, dil):
    # > 40x40 output pixels per channel takes the shifted-slices path, not the GEMV one.
    x, w, b = rand(1, 2, 83, 84), rand(2, 1, 3, 3), rand(2)
    got = convolution(x, w, b, stride=stride, pad=pad, dilation=dil, group=2)
    assert got.shape[2] * got.shape[3] > 40 * 40
    np.testing.assert_allclose(got, conv_ref(x, w, b, stride, pad, dil, 2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("h,w", [(9, 9), (9, 10), (10, 9), (75, 75)])
def test_depthwise_strided_odd_sizes(h, w):
    # Odd padded sizes give stride phases of unequal size (the mnet 600x600 case).
    x, wt = rand(1, 3, h, w), rand(3, 1, 3, 3)
    got = convolution(x, wt, stride=(2, 2), pad=(1, 1), group=3)
    np.testing.assert_allclose(got, conv_ref(x, wt, None, (2, 2), (1, 1), (1, 1), 3),
                               rtol=1e-4, atol=1e-4)


def deconv_ref(x, w, b, stride, pad, dil, group):
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // group
    ho = stride[0] * (h - 1) + dil[0] * (kh - 1) + 1 - 2 * pad[0]
    wo = stride[1] * (wd - 1) + dil[1] * (kw - 1) + 1 - 2 * pad[1]
    out = np.zeros((n, og * group, ho, wo))
    for b_, ci, y, xx, oo, i, j in np.ndindex(n, c, h, wd, og, kh, kw):
        r = y * stride[0] - pad[0] + i * dil[0]
        s = xx * stride[1] - pad[1] + j * dil[1]
        if 0 <= r < ho and 0 <= s < wo:
            out[b_, (ci // cg) * og + oo, r, s] += float(x[b_, ci, y, xx]) * float(w[ci, oo, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("cin,og,k,stride,pad,group", [
    (3, 2, (3, 3), (2, 2), (1, 1), 1),      # Deconvolution with pad
    (4, 3, (4, 3), (2, 3), (1, 0), 2),      # grouped, asymmetric
    (4, 1, (2, 2), (2, 2), (0, 0), 4),      # depthwise 2x upsampling as in RetinaFace
    (4, 1, (3, 3), (2, 2), (1, 1), 4),      # depthwise overlapping windows with pad
])
def test_deconvolution_matches_loops(cin, og, k, stride, pad, group):
    x = rand(2, cin, 4, 5)
    w, b = rand(cin, og, *k), rand(og * group)
    got = deconvolution(x, w, b, stride=stride, pad=pad, group=group)
    np.testing.assert_allclose(got, deconv_ref(x, w, b, stride, pad, (1, 1), group), rtol=1e-4,
                               atol=1e-4)


def pool_ref(x, method, k, s, p):
    """Straight transcription of Caffe's pooling_layer.cpp loops."""
    n, c, h, w = x.shape
    ph_n = int(math.ceil((h + 2 * p[0] - k[0]) / s[0])) + 1
    pw_n = int(math.ceil((w + 2 * p[1] - k[1]) / s[1])) + 1
    if p[0] and (ph_n - 1) * s[0] >= h + p[0]:
        ph_n -= 1
    if p[1] and (pw_n - 1) * s[1] >= w + p[1]:
        pw_n -= 1
    out = np.zeros((n, c, ph_n, pw_n))
    for ph, pw in np.ndindex(ph_n, pw_n):
        hs, ws = ph * s[0] - p[0], pw * s[1] - p[1]
        if method == MAX:
            he, we = min(hs + k[0], h), min(ws + k[1], w)
            hs, ws = max(hs, 0), max(ws, 0)
            out[:, :, ph, pw] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
        else:
            he, we = min(hs + k[0], h + p[0]), min(ws + k[1], w + p[1])
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            out[:, :, ph, pw] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


@pytest.mark.parametrize("method", [MAX, AVE])
@pytest.mark.parametrize("h,w,k,s,p", [
    (7, 7, (3, 3), (2, 2), (1, 1)),   # ceil rounding with padding
    (6, 5, (3, 2), (2, 2), (1, 0)),   # last window clipped
    (8, 8, (2, 2), (2, 2), (0, 0)),
    (5, 9, (3, 3), (3, 2), (2, 1)),
    (5, 5, (2, 2), (3, 3), (1, 1)),   # the ceil window that would start in the padding is dropped
])
def test_pooling_matches_caffe_loops(method, h, w, k, s, p):
    x = rand(2, 3, h, w)
    got = pooling(x, pool=method, kernel=k, stride=s, pad=p)
    np.testing.assert_allclose(got, pool_ref(x, method, k, s, p), rtol=1e-5, atol=1e-6)


def test_ave_pool_divisor_counts_padding_by_hand():
    # 4x4 ones, k3 s2 p1: windows [-1,2), [1,4), [3,5): Caffe divides by 3, 3, 2 per axis
    # while 2, 3, 1 real cells are summed.
    got = pooling(np.ones((1, 1, 4, 4), np.float32), pool=AVE, kernel=(3, 3), stride=(2, 2),
                  pad=(1, 1))
    f = np.array([2 / 3, 1.0, 1 / 2])
    np.testing.assert_allclose(got[0, 0], np.outer(f, f), rtol=1e-6)


def test_pool_drops_window_starting_in_padding():
    # H=5, k2 s3 p1: ceil((5 + 2 - 2) / 3) + 1 = 3 windows, but the third would start at 5 =
    # H + pad - 1 + 1, i.e. only padding, so Caffe keeps 2.
    assert pooling(rand(1, 1, 5, 5), pool=MAX, kernel=(2, 2), stride=(3, 3),
                   pad=(1, 1)).shape == (1, 1, 2, 2)


def test_global_pooling():
    x = rand(1, 4, 5, 3)
    np.testing.assert_allclose(pooling(x, pool=AVE, global_pooling=True)[..., 0, 0],
                               x.mean(axis=(2, 3)), rtol=1e-5)
    np.testing.assert_allclose(pooling(x, pool=MAX, global_pooling=True)[..., 0, 0],
                               x.max(axis=(2, 3)))


def layer(kind, text, blobs=(), n_tops=1):
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    tops = [f"t{i}" for i in range(n_tops)]
    return Layer(f"my_{kind.lower()}", kind, ["x"], tops, param, list(blobs))


def test_conv_adapter_reads_h_w_fields_and_bias_term():
    x, w = rand(1, 2, 6, 7), rand(4, 2, 3, 1)
    lay = layer("Convolution", "convolution_param { num_output: 4 kernel_h: 3 kernel_w: 1 "
                "pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 bias_term: false }", [w])
    [got] = run_layer(lay, [x])
    np.testing.assert_allclose(got, conv_ref(x, w, None, (2, 1), (1, 0), (1, 1), 1), atol=1e-4)


def test_conv_adapter_repeated_fields_and_dilation():
    x, w, b = rand(1, 2, 9, 9), rand(2, 1, 3, 3), rand(2)
    lay = layer("Convolution", "convolution_param { num_output: 2 kernel_size: 3 pad: 2 "
                "stride: 1 dilation: 2 group: 2 }", [w, b])
    [got] = run_layer(lay, [x])
    np.testing.assert_allclose(got, conv_ref(x, w, b, (1, 1), (2, 2), (2, 2), 2), atol=1e-4)


def test_pool_adapter_reads_pad_and_method():
    x = rand(1, 2, 7, 7)
    lay = layer("Pooling", "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }")
    [got] = run_layer(lay, [x])
    np.testing.assert_allclose(got, pool_ref(x, AVE, (3, 3), (2, 2), (1, 1)), rtol=1e-5)


def test_conv_weight_mismatch_names_the_layer():
    lay = layer("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }",
                [rand(4, 3, 3, 3)])
    with pytest.raises(ModelError, match=r"layer 'my_convolution' \(Convolution\): weight shape"):
        run_layer(lay, [rand(1, 2, 5, 5)])


def test_stochastic_pooling_is_rejected():
    with pytest.raises(ModelError, match="unsupported pooling method"):
        pooling(rand(1, 1, 4, 4), pool=2, kernel=(2, 2), stride=(2, 2))
