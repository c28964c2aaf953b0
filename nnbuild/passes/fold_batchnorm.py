"""Pass ``fold_batchnorm``: BatchNorm (+ the Scale after it) folded into the layer before it.

Folding BN+Scale into the preceding convolution is what gave the 17 ms low-precision RetinaFace
on Hi3516DV300 (nnie-facts.md §5). The fold is exact in real arithmetic:
``gamma * (W x + b - mean) / sqrt(var + eps) + beta == (a W) x + (a (b - mean) + beta)`` with
``a = gamma / sqrt(var + eps)`` per output channel; it is computed in float64 and stored float32.

``arithmetic: nniefacelib`` reproduces nniefacelib's merge tool instead (float32, the tool's order
of operations, ``nnbuild.nnie.wk.fold``; wk-format.md §4.1): the arithmetic of the 8-bit
RetinaFace .wk, where a weight 2e-7 from a rounding boundary decides a code. It applies to a
Convolution/Deconvolution followed by BatchNorm and Scale (what the tool merges); other folds
stay float64.
"""

from __future__ import annotations

import numpy as np

from nnbuild.ir import Graph, Layer
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import exclusive_consumer, frozen

FOLDABLE = ("Convolution", "Deconvolution", "InnerProduct")


def bn_affine(bn: Layer, scale: Layer | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b) with ``BN(+Scale)(x) == a * x + b`` (float64).

    Caffe's BatchNorm stores mean and variance multiplied by a scale factor (blobs[2]); the
    statistics are blobs[0:2] / factor, and a factor of 0 means statistics of 0 (Caffe:
    ``scale_factor = blobs[2] == 0 ? 0 : 1 / blobs[2]``).
    """
    mean, var = (np.asarray(b, np.float64).reshape(-1) for b in bn.blobs[:2])
    stored = float(np.asarray(bn.blobs[2]).reshape(-1)[0]) if len(bn.blobs) > 2 else 1.0
    factor = 0.0 if stored == 0 else 1.0 / stored
    eps = float(bn.param.batch_norm_param.eps)
    a = 1.0 / np.sqrt(var * factor + eps)
    b = -mean * factor * a
    if scale is not None:
        gamma = np.asarray(scale.blobs[0], np.float64).reshape(-1)
        beta = (np.asarray(scale.blobs[1], np.float64).reshape(-1)
                if scale.param.scale_param.bias_term else 0.0)
        a, b = a * gamma, b * gamma + beta
    return a, b


def _why_not_bn(bn: Layer) -> str | None:
    p = bn.param.batch_norm_param
    # Unset use_global_stats means "global stats in TEST phase", i.e. at deployment.
    if p.HasField("use_global_stats") and not p.use_global_stats:
        return "use_global_stats is false (batch statistics cannot be folded)"
    if len(bn.blobs) < 2 or len(bn.bottoms) != 1:
        return "BatchNorm without mean/variance blobs"
    return None


def _simple_scale(layer: Layer | None, channels: int) -> bool:
    if layer is None or layer.type != "Scale" or len(layer.bottoms) != 1 or not layer.blobs:
        return False
    p = layer.param.scale_param
    return p.axis == 1 and p.num_axes == 1 and np.asarray(layer.blobs[0]).size == channels


def _out_channels(prev: Layer) -> int:
    if prev.type == "InnerProduct":
        return int(prev.param.inner_product_param.num_output)
    return int(prev.param.convolution_param.num_output)


def _scaled_weights(prev: Layer, a: np.ndarray) -> np.ndarray:
    """The previous layer's weights with output channel ``c`` multiplied by ``a[c]`` (float64)."""
    w = np.asarray(prev.blobs[0], np.float64)
    if prev.type == "Convolution":  # (out, in/group, kh, kw)
        return (w.reshape(len(a), -1) * a[:, None]).reshape(w.shape)
    if prev.type == "Deconvolution":  # (in, out/group, kh, kw): out channel = g * out/g + j
        groups = int(prev.param.convolution_param.group)
        per = len(a) // groups
        w5 = w.reshape(groups, w.shape[0] // groups, per, -1)
        return (w5 * a.reshape(groups, 1, per, 1)).reshape(w.shape)
    if prev.param.inner_product_param.transpose:  # (in, out)
        return (w.reshape(-1, len(a)) * a[None, :]).reshape(w.shape)
    return (w.reshape(len(a), -1) * a[:, None]).reshape(w.shape)  # (out, in), maybe legacy 4-D


def _fold(prev: Layer, a: np.ndarray, b: np.ndarray, changes: Changes) -> None:
    sub = prev.param.inner_product_param if prev.type == "InnerProduct" else \
        prev.param.convolution_param
    if sub.bias_term and len(prev.blobs) > 1:
        bias_blob = prev.blobs[1]
        bias = np.asarray(bias_blob, np.float64).reshape(-1)
    else:
        bias_blob, bias = np.zeros(len(a)), np.zeros(len(a))
        changes.param(prev.name, "bias_term", False, True)
        sub.bias_term = True
    weights = frozen(_scaled_weights(prev, a))
    new_bias = frozen((a * bias + b).reshape(np.shape(bias_blob)))
    prev.blobs = [weights, new_bias]


def _candidate(g: Graph, bn: Layer, producers, consumers, outputs):
    """(prev, scale) to fold ``bn`` into, or a reason string when it cannot be folded."""
    prev = producers.get(bn.bottoms[0])
    if prev is None or prev.type not in FOLDABLE:
        return f"its input is not produced by one of {', '.join(FOLDABLE)}"
    if exclusive_consumer(g, bn.bottoms[0], consumers, outputs) is not bn or len(prev.tops) != 1:
        return f"the output of {prev.name!r} also feeds other layers (or is a network output)"
    if len(prev.blobs) < 1 or np.asarray(prev.blobs[0]).ndim == 0:
        return f"{prev.name!r} has no weights"
    why = _why_not_bn(bn)
    if why:
        return why
    nxt = exclusive_consumer(g, bn.tops[0], consumers, outputs)
    return prev, (nxt if _simple_scale(nxt, _out_channels(prev)) else None)


def _fold_nniefacelib(prev: Layer, bn: Layer, scale: Layer, changes: Changes) -> None:
    from nnbuild.nnie.wk.fold import fold_one

    weights, bias = fold_one(prev, bn, scale)
    sub = prev.param.convolution_param
    if not (sub.bias_term and len(prev.blobs) > 1):
        changes.param(prev.name, "bias_term", False, True)
        sub.bias_term = True
    prev.blobs = [frozen(weights), frozen(bias)]


@register_pass("fold_batchnorm")
def fold_batchnorm(graph: Graph, ctx: PassContext, *,
                   arithmetic: str = "float64") -> tuple[Graph, Changes]:
    """Fold each BatchNorm (and a per-channel Scale reading only it) into its producer.

    Only where the producer (Convolution, Deconvolution or InnerProduct) feeds the BatchNorm and
    nothing else; the producer then writes the blob the Scale (or BatchNorm) wrote, so consumers
    and network outputs keep their names. BatchNorms that cannot be folded stay and are listed
    under ``skipped`` with the reason. ``arithmetic``: ``float64`` (exact fold, default) or
    ``nniefacelib`` (the merge tool's float32 arithmetic, see the module docstring).
    """
    if arithmetic not in ("float64", "nniefacelib"):
        from nnbuild.errors import PassError

        raise PassError("fold_batchnorm", "unknown arithmetic", expected="float64 | nniefacelib",
                        got=arithmetic, hint="nniefacelib reproduces its merge tool bit for bit")
    g = graph.copy()
    changes = Changes()
    folded = []
    for bn in [la for la in g.layers if la.type == "BatchNorm"]:
        producers, consumers, outputs = g.producers(), g.consumers(), set(g.outputs)
        found = _candidate(g, bn, producers, consumers, outputs)
        if isinstance(found, str):
            changes.skip(bn.name, found)
            continue
        prev, scale = found
        if arithmetic == "nniefacelib" and scale is not None and len(scale.blobs) > 1 and \
                prev.type != "InnerProduct":
            _fold_nniefacelib(prev, bn, scale, changes)
        else:
            a, b = bn_affine(bn, scale)
            _fold(prev, a, b, changes)
        gone = [bn] + ([scale] if scale is not None else [])
        prev.tops = [gone[-1].tops[0]]
        for layer in gone:
            g.layers.remove(layer)
            changes.remove(layer.name)
        folded.append({"into": prev.name, "layers": [la.name for la in gone]})
    changes.notes["folded"] = folded
    return g, changes
