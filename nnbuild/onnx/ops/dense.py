"""Gemm and MatMul with a constant right operand -> Caffe InnerProduct (weights (O, K))."""

from __future__ import annotations

import numpy as np

from nnbuild.onnx.ops.common import weight
from nnbuild.onnx.registry import converter


def _inner_product(ctx, node, w: np.ndarray, bias: np.ndarray | None) -> None:
    shape = ctx.shape(node.input[0])
    if len(shape) != 2:
        raise ctx.refuse(f"its input has shape {list(shape)}, not (N, K)", "Flatten the "
                         "feature map first (InnerProduct reads (N, K))")
    blobs = [w] if bias is None else [w, bias]
    ip = ctx.add_layer("InnerProduct", [ctx.blob(node.input[0])], [ctx.output()],
                       blobs).inner_product_param
    ip.num_output, ip.bias_term = w.shape[0], bias is not None


@converter("Gemm")
def gemm(ctx, node, attrs) -> None:
    """``alpha * A @ op(B) + beta * C`` with constant B and C."""
    if attrs.get("transA", 0):
        raise ctx.refuse("transA=1 transposes the feature map", "export x @ W.T (nn.Linear)")
    b = weight(ctx, node.input[1], "weight B")
    w = (b if attrs.get("transB", 0) else b.T) * float(attrs.get("alpha", 1.0))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = weight(ctx, node.input[2], "bias C") * float(attrs.get("beta", 1.0))
        if c.size not in (1, w.shape[0]):
            raise ctx.refuse(f"bias C of shape {list(c.shape)} is not per output",
                             "use a (O,) bias (nn.Linear)")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).astype(np.float32)
    _inner_product(ctx, node, np.ascontiguousarray(w, dtype=np.float32), bias)


@converter("MatMul")
def matmul(ctx, node, attrs) -> None:
    """``A @ B`` with B (K, O) constant: InnerProduct with weights ``B.T``."""
    b = weight(ctx, node.input[1], "right operand")
    if b.ndim != 2:
        raise ctx.refuse(f"right operand of shape {list(b.shape)} is not (K, O)",
                         "only matrix products with a constant (K, O) matrix convert")
    _inner_product(ctx, node, np.ascontiguousarray(b.T, dtype=np.float32), None)
