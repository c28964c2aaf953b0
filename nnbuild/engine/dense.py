"""InnerProduct kernel (Caffe's fully connected layer)."""

from __future__ import annotations

import numpy as np

from nnbuild.engine.registry import register
from nnbuild.errors import ModelError


def inner_product(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                  axis: int = 1, transpose: bool = False) -> np.ndarray:
    """Caffe InnerProduct: flatten ``x`` from ``axis`` on, multiply by ``weight``, add ``bias``.

    ``weight`` is (num_output, K), or (K, num_output) when ``transpose`` is set.
    """
    axis %= x.ndim
    lead = x.shape[:axis]
    flat = x.reshape(int(np.prod(lead, dtype=np.int64)), -1)
    k = flat.shape[1]
    if k == 0 or weight.size % k:
        raise ModelError("InnerProduct", "weight does not match the flattened input",
                         expected=f"K = {flat.shape[1]}", got=f"weight {weight.shape}",
                         hint="check the input shape and the caffemodel")
    out = flat @ (weight.reshape(k, -1) if transpose else weight.reshape(-1, k).T)
    if bias is not None:
        out += bias.reshape(1, -1)
    return out.reshape(lead + (out.shape[1],))


@register("InnerProduct")
def _inner_product(param, inputs, blobs, n_tops) -> list:
    ip = param.inner_product_param
    if not blobs:
        raise ModelError("InnerProduct", "the layer has no weights", hint="load the caffemodel")
    bias = blobs[1] if ip.bias_term and len(blobs) > 1 else None
    return [inner_product(inputs[0], blobs[0], bias, axis=int(ip.axis),
                          transpose=bool(ip.transpose))]
