"""NNIE lint: what nnie_mapper will reject or mis-handle, found before any slow mapper run.

Each rule (nnie-facts.md §5) is a function registered with ``@rule("id")``; it receives a
``LintContext`` and yields ``Finding`` s. ``lint(graph, chip)`` runs them all in registration
order. ``cpu_segments`` (from ``nnbuild.nnie.segments``, re-exported here) describes how layers NNIE
cannot run split the net into NNIE and CPU segments.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator

from nnbuild.nnie.chips import DEFAULT_CHIP, Chip, get_chip
from nnbuild.ir import Graph, Layer
from nnbuild.nnie.segments import (NNIE_TYPES, Segment, cpu_segments, describe_segments,
                               runs_on_cpu)
from nnbuild.shapes import Shape, infer_shapes

__all__ = ["NNIE_TYPES", "RULES", "Finding", "LintContext", "Segment", "cpu_segments",
           "describe_segments", "lint", "rule", "runs_on_cpu"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One lint result.

    ``severity`` is "error" (the mapper rejects it or the .wk is wrong), "warning" (it may work
    but needs care) or "info" (worth knowing; does not make the net lint-dirty).
    """

    rule: str
    layer: str
    message: str
    hint: str
    severity: str = "error"

    def line(self) -> str:
        """One human-readable line: ``[rule] layer: message. Hint: hint``."""
        return f"{self.severity}[{self.rule}] {self.layer}: {self.message}. Hint: {self.hint}"


@dataclasses.dataclass
class LintContext:
    """What a rule sees: the graph, the chip and the (possibly partial) blob shapes."""

    graph: Graph
    chip: Chip
    shapes: dict[str, Shape]
    segments: list[Segment]


RuleFn = Callable[[LintContext], Iterable[Finding]]
RULES: dict[str, RuleFn] = {}


def rule(rule_id: str):
    """Register ``fn(ctx) -> Iterable[Finding]`` as lint rule ``rule_id`` (ids are unique)."""
    def register(fn: RuleFn) -> RuleFn:
        if rule_id in RULES:
            raise ValueError(f"lint rule {rule_id!r} registered twice")
        RULES[rule_id] = fn
        return fn
    return register


def lint(graph: Graph, chip: str | Chip = DEFAULT_CHIP,
         shapes: dict[str, Shape] | None = None) -> list[Finding]:
    """Run every registered rule on ``graph`` for ``chip``.

    Args:
        graph: the network.
        chip: a chip name (see ``nnbuild.nnie.chips``) or ``Chip``; it selects the limits.
        shapes: blob shapes; inferred (leaving out layers of unknown type) when None.

    Returns:
        Findings, grouped by rule in registration order, then in layer order.
    """
    chip = chip if isinstance(chip, Chip) else get_chip(chip, where="chip")
    if shapes is None:
        shapes = infer_shapes(graph, partial=True, check_weights=False)
    ctx = LintContext(graph, chip, shapes, cpu_segments(graph))
    return [finding for fn in RULES.values() for finding in fn(ctx)]


def _layers_of(ctx: LintContext, *types: str) -> Iterator[Layer]:
    return (layer for layer in ctx.graph.layers if layer.type in types)


# -- rules (nnie-facts.md §5) ---------------------------------------------------------------------

