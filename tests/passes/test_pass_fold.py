"""fold_batchnorm on generated nets: every foldable producer type, and the unfoldable cases."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.passes import PassContext, run_pass
from nnbuild.passes.fold_batchnorm import bn_affine
from pass_netgen import conv, feeds, layer, max_rel_diff, net, outputs_by_name

BN = "batch_norm_param {{ eps: {eps} }}"
SCALE = "scale_param {{ bias_term: {b} }}"


def bn_scale(name: str, blob: str, eps: float = 1e-3, scale: bool = True, bias: bool = True,
             inplace: bool = True) -> str:
    top = blob if inplace else f"{name}_bn"
    text = layer(f"{name}_bn", "BatchNorm", blob, top, BN.format(eps=eps))
    if scale:
        text += layer(f"{name}_sc", "Scale", top, top, SCALE.format(b=str(bias).lower()))
    return text


def check_fold(text: str, shape, n_folded: int, *, bn_factor=1.0, tol=1e-5):
    g = net(text, {"data": shape}, bn_factor=bn_factor)
    out, entry = run_pass(g, "fold_batchnorm", PassContext())
    remaining = [la.type for la in out.layers]
    assert len(entry["changes"]["notes"]["folded"]) == n_folded
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) < tol
    return g, out, entry, remaining


@pytest.mark.parametrize("group, bias", [(1, True), (1, False), (2, False), (4, True)])
def test_fold_into_convolution(group, bias):
    text = conv("c1", "data", "c1", 8, g=group, bias=bias) + bn_scale("c1", "c1") + \
        layer("r", "ReLU", "c1", "out")
    g, out, entry, types = check_fold(text, (1, 8, 6, 6), 1)
    assert types == ["Convolution", "ReLU"]
    assert out.layer("c1").param.convolution_param.bias_term
    assert len(out.layer("c1").blobs) == 2
    assert not out.layer("c1").blobs[0].flags.writeable
    if not bias:
        assert {"layer": "c1", "field": "bias_term", "before": False, "after": True} in \
            entry["changes"]["params"]


@pytest.mark.parametrize("group", [1, 2, 8])
def test_fold_into_deconvolution(group):
    text = conv("up", "data", "up", 8, k=2, p=0, s=2, g=group, bias=False,
                kind="Deconvolution") + bn_scale("up", "up", inplace=False)
    _, out, _, types = check_fold(text, (1, 8, 5, 5), 1)
    assert types == ["Deconvolution"]
    assert [out.caffe_name(b) for b in out.outputs] == ["up_bn"]  # output name kept


def test_fold_into_inner_product_bn_only_and_scale_factor():
    text = (layer("fc", "InnerProduct", "data", "fc", "inner_product_param { num_output: 6 }") +
            bn_scale("fc", "fc", scale=False, eps=2e-5))
    check_fold(text, (1, 3, 4, 4), 1, bn_factor=7.5)


def test_zero_scale_factor_means_zero_statistics():
    text = conv("c1", "data", "c1", 4) + bn_scale("c1", "c1")
    g = net(text, {"data": (1, 3, 5, 5)}, bn_factor=0.0)
    bn = g.layer("c1_bn")
    a, b = bn_affine(bn, None)
    np.testing.assert_allclose(a, 1 / np.sqrt(1e-3), rtol=1e-6)
    np.testing.assert_array_equal(b, 0)
    out, _ = run_pass(g, "fold_batchnorm", PassContext())
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) < 1e-5


def test_bn_affine_matches_formula():
    g = net(conv("c1", "data", "c1", 4) + bn_scale("c1", "c1", eps=0.5),
            {"data": (1, 3, 5, 5)}, bn_factor=2.0)
    bn, sc = g.layer("c1_bn"), g.layer("c1_sc")
    mean, var = (np.asarray(x, np.float64) / 2.0 for x in bn.blobs[:2])
    gamma, beta = (np.asarray(x, np.float64) for x in sc.blobs)
    x = np.linspace(-3, 3, 4)
    a, b = bn_affine(bn, sc)
    np.testing.assert_allclose(a * x + b, gamma * (x - mean) / np.sqrt(var + 0.5) + beta,
                               rtol=1e-12)


def test_unfoldable_batchnorms_stay():
    text = (conv("c1", "data", "c1", 4) + layer("r1", "ReLU", "c1", "r1") +
            bn_scale("a", "r1", inplace=False) +                       # after a ReLU
            conv("c2", "a_bn", "c2", 4) + bn_scale("b", "c2", inplace=False) +
            layer("add", "Eltwise", ["c2", "b_bn"], "sum") +          # conv output read twice
            conv("c3", "sum", "c3", 4) +
            layer("c_bn", "BatchNorm", "c3", "c3",
                  "batch_norm_param { use_global_stats: false }"))
    g, out, entry, types = check_fold(text, (1, 3, 6, 6), 0)
    reasons = {s["layer"]: s["reason"] for s in entry["changes"]["skipped"]}
    assert "not produced by one of" in reasons["a_bn"]
    assert "also feeds other layers" in reasons["b_bn"]
    assert "use_global_stats is false" in reasons["c_bn"]
    assert types.count("BatchNorm") == 3 and types.count("Scale") == 2


def test_scale_not_folded_when_shared():
    text = (conv("c1", "data", "c1", 4) + layer("c1_bn", "BatchNorm", "c1", "bn") +
            layer("c1_sc", "Scale", "bn", "sc", SCALE.format(b="true")) +
            layer("r", "ReLU", "bn", "r"))
    _, out, _, types = check_fold(text, (1, 3, 6, 6), 1)
    assert types == ["Convolution", "Scale", "ReLU"]
