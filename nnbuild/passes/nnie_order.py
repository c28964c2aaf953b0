"""Pass ``nnie_order``: a topological layer order with the network outputs emitted in a set order.

nnie_mapper reports outputs in prototxt order, and .wk output names are truncated to 31 characters
so outputs can collide and be told apart only by order (nnie-facts.md §5). nniefacelib's C code
reads RetinaFace's outputs as bbox 32/16/8, landmark 32/16/8, cls 32/16/8; a model whose Crops
were removed without reordering gave wrong results (nniefacelib issue #28). Reordering layers
also fixed a mapper error in the same write-up, so the pass always emits a topological order.
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph, Layer
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes

WHERE = "pass nnie_order"


def exclusive_chain(graph: Graph, output: str) -> set[str]:
    """Names of the layers whose results reach only ``output``: its producer and the ancestors
    all of whose tops are read only by layers already in the chain."""
    producers, consumers = graph.producers(), graph.consumers()
    outputs = set(graph.outputs)
    chain = {producers[output].name}
    frontier = [producers[output]]
    while frontier:
        layer = frontier.pop()
        for bottom in layer.bottoms:
            up = producers.get(bottom)
            if up is None or up.name in chain:
                continue
            readers = [r for t in up.tops for r in consumers.get(t, [])]
            if all(r.name in chain for r in readers) and not set(up.tops) & outputs:
                chain.add(up.name)
                frontier.append(up)
    return chain


def _resolve_outputs(graph: Graph, ctx: PassContext, names: list[str]) -> list[str]:
    """SSA output blobs for the requested Caffe names (following earlier renames)."""
    by_caffe = {graph.caffe_name(b): b for b in graph.outputs}
    found = []
    for name in names:
        blob = by_caffe.get(ctx.resolve(name))
        if blob is None:
            raise PassError(f"{WHERE}: output {name!r}", "not a network output",
                            expected="one of " + ", ".join(sorted(by_caffe)), got=name,
                            hint="list the blobs the network produces and nothing reads")
        if blob in found:
            raise PassError(f"{WHERE}: output {name!r}", "listed twice", hint="list each "
                            "output once")
        found.append(blob)
    return found


@register_pass("nnie_order")
def nnie_order(graph: Graph, ctx: PassContext, *, outputs=()) -> tuple[Graph, Changes]:
    """Topologically sort, then move each listed output's exclusive chain to the tail, in order.

    Args:
        graph: the network.
        ctx: renames from earlier passes (outputs may be given by their original names).
        outputs: network output blobs in the order the deployment code reads them; unlisted
            outputs stay in the body, before the listed ones.
    """
    g = graph.toposorted()
    wanted = _resolve_outputs(g, ctx, list(outputs))
    chains = [exclusive_chain(g, blob) for blob in wanted]
    tail_names = set().union(*chains) if chains else set()
    body = [la for la in g.layers if la.name not in tail_names]
    tail: list[Layer] = []
    for chain in chains:
        tail.extend(la for la in g.layers if la.name in chain)  # keeps topological order
    before = [la.name for la in graph.layers]
    g.layers = body + tail
    changes = Changes()
    changes.moved = [name for name, old in zip([la.name for la in g.layers], before)
                     if name != old]
    changes.notes["outputs"] = [g.caffe_name(b) for b in g.outputs]
    return g, changes
