"""Graph IR: SSA naming, validation errors, topological order, and export names."""

from __future__ import annotations

import pytest

from nnbuild.errors import GraphError
from nnbuild.ir import Graph, Layer


def L(name, bottoms, tops, type_="ReLU"):  # noqa: N802 - tiny fixture builder
    return Layer(name, type_, list(bottoms), list(tops))


def legacy(layers, inputs=("data",)):
    return Graph.from_caffe("t", {i: (1, 3, 4, 4) for i in inputs}, layers, input_style="legacy")


# -- SSA naming ----------------------------------------------------------------------------------

def test_in_place_chain_gets_versions_and_origin():
    g = legacy([L("conv", ["data"], ["x"], "Convolution"), L("bn", ["x"], ["x"], "BatchNorm"),
                L("relu", ["x"], ["x"]), L("pool", ["x"], ["y"], "Pooling")])
    assert [(la.bottoms, la.tops) for la in g.layers] == [
        (["data"], ["x"]), (["x"], ["x@1"]), (["x@1"], ["x@2"]), (["x@2"], ["y"])]
    assert g.origin == {"x@1": "x", "x@2": "x"}
    assert g.caffe_name("x@2") == "x" and g.caffe_name("y") == "y"
    g.validate()


def test_input_layer_top_is_the_input_not_a_second_version():
    g = Graph.from_caffe("t", {"data": (1, 3, 4, 4)},
                         [L("data", [], ["data"], "Input"), L("relu", ["data"], ["r"])])
    assert g.layers[0].tops == ["data"] and g.layers[1].bottoms == ["data"]
    assert g.origin == {}
    g.validate()  # the Input layer does not count as a second producer of "data"


def test_legacy_input_rewritten_in_place_is_versioned():
    g = legacy([L("scale", ["data"], ["data"], "Power"), L("relu", ["data"], ["r"])])
    assert g.layers[0].tops == ["data@1"] and g.layers[1].bottoms == ["data@1"]


def test_from_caffe_does_not_mutate_its_layers():
    src = [L("conv", ["data"], ["x"]), L("relu", ["x"], ["x"])]
    legacy(src)
    assert src[1].tops == ["x"]


# -- validate ------------------------------------------------------------------------------------

def test_duplicate_layer_name():
    g = legacy([L("a", ["data"], ["x"]), L("a", ["x"], ["y"])])
    with pytest.raises(GraphError, match=r"layer 'a'.*duplicate layer name"):
        g.validate("net.prototxt")


def test_missing_bottom_names_the_caffe_blob():
    g = legacy([L("a", ["data"], ["x"]), L("b", ["nope"], ["y"])])
    with pytest.raises(GraphError, match=r"net: layer 'b'.*bottom 'nope' is produced by no layer"):
        g.validate("net")


def test_blob_produced_twice_when_built_directly():
    g = Graph("t", {"data": (1,)}, [L("a", ["data"], ["x"]), L("b", ["data"], ["x"])])
    with pytest.raises(GraphError, match=r"blob 'x' is produced twice.*'a' and 'b'"):
        g.validate()


def test_cycle_is_reported_with_its_layers():
    g = Graph("t", {"data": (1,)}, [L("a", ["data", "z"], ["x"]), L("b", ["x"], ["z"])])
    with pytest.raises(GraphError, match=r"the graph has a cycle.*a, b"):
        g.validate()


def test_used_before_produced():
    g = Graph("t", {"data": (1,)}, [L("b", ["x"], ["y"]), L("a", ["data"], ["x"])])
    with pytest.raises(GraphError, match=r"layer 'b'.*bottom 'x' is used before the layer 'a'"):
        g.validate()


# -- order ---------------------------------------------------------------------------------------

def test_toposort_keeps_a_valid_order():
    # Two independent branches interleaved in file order: already valid, must stay as is.
    layers = [L("a1", ["data"], ["a"]), L("b1", ["data"], ["b"]), L("a2", ["a"], ["a2"]),
              L("b2", ["b"], ["b2"]), L("cat", ["a2", "b2"], ["c"], "Concat")]
    g = Graph("t", {"data": (1,)}, layers)
    assert g.toposort_names() == ["a1", "b1", "a2", "b2", "cat"]


def test_toposorted_repairs_order_and_stays_close_to_file_order():
    g = Graph("t", {"data": (1,)}, [L("c", ["b"], ["c"]), L("x", ["data"], ["x"]),
                                    L("b", ["data"], ["b"])])
    fixed = g.toposorted()
    assert [la.name for la in fixed.layers] == ["x", "b", "c"]
    fixed.validate()
    assert [la.name for la in g.layers] == ["c", "x", "b"]  # input graph untouched


# -- export names --------------------------------------------------------------------------------

def _chain():
    return legacy([L("conv", ["data"], ["x"], "Convolution"), L("bn", ["x"], ["x"], "BatchNorm"),
                   L("relu", ["x"], ["x"]), L("head", ["x"], ["y"])])


def test_caffe_names_restore_in_place_form():
    names = _chain().caffe_names()
    assert names == {"data": "data", "x": "x", "x@1": "x", "x@2": "x", "y": "y"}


def test_caffe_names_keep_versions_distinct_when_a_pass_breaks_the_chain():
    g = _chain().copy()
    # A pass adds a second reader of the pre-ReLU version x@1 *after* the ReLU: writing both as
    # "x" would feed that layer the ReLU output, so the versions must get distinct names.
    g.layers.append(L("side", ["x@1"], ["s"]))
    names = g.caffe_names()
    assert names["x@1"] == "x_1" and names["x@2"] == "x_2" and names["x"] == "x"
    assert names["y"] == "y"


def test_copy_is_independent_and_shares_weights():
    g = _chain()
    g.caffe_meta["k"] = [1]
    c = g.copy()
    c.layers[0].tops.append("extra")
    c.caffe_meta["k"].append(2)
    assert g.layers[0].tops == ["x"] and g.caffe_meta["k"] == [1]


def test_layer_lookup_error():
    with pytest.raises(GraphError, match=r"'zzz': no such layer"):
        _chain().layer("zzz")


def test_outputs_and_consumers():
    g = _chain()
    assert g.outputs == ["y"]
    assert [la.name for la in g.consumers()["x@2"]] == ["head"]
    assert g.producers()["x@1"].name == "bn"
