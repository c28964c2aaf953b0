"""Pass ``set_input_shape``: the recipe's input shape, declared the way nnie_mapper accepts it."""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import rewire

WHERE = "pass set_input_shape"


def _input_layer_shape(layer, index: int) -> tuple[int, ...] | None:
    shapes = layer.param.input_param.shape if layer.param is not None else []
    if not shapes:
        return None
    shape = shapes[min(index, len(shapes) - 1)]  # Caffe: one shape for all tops, or one each
    return tuple(int(d) for d in shape.dim)


def _to_legacy(g: Graph, changes: Changes) -> None:
    """Replace ``Input`` layers by ``input:`` declarations (edits ``g`` in place)."""
    for layer in [la for la in g.layers if la.type == "Input"]:
        for i, top in enumerate(layer.tops):
            base = g.caffe_name(top)
            if base not in g.inputs:
                g.inputs[base] = _input_layer_shape(layer, i)
            if top != base:  # the IR may version an Input top that shadows a declared input
                rewire(g, top, base, changes)
                g.origin.pop(top, None)
        g.layers.remove(layer)
        changes.remove(layer.name)


def _target_shape(shape, ctx: PassContext) -> tuple[int, ...]:
    shape = shape if shape is not None else ctx.input_shape
    if shape is None:
        raise PassError(WHERE, "no input shape given", expected="input.shape in the recipe or "
                        "the pass argument `shape`", got="neither", hint="add input.shape: "
                        "[1, 3, H, W] to the recipe")
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or shape[0] != 1 or min(shape) < 1:
        raise PassError(WHERE, "unsupported input shape", expected="[1, C, H, W] with batch 1 "
                        "(nnie-facts.md §5: Input batch dim 1)", got=list(shape),
                        hint="NNIE runs one image per forward; set the batch dimension to 1")
    return shape


@register_pass("set_input_shape")
def set_input_shape(graph: Graph, ctx: PassContext, *, shape=None, name=None
                    ) -> tuple[Graph, Changes]:
    """Declare the input as ``input:`` + ``input_shape`` (NNIE form) with the recipe's shape.

    Args:
        graph: the network.
        ctx: supplies ``input_shape`` and ``input_name`` when the arguments are not given.
        shape: [1, C, H, W]; default the recipe's ``input.shape``.
        name: the input blob; default the recipe's ``input.name`` or the graph's only input.
    """
    g = graph.copy()
    changes = Changes()
    before = {k: list(v) if v else v for k, v in g.inputs.items()}
    style = g.input_style
    _to_legacy(g, changes)
    target = _target_shape(shape, ctx)
    name = name or ctx.input_name or (next(iter(g.inputs)) if len(g.inputs) == 1 else None)
    if name not in g.inputs:
        raise PassError(WHERE, f"input {name!r} not found", expected=" or ".join(g.inputs) or
                        "an input", got=name, hint="set input.name to the network's input blob")
    old = g.inputs[name]
    if old and len(old) == 4 and old[1] != target[1]:
        raise PassError(WHERE, f"input {name!r} takes {old[1]} channels, input.shape gives "
                        f"{target[1]}", expected=f"input.shape [1, {old[1]}, H, W]",
                        got=list(target), hint=f"set input.shape[1] to {old[1]}; the first "
                        "layer's weights fix the channel count (input.format gray feeds 1 "
                        "channel, bgr and rgb 3)")
    g.inputs[name] = target
    g.input_style = "legacy"
    changes.param("<net>", "input_style", style, "legacy")
    changes.param("<net>", f"input_shape[{name}]", before.get(name), list(target))
    return g, changes
