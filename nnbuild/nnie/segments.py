"""The NNIE/CPU segment split: which layers NNIE cannot run, and how they cut the net.

nnie_mapper turns layers NNIE cannot run into ``Custom``/``Proposal`` layers executed on the CPU
and splits the net into segments around them (nnie-facts.md §5). ``cpu_segments(graph)``
predicts that split so lint and the ``cpu_split`` patch can describe it before any mapper run.
"""

from __future__ import annotations

import dataclasses

from nnbuild.ir import Graph, Layer

# Layer types nnbuild treats as NNIE layers. Anything else (PriorBox, DetectionOutput, custom
# types) must run on the CPU (nnie-facts.md §5). Crop is here because the fix for it is deleting
# it (the "crop" rule), not moving it to the CPU.
NNIE_TYPES = frozenset((
    "Input", "Convolution", "Deconvolution", "Pooling", "InnerProduct", "BatchNorm", "Scale",
    "ReLU", "PReLU", "Eltwise", "Concat", "Crop", "Reshape", "Softmax", "Permute", "Flatten",
    "Dropout", "TanH", "AbsVal", "Sigmoid", "Slice", "Split", "Power", "Normalize", "BNLL"))
# Layers that carry the compute; they stay on NNIE even when all their inputs come from the CPU.
_COMPUTE_TYPES = frozenset(("Convolution", "Deconvolution", "InnerProduct"))


@dataclasses.dataclass(frozen=True)
class Segment:
    """A maximal part of the net running on one device, in execution order."""

    device: str  # "nnie" or "cpu"
    layers: tuple[str, ...]
    inputs: tuple[str, ...]  # Caffe blob names read from outside the segment
    outputs: tuple[str, ...]  # Caffe blob names read outside the segment, or network outputs


def runs_on_cpu(layer: Layer) -> bool:
    """True for layer types NNIE cannot run (nnie-facts.md §5)."""
    return layer.type not in NNIE_TYPES


def _segment_index(graph: Graph) -> dict[str, int]:
    """Layer -> segment number: even numbers are NNIE segments, odd ones CPU segments.

    A layer goes to the first segment of its device at or after the segments of its inputs, so
    independent layers share segments. A cheap NNIE layer (no convolution) reading only CPU
    results stays on the CPU, to avoid a round trip (e.g. SSD's Concat of PriorBox outputs).
    """
    seg_of_blob = {b: 0 for b in graph.inputs}
    cpu_blobs: set[str] = set()
    index: dict[str, int] = {}
    for layer in graph.layers:
        if layer.type == "Input":
            seg_of_blob.update((t, 0) for t in layer.tops)
            continue
        cpu = runs_on_cpu(layer) or (
            layer.type not in _COMPUTE_TYPES and bool(layer.bottoms)
            and all(b in cpu_blobs for b in layer.bottoms))
        base = max((seg_of_blob.get(b, 0) for b in layer.bottoms), default=0)
        index[layer.name] = base + (base % 2 != int(cpu))
        seg_of_blob.update((t, index[layer.name]) for t in layer.tops)
        if cpu:
            cpu_blobs.update(layer.tops)
    return index


def cpu_segments(graph: Graph) -> list[Segment]:
    """The NNIE/CPU split implied by the layers NNIE cannot run, in execution order.

    A net NNIE can run whole is one ``nnie`` segment. ``Input`` layers belong to no segment.
    """
    index = _segment_index(graph)
    members: dict[int, list[Layer]] = {}
    for layer in graph.layers:
        if layer.name in index:
            members.setdefault(index[layer.name], []).append(layer)
    consumers = graph.consumers()
    net_outputs = set(graph.outputs)
    segments = []
    for number in sorted(members):
        layers = members[number]
        names = {layer.name for layer in layers}
        produced = {t for layer in layers for t in layer.tops}
        inputs = dict.fromkeys(b for layer in layers for b in layer.bottoms if b not in produced)
        outputs = [t for layer in layers for t in layer.tops if t in net_outputs or any(
            c.name not in names for c in consumers.get(t, []))]
        segments.append(Segment("cpu" if number % 2 else "nnie", tuple(x.name for x in layers),
                                tuple(graph.caffe_name(b) for b in inputs),
                                tuple(graph.caffe_name(b) for b in outputs)))
    return segments


def describe_segments(segments: list[Segment]) -> str:
    """A short text such as ``nnie(33 layers) -> cpu(6 layers)``."""
    return " -> ".join(f"{s.device}({len(s.layers)} layers)" for s in segments)
