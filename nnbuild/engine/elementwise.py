"""Eltwise kernel: SUM (with per-input coefficients), PROD and MAX over several bottoms."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nnbuild.engine.registry import register
from nnbuild.errors import ModelError

PROD, SUM, MAX = 0, 1, 2  # EltwiseParameter.EltwiseOp values in caffe.proto


def eltwise(*inputs: np.ndarray, operation: int = SUM,
            coeff: Sequence[float] = ()) -> np.ndarray:
    """Caffe Eltwise over same-shaped ``inputs``; ``coeff`` (one per input) only for SUM."""
    if coeff and len(coeff) != len(inputs):
        raise ModelError("Eltwise", "coeff must have one value per bottom",
                         expected=len(inputs), got=len(coeff), hint="fix eltwise_param.coeff")
    if any(x.shape != inputs[0].shape for x in inputs):
        raise ModelError("Eltwise", "bottoms have different shapes",
                         expected="equal shapes", got=[x.shape for x in inputs],
                         hint="Eltwise does not broadcast; check the branches' sizes")
    if operation == SUM:
        if not coeff and len(inputs) > 1:  # the residual add: one pass, no copy first
            out = np.add(inputs[0], inputs[1])
            for x in inputs[2:]:
                out += x
            return out
        weights = [np.float32(c) for c in coeff] or [None] * len(inputs)
        out = inputs[0] * weights[0] if weights[0] is not None else inputs[0].copy()
        for x, c in zip(inputs[1:], weights[1:]):
            out += x if c is None else x * c
        return out
    if operation == PROD:
        out = inputs[0].copy()
        for x in inputs[1:]:
            out *= x
        return out
    if operation == MAX:
        out = inputs[0].copy()
        for x in inputs[1:]:
            np.maximum(out, x, out=out)
        return out
    raise ModelError("Eltwise", "unknown operation", expected="PROD (0), SUM (1) or MAX (2)",
                     got=operation, hint="fix eltwise_param.operation")


@register("Eltwise")
def _eltwise(param, inputs, blobs, n_tops) -> list:
    ep = param.eltwise_param
    return [eltwise(*inputs, operation=int(ep.operation), coeff=[float(c) for c in ep.coeff])]
