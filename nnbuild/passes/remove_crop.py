"""Pass ``remove_crop``: delete Crop layers that are identities at the current input size.

NNIE has no Crop (nnie-facts.md §5). RetinaFace uses Crop only to trim the 2x-upsampled map to
the lateral map's size; at input sizes where both already agree the Crop is an identity and can be
deleted, wiring its consumers to its first bottom (what nniefacelib did by hand). At other sizes
deleting it would change the network, so the pass refuses and names the nearest sizes that work.
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import bypass, prune_dead

WHERE = "pass remove_crop"


def crop_problems(graph: Graph, shapes: dict, **_args) -> list[str]:
    """Size check: one message per Crop whose output differs from its first input."""
    problems = []
    for layer in graph.layers:
        if layer.type != "Crop":
            continue
        src, out = shapes[layer.bottoms[0]], shapes[layer.tops[0]]
        if tuple(src) != tuple(out):
            problems.append(f"{layer.name} crops {tuple(src)} to {tuple(out)}")
    return problems


def _hw(graph: Graph) -> tuple[int, int]:
    shape = next(iter(graph.inputs.values()))
    return int(shape[2]), int(shape[3])


def _refuse(graph: Graph, problems: list[str]) -> PassError:
    # Imported here: the solver imports the pass registry, which imports this module.
    from nnbuild.passes.sizes import nearest_valid, format_hw

    h, w = _hw(graph)
    below, above = nearest_valid(graph, ["remove_crop"], (h, w))
    nearest = ", ".join(f"{format_hw(s)} ({side})" for s, side in ((below, "below"),
                                                                    (above, "above")) if s)
    return PassError(f"{WHERE}: layer {problems[0].split()[0]!r}",
                     f"Crop is not an identity at input {h}x{w}",
                     expected="output shape == first input shape",
                     got="; ".join(problems),
                     hint=f"nearest valid input sizes: {nearest or 'none found'}; "
                          "`nnbuild sizes` lists them all")


@register_pass("remove_crop", size_check=crop_problems)
def remove_crop(graph: Graph, ctx: PassContext) -> tuple[Graph, Changes]:
    """Delete every Crop that is an identity at the graph's input size.

    Raises:
        PassError: some Crop really crops at this size (message: layers, shapes, nearest sizes).
    """
    from nnbuild.shapes import infer_shapes

    problems = crop_problems(graph, infer_shapes(graph))
    if problems:
        raise _refuse(graph, problems)
    g = graph.copy()
    changes = Changes()
    outputs = set(g.outputs)
    for layer in [la for la in g.layers if la.type == "Crop"]:
        reason = bypass(g, layer, changes, source=0)
        if reason:
            raise PassError(f"{WHERE}: layer {layer.name!r}", "cannot delete the Crop",
                            got=reason, hint="make the Crop's output feed a layer, e.g. by "
                                             "listing fewer outputs")
    # a reference bottom read by nothing else is dead now (it only provided a shape)
    prune_dead(g, outputs | {t for la in g.layers for t in la.tops if la.type == "Input"},
               changes)
    return g, changes
