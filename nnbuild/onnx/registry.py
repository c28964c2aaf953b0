"""Converter registry: ONNX op type -> function emitting the NNIE-dialect Caffe layers for a node.

A converter has the signature ``fn(ctx, node, attrs) -> None``: ``ctx`` is the
``nnbuild.onnx.context.Context`` of the conversion, ``node`` the ``onnx.NodeProto`` and ``attrs``
its attributes as plain Python values (strings decoded). Each converter reads attributes with
the ONNX spec's default (``attrs.get("group", 1)``), emits layers with ``ctx.add_layer`` or
aliases its output with ``ctx.alias``, and raises ``ctx.refuse(...)`` for what NNIE cannot run.
"""

from __future__ import annotations

from typing import Any, Callable

Converter = Callable[[Any, Any, dict], None]

CONVERTERS: dict[str, Converter] = {}

# Modules under nnbuild.onnx.ops that register converters (imported by ``load_all``).
OP_MODULES = ("conv", "activation", "arith", "pool", "layout", "dense", "resize")


def converter(*op_types: str) -> Callable[[Converter], Converter]:
    """Register ``fn`` for each ONNX ``op_types``; a type registered twice is a programming error."""
    def decorate(fn: Converter) -> Converter:
        if not callable(fn):
            raise TypeError(f"converter for {op_types} is not callable")
        for op in op_types:
            if op in CONVERTERS:
                raise ValueError(f"ONNX converter for {op!r} registered twice")
            CONVERTERS[op] = fn
        return fn
    return decorate


def load_all() -> dict[str, Converter]:
    """Import every op module (they register on import) and return the registry."""
    import importlib

    for module in OP_MODULES:
        importlib.import_module(f"nnbuild.onnx.ops.{module}")
    return CONVERTERS
