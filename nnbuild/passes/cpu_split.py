"""Pass ``cpu_split``: cut the net so NNIE runs the part before the layers it cannot run.

Layers NNIE cannot run (PriorBox, DetectionOutput, custom types: ``nnbuild.nnie.lint.runs_on_cpu``,
nnie-facts.md §5) and every layer reading their results form the CPU part; the rest is the NNIE
part, which the pass returns. The CPU part is a second ``Graph`` left in ``ctx.cpu_graph``: its
inputs are the blobs crossing the cut (NNIE outputs, or the network input), declared with their
shapes at the current input size.

PriorBox reads only the *shapes* of its bottoms (the feature map and the image), never their
values. Such "shape-only" bottoms do not become NNIE outputs (that would make NNIE write a whole
feature map nobody reads); they are CPU inputs listed in ``ctx.cpu_split["shape_only"]``, and
``run_split`` feeds zeros of the declared shape for them.

Which layers move, and why the split stays minimal:

1. Layers NNIE cannot run, and everything reading their results (forced).
2. ``layers: [...]``: layers the recipe names, and everything reading their results.
3. ``lint_tail: true`` (the default): an NNIE-side layer that lint rejects (an "error" finding,
   nnie-facts.md §5) moves too when *all* its results flow only into CPU layers (the "tail" of a
   branch that ends on the CPU), together with everything downstream of it. Repeated until no such
   layer is left. A rejected layer whose result is also an NNIE output, or feeds NNIE layers, stays:
   moving it would drag NNIE work onto the CPU, so lint keeps reporting it.

Rule 3 is what an NNIE port of an SSD does by hand. YuFaceDetect's confidence head is
``Concat -> Reshape (1, -1, 2) -> Softmax -> Flatten -> DetectionOutput``: the 3-D Reshape is
illegal on NNIE (Reshape must be 4-D with dim 0 first, nnie-facts §5), and all three layers only
feed DetectionOutput, so they run on the CPU and NNIE returns the concatenated ``mbox_conf``
logits (HiSilicon's own SSD sample also does the softmax in software). The box branch
(Permute (0,2,3,1), Flatten, Concat) is legal and stays on NNIE. Warnings (e.g. Normalize) never
move a layer: they may compile.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nnbuild.errors import ModelError, PassError
from nnbuild.nnie.chips import DEFAULT_CHIP
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes

SHAPE_ONLY_TYPES = ("PriorBox",)  # SSD Caffe PriorBoxLayer::Forward_cpu reads bottom shapes only


def cpu_layers(graph: Graph, extra_types=(), names=()) -> set[str]:
    """Names of the layers that must run on the CPU: unsupported ones, ``names``, all they feed."""
    from nnbuild.nnie.lint import runs_on_cpu

    cpu: set[str] = set()
    cpu_blobs: set[str] = set()
    for layer in graph.layers:
        if layer.type == "Input":
            continue
        if runs_on_cpu(layer) or layer.type in extra_types or layer.name in names or any(
                b in cpu_blobs for b in layer.bottoms):
            cpu.add(layer.name)
            cpu_blobs.update(layer.tops)
    return cpu


def cpu_bound(graph: Graph, cpu: set[str]) -> set[str]:
    """NNIE-side layers whose every result is read, and read only by CPU layers (transitively)."""
    consumers = graph.consumers()
    bound: set[str] = set()
    for layer in reversed(graph.layers):  # file order is execution order: readers come later
        if layer.name in cpu or layer.type == "Input":
            continue
        readers = [c for top in layer.tops for c in consumers.get(top, [])]
        if readers and all(len(consumers.get(t, [])) for t in layer.tops) and all(
                c.name in cpu or c.name in bound for c in readers):
            bound.add(layer.name)
    return bound


def _lint_tail(graph: Graph, cpu: set[str], chip: str) -> list[str]:
    """Grow ``cpu`` by the lint-rejected tail layers (rule 3 of the module docstring).

    Returns:
        The rejected layers that were moved (their downstream layers are moved with them).
    """
    from nnbuild.nnie.lint import lint

    moved: list[str] = []
    while True:
        nnie = graph.copy()
        nnie.layers = [la for la in nnie.layers if la.name not in cpu]
        rejected = {f.layer for f in lint(nnie, chip) if f.severity == "error"}
        bound = cpu_bound(graph, cpu)
        new = [la.name for la in graph.layers if la.name in rejected and la.name in bound]
        if not new:
            return moved
        moved += new
        cpu |= cpu_layers(graph, names=set(cpu) | set(new))


def _crossing(graph: Graph, cpu: set[str]) -> tuple[list[str], list[str]]:
    """(value blobs, shape-only blobs) that CPU layers read from the NNIE part or the input."""
    producers = graph.producers()
    values: dict[str, None] = {}
    shape_only: dict[str, None] = {}
    for layer in graph.layers:
        if layer.name not in cpu:
            continue
        for b in layer.bottoms:
            if b in producers and producers[b].name in cpu:
                continue
            (shape_only if layer.type in SHAPE_ONLY_TYPES else values)[b] = None
    return list(values), [b for b in shape_only if b not in values]


def _cpu_graph(graph: Graph, cpu: set[str], inputs: list[str], shapes: dict) -> Graph:
    layers = [la.copy() for la in graph.layers if la.name in cpu]
    g = Graph(f"{graph.name}_cpu", {b: tuple(shapes[b]) for b in inputs}, layers, "legacy",
              {k: v for k, v in graph.origin.items()}, None)
    return g


@register_pass("cpu_split")
def cpu_split(graph: Graph, ctx: PassContext, *, types=(), layers=(), lint_tail=True
              ) -> tuple[Graph, Changes]:
    """Keep the NNIE part; put the CPU part in ``ctx.cpu_graph`` (see module docstring).

    Args:
        graph: the network.
        ctx: receives ``cpu_graph`` and ``cpu_split`` (crossing blobs, shape-only inputs).
        types: further layer types to run on the CPU.
        layers: further layer names to run on the CPU (with everything they feed).
        lint_tail: also move lint-rejected layers that only feed the CPU part (rule 3).
    """
    from nnbuild.shapes import infer_shapes

    known = {la.name for la in graph.layers}
    for name in layers:
        if name not in known:
            raise PassError("pass cpu_split", f"no layer {name!r} to move to the CPU",
                            expected="a layer of the network", got=name,
                            hint="check the name in cpu_split.layers against the prototxt")
    cpu = cpu_layers(graph, tuple(types), set(layers))
    changes = Changes()
    if not cpu:
        ctx.cpu_graph, ctx.cpu_split = None, {}
        return graph.copy(), changes
    moved = _lint_tail(graph, cpu, ctx.chip or DEFAULT_CHIP) if lint_tail else []
    values, shape_only = _crossing(graph, cpu)
    if not [la for la in graph.layers if la.name not in cpu and la.type != "Input"]:
        raise PassError("pass cpu_split", "nothing is left for NNIE", got=f"all {len(cpu)} "
                        "layers run on the CPU", hint="check the first layer's type")
    shapes = infer_shapes(graph)
    g = graph.copy()
    g.layers = [la for la in g.layers if la.name not in cpu]
    ctx.cpu_graph = _cpu_graph(graph, cpu, values + shape_only, shapes)
    ctx.cpu_split = {"values": values, "shape_only": shape_only,
                     "nnie_outputs": list(g.outputs), "lint_moved": moved}
    for layer in graph.layers:
        if layer.name in cpu:
            changes.remove(layer.name)
    changes.notes.update({"cpu_layers": len(cpu), "cut_blobs": [graph.caffe_name(b) for b in values],
                          "shape_only": [graph.caffe_name(b) for b in shape_only],
                          "lint_moved": moved})
    return g, changes


def run_split(nnie_graph: Graph, cpu_graph: Graph | None, feeds: Mapping[str, np.ndarray],
              run=None, *, nnie_outputs: Mapping[str, np.ndarray] | None = None
              ) -> dict[str, np.ndarray]:
    """Run the NNIE part, then the CPU part on its results; returns every output of both.

    Args:
        nnie_graph: the NNIE part (the patched model).
        cpu_graph: the CPU part (``cpu.prototxt``), or None.
        feeds: network input -> NCHW float32 array.
        run: the engine's ``run`` (default ``nnbuild.engine.run``).
        nnie_outputs: results of the NNIE part computed elsewhere (e.g. the quantized
            simulator); when given, the NNIE part is not run.

    Blobs the CPU part reads only for their shape (PriorBox bottoms) and that neither part
    produced are fed as zeros of the declared shape.
    """
    if run is None:
        from nnbuild.engine import run
    needed = [b for b in (cpu_graph.inputs if cpu_graph else {}) if b in nnie_graph.producers()]
    out = dict(nnie_outputs) if nnie_outputs is not None else run(nnie_graph, feeds, keep=needed)
    if cpu_graph is None:
        return out
    available = {**feeds, **out}
    shape_only = set(shape_only_inputs(cpu_graph))
    cpu_feeds = {}
    for blob, shape in cpu_graph.inputs.items():
        if blob in available:
            cpu_feeds[blob] = available[blob]
        elif blob in shape_only:
            cpu_feeds[blob] = np.zeros(shape, np.float32)
        else:
            raise ModelError(f"blob {cpu_graph.caffe_name(blob)!r}", "the CPU part needs a blob "
                             "the NNIE part did not produce", expected="an NNIE output",
                             got="missing", hint="the two parts do not belong together; "
                                                 "re-run the patch stage")
    return {**out, **run(cpu_graph, cpu_feeds)}


def shape_only_inputs(cpu_graph: Graph) -> list[str]:
    """CPU-part inputs that only shape-reading layers (PriorBox) use."""
    consumers = cpu_graph.consumers()
    return [b for b in cpu_graph.inputs
            if consumers.get(b) and all(c.type in SHAPE_ONLY_TYPES for c in consumers[b])]