@rule("crop")
def _crop(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Crop"):
        yield Finding("crop", layer.name, "Crop is not supported by NNIE",
                      "at input sizes where both bottoms already agree the Crop is an identity: "
                      "apply the remove_crop patch (it checks that); otherwise change the input "
                      "size")


@rule("reshape")
def _reshape(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Reshape"):
        p = layer.param.reshape_param
        dims = [int(d) for d in p.shape.dim]
        out = ctx.shapes.get(layer.tops[0])
        problems = []
        if p.axis == 0 and dims and dims[0] != 0:
            problems.append(f"first dim is {dims[0]}, not 0 (copy the batch dim)")
        if out is not None and len(out) != 4:
            problems.append(f"output {out} is {len(out)}-D, not 4-D")
        if problems:
            yield Finding("reshape", layer.name, f"Reshape dims {dims}: " + "; ".join(problems),
                          "NNIE Reshape must be 4-D and leave the batch dim alone (dim: 0 "
                          "first): apply the reshape_batch_zero patch")


@rule("permute")
def _permute(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Permute"):
        order = [int(o) for o in layer.param.permute_param.order]
        order += [i for i in range(4) if i not in order]
        if order != [0, 2, 3, 1]:
            yield Finding("permute", layer.name, f"Permute order {tuple(order)} is not supported",
                          "NNIE only permutes (0,1,2,3) -> (0,2,3,1); move other permutes to "
                          "the CPU post-processing")


@rule("cpu_layer")
def _cpu_layer(ctx: LintContext) -> Iterator[Finding]:
    split = describe_segments(ctx.segments)
    for number, segment in enumerate(ctx.segments, 1):
        for name in segment.layers:
            layer = ctx.graph.layer(name)
            if runs_on_cpu(layer):
                yield Finding("cpu_layer", name, f"{layer.type} cannot run on NNIE and must run "
                              f"on the CPU (segment {number} of {len(ctx.segments)}: {split})",
                              "cut the net before it (cpu_split patch) or turn it into a Custom "
                              "layer; its CPU segment reads " + ", ".join(segment.inputs))


@rule("normalize")
def _normalize(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Normalize"):
        yield Finding("normalize", layer.name, "Normalize is not supported by every mapper "
                      "version", "if the mapper rejects it, fold its scale into the next "
                      "convolution or run it on the CPU", "warning")


@rule("output_name_collision")
def _output_names(ctx: LintContext) -> Iterator[Finding]:
    # SVP_NNIE_NODE_NAME_LEN is 32: the .wk keeps 31 characters (nnie-facts.md §5).
    n = ctx.chip.max_name_len
    groups: dict[str, list[str]] = {}
    for blob in ctx.graph.outputs:
        name = ctx.graph.caffe_name(blob)
        groups.setdefault(name[:n], []).append(name)
    producers = ctx.graph.producers()
    by_caffe = {ctx.graph.caffe_name(b): b for b in ctx.graph.outputs}
    for short, names in groups.items():
        if len(names) > 1:
            yield Finding("output_name_collision", producers[by_caffe[names[0]]].name,
                          f"outputs {', '.join(names)} all become {short!r} after truncation to "
                          f"{n} characters", "rename the output blobs to distinct names of at "
                          f"most {n} characters, or rely on output order (nnie_order patch)")


@rule("name_length")
def _name_length(ctx: LintContext) -> Iterator[Finding]:
    # Only input/output nodes (and "_report" blobs) are stored by name in the .wk, so long
    # internal names are harmless: one "info" finding, and collisions of outputs are errors
    # (output_name_collision).
    n = ctx.chip.max_name_len
    outputs = {ctx.graph.caffe_name(b) for b in ctx.graph.outputs}
    long: dict[str, str] = {}  # name -> first layer using it
    for layer in ctx.graph.layers:
        for name in [layer.name] + [ctx.graph.caffe_name(t) for t in layer.tops]:
            if len(name) > n and name not in outputs:
                long.setdefault(name, layer.name)
    if long:
        first = next(iter(long))
        yield Finding("name_length", long[first],
                      f"{len(long)} layer/blob names are longer than {n} characters (first: "
                      f"{first!r})", "only matters for names the .wk stores (inputs, outputs, "
                      "_report blobs): shorten those", "info")


@rule("width")
def _width(ctx: LintContext) -> Iterator[Finding]:
    producers = ctx.graph.producers()
    for blob, shape in ctx.shapes.items():
        if len(shape) == 4 and shape[3] > ctx.chip.max_width:
            where = producers[blob].name if blob in producers else blob
            yield Finding("width", where, f"feature map {ctx.graph.caffe_name(blob)!r} is "
                          f"{shape[3]} wide, more than {ctx.chip.max_width}",
                          "use a smaller input size or split the input into tiles")


def _spatial_params(layer: Layer) -> dict[str, list[int]]:
    """kernel/pad/stride values of a Convolution, Deconvolution or Pooling layer."""
    p = (layer.param.pooling_param if layer.type == "Pooling"
         else layer.param.convolution_param)
    values: dict[str, list[int]] = {}
    for name, field in (("kernel", "kernel_size"), ("pad", "pad"), ("stride", "stride")):
        raw = getattr(p, field)
        vals = list(raw) if hasattr(raw, "__len__") else ([raw] if p.HasField(field) else [])
        vals += [getattr(p, f"{name}_{a}") for a in "hw" if p.HasField(f"{name}_{a}")]
        values[name] = vals
    return values


@rule("kernel_pad_stride")
def _kernel_pad_stride(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Convolution", "Deconvolution", "Pooling"):
        if layer.type == "Pooling" and layer.param.pooling_param.global_pooling:
            continue  # the kernel is the whole feature map, set by the mapper
        for name, values in _spatial_params(layer).items():
            lo, hi = getattr(ctx.chip, f"{name}_range")
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                yield Finding("kernel_pad_stride", layer.name, f"{name} {bad[0]} is outside "
                              f"{lo}..{hi}", f"NNIE supports {name} {lo}..{hi}")


@rule("group")
def _group(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Convolution", "Deconvolution"):
        group = layer.param.convolution_param.group
        if group > ctx.chip.max_group:
            yield Finding("group", layer.name, f"group {group} exceeds {ctx.chip.max_group}",
                          "split the convolution into several with fewer groups")


@rule("pool_round")
def _pool_round(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Pooling"):
        p = layer.param.pooling_param
        if "round_mode" in p.DESCRIPTOR.fields_by_name and p.round_mode == 1:  # FLOOR
            yield Finding("pool_round", layer.name, "Pooling uses floor rounding; the .wk "
                          "assumes ceil", "check the output size at the deployed input size, or "
                          "retrain with ceil rounding", "warning")


@rule("power")
def _power(ctx: LintContext) -> Iterator[Finding]:
    for layer in _layers_of(ctx, "Power"):
        power = layer.param.power_param.power
        if not any(abs(power - e) < 1e-6 for e in ctx.chip.power_exponents):
            yield Finding("power", layer.name, f"Power exponent {power:g} is not supported",
                          "allowed exponents: " + ", ".join(f"{e:g}" for e in
                                                            ctx.chip.power_exponents))


@rule("order")
def _order(ctx: LintContext) -> Iterator[Finding]:
    done = set(ctx.graph.inputs)
    producers = ctx.graph.producers()
    for layer in ctx.graph.layers:
        late = [b for b in layer.bottoms if b not in done and b in producers]
        if late:
            yield Finding("order", layer.name, f"reads {ctx.graph.caffe_name(late[0])!r} before "
                          f"layer {producers[late[0]].name!r} produces it",
                          "layer order matters to the mapper: apply the nnie_order patch")
        done.update(layer.tops)


@rule("batch")
def _batch(ctx: LintContext) -> Iterator[Finding]:
    for blob in ctx.graph.inputs:
        shape = ctx.shapes.get(blob)
        if shape and shape[0] != 1:
            yield Finding("batch", blob, f"input batch is {shape[0]}, not 1",
                          "set the batch dim to 1 (set_input_shape patch)")


@rule("segments")
def _segments(ctx: LintContext) -> Iterator[Finding]:
    nnie = [s for s in ctx.segments if s.device == "nnie"]
    if len(nnie) > ctx.chip.max_segments:
        yield Finding("segments", nnie[0].layers[0], f"{len(nnie)} NNIE segments, more than "
                      f"{ctx.chip.max_segments}", "move CPU layers to the end of the net")
    limit = ctx.chip.max_segment_io
    for seg in nnie:
        for kind, blobs in (("inputs", seg.inputs), ("outputs", seg.outputs)):
            if len(blobs) > limit:
                yield Finding("segments", seg.layers[0], f"an NNIE segment has {len(blobs)} "
                              f"{kind}, more than {limit}", "concatenate blobs, or cut the "
                              "net differently")
