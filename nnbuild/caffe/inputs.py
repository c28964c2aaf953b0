"""Network inputs in both Caffe styles: ``Input`` layers, and legacy ``input:`` declarations.

Legacy declarations give shapes either as one ``input_shape`` per input or as four
``input_dim`` values per input; the style read is remembered in ``Graph.caffe_meta`` so that
writing an unchanged graph reproduces it.
"""

from __future__ import annotations

from typing import Any

from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Layer

_LEGACY_KEY = "legacy_input"


def graph_inputs(net: Any, layers: list[Layer], where: str
                 ) -> tuple[dict[str, tuple[int, ...]], str, dict[str, Any]]:
    """Return (inputs, input_style, caffe_meta) declared by ``net`` and its ``Input`` layers.

    Raises:
        ModelError: shapes missing or not one per input, or no input at all.
    """
    inputs: dict[str, tuple[int, ...]] = {}
    meta: dict[str, Any] = {}
    style = "layer"
    if len(net.input):
        style = "legacy"
        meta[_LEGACY_KEY], shapes = _legacy_shapes(net, where)
        inputs.update(zip(net.input, shapes))
    for layer in layers:
        if layer.type == "Input":
            inputs.update(zip(layer.tops, _input_layer_shapes(layer.param, where)))
    if not inputs:
        raise ModelError(where, "the network declares no input",
                         expected="an Input layer or 'input:' with 'input_shape'/'input_dim'",
                         got="neither", hint="add an Input layer with input_param { shape {...} }")
    return inputs, style, meta


def _legacy_shapes(net: Any, where: str) -> tuple[str, list[tuple[int, ...]]]:
    n = len(net.input)
    if len(net.input_shape):
        if len(net.input_shape) != n:
            raise ModelError(where, "input_shape count does not match the inputs",
                             expected=f"{n} input_shape", got=len(net.input_shape),
                             hint="give one input_shape per 'input:'")
        return "input_shape", [tuple(int(d) for d in s.dim) for s in net.input_shape]
    if len(net.input_dim):
        dims = [int(d) for d in net.input_dim]
        if len(dims) != 4 * n:
            raise ModelError(where, "input_dim count does not match the inputs",
                             expected=f"{4 * n} input_dim (4 per input)", got=len(dims),
                             hint="give N, C, H, W for each 'input:'")
        return "input_dim", [tuple(dims[4 * i:4 * i + 4]) for i in range(n)]
    raise ModelError(where, f"input {net.input[0]!r} has no shape",
                     expected="'input_shape' or 'input_dim'", got="neither",
                     hint="add input_shape { dim: 1 dim: 3 dim: H dim: W }")


def _input_layer_shapes(param: Any, where: str) -> list[tuple[int, ...]]:
    shapes = [tuple(int(d) for d in s.dim) for s in param.input_param.shape]
    tops = list(param.top)
    if len(shapes) == 1:
        return shapes * len(tops)
    if len(shapes) != len(tops):
        raise ModelError(f"{where}: layer {param.name!r}", "Input layer shapes do not match its "
                         "tops", expected=f"1 or {len(tops)} shapes", got=len(shapes),
                         hint="give one input_param.shape per top (or one shared shape)")
    return shapes


def write_inputs(graph: Graph, net: Any, input_layer: Any = None) -> None:
    """Write ``graph.inputs`` into ``net`` (legacy inputs) or into one ``Input`` layer message.

    Inputs no ``Input`` layer produces are written as legacy declarations in the style the
    graph was read with (``input_shape`` for graphs that had none). An ``Input`` layer keeps its
    message untouched when its shapes already match ``graph.inputs``.
    """
    if input_layer is not None:
        _write_input_layer(graph, input_layer)
        return
    for field in ("input", "input_shape", "input_dim"):
        net.ClearField(field)
    from_layers = {t for layer in graph.layers if layer.type == "Input" for t in layer.tops}
    free = [(blob, shape) for blob, shape in graph.inputs.items() if blob not in from_layers]
    use_dim = (graph.caffe_meta.get(_LEGACY_KEY) == "input_dim"
               and all(len(shape) == 4 for _, shape in free))
    for blob, shape in free:
        net.input.append(graph.caffe_name(blob))
        if use_dim:
            net.input_dim.extend(shape)
        else:
            net.input_shape.add().dim.extend(shape)


def _write_input_layer(graph: Graph, lp: Any) -> None:
    tops = [t for t in lp.top if t in graph.inputs]
    wanted = [tuple(graph.inputs[t]) for t in tops]
    current = [tuple(int(d) for d in s.dim) for s in lp.input_param.shape]
    if len(current) == 1:
        current = current * len(tops)
    if current == wanted:
        return
    lp.input_param.ClearField("shape")
    for shape in wanted:
        lp.input_param.shape.add().dim.extend(shape)
