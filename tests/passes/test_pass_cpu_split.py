"""cpu_split on generated nets: the lint-rejected tail moves to the CPU, nothing else does."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.errors import PassError
from nnbuild.nnie.lint import lint
from nnbuild.passes import PassContext, run_pass
from nnbuild.passes.cpu_split import run_split
from pass_netgen import conv, feeds, layer, net, outputs_by_name

RESHAPE_3D = "reshape_param { shape { dim: 1 dim: -1 dim: 2 } }"


def tail_net():
    """conv -> two 3-D Reshapes: r1 -> Softmax -> Sigmoid (forced to the CPU); r2 is an output."""
    text = conv("c1", "data", "c1", 4, k=1, p=0)
    text += layer("r1", "Reshape", "c1", "r1", RESHAPE_3D)
    text += layer("s1", "Softmax", "r1", "s1", "softmax_param { axis: 2 }")
    text += layer("g1", "Sigmoid", "s1", "g1")
    text += layer("r2", "Reshape", "c1", "r2", RESHAPE_3D)
    return net(text, {"data": (1, 3, 4, 4)})


def _split(graph, **args):
    ctx = PassContext()
    nnie, entry = run_pass(graph, {"cpu_split": {"types": ["Sigmoid"], **args}}, ctx)
    return nnie, ctx, entry["changes"]["notes"]


def _errors(graph):
    return sorted(f.layer for f in lint(graph) if f.severity == "error")


def test_rejected_tail_moves_but_a_rejected_output_stays():
    g = tail_net()
    assert _errors(g) == ["r1", "r2"]
    nnie, ctx, notes = _split(g)
    assert [la.name for la in ctx.cpu_graph.layers] == ["r1", "s1", "g1"]
    assert notes["lint_moved"] == ["r1"] and notes["cut_blobs"] == ["c1"]
    # r2 is an NNIE output: moving it would only hide the problem, so lint still reports it.
    assert [la.name for la in nnie.layers] == ["c1", "r2"] and _errors(nnie) == ["r2"]
    f = feeds(g)
    got = {k: v for k, v in run_split(nnie, ctx.cpu_graph, f).items()}
    want = outputs_by_name(g, f)
    for name in ("g1", "r2"):
        np.testing.assert_array_equal(got[name], want[name])


def test_lint_tail_off_moves_only_what_nnie_cannot_run():
    nnie, ctx, notes = _split(tail_net(), lint_tail=False)
    assert [la.name for la in ctx.cpu_graph.layers] == ["g1"]
    assert notes["lint_moved"] == [] and notes["cut_blobs"] == ["s1"]
    assert _errors(nnie) == ["r1", "r2"]


def test_named_layers_move_with_what_they_feed():
    g = tail_net()
    nnie, ctx, notes = _split(g, layers=["r2"])
    assert [la.name for la in ctx.cpu_graph.layers] == ["r1", "s1", "g1", "r2"]
    assert _errors(nnie) == [] and [la.name for la in nnie.layers] == ["c1"]
    f = feeds(g)
    np.testing.assert_array_equal(run_split(nnie, ctx.cpu_graph, f)["r2"],
                                  outputs_by_name(g, f)["r2"])


def test_unknown_layer_name_is_a_pass_error():
    with pytest.raises(PassError, match=r"^pass cpu_split: no layer 'nope' to move to the CPU\. "
                                        r"Expected a layer of the network, got nope\."):
        _split(tail_net(), layers=["nope"])
