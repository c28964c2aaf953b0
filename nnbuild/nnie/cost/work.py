"""The work NNIE does per layer: MACs as the hardware runs them, and elements moved to DRAM.

Three facts about how the mapper lays a network out on the NNIE set what is counted:

* **Grouped convolutions run as one dense operation per group.** The real 8-bit RetinaFace
  ``.wk`` (docs/wk-format.md §3, §5) stores one weight block per group of every grouped
  layer (1,368 = the groups of its 13 depthwise convolutions and 2 upsampling Deconvolutions) and
  1,435 tail records, one per hardware operation: 1,368 per-group operations + 48 other
  layers + the input record and a few un-fused steps. How much each per-group operation costs is
  what the board times decide (see ``nnbuild.nnie.cost.model``): the measurements support the
  hypothesis that each group's operation is as expensive as a dense convolution over *all* the
  layer's input channels (the depthwise kernel expanded with zeros), so ``work_macs`` of a
  grouped layer is ``macs * group``. Dense layers: ``work_macs == macs``.
* **Fusion**: BatchNorm, Scale, ReLU and PReLU reading the only output of a convolution (or of
  a fused chain) run inside that operation (``nnbuild.nnie.quantpoints``): no work, no traffic.
* **Addressing-only layers** (Input, Reshape, Flatten, Split, Concat, Crop, Dropout, Slice)
  move no data: producers write into the consumer's buffer. Every other layer without weights
  (Eltwise, Pooling, Softmax, Normalize, ...) is a data-movement operation: it reads its inputs
  and writes its outputs.

``act_elems`` counts the elements an operation reads from and writes to DRAM (inputs of its
first layer, outputs of its fused chain); ``weight_elems`` the weights it loads: the layer's own
parameters, *not* the zero-expanded kernel. The expansion happens in the MAC array, not in DRAM:
the 8-bit RetinaFace file stores each group in a compressed block of ~109 bytes (type 0x51,
wk-format.md §3), against 2,304 bytes for a 256-channel group expanded, and its whole weight
region (717 KB) is a third of what the expanded kernels would take. Bytes are elements times the
operation's width (1 or 2 bytes).
"""

from __future__ import annotations

import dataclasses
import math

from nnbuild.ir import Graph
from nnbuild.nnie.quantpoints import FUSED_READERS, FUSING_PRODUCERS, WEIGHTED_TYPES

ADDRESSING = frozenset(("Input", "Reshape", "Flatten", "Split", "Concat", "Crop", "Dropout",
                        "Slice", "Silence"))
GROUPED = ("Convolution", "Deconvolution")


@dataclasses.dataclass(frozen=True)
class LayerWork:
    """One layer's hardware work.

    Attributes:
        name, type: the layer.
        macs: MACs under ``nnbuild.shapes.stats``'s conventions (the published count).
        work_macs: MACs as NNIE runs the layer (grouped layers expanded, see module docstring).
        act_elems: activation elements read from and written to DRAM.
        weight_elems: weight values loaded from DRAM (the layer's parameters).
        groups: the layer's group count (1 for dense layers and layers without weights).
        fused_into: the operation this layer runs inside (None if it is its own operation or
            addressing only).
        kind: ``"compute"`` (weighted), ``"memory"`` (data movement only), ``"fused"`` or
            ``"free"`` (addressing only).
    """

    name: str
    type: str
    macs: int
    work_macs: int
    act_elems: int
    weight_elems: int
    groups: int
    fused_into: str | None
    kind: str


def _group(layer) -> int:
    if layer.type in GROUPED:
        return max(1, int(layer.param.convolution_param.group))
    return 1


def _fused_heads(graph: Graph) -> dict[str, str]:
    """Layer name -> the head of the fused chain it runs inside (only fused followers)."""
    producers, consumers = graph.producers(), graph.consumers()
    head_of_blob: dict[str, str] = {}
    heads: dict[str, str] = {}
    for layer in graph.layers:
        bottom = layer.bottoms[0] if len(layer.bottoms) == 1 else None
        producer = producers.get(bottom) if bottom else None
        if (layer.type in FUSED_READERS and producer is not None
                and producer.type in FUSING_PRODUCERS and len(consumers.get(bottom, [])) == 1):
            heads[layer.name] = head_of_blob.get(bottom, producer.name)
        for top in layer.tops:
            head_of_blob[top] = heads.get(layer.name, layer.name)
    return heads


def _elems(shapes: dict, blobs) -> int:
    return sum(math.prod(shapes[b]) for b in blobs if shapes.get(b) is not None)


def graph_work(graph: Graph) -> list[LayerWork]:
    """One ``LayerWork`` per layer of ``graph``, in layer order (shapes from its inputs)."""
    from nnbuild.shapes import stats
    from nnbuild.shapes import infer_shapes

    shapes = infer_shapes(graph)
    heads = _fused_heads(graph)
    tail = {}  # head -> the last top of its fused chain (what the operation writes)
    for layer in graph.layers:
        if layer.name in heads:
            tail[heads[layer.name]] = layer.tops
    rows = []
    for st, layer in zip(stats.graph_stats(graph, shapes), graph.layers):
        if layer.name in heads:
            rows.append(LayerWork(st.name, st.type, 0, 0, 0, 0, 1, heads[layer.name], "fused"))
            continue
        if layer.type in ADDRESSING:
            rows.append(LayerWork(st.name, st.type, 0, 0, 0, 0, 1, None, "free"))
            continue
        groups = _group(layer)
        moved = _elems(shapes, layer.bottoms) + _elems(shapes, tail.get(layer.name, layer.tops))
        weighted = layer.type in WEIGHTED_TYPES
        rows.append(LayerWork(
            st.name, st.type, st.macs, st.macs * groups, moved,
            st.params if weighted else 0, groups, None,
            "compute" if weighted else "memory"))
    return rows
