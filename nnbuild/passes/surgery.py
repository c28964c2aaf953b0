"""Graph surgery shared by the passes: bypassing identity layers, rewiring, naming, new weights."""

from __future__ import annotations

import numpy as np

from nnbuild.ir import Graph, Layer
from nnbuild.passes.changes import Changes


def frozen(array: np.ndarray) -> np.ndarray:
    """``array`` as a float32 read-only array (the IR's weight contract, see ``nnbuild.ir``)."""
    out = np.array(array, dtype=np.float32)
    out.setflags(write=False)
    return out


def rewire(graph: Graph, old: str, new: str, changes: Changes) -> None:
    """Make every layer reading blob ``old`` read ``new`` instead (edits ``graph`` in place)."""
    for layer in graph.layers:
        if old in layer.bottoms:
            layer.bottoms = [new if b == old else b for b in layer.bottoms]
            changes.rewire(layer.name, graph.caffe_name(old), graph.caffe_name(new))


def bypass(graph: Graph, layer: Layer, changes: Changes, source: int = 0) -> str | None:
    """Remove an identity ``layer`` from ``graph`` (in place), its tops replaced by a bottom.

    Consumers of each top are rewired to ``layer.bottoms[source]``. A top that is a network output
    keeps its name: the bottom's producer is renamed to write it instead, which is only possible
    when nothing else reads the bottom and a layer (not the network input) produces it.

    Returns:
        None when done, else the reason the layer cannot be bypassed (``graph`` untouched).
    """
    src = layer.bottoms[source]
    outputs = set(graph.outputs)
    kept = [t for t in layer.tops if t in outputs]
    producer = graph.producers().get(src)
    if kept:
        if len(kept) > 1 or producer is None or len(graph.consumers()[src]) > 1:
            return (f"its top {graph.caffe_name(kept[0])!r} is a network output and its input "
                    f"{graph.caffe_name(src)!r} cannot take that name")
    graph.layers.remove(layer)
    changes.remove(layer.name)
    for top in layer.tops:
        if top in outputs:
            producer.tops = [top if t == src else t for t in producer.tops]
            changes.rename("blob", graph.caffe_name(src), graph.caffe_name(top))
        else:
            rewire(graph, top, src, changes)
    return None


def blob_names(graph: Graph) -> set[str]:
    """Every Caffe blob name in use."""
    names = {graph.caffe_name(b) for b in graph.inputs}
    names.update(graph.caffe_name(t) for layer in graph.layers for t in layer.tops)
    return names


def taken_names(graph: Graph) -> set[str]:
    """Every layer name and Caffe blob name in use (new names must avoid all of them)."""
    names = {layer.name for layer in graph.layers}
    names.update(graph.caffe_name(b) for b in graph.inputs)
    names.update(graph.caffe_name(t) for layer in graph.layers for t in layer.tops)
    return names


def unique_name(base: str, taken: set[str], max_len: int | None = None, suffix: str = "") -> str:
    """``base + suffix``, shortened to ``max_len`` and numbered until it is not in ``taken``."""
    for i in range(10_000):
        tail = suffix if i == 0 else f"{i}{suffix}"
        head = base if max_len is None else base[:max_len - len(tail)]
        name = head + tail
        if name not in taken:
            return name
    raise AssertionError(f"no free name for {base!r}")  # 10 000 collisions: a bug, not a user error


def exclusive_consumer(graph: Graph, blob: str, consumers: dict[str, list[Layer]],
                       outputs: set[str]) -> Layer | None:
    """The only layer reading ``blob``, or None when it has several readers or is an output."""
    readers = consumers.get(blob, [])
    if len(readers) != 1 or blob in outputs:
        return None
    return readers[0]


def prune_dead(graph: Graph, keep: set[str], changes: Changes) -> None:
    """Remove layers (in place) whose tops nobody reads and that are not in ``keep``.

    Deleting a Crop leaves its second (reference) bottom unread when nothing else used it; that
    chain would otherwise turn into a new network output.
    """
    while True:
        read = {b for layer in graph.layers for b in layer.bottoms}
        dead = [la for la in graph.layers if la.tops and not any(t in read or t in keep
                                                                 for t in la.tops)]
        if not dead:
            return
        for layer in dead:
            graph.layers.remove(layer)
            changes.remove(layer.name)
