"""nnie_order and rename_outputs on generated multi-head nets."""

from __future__ import annotations

import pytest

from nnbuild.errors import PassError
from nnbuild.passes import PassContext, run_pass, run_passes
from nnbuild.passes.nnie_order import exclusive_chain
from pass_netgen import conv, feeds, layer, max_rel_diff, net, outputs_by_name

LONG = "face_rpn_cls_prob_reshape_stride"


def heads_net():
    """A trunk with three heads; each head has two layers, the file order interleaves them."""
    text = conv("t1", "data", "t1", 4) + conv("t2", "t1", "t2", 4)
    for h in ("a", "b", "c"):
        text += conv(f"{h}1", "t2", f"{h}1", 2)
    for h in ("a", "b", "c"):
        text += layer(f"{h}2", "ReLU", f"{h}1", f"{LONG}{h}")
    return net(text, {"data": (1, 3, 6, 6)})


def test_nnie_order_puts_outputs_in_stated_order():
    g = heads_net()
    wanted = [f"{LONG}c", f"{LONG}a", f"{LONG}b"]
    out, entry = run_pass(g, {"nnie_order": {"outputs": wanted}}, PassContext())
    assert [out.caffe_name(b) for b in out.outputs] == wanted
    assert [la.name for la in out.layers] == ["t1", "t2", "c1", "c2", "a1", "a2", "b1", "b2"]
    assert entry["changes"]["notes"]["outputs"] == wanted
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0


def test_nnie_order_makes_order_topological():
    g = heads_net()
    g.layers = g.layers[::-1]  # invalid file order: the pass must still produce a valid one
    out, _ = run_pass(g, "nnie_order", PassContext())
    out.validate()


def test_exclusive_chain_stops_at_shared_layers():
    g = heads_net()
    assert exclusive_chain(g, f"{LONG}a") == {"a1", "a2"}


@pytest.mark.parametrize("outputs, match", [
    (["t2"], r"pass nnie_order: output 't2': not a network output\. Expected one of"),
    ([f"{LONG}a", f"{LONG}a"], r"output '.*a': listed twice"),
])
def test_nnie_order_errors(outputs, match):
    with pytest.raises(PassError, match=match):
        run_pass(heads_net(), {"nnie_order": {"outputs": outputs}}, PassContext())


def test_rename_outputs_makes_truncated_names_unique_and_order_follows():
    g = heads_net()
    ctx = PassContext()
    wanted = [f"{LONG}b", f"{LONG}c", f"{LONG}a"]
    out, report = run_passes(g, ["rename_outputs", {"nnie_order": {"outputs": wanted}}],
                             context=ctx)
    names = [out.caffe_name(b) for b in out.outputs]
    assert all(len(n) <= 31 for n in names)
    assert len({n[:31] for n in names}) == 3
    assert names == [ctx.renames[w] for w in wanted]
    assert names[0] == "face_rpn_cls_prob_reshape_strib"
    renamed = report[0]["changes"]["renamed"]
    assert {"kind": "blob", "before": f"{LONG}a", "after": ctx.renames[f"{LONG}a"]} in renamed
    f = feeds(g)
    ref = outputs_by_name(g, f)
    got = outputs_by_name(out, f)
    assert max_rel_diff({k: got[ctx.renames[k]] for k in ref}, ref) == 0


def test_rename_outputs_leaves_distinct_names():
    out, entry = run_pass(heads_net(), {"rename_outputs": {"names": {}}}, PassContext())
    assert "renamed" not in entry["changes"]
    g = net(conv("c", "data", "short", 2), {"data": (1, 3, 4, 4)})
    _, entry = run_pass(g, "rename_outputs", PassContext())
    assert "renamed" not in entry["changes"]


def test_rename_outputs_explicit_errors():
    with pytest.raises(PassError, match=r"rename_outputs: 't1': not a network output"):
        run_pass(heads_net(), {"rename_outputs": {"names": {"t1": "x"}}}, PassContext())
    with pytest.raises(PassError, match=r"new name too long\. Expected <= 31 characters"):
        run_pass(heads_net(), {"rename_outputs": {"names": {f"{LONG}a": "x" * 32}}},
                 PassContext())
