"""Constant folding: shape arithmetic and constant subgraphs become constants before conversion.

PyTorch exports compute Reshape targets and Resize sizes at run time from ``Shape`` ->
``Gather`` -> ``Unsqueeze`` -> ``Concat`` -> ``Cast`` chains. With static input shapes every one
of them is a constant, and NNIE layers need constants. The pass alternates ONNX's own shape
inference (``data_prop=True``) with evaluating every node whose inputs are all known, to a fixed
point (as onnx-simplifier does), so a ``Shape`` whose input only got a static shape after an
earlier fold is folded in the next round.

Nodes are evaluated with ``onnx.reference`` (the spec's executable reference, part of the
``onnx`` package), so folding never needs its own op semantics except for ``Shape`` and
``Constant``, which read only shapes and attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nnbuild.errors import ModelError

MAX_ROUNDS = 8
# Never folded: no inputs but a fresh value each run, or subgraphs.
UNFOLDABLE = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike",
                        "RandomUniformLike", "Multinomial", "If", "Loop", "Scan"})


@dataclasses.dataclass
class Folded:
    """The graph after folding.

    Attributes:
        nodes: the nodes still to convert (topological order kept).
        consts: tensor name -> numpy value (initializers and folded results).
        shapes: tensor name -> static shape, for every tensor shape inference could settle.
    """

    nodes: list
    consts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]


def fold(model: Any, input_shapes: dict[str, tuple[int, ...]]) -> Folded:
    """Fold ``model`` (whose inputs already have static shapes) to a fixed point."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)
    shapes: dict[str, tuple[int, ...]] = {}
    for _ in range(MAX_ROUNDS):
        shapes = infer(model, nodes, consts, input_shapes)
        remaining = _fold_round(model, nodes, consts, shapes)
        if len(remaining) == len(nodes):
            break
        nodes = remaining
    for name, value in consts.items():
        shapes.setdefault(name, tuple(value.shape))
    return Folded(nodes, consts, shapes)


def infer(model: Any, nodes: list, consts: dict, input_shapes: dict) -> dict:
    """Static shapes of the tensors of ``nodes`` by ONNX shape inference with data propagation."""
    import onnx
    from onnx import helper, numpy_helper

    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes, model.graph.name or "g",
        [vi for vi in model.graph.input if vi.name in input_shapes],
        list(model.graph.output),
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items() if k in used])
    probe = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=model.ir_version)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except onnx.shape_inference.InferenceError as err:
        raise ModelError("onnx: shape inference", "the shapes of the model do not agree",
                         got=_first_line(err), hint="the export may only work at its own input "
                         "size; set input.shape to it") from err
    shapes = dict(input_shapes)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(
                d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _fold_round(model: Any, nodes: list, consts: dict, shapes: dict) -> list:
    remaining = []
    for node in nodes:
        values = _try_fold(model, node, consts, shapes)
        if values is None:
            remaining.append(node)
            continue
        for name, value in zip(node.output, values):
            if name:
                consts[name] = np.asarray(value)
    return remaining


def _try_fold(model: Any, node: Any, consts: dict, shapes: dict) -> list | None:
    if node.op_type in UNFOLDABLE or node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Constant":
        return [_constant_value(node)]
    if node.op_type in ("Shape", "Size") and node.input[0] in shapes:
        return [_shape_value(node, shapes[node.input[0]])]
    if not node.input or not all(i == "" or i in consts for i in node.input):
        return None
    return evaluate(model, node, [consts[i] if i else None for i in node.input])


def _constant_value(node: Any) -> np.ndarray:
    from onnx import helper, numpy_helper

    attr = node.attribute[0]
    value = helper.get_attribute_value(attr)
    if attr.name in ("value", "sparse_value"):
        return numpy_helper.to_array(value)
    dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64}.get(attr.name)
    return np.asarray(value, dtype=dtype)


def _shape_value(node: Any, shape: tuple[int, ...]) -> np.ndarray:
    if node.op_type == "Size":
        return np.asarray(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    attrs = {a.name: a.i for a in node.attribute}  # opset 15: start/end
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.asarray(shape[slice(start, end)], dtype=np.int64)


def evaluate(model: Any, node: Any, inputs: list) -> list:
    """Run one node with ONNX's reference evaluator at the model's opset."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if name else "" for i, name in enumerate(node.input)]
    single = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                              domain=node.domain)
    single.attribute.extend(node.attribute)
    feeds = {n: v for n, v in zip(names, inputs) if n}
    graph = helper.make_graph(
        [single], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in feeds.items()],
        [helper.make_empty_tensor_value_info(o) for o in single.output])
    probe = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=model.ir_version)
    try:
        return list(ReferenceEvaluator(probe).run(None, feeds))
    except (ValueError, TypeError, IndexError, RuntimeError) as err:
        name = node.name or node.output[0]
        raise ModelError(f"node {name!r} ({node.op_type})", "constant folding failed",
                         got=_first_line(err), hint="the export may only work at its own input "
                         "size; set input.shape to it") from err


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
