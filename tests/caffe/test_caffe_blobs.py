"""Blob conversion and weight sanity checks on small code-generated layers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2, io
from nnbuild.caffe.blobs import array_from_blob, blob_from_array, header_from_blob
from nnbuild.caffe.weights import check_weights, kernel_hw
from nnbuild.errors import ModelError
from nnbuild.ir import Layer

DET3 = MODELS / "mtcnn" / "det3"


def blob(values, shape=None, legacy=None):
    b = caffe_pb2.BlobProto()
    b.data.extend(values)
    if shape is not None:
        b.shape.dim.extend(shape)
    if legacy is not None:
        b.num, b.channels, b.height, b.width = legacy
    return b


def test_array_from_blob_shapes():
    a = array_from_blob(blob(range(6), shape=(2, 3)), "w")
    assert a.shape == (2, 3) and a.dtype == np.float32 and a[1, 2] == 5
    assert array_from_blob(blob(range(4), legacy=(1, 1, 1, 4)), "b").shape == (1, 1, 1, 4)
    assert array_from_blob(blob(range(3)), "flat").shape == (3,)
    with pytest.raises(ValueError):
        a[0, 0] = 1  # read-only


def test_double_data_is_read_as_float32():
    b = caffe_pb2.BlobProto()
    b.double_data.extend([0.1, 2.5])
    b.shape.dim.append(2)
    a = array_from_blob(b, "d")
    np.testing.assert_array_equal(a, np.array([0.1, 2.5], dtype=np.float32))


def test_blob_from_array_keeps_header_style_only_when_shape_matches():
    legacy = blob(range(4), legacy=(1, 1, 1, 4))
    header = header_from_blob(legacy)
    assert not len(header.data) and header.width == 4
    same = blob_from_array(array_from_blob(legacy, "b"), header)
    assert same == legacy and not same.HasField("shape")
    other = blob_from_array(np.zeros((2, 2), np.float32), header)
    assert list(other.shape.dim) == [2, 2] and not other.HasField("num")


def test_legacy_blobs_round_trip_in_legacy_form(tmp_path):
    # Rewrite det3's InnerProduct conv5 in the pre-BlobShape style: N x K -> 1 x 1 x N x K.
    net = caffe_pb2.NetParameter.FromString(DET3.with_suffix(".caffemodel").read_bytes())
    fc = next(lp for lp in net.layer if lp.name == "conv5")
    for b in fc.blobs:
        dims = [1] * (4 - len(b.shape.dim)) + list(b.shape.dim)
        b.ClearField("shape")
        b.num, b.channels, b.height, b.width = dims
    (tmp_path / "l.caffemodel").write_bytes(net.SerializeToString())
    g = io.load(DET3.with_suffix(".prototxt"), tmp_path / "l.caffemodel").graph
    w, bias = g.layer("conv5").blobs
    assert w.shape == (1, 1, 256, 1152) and bias.shape == (1, 1, 1, 256)
    io.save(g, tmp_path / "o.prototxt", tmp_path / "o.caffemodel")
    out = io.read_caffemodel(tmp_path / "o.caffemodel")
    assert next(lp for lp in out.layer if lp.name == "conv5") == fc


def test_layers_excluded_in_test_phase_are_dropped(tmp_path):
    path = tmp_path / "p.prototxt"
    path.write_text('input: "data" input_shape { dim: 1 dim: 2 }\n'
                    'layer { name: "drop" type: "Dropout" bottom: "data" top: "d" '
                    '  include { phase: TRAIN } }\n'
                    'layer { name: "r" type: "ReLU" bottom: "data" top: "r" '
                    '  exclude { phase: TRAIN } }\n'
                    'layer { name: "s" type: "Sigmoid" bottom: "data" top: "s" '
                    '  include { phase: TEST stage: "deploy" } }\n')
    assert [la.name for la in io.load(path).graph.layers] == ["r"]
    text = path.read_text().replace('input: "data"', 'state { stage: "deploy" } input: "data"')
    path.write_text(text)
    assert [la.name for la in io.load(path).graph.layers] == ["r", "s"]


# -- weight checks -------------------------------------------------------------------------------

def layer(type_, param_text, *shapes, bottoms=("x",)):
    param = text_format.Parse(param_text, caffe_pb2.LayerParameter())
    blobs = [np.zeros(s, np.float32) for s in shapes]
    return Layer("L", type_, list(bottoms), ["y"], param, blobs)


@pytest.mark.parametrize("type_, param, shapes", [
    ("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", [(4, 2, 3, 3), (4,)]),
    ("Convolution", "convolution_param { num_output: 4 kernel_h: 1 kernel_w: 5 bias_term: false }",
     [(4, 2, 1, 5)]),
    # Deconvolution weights are (C_in, num_output / group, kh, kw).
    ("Deconvolution", "convolution_param { num_output: 8 group: 2 kernel_size: 2 }",
     [(6, 4, 2, 2), (8,)]),
    ("InnerProduct", "inner_product_param { num_output: 5 }", [(5, 12), (5,)]),
    ("InnerProduct", "inner_product_param { num_output: 5 transpose: true }", [(12, 5), (5,)]),
    ("InnerProduct", "inner_product_param { num_output: 5 }", [(1, 1, 5, 12), (1, 1, 1, 5)]),
    ("BatchNorm", "", [(7,), (7,), (1,)]),
    ("Scale", "scale_param { bias_term: true }", [(7,), (7,)]),
    ("PReLU", "prelu_param { channel_shared: true }", [(1,)]),
    ("Normalize", "norm_param { channel_shared: false }", [(16,)]),
    ("Bias", "", [(3,)]),
])
def test_consistent_weights_pass(type_, param, shapes):
    check_weights(layer(type_, param, *shapes))


@pytest.mark.parametrize("type_, param, shapes, message", [
    ("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", [(4, 2, 3, 3)],
     r"wrong number of weight blobs \(bias_term: true\). Expected 2 blobs, got 1"),
    ("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", [(4, 2, 5, 5), (4,)],
     r"does not match the kernel size. Expected kernel \[3, 3\], got weight shape \[4, 2, 5, 5\]"),
    ("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", [(4, 2, 3, 3), (3,)],
     r"blob 1 has the wrong size \(one bias per output\). Expected 4 values, got 3"),
    ("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", [(4, 18), (4,)],
     r"weight blob is not 4-D"),
    ("Deconvolution", "convolution_param { num_output: 8 kernel_size: 2 }", [(6, 4, 2, 2), (8,)],
     r"does not match num_output. Expected num_output 8"),
    ("InnerProduct", "inner_product_param { num_output: 5 }", [(12, 5), (5,)],
     r"does not match num_output. Expected num_output 5 \(N x K\), got weight shape \[12, 5\]"),
    ("BatchNorm", "", [(7,), (6,), (1,)], r"blob 1 has the wrong size"),
    ("BatchNorm", "", [(7,), (7,)], r"Expected 3 blobs, got 2"),
    ("Scale", "", [(7,), (7,)], r"Expected 1 blobs, got 2"),
    ("PReLU", "prelu_param { channel_shared: true }", [(8,)],
     r"\(channel_shared: true\). Expected 1 values, got 8"),
])
def test_inconsistent_weights_fail(type_, param, shapes, message):
    with pytest.raises(ModelError, match=rf"layer 'L' \({type_}\): .*{message}.*Hint: "):
        check_weights(layer(type_, param, *shapes))


def test_scale_with_two_bottoms_learns_only_a_bias():
    check_weights(layer("Scale", "scale_param { bias_term: true }", (7,), bottoms=("x", "s")))
    with pytest.raises(ModelError, match=r"2 bottom\(s\), bias_term: false"):
        check_weights(layer("Scale", "", (7,), bottoms=("x", "s")))


def test_kernel_hw_forms():
    conv = caffe_pb2.ConvolutionParameter
    assert kernel_hw(text_format.Parse("kernel_size: 3", conv())) == (3, 3)
    assert kernel_hw(text_format.Parse("kernel_size: 3 kernel_size: 5", conv())) == (3, 5)
    assert kernel_hw(text_format.Parse("kernel_h: 1 kernel_w: 7", conv())) == (1, 7)
