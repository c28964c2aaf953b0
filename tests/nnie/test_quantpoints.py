"""Tests for nnbuild.nnie.quantpoints: where NNIE rounds, on code-built graphs and RetinaFace."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.errors import RecipeError
from nnbuild.ir import Graph, Layer
from nnbuild.nnie.quantpoints import compile_mode, layer_bits, quant_points

W = np.ones((4, 3, 3, 3), np.float32)


def _net(*layers: tuple[str, str, list[str], list[str]]) -> Graph:
    """A graph from (name, type, bottoms, tops) tuples in Caffe naming (in-place allowed)."""
    built = [Layer(n, t, b, o, blobs=[W] if t in ("Convolution", "InnerProduct") else [])
             for n, t, b, o in layers]
    return Graph.from_caffe("t", {"data": (1, 3, 8, 8)}, built)


def test_compile_mode_names_and_numbers():
    assert [compile_mode(m) for m in ("int8", "int16", "mixed", 0, 1, 2)] == [0, 1, 2, 0, 1, 2]
    with pytest.raises(RecipeError, match=r"quant.mode: unknown quantization mode.*'int4'"):
        compile_mode("int4")
    with pytest.raises(RecipeError, match="unknown quantization mode"):
        compile_mode(True)


def test_layer_bits_follow_hp_suffix_only_in_mixed():
    assert layer_bits("conv_hp", "int8") == 8
    assert layer_bits("conv_hp", "mixed") == 16
    assert layer_bits("conv_hpx", "mixed") == 8
    assert layer_bits("conv", "int16") == 16


def test_inplace_chain_is_fused_and_only_its_end_is_stored():
    g = _net(("c1", "Convolution", ["data"], ["x"]),
             ("bn", "BatchNorm", ["x"], ["x"]),
             ("sc", "Scale", ["x"], ["x"]),
             ("relu", "ReLU", ["x"], ["x"]),
             ("c2", "Convolution", ["x"], ["y"]))
    p = quant_points(g, "int8")
    assert p.blobs == {"x@3": 8}
    assert p.fused == {"x", "x@1", "x@2"}
    assert p.chains["x@3"] == ("c1", "bn", "sc", "relu")
    assert p.outputs == ("y",)
    assert p.weights == {"c1": 8, "c2": 8}
    assert "data" not in p.blobs  # the U8 image is exact (nnie-facts §3)


def test_blob_with_two_readers_is_stored_once_and_not_fused():
    g = _net(("c1", "Convolution", ["data"], ["x"]),
             ("relu", "ReLU", ["x"], ["r"]),
             ("c2", "Convolution", ["x"], ["y"]),
             ("add", "Eltwise", ["r", "y"], ["z"]),
             ("soft", "Softmax", ["z"], ["p"]))
    p = quant_points(g, 0)
    assert list(p.blobs) == ["x", "r", "y", "z"]
    assert p.fused == frozenset()
    assert p.outputs == ("p",)


def test_activation_after_eltwise_is_not_fused():
    g = _net(("c1", "Convolution", ["data"], ["x"]),
             ("add", "Eltwise", ["x", "x"], ["s"]),
             ("relu", "PReLU", ["s"], ["r"]),
             ("c2", "Convolution", ["r"], ["y"]))
    assert list(quant_points(g, "int8").blobs) == ["x", "s", "r"]


def test_mixed_mode_marks_hp_chain_and_weights_16_bit():
    g = _net(("c1_hp", "Convolution", ["data"], ["x"]),
             ("relu", "ReLU", ["x"], ["x"]),
             ("c2", "Convolution", ["x"], ["y"]),
             ("c3", "Convolution", ["y"], ["z"]))
    p = quant_points(g, "mixed")
    assert p.weights == {"c1_hp": 16, "c2": 8, "c3": 8}
    assert p.blobs == {"x@1": 16, "y": 8}
    assert quant_points(g, "int16").blobs == {"x@1": 16, "y": 16}


def test_retinaface_points(retina_graph):
    p = quant_points(retina_graph, "int8")
    types = {layer.name: layer.type for layer in retina_graph.layers}
    assert all(types[n] in ("Convolution", "Deconvolution") for n in p.weights)
    assert len(p.weights) == 58  # 56 convolutions + 2 upsampling deconvolutions
    assert len(p.outputs) == 9 and not set(p.outputs) & set(p.blobs)
    # every BN/Scale/ReLU behind a convolution is fused: no stored blob is read by one of them
    readers = retina_graph.consumers()
    fused_types = ("BatchNorm", "Scale", "ReLU")
    read_by_fused = [b for b in p.blobs if any(r.type in fused_types for r in readers[b])]
    # ... except after a Concat, which is no computing layer and fuses nothing
    assert read_by_fused == ["rf_c3_det_concat", "rf_c2_det_concat", "rf_c1_det_concat"]
    assert len(p.fused) == 47 * 2 + 41 - 3  # conv->BN, BN->Scale, ReLU inputs but post-Concat
    assert len(p.blobs) == 68


@pytest.fixture(scope="module")
def retina_graph():
    from conftest import MODELS
    from nnbuild.caffe import io

    folder = MODELS / "retinaface-mnet25"
    return io.load(folder / "mnet.prototxt", folder / "mnet.caffemodel").graph
