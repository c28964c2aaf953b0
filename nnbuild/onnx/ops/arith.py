"""Add/Sub/Mul/Div and BatchNormalization -> Caffe Eltwise / Power / Scale / BatchNorm.

With a constant operand the op is affine per tensor (a scalar: ``Power``, ``y = shift + scale *
x``) or per channel (a (C,) / (C,1,1) / (1,C,1,1) constant: ``Scale`` with or without bias).
Between two feature maps of the same shape it is an ``Eltwise`` (SUM, SUM with coefficients
(1, -1), PROD); YOLO's SiLU ``x * Sigmoid(x)`` is such a PROD. Broadcasting two feature maps
of different shapes has no NNIE layer and is refused.
"""

from __future__ import annotations

import numpy as np

from nnbuild.onnx.registry import converter

SUM, PROD = 1, 0  # EltwiseParameter.EltwiseOp values in caffe.proto (PROD = 0, SUM = 1)


def per_channel(value: np.ndarray, shape: tuple) -> np.ndarray | None:
    """``value`` as a (C,) vector when it broadcasts along the channel axis only, else None."""
    if value.ndim > len(shape) or len(shape) < 2:
        return None
    full = (1,) * (len(shape) - value.ndim) + tuple(value.shape)
    if full[1] == shape[1] and all(d == 1 for i, d in enumerate(full) if i != 1):
        return value.reshape(-1).astype(np.float32)
    return None


def _affine(ctx, node, x: str, scale, shift) -> None:
    """Emit ``y = scale * x + shift`` with scalar (Power) or per-channel (Scale) operands."""
    shape = ctx.shape(x)
    s, b = np.asarray(scale, np.float32), np.asarray(shift, np.float32)
    if s.size == 1 and b.size == 1:
        pp = ctx.add_layer("Power", [ctx.blob(x)], [ctx.output()]).power_param
        pp.scale, pp.shift = float(s.reshape(())), float(b.reshape(()))
        return
    vectors = [v if v.size > 1 else None for v in (s, b)]
    vectors = [per_channel(v, shape) if v is not None else None for v in vectors]
    if any(v is None and w.size > 1 for v, w in zip(vectors, (s, b))):
        big = s if s.size > 1 else b
        raise ctx.refuse(f"constant of shape {list(big.shape)} does not broadcast per channel "
                         f"over {list(shape)}", "NNIE applies constants per tensor (Power) or "
                         "per channel (Scale); fold it into the neighbouring convolution")
    channels = shape[1]
    weights = vectors[0] if vectors[0] is not None else np.full(channels, s.reshape(-1)[0],
                                                                np.float32)
    blobs = [weights]
    has_bias = b.size > 1 or float(b.reshape(-1)[0]) != 0.0
    if has_bias:
        blobs.append(vectors[1] if vectors[1] is not None
                     else np.full(channels, b.reshape(-1)[0], np.float32))
    sp = ctx.add_layer("Scale", [ctx.blob(x)], [ctx.output()], blobs).scale_param
    sp.axis, sp.bias_term = 1, has_bias


def _eltwise(ctx, node, operation: int, coeff=()) -> None:
    a, b = node.input[0], node.input[1]
    if ctx.shape(a) != ctx.shape(b):
        raise ctx.refuse(f"it broadcasts {list(ctx.shape(a))} with {list(ctx.shape(b))}",
                         "NNIE Eltwise needs equal shapes; broadcast on the CPU or reshape in "
                         "the PyTorch model")
    ep = ctx.add_layer("Eltwise", [ctx.blob(a), ctx.blob(b)], [ctx.output()]).eltwise_param
    ep.operation = operation
    ep.coeff.extend(coeff)


@converter("Add", "Sub", "Mul", "Div")
def binary(ctx, node, attrs) -> None:
    """See the module docstring."""
    if ctx.opset < 7 or attrs.get("broadcast"):
        raise ctx.refuse("legacy broadcast attribute", "re-export with opset >= 9")
    a, b = node.input[0], node.input[1]
    ca, cb = ctx.const(a), ctx.const(b)
    op = node.op_type
    if ca is None and cb is None:
        if op == "Div":
            raise ctx.refuse("it divides two feature maps", "NNIE has no division layer; "
                             "cut before it and divide on the CPU")
        _eltwise(ctx, node, PROD if op == "Mul" else SUM, (1.0, -1.0) if op == "Sub" else ())
        return
    if ca is not None and cb is not None:
        raise ctx.refuse("both operands are constants but were not folded", "report this")
    x, c = (b, ca) if ca is not None else (a, cb)
    c = np.asarray(c, dtype=np.float32)
    const_first = ca is not None
    if op == "Add":
        _affine(ctx, node, x, 1.0, c)
    elif op == "Mul":
        _affine(ctx, node, x, c, 0.0)
    elif op == "Sub":
        _affine(ctx, node, x, -1.0, c) if const_first else _affine(ctx, node, x, 1.0, -c)
    elif const_first:
        raise ctx.refuse("it divides a constant by a feature map", "NNIE has no reciprocal "
                         "layer; cut before it")
    else:
        _affine(ctx, node, x, 1.0 / c, 0.0)


@converter("BatchNormalization")
def batch_norm(ctx, node, attrs) -> None:
    """Caffe BatchNorm (mean, variance, factor 1) + Scale (gamma, beta), as Caffe exports do."""
    from nnbuild.onnx.ops.common import weight

    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        raise ctx.refuse("training-mode BatchNormalization", "export with model.eval()")
    gamma, beta, mean, var = (weight(ctx, t, "statistics") for t in node.input[1:5])
    normed = ctx.temp("bn")
    bn = ctx.add_layer("BatchNorm", [ctx.blob(node.input[0])], [normed],
                       [mean, var, np.ones(1, np.float32)], suffix="bn")
    bn.batch_norm_param.use_global_stats = True
    bn.batch_norm_param.eps = float(attrs.get("epsilon", 1e-5))
    sp = ctx.add_layer("Scale", [normed], [ctx.output()], [gamma, beta]).scale_param
    sp.axis, sp.bias_term = 1, True
