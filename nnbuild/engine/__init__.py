"""The float reference engine: run a Caffe graph in numpy float32 with Caffe's exact semantics.

``run(graph, feeds, keep=None, *, weights=None, on_blob=None)`` executes a whole graph,
``run_layer(layer, inputs, weights=None)`` one layer; ``ADAPTERS`` is the layer registry (filled
by ``@register("Type")`` in the kernel modules imported below).
"""

from nnbuild.engine import (activation, conv, dense, elementwise, normalization,  # noqa: F401
                            pooling, shape_ops, ssd)
from nnbuild.engine.registry import ADAPTERS, register
from nnbuild.engine.runner import run, run_layer

__all__ = ["ADAPTERS", "register", "run", "run_layer"]
