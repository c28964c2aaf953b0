"""nnbuild.caffe.io against every real model: loading, weights by name, exact round trips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS
from google.protobuf import unknown_fields

from nnbuild.caffe import caffe_pb2, io

ALL = {
    "mobilefacenet": "mobilefacenet/mobilefacenet",
    "det1": "mtcnn/det1", "det2": "mtcnn/det2", "det3": "mtcnn/det3",
    "retinaface": "retinaface-mnet25/mnet",
    "rfb320": "ultraface-rfb-320/RFB-320", "slim320": "ultraface-slim-320/slim-320",
    "yufacedetect": "yufacedetect-v1/yufacedetectnet-open-v1",
}


def paths(key):
    stem = MODELS / ALL[key]
    return stem.with_suffix(".prototxt"), stem.with_suffix(".caffemodel")


@pytest.fixture(scope="module", params=sorted(ALL))
def model(request):
    proto, weights = paths(request.param)
    return request.param, proto, weights, io.load(proto, weights)


def test_loads_valid_graph_with_all_weights(model):
    key, proto, _, loaded = model
    loaded.graph.validate()
    assert loaded.missing_weights == []
    n_prototxt_layers = len(io.parse_prototxt(proto).layer)
    assert len(loaded.graph.layers) == n_prototxt_layers
    for layer in loaded.graph.layers:
        for blob in layer.blobs:
            assert blob.dtype == np.float32 and not blob.flags.writeable


EXPECTED_UNUSED = {
    "det1": ["data12", "slicer_label", "silence", "loss1", "loss2", "accuracy1"],
    "det2": ["data24", "slicer_label", "conv5-3", "loss3", "loss2", "loss1", "accuracy1"],
    "det3": ["data48", "slicer_label", "loss1", "accuracy1", "loss2", "loss3"],
    "yufacedetect": ["data", "mbox_loss"],
}


def test_unused_weights_name_training_only_layers(model):
    key, _, _, loaded = model
    assert loaded.unused_weights == EXPECTED_UNUSED.get(key, [])


def _packed_floats(blob) -> np.ndarray:
    """Decode BlobProto field 5 (packed float) straight from the wire bytes."""
    raw = blob.SerializeToString()
    i = 0
    while i < len(raw):
        tag, i = _varint(raw, i)
        size, i = _varint(raw, i) if tag & 7 == 2 else (0, i)
        if tag == (5 << 3) | 2:
            return np.frombuffer(raw[i:i + size], dtype="<f4")
        i += size if tag & 7 == 2 else _skip(tag, raw, i)
    raise AssertionError("no packed data field")


def _varint(raw, i):
    value = shift = 0
    while True:
        byte = raw[i]
        value |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if not byte & 0x80:
            return value, i


def _skip(tag, raw, i):
    return {0: _varint(raw, i)[1] - i, 1: 8, 5: 4}[tag & 7]


def test_weights_match_raw_wire_bytes_by_layer_name(model):
    _, _, weights, loaded = model
    by_name = {lp.name: lp for lp in caffe_pb2.NetParameter.FromString(weights.read_bytes()).layer}
    checked = 0
    for layer in loaded.graph.layers:
        if layer.name not in by_name:  # deploy-only layer (e.g. MTCNN's prob1): no weights
            assert layer.blobs == []
            continue
        assert len(layer.blobs) == len(by_name[layer.name].blobs)
        for array, blob in zip(layer.blobs, by_name[layer.name].blobs):
            assert array.shape == tuple(blob.shape.dim)
            np.testing.assert_array_equal(array.ravel(), _packed_floats(blob))
            checked += 1
    assert checked == sum(len(layer.blobs) for layer in loaded.graph.layers) > 0


def test_round_trip_reproduces_both_messages_and_is_byte_identical(model, tmp_path):
    _, proto, weights, loaded = model
    io.save(loaded.graph, tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    io.save(loaded.graph, tmp_path / "b.prototxt", tmp_path / "b.caffemodel")
    for name in ("prototxt", "caffemodel"):
        assert (tmp_path / f"a.{name}").read_bytes() == (tmp_path / f"b.{name}").read_bytes()
    assert io.parse_prototxt(tmp_path / "a.prototxt") == io.parse_prototxt(proto)
    original = io.read_caffemodel(weights)
    kept = {layer.name for layer in loaded.graph.layers}
    expected = caffe_pb2.NetParameter()
    expected.CopyFrom(original)
    del expected.layer[:]
    expected.layer.extend(lp for lp in original.layer if lp.name in kept)
    written = io.read_caffemodel(tmp_path / "a.caffemodel")
    assert written == expected
    # Equality of messages includes unknown fields only loosely; compare the bytes as well.
    assert written.SerializeToString(deterministic=True) == \
        expected.SerializeToString(deterministic=True)


def test_input_styles():
    styles = {}
    for key in ("retinaface", "det1", "yufacedetect"):
        g = io.load(*paths(key)).graph
        styles[key] = (g.input_style, g.inputs, g.caffe_meta.get("legacy_input"))
    assert styles == {"retinaface": ("layer", {"data": (1, 3, 640, 640)}, None),
                      "det1": ("legacy", {"data": (1, 3, 12, 12)}, "input_dim"),
                      "yufacedetect": ("legacy", {"data": (1, 3, 240, 320)}, "input_shape")}


@pytest.mark.parametrize("key", ["retinaface", "det1", "yufacedetect"])
def test_changed_input_shape_is_written_in_the_same_style(key, tmp_path):
    g = io.load(*paths(key)).graph
    g.inputs["data"] = (1, 3, 96, 128)
    io.save(g, tmp_path / "m.prototxt")
    net = io.parse_prototxt(tmp_path / "m.prototxt")
    again = io.load(tmp_path / "m.prototxt").graph
    assert again.inputs == {"data": (1, 3, 96, 128)} and again.input_style == g.input_style
    if key == "det1":
        assert list(net.input_dim) == [1, 3, 96, 128] and not len(net.input_shape)
    elif key == "yufacedetect":
        assert list(net.input_shape[0].dim) == [1, 3, 96, 128] and not len(net.input_dim)
    else:
        assert list(net.layer[0].input_param.shape[0].dim) == [1, 3, 96, 128]


def test_in_place_relu_restored_on_export(tmp_path):
    proto, weights = paths("retinaface")
    g = io.load(proto, weights).graph
    relu = next(la for la in g.layers if la.type == "ReLU" and g.origin.get(la.tops[0]))
    assert relu.tops[0] != relu.bottoms[0]  # SSA inside nnbuild ...
    io.save(g, tmp_path / "m.prototxt")
    written = {lp.name: lp for lp in io.parse_prototxt(tmp_path / "m.prototxt").layer}
    assert list(written[relu.name].top) == list(written[relu.name].bottom)  # ... in place on disk
    assert list(written[relu.name].top) == [g.caffe_name(relu.tops[0])]


def test_prototxt_without_caffemodel_reports_missing_weights():
    proto, _ = paths("det1")
    loaded = io.load(proto)
    assert loaded.missing_weights == ["conv1", "PReLU1", "conv2", "PReLU2", "conv3", "PReLU3",
                                      "conv4-1", "conv4-2"]
    assert loaded.unused_weights == []


def test_unknown_fields_survive_read_write(tmp_path):
    proto, weights = paths("det1")
    net = io.read_caffemodel(weights)
    # Field 1999 (varint) = 7 on the net, on layer conv1 and on its first blob.
    extra = _tag(1999, 0) + bytes([7])
    net.MergeFromString(extra)
    conv1 = next(lp for lp in net.layer if lp.name == "conv1")
    conv1.MergeFromString(extra)
    conv1.blobs[0].MergeFromString(extra)
    (tmp_path / "x.caffemodel").write_bytes(net.SerializeToString())
    g = io.load(proto, tmp_path / "x.caffemodel").graph
    io.save(g, tmp_path / "y.prototxt", tmp_path / "y.caffemodel")
    out = io.read_caffemodel(tmp_path / "y.caffemodel")
    out_conv1 = next(lp for lp in out.layer if lp.name == "conv1")
    for msg in (out, out_conv1, out_conv1.blobs[0]):
        assert [(f.field_number, f.data) for f in unknown_fields.UnknownFieldSet(msg)] == \
            [(1999, 7)]


def _tag(field, wire_type):
    value, out = (field << 3) | wire_type, bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_edited_graph_writes_new_weights_and_new_layers(tmp_path):
    from nnbuild.ir import Layer

    proto, weights = paths("det1")
    g = io.load(proto, weights).graph.copy()
    conv1 = g.layer("conv1")
    doubled = [np.asarray(b) * 2 for b in conv1.blobs]
    conv1.blobs = doubled
    # A pass-made layer with weights and no caffemodel message: written with a fresh BlobShape.
    param = caffe_pb2.LayerParameter()
    param.scale_param.bias_term = False
    tail = g.outputs[0]
    g.layers.append(Layer("extra_scale", "Scale", [tail], ["extra"], param,
                          [np.full((4,), 0.5, np.float32)]))
    io.save(g, tmp_path / "m.prototxt", tmp_path / "m.caffemodel")
    again = io.load(tmp_path / "m.prototxt", tmp_path / "m.caffemodel")
    assert again.missing_weights == [] and again.unused_weights == []
    for got, want in zip(again.graph.layer("conv1").blobs, doubled):
        np.testing.assert_array_equal(got, want)
    written = {lp.name: lp for lp in io.read_caffemodel(tmp_path / "m.caffemodel").layer}
    assert list(written["extra_scale"].blobs[0].shape.dim) == [4]
    assert list(written["extra_scale"].bottom) == [tail]
