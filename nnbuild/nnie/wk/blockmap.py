"""Which weight blocks of a ``.wk`` belong to which layer (wk-format.md §3).

Blocks are stored in prototxt order of the weighted layers, ascending output channel. 8-bit:
a dense layer has one block per 4 output channels; a layer with one input channel per group
(depthwise, the group-64 upsampling Deconvolution) one block per group. 16-bit: one block per
output channel. The predicted count must equal the file's, otherwise the file was not compiled
from this model (or uses a rule not established yet) and nothing is mapped.
"""

from __future__ import annotations

import dataclasses

from nnbuild.ir import Graph, Layer
from nnbuild.nnie.quantpoints import WEIGHTED_TYPES, weight_groups
from nnbuild.nnie.wk.reader import Block, WkError, WkFile


@dataclasses.dataclass
class LayerBlocks:
    """One weighted layer and its blocks.

    Attributes:
        layer: the layer (weights as in the model given).
        kind: ``dense``, ``per_group`` (one input channel per group), ``grouped`` (several input
            channels per group: count rule unknown) or ``inner_product``.
        outputs: number of output channels.
        groups: the layer's ``group``.
        blocks: its blocks, in file order.
    """

    layer: Layer
    kind: str
    outputs: int
    groups: int
    blocks: list[Block]


def _kind(layer: Layer) -> tuple[str, int, int]:
    weights = layer.blobs[0]
    if layer.type == "InnerProduct":
        return "inner_product", int(weights.shape[0]), 1
    groups = weight_groups(layer)
    outputs = int(weights.shape[0] if layer.type == "Convolution" else weights.shape[1] * groups)
    inputs_per_group = int(weights.shape[1] if layer.type == "Convolution" else 1)
    if groups == 1:
        return "dense", outputs, 1
    return ("per_group" if inputs_per_group == 1 else "grouped"), outputs, groups


def block_count(kind: str, outputs: int, groups: int, bits: int) -> int | None:
    """Blocks a layer takes (§3); None where the rule is not established."""
    if bits == 16:
        return outputs
    if kind == "dense":
        return -(-outputs // 4)
    if kind == "per_group":
        return groups
    return None


def map_blocks(wk: WkFile, graph: Graph) -> list[LayerBlocks]:
    """Assign the file's blocks to the weighted layers of ``graph``.

    Raises:
        WkError: the layer rules predict another block count than the file holds.
    """
    bits = wk.data_width
    layers = [layer for layer in graph.layers if layer.type in WEIGHTED_TYPES and layer.blobs]
    out, start = [], 0
    for layer in layers:
        kind, outputs, groups = _kind(layer)
        count = block_count(kind, outputs, groups, bits)
        if count is None:
            raise WkError(wk.path, f"layer {layer.name!r}: block count of a {kind} layer in "
                          f"{bits}-bit is not established", expected="dense or one input "
                          "channel per group", got=f"group {groups}",
                          hint="wk-format.md §3 lists the established rules")
        out.append(LayerBlocks(layer, kind, outputs, groups, wk.blocks[start:start + count]))
        start += count
    if start != len(wk.blocks):
        raise WkError(wk.path, "the model does not match the file's weight blocks",
                      expected=f"{start} blocks for the {len(layers)} weighted layers of the "
                      f"model ({bits}-bit)", got=f"{len(wk.blocks)} blocks",
                      hint="pass the prototxt and caffemodel this .wk was compiled from")
    return out
