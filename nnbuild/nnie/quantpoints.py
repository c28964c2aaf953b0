"""Quantization points: which weights and blobs NNIE stores in 8/16-bit, and in which precision.

Where NNIE rounds (nnie-facts.md §2, §4, and the reasoning behind each choice):

* **Weights** of every Convolution, Deconvolution and InnerProduct layer: one range per layer
  (§4), except grouped and depthwise Convolution/Deconvolution layers, which have one range per
  group (``QuantPoints.groups``; what the real mapper does, docs/wk-format.md §4.2). Biases are not quantized to 8/16 bits: the
  mapper stores them as "24.0" (§2), i.e. 24-bit integers in accumulator units, whose resolution
  is far finer than the 8-bit activations around them; nnbuild therefore keeps them in float32.
  BatchNorm/Scale/PReLU parameters are likewise kept in float (run fold_batchnorm to move BN into
  the convolution weights, as nniefacelib did, §5).
* **Activations**: every blob that feeds a layer is written to memory in the quantized format, once
  (a blob read by several layers has one range and is rounded once, by its producer).
  Not quantized: the network inputs (the U8 image is exact, §3) and the network outputs, which
  NNIE returns as int32 with 12 fractional bits (§2 "outputs 20.12", §3 divide by 4096); those are
  rounded to 1/4096 instead.
* **Fusion**: a Convolution/Deconvolution/InnerProduct (or BatchNorm/Scale) followed by a per-channel
  or element-wise BatchNorm, Scale, ReLU or PReLU that is its output's only reader is executed as
  one operation, so the intermediate never reaches memory and only the end of the chain is
  quantized. This is an inference (the mapper's fusion rules are not public): it is what Caffe's
  in-place ``conv -> BN -> Scale -> ReLU`` chains express, and it makes the simulation of an
  unfolded graph match that of the same graph after fold_batchnorm.
* **Precision** (compile_mode, §2): 0 = everything 8-bit, 1 = everything 16-bit, 2 = layers whose
  name ends in ``_hp`` are 16-bit: their weights, and the blob they store. A fused chain stores one
  blob; it is 16-bit if any layer of the chain ends in ``_hp``.
"""

from __future__ import annotations

import dataclasses

from nnbuild.errors import RecipeError
from nnbuild.ir import Graph, Layer

WEIGHTED_TYPES = ("Convolution", "Deconvolution", "InnerProduct")
# Layers that may start or continue a fused chain, and the readers that fuse into them.
FUSING_PRODUCERS = frozenset(WEIGHTED_TYPES + ("BatchNorm", "Scale"))
FUSED_READERS = frozenset(("BatchNorm", "Scale", "ReLU", "PReLU"))
HP_SUFFIX = "_hp"

# Recipe ``quant.mode`` -> mapper compile_mode (nnie-facts.md §2).
COMPILE_MODES = {"int8": 0, "int16": 1, "mixed": 2}


def compile_mode(mode: str | int) -> int:
    """The mapper's compile_mode (0, 1, 2) for a recipe mode name or a compile_mode number.

    Raises:
        RecipeError: for anything else.
    """
    if isinstance(mode, int) and not isinstance(mode, bool) and mode in COMPILE_MODES.values():
        return mode
    if isinstance(mode, str) and mode in COMPILE_MODES:
        return COMPILE_MODES[mode]
    raise RecipeError("quant.mode", "unknown quantization mode",
                      expected="int8, int16, mixed (or compile_mode 0, 1, 2)", got=repr(mode),
                      hint="int8 is the mapper's default low-bandwidth mode")


def layer_bits(name: str, mode: str | int) -> int:
    """Bit width NNIE uses for a layer's weights under ``mode`` (see module docstring)."""
    cmode = compile_mode(mode)
    if cmode == 1 or (cmode == 2 and name.endswith(HP_SUFFIX)):
        return 16
    return 8


@dataclasses.dataclass(frozen=True)
class QuantPoints:
    """Where a graph is quantized.

    Attributes:
        weights: layer name -> bits, for the layers whose weights (``blobs[0]``) are quantized.
        blobs: SSA blob -> bits, for the activations stored in the quantized format.
        outputs: network outputs, rounded to 20.12 fixed point.
        chains: stored blob -> names of the layers fused into the operation producing it.
        fused: blobs that never reach memory (fused into their reader), for reports.
        groups: layer name -> number of weight ranges (the layer's ``group``; 1 = per layer).
    """

    weights: dict[str, int]
    blobs: dict[str, int]
    outputs: tuple[str, ...]
    chains: dict[str, tuple[str, ...]]
    fused: frozenset[str]
    groups: dict[str, int] = dataclasses.field(default_factory=dict)


def weight_groups(layer: Layer) -> int:
    """How many weight ranges NNIE gives ``layer``: its ``group`` for (De)Convolution, else 1.

    wk-format.md §4.2: grouped and depthwise convolutions are quantized with one range per group.
    """
    if layer.type in ("Convolution", "Deconvolution") and layer.param is not None:
        return max(1, int(layer.param.convolution_param.group))
    return 1


def _fuses(producer: Layer | None, readers: list[Layer], blob: str) -> bool:
    """Whether ``blob`` stays inside one fused operation (never written to memory)."""
    if producer is None or producer.type not in FUSING_PRODUCERS or len(readers) != 1:
        return False
    reader = readers[0]
    return reader.type in FUSED_READERS and list(reader.bottoms) == [blob]


def _chains(graph: Graph, fused: set[str]) -> dict[str, tuple[str, ...]]:
    """Every produced blob -> the layers of the fused chain that ends in it."""
    producers = graph.producers()
    chains: dict[str, tuple[str, ...]] = {}
    for layer in graph.layers:
        head: tuple[str, ...] = ()
        for bottom in layer.bottoms:
            if bottom in fused:
                head = chains.get(bottom, (producers[bottom].name,))
        for top in layer.tops:
            chains[top] = head + (layer.name,)
    return chains


def quant_points(graph: Graph, mode: str | int = "int8") -> QuantPoints:
    """Find the quantization points of ``graph`` under ``mode`` (see module docstring).

    Args:
        graph: a validated graph (the patched NNIE part of the model).
        mode: ``int8``/``int16``/``mixed`` or compile_mode 0/1/2.

    Returns:
        The points; blob dicts follow the graph's layer order.
    """
    compile_mode(mode)  # validate early, with the recipe key in the message
    producers, consumers = graph.producers(), graph.consumers()
    fused = {blob for blob, readers in consumers.items()
             if _fuses(producers.get(blob), readers, blob)}
    chains = _chains(graph, fused)
    weights = {layer.name: layer_bits(layer.name, mode) for layer in graph.layers
               if layer.type in WEIGHTED_TYPES and layer.blobs}
    blobs: dict[str, int] = {}
    for layer in graph.layers:
        for top in layer.tops:
            if consumers.get(top) and top not in fused and top not in graph.inputs:
                bits = max(layer_bits(name, mode) for name in chains[top])
                blobs[top] = bits
    stored_chains = {blob: chains[blob] for blob in list(blobs) + graph.outputs}
    groups = {layer.name: weight_groups(layer) for layer in graph.layers if layer.name in weights}
    return QuantPoints(weights, blobs, tuple(graph.outputs), stored_chains, frozenset(fused),
                       groups)
