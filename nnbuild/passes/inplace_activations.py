"""Pass ``inplace_activations``: ReLU/PReLU computed in place where safe, or split out again.

An in-place activation saves NNIE a feature-map write. It is safe only when nothing else reads
the activation's input (the pre-activation value would be overwritten) and the input is not a
network output. The inverse mode gives in-place activations a blob of their own, so the
pre-activation value stays observable (e.g. to expose it with the "_report" suffix, nnie-facts.md
§5, or to compare it layer by layer).
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import SSA_SEP, Graph, Layer
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import rewire, blob_names, unique_name

ACTIVATIONS = ("ReLU", "PReLU")


def _next_version(g: Graph, base: str) -> str:
    versions = {b for b in g.producers() if g.caffe_name(b) == base} | {base}
    k = 1
    while f"{base}{SSA_SEP}{k}" in versions:
        k += 1
    return f"{base}{SSA_SEP}{k}"


def _make_inplace(g: Graph, act: Layer, changes: Changes) -> bool:
    src, top = act.bottoms[0], act.tops[0]
    consumers, outputs = g.consumers(), set(g.outputs)
    if len(consumers[src]) != 1 or src in outputs or top in outputs or src in g.inputs:
        return False
    base = g.caffe_name(src)
    if g.caffe_name(top) == base:
        return False  # already in place
    new = _next_version(g, base)
    g.origin[new] = base
    act.tops = [new]
    rewire(g, top, new, changes)
    changes.rename("blob", g.caffe_name(top), base)
    g.origin.pop(top, None)
    return True


def _make_out_of_place(g: Graph, act: Layer, taken: set[str], changes: Changes) -> bool:
    src, top = act.bottoms[0], act.tops[0]
    if g.caffe_name(top) != g.caffe_name(src) or top in set(g.outputs):
        return False
    new = unique_name(act.name, taken)
    taken.add(new)
    act.tops = [new]
    rewire(g, top, new, changes)
    g.origin.pop(top, None)
    changes.rename("blob", f"{g.caffe_name(src)} (in place, {act.name})", new)
    return True


@register_pass("inplace_activations")
def inplace_activations(graph: Graph, ctx: PassContext, *, mode="inplace", blobs=None
                        ) -> tuple[Graph, Changes]:
    """Make ReLU/PReLU in place (``mode: inplace``) or give them their own top (``out_of_place``).

    Args:
        graph: the network.
        ctx: unused.
        mode: ``inplace`` or ``out_of_place``.
        blobs: out_of_place only: the Caffe blobs whose pre-activation value must stay visible
            (default: every in-place activation).
    """
    if mode not in ("inplace", "out_of_place"):
        raise PassError("pass inplace_activations", "unknown mode", expected="inplace or "
                        "out_of_place", got=mode, hint="set mode: inplace")
    g = graph.copy()
    changes = Changes()
    taken = blob_names(g)
    wanted = set(blobs) if blobs is not None else None
    for act in [la for la in g.layers if la.type in ACTIVATIONS and len(la.bottoms) == 1]:
        if mode == "inplace":
            _make_inplace(g, act, changes)
        elif wanted is None or g.caffe_name(act.bottoms[0]) in wanted:
            _make_out_of_place(g, act, taken, changes)
    return g, changes
