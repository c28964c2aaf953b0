"""Graph execution: order, keep, on_blob, weight override, freeing, errors before running."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.engine import run
from nnbuild.engine.denormal import flushed
from nnbuild.errors import GraphError, ModelError, UnsupportedLayerError
from nnbuild.ir import Graph, Layer

RNG = np.random.default_rng(2)


def lay(name, kind, bottoms, tops, text="", blobs=()):
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    frozen = []
    for b in blobs:
        b = np.asarray(b, dtype=np.float32)
        b.flags.writeable = False
        frozen.append(b)
    return Layer(name, kind, list(bottoms), list(tops), param, frozen)


def small_net(extra=()):
    """data -> conv -> relu (in place) -> scale -> {out1}, conv -> pool -> out2."""
    w = RNG.standard_normal((4, 3, 3, 3))
    layers = [lay("conv", "Convolution", ["data"], ["c"], "convolution_param { num_output: 4 "
                  "kernel_size: 3 pad: 1 bias_term: false }", [w]),
              lay("relu", "ReLU", ["c"], ["c"]),
              lay("scale", "Scale", ["c"], ["out1"], "", [np.full(4, 2.0)]),
              lay("pool", "Pooling", ["c"], ["out2"], "pooling_param { pool: MAX kernel_size: 2 "
                  "stride: 2 }"), *extra]
    return Graph.from_caffe("t", {"data": (1, 3, 6, 6)}, layers), w


def reference(x, w):
    xp = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    c = np.zeros((4, 6, 6))
    for o, i, j in np.ndindex(4, 6, 6):
        c[o, i, j] = (xp[:, i:i + 3, j:j + 3] * w[o]).sum()
    c = np.maximum(c, 0)
    return 2 * c, c.reshape(4, 3, 2, 3, 2).max(axis=(2, 4))


def test_outputs_match_an_independent_computation():
    g, w = small_net()
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    out = run(g, {"data": x})
    assert list(out) == ["out1", "out2"]
    r1, r2 = reference(x, w)
    np.testing.assert_allclose(out["out1"][0], r1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["out2"][0], r2, rtol=1e-4, atol=1e-5)


def test_keep_all_and_named_ssa_versions():
    g, _ = small_net()
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    everything = run(g, {"data": x}, keep="all")
    assert set(everything) == {"data", "c", "c@1", "out1", "out2"}
    np.testing.assert_array_equal(everything["c@1"], np.maximum(everything["c"], 0))
    assert set(run(g, {"data": x}, keep=["c"])) == {"c", "out1", "out2"}


def test_on_blob_sees_every_blob_in_order_and_can_replace():
    g, _ = small_net()
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    seen = []

    def hook(layer, blob, arr):
        seen.append((None if layer is None else layer.name, blob))
        return np.zeros_like(arr) if blob == "c@1" else None

    out = run(g, {"data": x}, on_blob=hook)
    assert seen == [(None, "data"), ("conv", "c"), ("relu", "c@1"), ("scale", "out1"),
                    ("pool", "out2")]
    assert not out["out1"].any() and not out["out2"].any()


def test_weights_override_replaces_layer_blobs():
    g, w = small_net()
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    out = run(g, {"data": x}, weights={"scale": [np.full(4, -1.0, np.float32)]})
    np.testing.assert_allclose(out["out1"][0], -reference(x, w)[0] / 2, rtol=1e-4, atol=1e-5)


def test_dead_blobs_are_freed_during_execution():
    g, _ = small_net()
    refs = {}
    alive_at_pool = {}

    def hook(layer, blob, arr):
        refs[blob] = weakref.ref(arr)
        if blob == "out2":
            alive_at_pool.update({b: r() is not None for b, r in refs.items()})

    run(g, {"data": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)}, on_blob=hook)
    # "c" was last read by relu, "c@1" by pool (just now); the outputs are kept.
    assert alive_at_pool["c"] is False
    assert alive_at_pool["out1"] is True


def test_unsupported_layer_is_reported_before_anything_runs():
    g, _ = small_net([lay("weird", "Python", ["out1"], ["o3"])])
    calls = []
    with pytest.raises(UnsupportedLayerError, match=r"layer 'weird': layer type 'Python' is not "
                                                    r"supported by the float engine"):
        run(g, {"data": np.zeros((1, 3, 6, 6), np.float32)},
            on_blob=lambda *a: calls.append(a))
    assert calls == []


def test_feed_keep_and_graph_errors():
    g, _ = small_net()
    x = np.zeros((1, 3, 6, 6), np.float32)
    with pytest.raises(ModelError, match="feeds: the fed blobs do not match"):
        run(g, {"image": x})
    with pytest.raises(ModelError, match="keep: asked to keep blobs the network does not have"):
        run(g, {"data": x}, keep=["nope"])
    broken = Graph.from_caffe("t", {"data": (1, 3, 6, 6)}, [lay("r", "ReLU", ["ghost"], ["o"])])
    with pytest.raises(GraphError, match="bottom 'ghost' is produced by no layer"):
        run(broken, {"data": x})


def test_layer_failure_names_the_layer():
    g, _ = small_net()
    with pytest.raises(ModelError, match=r"layer 'conv' \(Convolution\): weight shape"):
        run(g, {"data": np.zeros((1, 2, 6, 6), np.float32)})


def test_denormal_weights_are_flushed_once():
    w = np.array([1e-40, 1.0, -2e-39, 0.0], dtype=np.float32)
    w.flags.writeable = False
    clean = flushed(w)
    np.testing.assert_array_equal(clean, [0, 1, 0, 0])
    assert flushed(w) is clean
    normal = np.ones(3, np.float32)
    assert flushed(normal) is normal


def test_float64_feeds_run_in_float32():
    g, _ = small_net()
    out = run(g, {"data": np.ones((1, 3, 6, 6))}, keep="all")
    assert {a.dtype for a in out.values()} == {np.dtype(np.float32)}


def bn_net():
    """data -> conv -> BatchNorm -> Scale(bias) -> ReLU, all in place after the conv."""
    w = RNG.standard_normal((3, 2, 1, 1))
    mean, var = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    s, b = RNG.standard_normal(3), RNG.standard_normal(3)
    layers = [lay("conv", "Convolution", ["data"], ["c"], "convolution_param { num_output: 3 "
                  "kernel_size: 1 bias_term: false }", [w]),
              lay("bn", "BatchNorm", ["c"], ["c"], "", [mean * 2, var * 2, [2.0]]),
              lay("sc", "Scale", ["c"], ["c"], "scale_param { bias_term: true }", [s, b]),
              lay("relu", "ReLU", ["c"], ["c"])]
    graph = Graph.from_caffe("bn", {"data": (1, 2, 4, 4)}, layers)

    def ref(x):
        c = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x.astype(np.float64))
        c = (c - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        return np.maximum(c * s[None, :, None, None] + b[None, :, None, None], 0)
    return graph, ref


def test_fused_batchnorm_scale_matches_formula_and_unfused_run():
    graph, ref = bn_net()
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
    x_before = x.copy()
    fused = run(graph, {"data": x})["c@3"]
    unfused = run(graph, {"data": x}, keep="all")
    np.testing.assert_allclose(fused, ref(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused, unfused["c@3"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, x_before)  # the caller's feed is never written


def test_fusion_never_overwrites_a_kept_blob():
    graph, _ = bn_net()
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
    every = run(graph, {"data": x}, keep="all")
    kept = run(graph, {"data": x}, keep=["c"])
    np.testing.assert_array_equal(kept["c"], every["c"])
    np.testing.assert_allclose(kept["c@3"], every["c@3"], rtol=1e-5, atol=1e-6)
