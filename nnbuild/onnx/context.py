"""The state of one conversion: constants, shapes, ONNX tensor -> Caffe blob, emitted layers.

Converters see the node being converted through ``Context`` only. Blob names are the ONNX tensor
names (so a cut at a named tensor names the same blob in the prototxt); layers emitted for one
node are named after the node, with a suffix when a node becomes several layers.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from nnbuild.errors import ModelError, UnsupportedLayerError
from nnbuild.ir import Layer


class Context:
    """Conversion state shared by the converters (see ``nnbuild.onnx.registry``).

    Args:
        consts: tensor -> constant value (initializers and folded tensors).
        shapes: tensor -> static shape.
        inputs: network input tensors (they are Caffe blobs of the same name).
        opset: the model's default-domain opset.
    """

    def __init__(self, consts: dict, shapes: dict, inputs: Iterable[str], opset: int):
        self.consts, self.shapes, self.opset = consts, shapes, opset
        self.blobs: dict[str, str] = {name: name for name in inputs}
        self.deferred: dict[str, Any] = {}  # tensor -> value a later node consumes (Focus)
        self.layers: list[Layer] = []
        self._names: set[str] = set()
        self.node: Any = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def where(self) -> str:
        node = self.node
        return f"node {_node_name(node)!r} ({node.op_type})" if node is not None else "onnx"

    def const(self, tensor: str) -> np.ndarray | None:
        """The constant value of ``tensor``, or None when it is computed at run time."""
        return self.consts.get(tensor) if tensor else None

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The static shape of ``tensor``; ModelError when shape inference left it open."""
        if tensor in self.shapes:
            return self.shapes[tensor]
        raise ModelError(self.where, f"the shape of tensor {tensor!r} is not static",
                         expected="a shape ONNX shape inference can settle", got="unknown",
                         hint="give input.shape in the recipe, or re-export with static shapes")

    def blob(self, tensor: str) -> str:
        """The Caffe blob holding the run-time tensor ``tensor``."""
        if tensor in self.blobs:
            return self.blobs[tensor]
        if tensor in self.deferred:
            raise self.refuse(f"tensor {tensor!r} is a strided Slice, which NNIE has no layer "
                              "for", "strided slices only convert as YOLOv5's Focus (four "
                              "::2 slices concatenated on channels); cut the graph before them")
        if tensor in self.consts:
            raise self.refuse(f"input {tensor!r} is a constant where NNIE needs a feature map",
                              "only weights and shape arguments may be constants")
        raise ModelError(self.where, f"input tensor {tensor!r} is produced by no converted node",
                         hint="check the outputs named in source.outputs")

    def output(self, index: int = 0) -> str:
        """The blob name for the node's output ``index`` (the ONNX tensor name)."""
        return self.node.output[index]

    # -- writing ---------------------------------------------------------------------------
    def alias(self, tensor: str, blob: str) -> None:
        """Let ``tensor`` name an existing blob (Identity, Dropout: no layer)."""
        self.blobs[tensor] = blob

    def temp(self, suffix: str) -> str:
        """A fresh intermediate blob name derived from the node's first output."""
        base = f"{self.node.output[0]}_{suffix}"
        name, k = base, 1
        while name in self.blobs or name in self.shapes:
            k += 1
            name = f"{base}{k}"
        self.blobs[name] = name
        return name

    def add_layer(self, layer_type: str, bottoms: list[str], tops: list[str],
                  blobs: Iterable[np.ndarray] = (), suffix: str = "") -> Any:
        """Append a layer; returns its ``LayerParameter`` for the converter to fill in."""
        from nnbuild.caffe import caffe_pb2

        name = _node_name(self.node) + (f"_{suffix}" if suffix else "")
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        param = caffe_pb2.LayerParameter()
        param.name, param.type = name, layer_type
        arrays = [_frozen(b) for b in blobs]
        self.layers.append(Layer(name, layer_type, list(bottoms), list(tops), param, arrays))
        for top in tops:
            self.blobs.setdefault(top, top)
        return param

    def refuse(self, reason: str, hint: str) -> UnsupportedLayerError:
        """The one-line error for a node NNIE cannot run (raise it)."""
        return UnsupportedLayerError(self.where, f"cannot be converted: {reason}", hint=hint)


def _node_name(node: Any) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out


def cut_hint(ctx: Context) -> str:
    """Hint naming the tensors to cut at, to run the rest of the graph on the CPU."""
    names = [i for i in ctx.node.input if i and i not in ctx.consts]
    return ("cut the graph before it: list " + ", ".join(repr(n) for n in names) +
            " in source.outputs and decode the rest on the CPU")
