"""Where a per-channel scale of a layer's output goes: the positively homogeneous chain to the
linear layers that can absorb it (used by ``align_channel_levels``).

Multiplying output channel ``c`` of a layer by ``s_c > 0`` multiplies channel ``c`` of every blob
derived from it by layers ``f`` with ``f(s * x) == s * f(x)`` per channel: ReLU (any negative
slope), PReLU (its slopes act on the sign of ``x``, which ``s > 0`` keeps), Dropout and Split
(identities at inference), max and average Pooling (each output reads one channel; padding adds
zeros), a per-channel Scale (its bias is multiplied by ``s`` as well), an Eltwise SUM or MAX
whose inputs all carry the same scale, and a channel Concat (the other inputs carry scale 1).
A linear consumer (Convolution, Deconvolution, InnerProduct) undoes it exactly by dividing its
weights of input channel ``c`` by ``s_c``. Anything else - Sigmoid, TanH, clipping activations
(ReLU6, Clip), Softmax, an unfolded BatchNorm (``eps`` is not scaled), reshaping layers, Eltwise
PROD or unequal scales, a network output - stops the chain, and the caller leaves the producer
alone.

``trace`` only plans (it edits nothing); ``divide_inputs`` and ``scale_bias`` make the edits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nnbuild.ir import Graph, Layer

LINEAR = ("Convolution", "Deconvolution", "InnerProduct")
ELEMENTWISE = ("ReLU", "PReLU", "Dropout", "Split")
# caffe.proto enums: PoolingParameter.PoolMethod and EltwiseParameter.EltwiseOp.
POOL_MAX, POOL_AVE = 0, 1
ELTWISE_SUM, ELTWISE_MAX = 1, 2


@dataclasses.dataclass
class Chain:
    """What a per-channel output scale reaches.

    Attributes:
        consumers: (linear layer, per-input-channel scale it must divide by).
        scales: (Scale layer, per-channel factor for its bias).
        through: names of the homogeneous layers on the way, in graph order.
    """

    consumers: list[tuple[Layer, np.ndarray]] = dataclasses.field(default_factory=list)
    scales: list[tuple[Layer, np.ndarray]] = dataclasses.field(default_factory=list)
    through: list[str] = dataclasses.field(default_factory=list)


def _is_channel_scale(layer: Layer, channels: int) -> bool:
    p = layer.param.scale_param
    return (len(layer.bottoms) == 1 and bool(layer.blobs) and p.axis == 1 and p.num_axes == 1
            and np.asarray(layer.blobs[0]).size == channels)


def _why_not_linear(layer: Layer, vec: np.ndarray) -> str | None:
    if len(layer.bottoms) != 1 or not layer.blobs:
        return "it has several inputs or no weights"
    if layer.type == "InnerProduct":
        p = layer.param.inner_product_param
        w = np.asarray(layer.blobs[0])
        if p.axis != 1 or w.size % (int(p.num_output) * len(vec)):
            return "its input is not flattened from axis 1"
    return None


def _pass_through(g: Graph, layer: Layer, blob_scales: dict, shapes) -> np.ndarray | str:
    """The scale of ``layer``'s output, or why the chain stops at it."""
    vecs = [blob_scales.get(b) for b in layer.bottoms]
    first = next(v for v in vecs if v is not None)
    if layer.type in ELEMENTWISE and len(layer.bottoms) == 1:
        return first
    if layer.type == "Pooling" and layer.param.pooling_param.pool in (POOL_MAX, POOL_AVE):
        return first
    if layer.type == "Scale" and _is_channel_scale(layer, len(first)):
        return first
    if layer.type == "Eltwise":
        op = layer.param.eltwise_param.operation
        if op in (ELTWISE_SUM, ELTWISE_MAX) and all(
                v is not None and np.array_equal(v, first) for v in vecs):
            return first
        return "an Eltwise whose inputs get different scales (or a product)"
    if layer.type == "Concat" and layer.param.concat_param.axis == 1 and \
            layer.param.concat_param.concat_dim == 1:
        sizes = shapes()
        return np.concatenate([v if v is not None else np.ones(sizes[b][1])
                               for b, v in zip(layer.bottoms, vecs)])
    return f"a {layer.type} layer, which does not commute with a positive per-channel scale"


def trace(g: Graph, producer: Layer, vec: np.ndarray, shapes) -> Chain | str:
    """Follow the output scale ``vec`` of ``producer`` to the linear layers that absorb it.

    Args:
        g: the graph (layers in execution order).
        producer: a layer of ``g`` with one top, scaled per output channel by ``vec``.
        vec: float64 scale per output channel (all > 0).
        shapes: callable returning the graph's blob shapes (only Concat needs them).

    Returns:
        The plan, or the reason (naming the layer or blob) why the scale cannot be absorbed.
    """
    outputs = set(g.outputs)
    blob_scales = {producer.tops[0]: vec}
    chain = Chain()
    start = g.layers.index(producer) + 1
    for layer in g.layers[start:]:
        if not any(b in blob_scales for b in layer.bottoms):
            continue
        if layer.type in LINEAR:
            why = _why_not_linear(layer, blob_scales[layer.bottoms[0]])
            if why:
                return f"it reaches {layer.name!r}: {why}"
            chain.consumers.append((layer, blob_scales[layer.bottoms[0]]))
            continue
        out = _pass_through(g, layer, blob_scales, shapes)
        if isinstance(out, str):
            return f"it reaches {layer.name!r}: {out}"
        if layer.type == "Scale":
            chain.scales.append((layer, out))
        chain.through.append(layer.name)
        for top in layer.tops:
            blob_scales[top] = out
    reached = [b for b in blob_scales if b in outputs]
    if reached:
        return f"it reaches the network output {g.caffe_name(reached[0])!r}"
    return chain


def divide_inputs(layer: Layer, vec: np.ndarray) -> np.ndarray:
    """``layer``'s weights (float64) with input channel ``c`` divided by ``vec[c]``.

    Convolution weights are (out, in/group, kh, kw): row ``o`` of group ``o // (out/group)``
    reads input channel ``group_index * in/group + j``. Deconvolution weights are
    (in, out/group, kh, kw): axis 0 is the input channel. InnerProduct weights are (out, C*inner)
    or, transposed, (C*inner, out), the input flattened channel-major from axis 1.
    """
    w = np.asarray(layer.blobs[0], np.float64)
    if layer.type == "Deconvolution":
        return (w.reshape(len(vec), -1) / vec[:, None]).reshape(w.shape)
    if layer.type == "InnerProduct":
        p = layer.param.inner_product_param
        if p.transpose:
            return (w.reshape(len(vec), -1) / vec[:, None]).reshape(w.shape)
        return (w.reshape(int(p.num_output), len(vec), -1) / vec[None, :, None]).reshape(w.shape)
    groups = max(1, int(layer.param.convolution_param.group))
    out, per_in = w.shape[0], w.shape[1]
    idx = (np.arange(out) // (out // groups))[:, None] * per_in + np.arange(per_in)[None, :]
    return (w.reshape(out, per_in, -1) / vec[idx][:, :, None]).reshape(w.shape)


def scale_bias(layer: Layer, vec: np.ndarray) -> np.ndarray | None:
    """A per-channel Scale's bias times ``vec`` (float64), or None when it has no bias."""
    if not layer.param.scale_param.bias_term or len(layer.blobs) < 2:
        return None
    bias = np.asarray(layer.blobs[1], np.float64)
    return (bias.reshape(-1) * vec).reshape(bias.shape)
