"""Cached execution plans: reused for an unchanged graph, rebuilt for an edited one; heap setup."""

from __future__ import annotations

import resource

import numpy as np
import pytest
from google.protobuf import text_format

from conftest import MODELS
from nnbuild.caffe import caffe_pb2
from nnbuild.caffe.io import load
from nnbuild.engine import heap, run
from nnbuild.engine.plan import plan_for
from nnbuild.ir import Graph, Layer

RNG = np.random.default_rng(6)


def lay(name, kind, bottoms, tops, text="", blobs=()):
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    return Layer(name, kind, list(bottoms), list(tops), param,
                 [np.asarray(b, dtype=np.float32) for b in blobs])


def net():
    """data -> 3x3 conv (pad 1) -> ReLU -> out, and data -> Scale x2 -> s."""
    w = RNG.standard_normal((2, 1, 3, 3))
    layers = [lay("conv", "Convolution", ["data"], ["c"], "convolution_param { num_output: 2 "
                  "kernel_size: 3 pad: 1 bias_term: false }", [w]),
              lay("relu", "ReLU", ["c"], ["out"]),
              lay("sc", "Scale", ["data"], ["s"], "", [[2.0]])]
    return Graph.from_caffe("p", {"data": (1, 1, 5, 5)}, layers), w


def conv_ref(x, w, pad):
    k = w.shape[2]
    xp = np.pad(x[0, 0].astype(np.float64), pad)
    n = xp.shape[0] - k + 1
    out = np.zeros((2, n, n))
    for o, i, j in np.ndindex(2, n, n):
        out[o, i, j] = (xp[i:i + k, j:j + k] * w[o, 0]).sum()
    return np.maximum(out, 0)


def test_plan_is_reused_until_the_graph_changes():
    g, _ = net()
    first = plan_for(g, None, False)
    assert plan_for(g, None, False) is first
    assert plan_for(g, ["c"], False) is not first  # another keep set, another plan
    g.layers[0].param.convolution_param.pad[:] = [0]
    assert plan_for(g, None, False) is not first


def test_param_edited_in_place_changes_the_result():
    g, w = net()
    x = RNG.standard_normal((1, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run(g, {"data": x})["out"][0], conv_ref(x, w, 1), atol=1e-5)
    g.layers[0].param.convolution_param.pad[:] = [0]  # the cached geometry must not survive
    out = run(g, {"data": x})["out"]
    assert out.shape == (1, 2, 3, 3)
    np.testing.assert_allclose(out[0], conv_ref(x, w, 0), atol=1e-5)


def test_rewired_graph_and_swapped_weights_are_honoured():
    g, w = net()
    x = RNG.standard_normal((1, 1, 5, 5)).astype(np.float32)
    assert set(run(g, {"data": x})) == {"out", "s"}
    g.layers[1].bottoms = ["s"]  # ReLU now reads the Scale output: conv's top is an output
    g.layers[1], g.layers[2] = g.layers[2], g.layers[1]
    got = run(g, {"data": x})
    assert set(got) == {"c", "out"}
    np.testing.assert_allclose(got["out"], np.maximum(2 * x, 0), atol=1e-6)
    g.layers[1].blobs = [np.asarray([3.0], np.float32)]  # weights are read at run time
    np.testing.assert_allclose(run(g, {"data": x})["out"], np.maximum(3 * x, 0), atol=1e-6)


def test_heap_thresholds_stop_page_faults_of_a_forward_pass():
    """~2,300 minor faults per MobileFaceNet pass with glibc's defaults (nnbuild/engine/heap.py)."""
    if not heap.keep_freed_memory():
        pytest.skip("not glibc: heap thresholds are left alone")
    stem = MODELS / "mobilefacenet" / "mobilefacenet"
    graph = load(f"{stem}.prototxt", f"{stem}.caffemodel").graph
    [(name, shape)] = graph.inputs.items()
    feeds = {name: RNG.uniform(0, 255, shape).astype(np.float32)}
    run(graph, feeds)
    run(graph, feeds)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        run(graph, feeds)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
    assert faults < 300, faults


def bn_graph(eps=1e-5):
    """data -> 1x1 conv -> BatchNorm -> Scale (bias) -> PReLU: one fused group."""
    layers = [lay("conv", "Convolution", ["data"], ["c"], "convolution_param { num_output: 3 "
                  "kernel_size: 1 }", [RNG.standard_normal((3, 2, 1, 1)), RNG.standard_normal(3)]),
              lay("bn", "BatchNorm", ["c"], ["n"], f"batch_norm_param {{ eps: {eps} }}",
                  [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3), [1.0]]),
              lay("sc", "Scale", ["n"], ["s"], "scale_param { bias_term: true }",
                  [RNG.standard_normal(3), RNG.standard_normal(3)]),
              lay("act", "PReLU", ["s"], ["out"], "", [RNG.uniform(0, 1, 3)])]
    return Graph.from_caffe("bn", {"data": (1, 2, 3, 3)}, layers)


def bn_ref(g, x, over=None):
    w = {layer.name: [np.asarray(b, np.float64) for b in layer.blobs] for layer in g.layers}
    w.update({k: [np.asarray(b, np.float64) for b in v] for k, v in (over or {}).items()})
    eps = g.layers[1].param.batch_norm_param.eps
    col = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    c = np.einsum("oc,nchw->nohw", w["conv"][0][:, :, 0, 0], x) + col(w["conv"][1])
    n = (c - col(w["bn"][0])) / np.sqrt(col(w["bn"][1]) + eps)
    s = n * col(w["sc"][0]) + col(w["sc"][1])
    return np.where(s > 0, s, s * col(w["act"][0]))


def test_fused_group_follows_weight_overrides_and_param_edits():
    g = bn_graph()
    x = RNG.standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(run(g, {"data": x})["out"], bn_ref(g, x), rtol=1e-5, atol=1e-5)
    over = {"bn": [np.full(3, 0.5, np.float32), np.full(3, 4.0, np.float32),
                   np.ones(1, np.float32)]}
    np.testing.assert_allclose(run(g, {"data": x}, weights=over)["out"], bn_ref(g, x, over),
                               rtol=1e-5, atol=1e-5)
    g.layers[1].param.batch_norm_param.eps = 0.75  # an edited eps must not hit the old fold
    np.testing.assert_allclose(run(g, {"data": x})["out"], bn_ref(g, x), rtol=1e-5, atol=1e-5)
    g.layers[2].blobs = [np.full(3, 2.0, np.float32), np.zeros(3, np.float32)]
    np.testing.assert_allclose(run(g, {"data": x})["out"], bn_ref(g, x), rtol=1e-5, atol=1e-5)
