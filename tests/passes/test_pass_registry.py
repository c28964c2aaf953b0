"""Pass registry: spec parsing, argument checks, purity and validation of run_passes."""

from __future__ import annotations

import pytest

from nnbuild.errors import GraphError, PassError
from nnbuild.passes import (PASSES, PassContext, get_pass, parse_spec, register_pass, run_pass,
                            run_passes)
from nnbuild.passes.changes import Changes
from pass_netgen import conv, layer, net, snapshot

ALL = {"set_input_shape", "remove_crop", "reshape_batch_zero", "fold_batchnorm", "nnie_order",
       "inplace_activations", "mark_high_precision", "drop_layers", "rename_outputs",
       "cpu_split"}


def small():
    return net(conv("c1", "data", "c1", 4) + layer("r1", "ReLU", "c1", "r1"),
               {"data": (1, 3, 8, 8)})


def test_every_documented_pass_is_registered():
    get_pass("remove_crop")
    assert ALL <= set(PASSES)


def test_duplicate_registration_is_rejected():
    with pytest.raises(ValueError, match="registered twice"):
        register_pass("remove_crop")(lambda graph, ctx: (graph, Changes()))


def test_bad_signature_is_rejected():
    with pytest.raises(ValueError, match="signature"):
        register_pass("h6_bad_signature")(lambda graph, ctx, x: (graph, Changes()))
    assert "h6_bad_signature" not in PASSES


@pytest.mark.parametrize("spec, expected", [
    ("remove_crop", ("remove_crop", {})),
    ({"nnie_order": {"outputs": ["a"]}}, ("nnie_order", {"outputs": ["a"]})),
    ({"fold_batchnorm": None}, ("fold_batchnorm", {})),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", [3, {"a": {}, "b": {}}, {"a": [1]}])
def test_malformed_spec(spec):
    with pytest.raises(PassError, match=r"patches: malformed pass spec\. Expected a pass name"):
        parse_spec(spec)


def test_unknown_pass_and_argument():
    with pytest.raises(PassError, match=r"patches: remove_crops: unknown pass\. .*remove_crop"):
        run_passes(small(), ["remove_crops"])
    with pytest.raises(PassError, match=r"patches: nnie_order: unknown argument 'output'\. "
                                        r"Expected outputs"):
        run_passes(small(), [{"nnie_order": {"output": []}}])


def test_run_passes_reports_each_pass_and_leaves_input_alone():
    g = small()
    before = snapshot(g)
    specs = [{"set_input_shape": {"shape": [1, 3, 16, 16]}}, "inplace_activations"]
    out, report = run_passes(g, specs, context=PassContext())
    assert snapshot(g) == before
    assert [e["pass"] for e in report] == ["set_input_shape", "inplace_activations"]
    assert report[0]["args"] == {"shape": [1, 3, 16, 16]}
    assert out.inputs["data"] == (1, 3, 16, 16)


def test_every_pass_leaves_its_input_alone():
    text = (conv("c1", "data", "c1", 4) + layer("bn", "BatchNorm", "c1", "c1") +
            layer("sc", "Scale", "c1", "c1", "scale_param { bias_term: true }") +
            layer("r1", "ReLU", "c1", "r1") + layer("d", "Dropout", "r1", "r1") +
            layer("rs", "Reshape", "r1", "out", "reshape_param { shape { dim: 1 dim: -1 } }"))
    g = net(text, {"data": (1, 3, 8, 8)})
    before = snapshot(g)
    ctx = PassContext(input_shape=(1, 3, 8, 8), high_precision=["c1"])
    for name in sorted(ALL - {"remove_crop"}):
        run_pass(g, name, ctx)
        assert snapshot(g) == before, name


def test_invalid_result_is_caught_by_validation():
    @register_pass("h6_breaks_graph")
    def breaks(graph, ctx):
        g = graph.copy()
        g.layers.reverse()
        return g, Changes()

    try:
        with pytest.raises(GraphError, match="after pass h6_breaks_graph: layer 'r1': bottom 'c1'"
                                             " is used before"):
            run_passes(small(), ["h6_breaks_graph"])
    finally:
        del PASSES["h6_breaks_graph"]
