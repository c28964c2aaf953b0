"""Shape inference driver and registries: every blob's shape and each layer's weight shapes.

Each Caffe layer type has one function registered with ``@shape_fn("Type")``. It receives the
layer and the shapes of its bottoms (tuples, in order) and returns the shapes of its tops; it
raises ``ShapeError`` naming the layer and both shapes when its inputs disagree. Layer types with
weights also register ``@weight_shapes("Type")``: the shapes Caffe would allocate for the layer's
blobs given its input shape, which ``infer_shapes`` compares with the loaded weights.

Formulas follow BVLC Caffe (and SSD Caffe for Permute/Flatten/Normalize/PriorBox/
DetectionOutput); each function says where it deviates. Blob names are the graph's SSA names.
"""

from __future__ import annotations

from typing import Callable

from nnbuild.errors import ModelError, ShapeError, UnsupportedLayerError
from nnbuild.ir import Graph, Layer

Shape = tuple[int, ...]
ShapeFn = Callable[[Layer, list[Shape]], list[Shape]]
WeightFn = Callable[[Layer, list[Shape]], list[Shape]]

SHAPE_FNS: dict[str, ShapeFn] = {}
WEIGHT_FNS: dict[str, WeightFn] = {}


def _registrar(table: dict, kind: str, types: tuple[str, ...]):
    def register(fn):
        for layer_type in types:
            if layer_type in table:
                raise ValueError(f"{kind} for layer type {layer_type!r} registered twice")
            table[layer_type] = fn
        return fn
    return register


def shape_fn(*types: str):
    """Register ``fn(layer, bottom_shapes) -> top_shapes`` for the given Caffe layer types."""
    return _registrar(SHAPE_FNS, "shape function", types)


def weight_shapes(*types: str):
    """Register ``fn(layer, bottom_shapes) -> expected weight blob shapes`` for layer types."""
    return _registrar(WEIGHT_FNS, "weight shape function", types)


# -- driver ---------------------------------------------------------------------------------------

def infer_shapes(graph: Graph, input_shapes: dict[str, Shape] | None = None, *,
                 partial: bool = False, check_weights: bool = True) -> dict[str, Shape]:
    """Infer the shape of every blob of ``graph``, in layer order.

    Args:
        graph: the network (layers in a valid topological order).
        input_shapes: network input blob -> shape, overriding the graph's declared input shapes
            (infer at another input size without editing the graph).
        partial: if True, layers of unknown type (and everything downstream of them) are left
            out of the result instead of raising ``UnsupportedLayerError``; lint uses this so a
            custom CPU layer does not hide every other finding.
        check_weights: compare loaded weight blobs with the shapes the layer needs.

    Returns:
        SSA blob name -> shape tuple.

    Raises:
        ShapeError: at the first layer whose inputs disagree, with both shapes.
        ModelError: a layer's weight blobs do not match the inferred input shape.
        UnsupportedLayerError: a layer type without a shape function (unless ``partial``).
    """
    overrides = dict(input_shapes or {})
    unknown = [b for b in overrides if b not in graph.inputs]
    if unknown:
        raise ShapeError(f"input {unknown[0]!r}", "not a network input",
                         expected=", ".join(graph.inputs) or "no inputs", got=unknown[0],
                         hint="name one of the network's input blobs")
    shapes: dict[str, Shape] = {b: tuple(int(d) for d in overrides.get(b, s))
                                for b, s in graph.inputs.items()}
    for layer in graph.layers:
        fn = SHAPE_FNS.get(layer.type)
        missing = [b for b in layer.bottoms if b not in shapes]
        if fn is None or missing:
            if partial:
                continue
            if fn is None:
                raise UnsupportedLayerError(
                    f"layer {layer.name!r}", f"no shape inference for layer type {layer.type!r}",
                    expected="one of " + ", ".join(sorted(SHAPE_FNS)), got=layer.type,
                    hint="remove or replace the layer, or register a shape function for it")
            raise ShapeError(f"layer {layer.name!r}", f"bottom {graph.caffe_name(missing[0])!r}"
                             " has no shape yet", hint="the layer order is not topological; "
                             "reorder the layers (the nnie_order pass does this)")
        bottoms = [shapes[b] for b in layer.bottoms]
        if layer.type == "Input":
            # The declared (or overridden) input shape wins; the loader may have versioned the
            # Input layer's top ("data@1") because the blob is also in graph.inputs.
            tops = [shapes.get(t) or shapes.get(graph.caffe_name(t)) or s
                    for t, s in zip(layer.tops, fn(layer, bottoms))]
        else:
            tops = fn(layer, bottoms)
        shapes.update(zip(layer.tops, tops))
        if check_weights and layer.blobs:
            _check_weights(layer, bottoms)
    return shapes


def expected_weight_shapes(layer: Layer, bottom_shapes: list[Shape]) -> list[Shape]:
    """The weight blob shapes Caffe allocates for ``layer`` (``[]`` for weight-less layers)."""
    fn = WEIGHT_FNS.get(layer.type)
    if fn is None or (layer.type == "Scale" and len(bottom_shapes) > 1):
        return []  # a two-bottom Scale takes its factors from the second bottom
    return fn(layer, bottom_shapes)


def _legacy4(shape: Shape) -> Shape:
    # Old caffemodels store every blob as num/channels/height/width; Caffe accepts a blob whose
    # shape, left-padded with 1s to 4 axes, equals that legacy shape (Blob::ShapeEquals).
    return (1,) * (4 - len(shape)) + tuple(shape) if len(shape) <= 4 else tuple(shape)


def _check_weights(layer: Layer, bottoms: list[Shape]) -> None:
    expected = expected_weight_shapes(layer, bottoms)
    if layer.type not in WEIGHT_FNS:
        return
    got = [tuple(int(d) for d in b.shape) for b in layer.blobs]
    if len(got) != len(expected):
        raise ModelError(f"layer {layer.name!r}", "wrong number of weight blobs",
                         expected=f"{len(expected)} blobs {expected}", got=f"{len(got)} {got}",
                         hint="the caffemodel does not belong to this prototxt (or to this "
                              "input size)")
    for i, (want, have) in enumerate(zip(expected, got)):
        if want != have and _legacy4(want) != _legacy4(have):
            raise ModelError(f"layer {layer.name!r}", f"weight blob {i} has the wrong shape",
                             expected=want, got=have,
                             hint="the caffemodel does not belong to this prototxt (check "
                                  "num_output, kernel size, group and the input shape)")


def shape_error(layer: Layer, what: str, expected: object, got: object, hint: str) -> ShapeError:
    """A ShapeError located at ``layer`` (name and type)."""
    return ShapeError(f"layer {layer.name!r} ({layer.type})", what, expected=expected, got=got,
                      hint=hint)


def canonical_axis(layer: Layer, axis: int, ndim: int) -> int:
    """Caffe's CanonicalAxisIndex: negative axes count from the end."""
    if not -ndim <= axis < ndim:
        raise shape_error(layer, "axis out of range", f"-{ndim}..{ndim - 1}", axis,
                          "fix the axis parameter")
    return axis % ndim


def same_as_first(layer: Layer, bottoms: list[Shape]) -> list[Shape]:
    """Shape function of layers whose every top has the first bottom's shape."""
    return [bottoms[0]] * len(layer.tops)

