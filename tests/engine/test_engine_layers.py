"""Pointwise, normalization, dense and shape layers against independent numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.engine import ADAPTERS, run_layer
from nnbuild.errors import ModelError
from nnbuild.ir import Layer

RNG = np.random.default_rng(1)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def run1(kind, text="", inputs=(), blobs=(), n_tops=1):
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    lay = Layer(f"l_{kind}", kind, [f"b{i}" for i in range(len(inputs))],
                [f"t{i}" for i in range(n_tops)], param, list(blobs))
    outs = run_layer(lay, list(inputs))
    assert all(o.dtype == np.float32 for o in outs)
    return outs if n_tops > 1 else outs[0]


def test_relu_and_leaky():
    x = rand(2, 3, 4, 5)
    np.testing.assert_array_equal(run1("ReLU", inputs=[x]), np.where(x > 0, x, 0))
    got = run1("ReLU", "relu_param { negative_slope: 0.1 }", [x])
    np.testing.assert_allclose(got, np.where(x > 0, x, 0.1 * x), rtol=1e-6)


@pytest.mark.parametrize("shared,slopes", [
    (False, [0.25, -0.5, 1.5]), (False, [-0.9, 0.25, -0.1]),  # mixed sides of 1; all <= 1
    (False, [1.0, 2.5, 1.5]), (False, [0.0, 0.5, 1.0]),      # all >= 1; the classic [0, 1]
    (True, [0.3]), (True, [-2.0]), (True, [3.0])])
def test_prelu(shared, slopes):
    # slopes all <= 1 take max(x, s*x), all >= 1 min(x, s*x), mixed ones Caffe's formula.
    x = rand(2, 3, 4, 5)
    slope = np.array(slopes, np.float32)
    got = run1("PReLU", f"prelu_param {{ channel_shared: {str(shared).lower()} }}", [x], [slope])
    s = slope[0] if shared else slope[None, :, None, None]
    np.testing.assert_allclose(got, np.maximum(x, 0) + s * np.minimum(x, 0), rtol=1e-6)


@pytest.mark.parametrize("slopes", [[0.25, 0.0, 1.0], [0.25, -0.5, 1.5], [-0.7, -0.2, 0.9],
                                    [1.2, 4.0, 1.0]])
def test_leaky_inplace_writes_the_prelu_result_into_its_input(slopes):
    from nnbuild.engine.activation import leaky_inplace

    x = rand(2, 3, 4, 5)
    s = np.array(slopes, np.float32)[None, :, None, None]
    ref = np.maximum(x, 0) + s * np.minimum(x, 0)
    y = x.copy()
    out = leaky_inplace(y, s)
    assert out is y
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_pointwise_math():
    x = rand(2, 3, 4) * 10
    np.testing.assert_allclose(run1("TanH", inputs=[x]), np.tanh(x.astype(np.float64)),
                               atol=1e-6)
    np.testing.assert_allclose(run1("Sigmoid", inputs=[x]), 1 / (1 + np.exp(-x.astype(float))),
                               atol=1e-6)
    np.testing.assert_array_equal(run1("AbsVal", inputs=[x]), np.abs(x))
    np.testing.assert_array_equal(run1("Dropout", "dropout_param { dropout_ratio: 0.7 }", [x]), x)
    pos = np.abs(x) + 0.5
    got = run1("Power", "power_param { power: 2.5 scale: 0.5 shift: 1 }", [pos])
    np.testing.assert_allclose(got, (1 + 0.5 * pos.astype(float)) ** 2.5, rtol=1e-5)


def test_softmax_axis1_of_4d():
    x = rand(2, 5, 3, 4) * 20
    e = np.exp(x.astype(np.float64))
    got = run1("Softmax", inputs=[x])
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    got = run1("Softmax", "softmax_param { axis: -1 }", [x])
    np.testing.assert_allclose(got, e / e.sum(axis=3, keepdims=True), rtol=1e-5, atol=1e-7)


def test_eltwise_sum_coeff_prod_max():
    a, b, c = rand(2, 3, 4, 4), rand(2, 3, 4, 4), rand(2, 3, 4, 4)
    got = run1("Eltwise", "eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 3 }",
               [a, b, c])
    np.testing.assert_allclose(got, 0.5 * a - 2 * b + 3 * c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run1("Eltwise", inputs=[a, b]), a + b, rtol=1e-6)
    np.testing.assert_allclose(run1("Eltwise", "eltwise_param { operation: PROD }", [a, b, c]),
                               a * b * c, rtol=1e-6)
    np.testing.assert_array_equal(run1("Eltwise", "eltwise_param { operation: MAX }", [a, b, c]),
                                  np.maximum(np.maximum(a, b), c))
    assert not np.shares_memory(run1("Eltwise", inputs=[a, b]), a)


def test_eltwise_errors():
    with pytest.raises(ModelError, match="coeff must have one value per bottom"):
        run1("Eltwise", "eltwise_param { coeff: 1 }", [rand(2), rand(2)])
    with pytest.raises(ModelError, match="different shapes"):
        run1("Eltwise", inputs=[rand(2, 3), rand(3, 2)])


def test_batchnorm_global_stats_and_scale_factor():
    x, mean, var = rand(2, 3, 4, 4), rand(3), np.abs(rand(3)) + 0.1
    got = run1("BatchNorm", "batch_norm_param { eps: 0.001 }", [x], [mean * 4, var * 4,
                                                                      np.array([4.0], np.float32)])
    ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 0.001)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    zero = run1("BatchNorm", "", [x], [mean, var, np.zeros(1, np.float32)])  # factor 0 -> stats 0
    np.testing.assert_allclose(zero, x / np.sqrt(1e-5), rtol=1e-4)


def test_batchnorm_batch_stats():
    x = rand(3, 2, 4, 5)
    got = run1("BatchNorm", "batch_norm_param { use_global_stats: false }", [x],
               [rand(2), rand(2), np.ones(1, np.float32)])
    m = x.mean(axis=(0, 2, 3), keepdims=True)
    v = x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(got, (x - m) / np.sqrt(v + 1e-5), rtol=1e-4, atol=1e-4)


def test_scale_variants():
    x = rand(2, 3, 4, 5)
    s, b = rand(3), rand(3)
    np.testing.assert_allclose(run1("Scale", "scale_param { bias_term: true }", [x], [s, b]),
                               x * s[:, None, None] + b[:, None, None], rtol=1e-6)
    np.testing.assert_allclose(run1("Scale", "", [x], [s]), x * s[:, None, None], rtol=1e-6)
    s2 = rand(4, 5)
    np.testing.assert_allclose(run1("Scale", "scale_param { axis: 2 num_axes: 2 }", [x], [s2]),
                               x * s2, rtol=1e-6)
    s3 = rand(3, 4, 5)
    np.testing.assert_allclose(run1("Scale", "scale_param { num_axes: -1 }", [x], [s3]),
                               x * s3, rtol=1e-6)
    s4 = rand(3, 4)  # a scale bottom spans as many axes as it has
    np.testing.assert_allclose(run1("Scale", "", [x, s4]), x * s4[:, :, None], rtol=1e-6)
    with pytest.raises(ModelError, match=r"layer 'l_Scale' \(Scale\): cannot compute"):
        run1("Scale", "", [x, rand(3, 2)])


@pytest.mark.parametrize("across,shared", [(True, True), (False, False), (False, True)])
def test_normalize(across, shared):
    x = rand(2, 3, 4, 5)
    scale = rand(1) if shared else rand(3)
    got = run1("Normalize", f"norm_param {{ across_spatial: {str(across).lower()} "
               f"channel_shared: {str(shared).lower()} }}", [x], [scale])
    xd = x.astype(np.float64)
    ref = np.empty_like(xd)
    for n in range(2):
        if across:
            ref[n] = xd[n] / np.sqrt((xd[n] ** 2).sum() + 1e-10)
        else:
            ref[n] = xd[n] / np.sqrt((xd[n] ** 2).sum(axis=0) + 1e-10)
    ref *= scale[0] if shared else scale[None, :, None, None]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_inner_product_axis_and_transpose():
    x, w, b = rand(2, 3, 4, 5), rand(6, 20), rand(6)
    got = run1("InnerProduct", "inner_product_param { num_output: 6 axis: 2 }", [x], [w, b])
    ref = np.einsum("abk,ok->abo", x.reshape(2, 3, 20), w) + b
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    wt = rand(60, 7)
    got = run1("InnerProduct", "inner_product_param { num_output: 7 transpose: true "
               "bias_term: false }", [x], [wt])
    np.testing.assert_allclose(got, x.reshape(2, 60) @ wt, rtol=1e-4, atol=1e-5)
    with pytest.raises(ModelError, match="weight does not match"):
        run1("InnerProduct", "", [x], [rand(6, 7)])


def test_concat_crop_reshape_permute_flatten():
    a, b = rand(1, 2, 3, 4), rand(1, 3, 3, 4)
    np.testing.assert_array_equal(run1("Concat", "", [a, b]), np.concatenate([a, b], 1))
    np.testing.assert_array_equal(run1("Concat", "concat_param { axis: -1 }", [a, a]),
                                  np.concatenate([a, a], 3))
    big, ref = rand(1, 2, 7, 9), rand(1, 5, 4, 6)
    np.testing.assert_array_equal(run1("Crop", "", [big, ref]), big[:, :, :4, :6])
    np.testing.assert_array_equal(run1("Crop", "crop_param { axis: 2 offset: 1 offset: 2 }",
                                       [big, ref]), big[:, :, 1:5, 2:8])
    np.testing.assert_array_equal(run1("Crop", "crop_param { axis: 1 offset: 1 }",
                                       [big, rand(1, 1, 4, 6)]), big[:, 1:2, 1:5, 1:7])
    x = rand(1, 4, 6, 5)
    got = run1("Reshape", "reshape_param { shape { dim: 1 dim: 2 dim: -1 dim: 0 } }", [x])
    np.testing.assert_array_equal(got, x.reshape(1, 2, 12, 5))
    got = run1("Reshape", "reshape_param { shape { dim: 3 dim: 2 } axis: 2 num_axes: 1 }", [x])
    np.testing.assert_array_equal(got, x.reshape(1, 4, 3, 2, 5))
    np.testing.assert_array_equal(run1("Permute", "permute_param { order: 0 order: 2 order: 3 "
                                       "order: 1 }", [x]), x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(run1("Flatten", "", [x]), x.reshape(1, -1))
    np.testing.assert_array_equal(run1("Flatten", "flatten_param { axis: 1 end_axis: 2 }", [x]),
                                  x.reshape(1, 24, 5))


def test_slice_and_split():
    x = rand(2, 6, 3)
    parts = run1("Slice", "slice_param { axis: 1 slice_point: 1 slice_point: 4 }", [x],
                 n_tops=3)
    for got, ref in zip(parts, (x[:, :1], x[:, 1:4], x[:, 4:])):
        np.testing.assert_array_equal(got, ref)
    parts = run1("Slice", "", [x], n_tops=3)
    assert [p.shape[1] for p in parts] == [2, 2, 2]
    copies = run1("Split", "", [x], n_tops=2)
    assert all(np.array_equal(c, x) for c in copies)
    with pytest.raises(ModelError, match="wrong number of slice points"):
        run1("Slice", "slice_param { slice_point: 2 }", [x], n_tops=3)


def test_crop_and_reshape_errors():
    with pytest.raises(ModelError, match="axis 2 cannot be cropped"):
        run1("Crop", "", [rand(1, 1, 3, 3), rand(1, 1, 4, 3)])
    with pytest.raises(ModelError, match="does not hold the blob's elements"):
        run1("Reshape", "reshape_param { shape { dim: 7 dim: -1 } }", [rand(2, 3)])


def test_registry_covers_every_type_of_the_shared_models():
    wanted = {"Convolution", "Deconvolution", "Pooling", "InnerProduct", "BatchNorm", "Scale",
              "ReLU", "PReLU", "Eltwise", "Concat", "Crop", "Reshape", "Softmax", "Permute",
              "Flatten", "Dropout", "TanH", "Sigmoid", "AbsVal", "Slice", "Split", "Power",
              "Normalize", "PriorBox", "DetectionOutput"}
    assert wanted <= set(ADAPTERS)
