"""Shape inference: every blob's shape, and the weight shapes each layer must have.

``infer_shapes(graph, input_shapes=None)`` walks the layers in order; one function per Caffe
layer type, registered with ``@shape_fn("Type")`` (and ``@weight_shapes("Type")`` for layers
with weights). The layer modules below register themselves on import.
"""

from nnbuild.shapes import conv, ssd, tensor  # noqa: F401  (fill the registries)
from nnbuild.shapes.core import (SHAPE_FNS, WEIGHT_FNS, Shape, expected_weight_shapes,
                                 infer_shapes, shape_fn, weight_shapes)
from nnbuild.shapes.ssd import prior_count

__all__ = ["SHAPE_FNS", "WEIGHT_FNS", "Shape", "expected_weight_shapes", "infer_shapes",
           "prior_count", "shape_fn", "weight_shapes"]
