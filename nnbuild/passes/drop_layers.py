"""Pass ``drop_layers``: remove layers that do nothing at inference (Dropout, Split, Silence, ...).

Dropout is the identity at test time, Split copies its input, Silence consumes without output;
loss/accuracy layers and layers included only in the TRAIN phase are training leftovers that
nnie_mapper cannot compile.
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph, Layer
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import bypass

IDENTITY = ("Dropout", "Split")
TRAINING = ("Silence", "Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss",
            "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss", "ContrastiveLoss")
TRAIN_PHASE = 0  # caffe.proto: enum Phase { TRAIN = 0; TEST = 1; }


def _train_only(layer: Layer) -> bool:
    """True when the layer's include/exclude rules leave it out of the TEST phase."""
    p = layer.param
    if p is None:
        return False
    if any(r.HasField("phase") and r.phase == TRAIN_PHASE for r in p.include):
        return True
    return any(r.HasField("phase") and r.phase != TRAIN_PHASE for r in p.exclude)


def _drop_sink(g: Graph, layer: Layer, changes: Changes) -> None:
    """Remove a training layer; its tops must be unread (a loss nobody consumes)."""
    consumers = g.consumers()
    read = [t for t in layer.tops if consumers.get(t)]
    if read:
        raise PassError(f"pass drop_layers: layer {layer.name!r}",
                        f"training layer output {g.caffe_name(read[0])!r} is read by "
                        f"{consumers[read[0]][0].name!r}", hint="remove that layer too, or keep "
                        "this one by not listing its type")
    g.layers.remove(layer)
    changes.remove(layer.name)


@register_pass("drop_layers")
def drop_layers(graph: Graph, ctx: PassContext, *, types=()) -> tuple[Graph, Changes]:
    """Remove Dropout/Split (rewiring consumers), Silence, loss/accuracy and TRAIN-only layers.

    Args:
        graph: the network.
        ctx: unused.
        types: further layer types to drop as training leftovers (must produce nothing read).
    """
    g = graph.copy()
    changes = Changes()
    for layer in list(g.layers):
        if layer.type in IDENTITY and layer.bottoms:
            reason = bypass(g, layer, changes)
            if reason:
                changes.skip(layer.name, reason)
        elif layer.type in TRAINING or layer.type in types or _train_only(layer):
            _drop_sink(g, layer, changes)
    return g, changes
