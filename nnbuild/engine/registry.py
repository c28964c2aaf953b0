"""Layer registry of the float engine: Caffe layer type -> adapter running its kernel.

An adapter has the signature ``adapter(param, inputs, blobs, n_tops) -> list[np.ndarray]``:
``param`` is the layer's Caffe ``LayerParameter`` (read ``param.<x>_param`` with the protobuf API,
so caffe.proto defaults apply), ``inputs`` the bottom arrays in order, ``blobs`` the layer's weight
arrays and ``n_tops`` the number of tops the graph expects (Split and Slice need it).
Adapters only translate protobuf fields into the keyword arguments of a kernel function; kernels
take inputs positionally and Caffe parameters keyword-only (docs/style.md rule 4).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

Adapter = Callable[[Any, Sequence[np.ndarray], Sequence[np.ndarray], int], list]

ADAPTERS: dict[str, Adapter] = {}

# Layers that produce no array from the graph's point of view: their tops are network inputs.
SOURCE_TYPES = frozenset({"Input"})


def register(layer_type: str) -> Callable[[Adapter], Adapter]:
    """Register ``adapter`` as the engine implementation of the Caffe type ``layer_type``.

    Raises:
        ValueError: the type is already registered (a programming error, not a user error).
    """
    def decorate(adapter: Adapter) -> Adapter:
        if layer_type in ADAPTERS:
            raise ValueError(f"engine layer type {layer_type!r} registered twice")
        if not callable(adapter):
            raise TypeError(f"engine adapter for {layer_type!r} is not callable")
        ADAPTERS[layer_type] = adapter
        return adapter
    return decorate


def has_field(message: Any, field: str) -> bool:
    """``message.HasField(field)`` for optional scalars; False for absent messages/fields."""
    if message is None:
        return False
    try:
        return message.HasField(field)
    except ValueError:  # repeated fields and proto3 scalars have no presence
        return False

