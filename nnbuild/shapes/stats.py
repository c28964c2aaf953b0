"""Per-layer parameter and multiply-accumulate (MAC) counts, and their totals.

Conventions (one MAC = one multiply plus one add; batch included, as in the shapes):

* Convolution: ``output elements * (Cin / group) * kh * kw`` (bias adds not counted).
* Deconvolution: ``input elements * (Cout / group) * kh * kw`` — every input value is multiplied
  into a kh x kw window of each output channel of its group.
* InnerProduct: ``outer * K * N`` (``outer`` = product of the dims before ``axis``, ``K`` the
  flattened input length, ``N`` = num_output).
* Every other layer counts 0 MACs: element-wise, pooling, normalisation, softmax and reshaping
  layers are memory-bound, and BatchNorm/Scale fold into the preceding convolution on NNIE
  (nnie-facts.md §5).

Parameters are the number of values the caffemodel stores for the layer (weights and biases,
BatchNorm's mean, variance and its one moving-average factor, Scale's factor and bias, PReLU and
Normalize slopes/scales). With no weights loaded they are counted from the shapes the layer needs.
"""

from __future__ import annotations

import dataclasses
import math

from nnbuild.ir import Graph, Layer
from nnbuild.shapes import Shape, expected_weight_shapes


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Counts for one layer (``tops``/``out_shapes`` use SSA blob names)."""

    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    out_shapes: tuple[Shape | None, ...]
    params: int
    macs: int


def layer_macs(layer: Layer, in_shapes: list[Shape], out_shapes: list[Shape]) -> int:
    """MACs of one layer under the module's conventions (0 for layer types without MACs)."""
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.param.convolution_param
        kernel = math.prod(expected_weight_shapes(layer, in_shapes)[0][2:])
        if layer.type == "Convolution":
            cin = in_shapes[0][p.axis % len(in_shapes[0])]
            return sum(math.prod(s) for s in out_shapes) * (cin // p.group) * kernel
        return sum(math.prod(s) for s in in_shapes) * (p.num_output // p.group) * kernel
    if layer.type == "InnerProduct":
        # out = in[:axis] + (N,), so out[:-1] is the outer part; the weight holds K * N values.
        weight = expected_weight_shapes(layer, in_shapes)[0]
        return math.prod(out_shapes[0][:-1]) * math.prod(weight)
    return 0


def layer_params(layer: Layer, in_shapes: list[Shape] | None) -> int:
    """Stored weight values of ``layer``: its loaded blobs, else the shapes it would need."""
    if layer.blobs:
        return sum(int(b.size) for b in layer.blobs)
    if in_shapes is None:
        return 0
    return sum(math.prod(s) for s in expected_weight_shapes(layer, in_shapes))


def graph_stats(graph: Graph, shapes: dict[str, Shape]) -> list[LayerStats]:
    """One ``LayerStats`` per layer, in layer order.

    Args:
        graph: the network.
        shapes: blob shapes from ``nnbuild.shapes.infer_shapes`` (may be partial: layers whose
            shapes are unknown get ``None`` output shapes and 0 MACs).
    """
    result = []
    for layer in graph.layers:
        ins = [shapes.get(b) for b in layer.bottoms]
        outs = [shapes.get(t) for t in layer.tops]
        known = all(s is not None for s in ins + outs)
        result.append(LayerStats(
            layer.name, layer.type, tuple(layer.bottoms), tuple(layer.tops), tuple(outs),
            layer_params(layer, ins if known else None),
            layer_macs(layer, ins, outs) if known else 0))
    return result


def totals(stats: list[LayerStats]) -> tuple[int, int]:
    """(total parameters, total MACs) over ``stats``."""
    return sum(s.params for s in stats), sum(s.macs for s in stats)
