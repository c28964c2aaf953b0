"""``convert``: an ONNX file -> an NNIE-dialect Caffe ``Graph``, plus its numeric proof.

Steps: read and check the file (``reader``), give the inputs static shapes, fold constants
(``fold``), keep the nodes the requested outputs need (the cut at the NNIE boundary), convert
node by node through the registry (``registry``, ``ops/``), name the outputs, validate the
graph, and compare nnbuild's engine with onnxruntime on it (``proof``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from nnbuild.errors import ModelError, UnsupportedLayerError
from nnbuild.ir import Graph


@dataclasses.dataclass
class Conversion:
    """What ``convert`` returns.

    Attributes:
        graph: the converted network (legacy ``input:`` declaration, weights attached).
        outputs: ONNX tensor -> Caffe output blob, in output order.
        model: the ONNX model with the static input shapes used (what the proof ran).
        proof: the numeric comparison (``nnbuild.onnx.proof.prove``), None with ``prove=False``.
    """

    graph: Graph
    outputs: dict[str, str]
    model: Any
    proof: dict | None = None


def convert(onnx_path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
            outputs: Sequence[Any] | None = None, feeds: list[dict] | None = None,
            prove: bool = True, tolerance: float = 1e-4) -> Conversion:
    """Convert ``onnx_path``.

    Args:
        onnx_path: the .onnx file.
        input_shape: static (N, C, H, W) of the single input; required when it is dynamic.
        outputs: where the NNIE graph ends: ONNX tensor names, or ``{tensor: caffe_name}``
            one-key dicts to rename. Default: the model's outputs.
        feeds: inputs for the proof (dicts input name -> array); default one seeded random input.
        prove: run the numeric proof.
        tolerance: the proof's bound on ``max|a-b| / max|a|`` per output.

    Raises:
        ModelError: unreadable model, bad outputs, dynamic shapes (see ``reader``).
        UnsupportedLayerError: a node that has no NNIE form (node, op type, reason, hint).
    """
    from nnbuild.onnx import reader
    from nnbuild.onnx.fold import fold

    where = str(onnx_path)
    model = reader.read_model(onnx_path)
    shapes = reader.fix_input_shape(model, tuple(input_shape) if input_shape else None, where)
    folded = fold(model, shapes)
    wanted = _wanted(model, folded, outputs, where)
    ctx = _convert_nodes(folded, shapes, wanted, reader.opset_of(model))
    graph, names = _graph(ctx, model, shapes, wanted, where)
    result = Conversion(graph, names, model)
    if prove:
        from nnbuild.onnx.proof import prove as run_proof

        result.proof = run_proof(result, feeds, tolerance)
    return result


def _wanted(model: Any, folded: Any, outputs: Sequence[Any] | None, where: str) -> dict:
    """ONNX tensor -> Caffe name for every requested output."""
    if not outputs:
        return {o.name: o.name for o in model.graph.output}
    known = {o for n in folded.nodes for o in n.output} | set(folded.shapes)
    wanted = {}
    for item in outputs:
        tensor, name = next(iter(item.items())) if isinstance(item, dict) else (item, item)
        if tensor not in known:
            raise ModelError(f"{where}: source.outputs", f"tensor {tensor!r} is not in the model",
                             expected="the name of a node output", got=tensor,
                             hint="list tensor names with `python -c \"import onnx; "
                                  "print([o for n in onnx.load('M.onnx').graph.node for o in "
                                  "n.output])\"` or open the model in Netron")
        wanted[str(tensor)] = str(name)
    return wanted


def _needed(nodes: list, wanted: dict) -> list:
    """The nodes the wanted tensors depend on, in graph order."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    keep, stack = set(), [producer[t] for t in wanted if t in producer]
    while stack:
        i = stack.pop()
        if i in keep:
            continue
        keep.add(i)
        stack.extend(producer[t] for t in nodes[i].input if t in producer)
    return [n for i, n in enumerate(nodes) if i in keep]


def _convert_nodes(folded: Any, shapes: dict, wanted: dict, opset: int):
    from onnx import helper

    from nnbuild.onnx.context import Context, cut_hint
    from nnbuild.onnx.registry import load_all

    registry = load_all()
    ctx = Context(folded.consts, folded.shapes, shapes, opset)
    for node in _needed(folded.nodes, wanted):
        ctx.node = node
        fn = registry.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if fn is None:
            raise ctx.refuse("NNIE has no layer for this op", cut_hint(ctx))
        attrs = {a.name: _plain(helper.get_attribute_value(a)) for a in node.attribute}
        fn(ctx, node, attrs)
    ctx.node = None
    return ctx


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _graph(ctx, model: Any, shapes: dict, wanted: dict, where: str) -> tuple[Graph, dict]:
    """Rename output blobs to their wanted names and build the validated ``Graph``."""
    rename, names = {}, {}
    for tensor, name in wanted.items():
        if tensor in ctx.consts:
            raise ModelError(f"{where}: output {tensor!r}", "the output is a constant",
                             hint="cut at a tensor computed from the input")
        blob = ctx.blob(tensor)
        if blob in shapes or blob in rename:
            raise UnsupportedLayerError(f"{where}: output {tensor!r}", "the output is the "
                                        "network input or another output under a second name",
                                        hint="drop it from the outputs")
        rename[blob] = name
        names[tensor] = name
    layers = ctx.layers
    for layer in layers:
        layer.bottoms = [rename.get(b, b) for b in layer.bottoms]
        layer.tops = [rename.get(t, t) for t in layer.tops]
    graph = Graph.from_caffe(model.graph.name or "onnx", dict(shapes), layers,
                             input_style="legacy")
    graph.validate(where)
    inner = [name for name in names.values() if name not in graph.outputs]
    if inner:
        raise ModelError(f"{where}: source.outputs", f"output {inner[0]!r} also feeds other "
                         "converted layers", expected="tensors that end the NNIE graph",
                         got=inner, hint="name only the last tensors of each branch")
    return graph, names
