"""Pass ``align_channel_levels``: put every per-channel weight maximum of depthwise and grouped
convolutions exactly on an NNIE quantizer level.

Why: NNIE quantizes the weights of grouped and depthwise convolutions with one range per group
(docs/wk-format.md §4.2; ``nnbuild.nnie.quantpoints.weight_groups`` is the rule, used here). Its
logarithmic quantizer's top level is ``2**(floor(S*log2 m)/S)`` (S = 16 levels per octave in
8-bit, 128 in 16-bit; nnie-facts.md §4), so the largest weight of every channel is rounded down
by up to 4.4% in 8-bit (2.2% on average): a systematic gain error in each depthwise layer.

What: for each such layer whose output reaches only linear layers through positively homogeneous
ones (``nnbuild.passes.channel_chain``), group ``g`` of its weights and its biases are multiplied
by ``s_g = L(m_g) / m_g``, where ``m_g`` is the group's abs-max (the quantizer's
``weight_ranges``) and ``L`` rounds up to the next level of the layer's precision (the
quantizer's ``top_index`` plus one step, unless ``m_g`` already is a level). Every consumer
divides its weights of those input channels by ``s_g``; a per-channel Scale on the way
multiplies its bias by ``s_g``.

Exact in float: ``f(s x) = s f(x)`` for every layer on the chain and the consumer's ``W / s``
cancels ``s``, so the network computes the same function; the only difference is float32
rounding of the edited weights (about 1e-7 relative; the patch proof checks <= its tolerance).

What changes under quantization: each aligned channel's maximum is now representable, so no
channel loses gain. The blobs on the chain are up to ``s`` larger per channel, so their
per-layer activation range (calibrated afterwards) may rise by a level; the consumer's
per-layer weight range may fall (its largest weight was divided by ``s``), shifting its grid
down by up to one level. Both are ordinary re-calibration effects of a different float model,
which is also what a real mapper sees: the gain carries to the board, and whether the net
result helps is measured per recipe (recipes/_base comments, README results).

Precision: 16-bit for ``quant.mode: int16`` and for ``mixed`` layers in ``quant.high_precision``
(or already ending in ``_hp``), else 8-bit (``nnbuild.nnie.quantpoints.layer_bits``). The 8-bit
levels ``2**(k/16)`` are a subset of the 16-bit ones ``2**(8k/128)``, so a layer aligned for
8-bit is aligned for 16-bit too.
"""

from __future__ import annotations

import math

import numpy as np

from nnbuild.ir import Graph, Layer
from nnbuild.nnie.quantize import FORMATS, top_index, weight_ranges
from nnbuild.nnie.quantpoints import HP_SUFFIX, layer_bits, weight_groups
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.channel_chain import divide_inputs, scale_bias, trace
from nnbuild.passes.surgery import frozen

PRODUCERS = ("Convolution", "Deconvolution")
TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32
# Should float64 rounding of m * s still miss the level, s is nudged up by this much and retried.
NUDGE = 2.0 ** -23


def level_above(max_abs: float, bits: int) -> float:
    """The smallest quantizer level ``>= max_abs`` (``max_abs`` itself when it is a level).

    Args:
        max_abs: a range ``m > 0``.
        bits: 8 or 16 (nnie-facts.md §4: 16 or 128 levels per octave).
    """
    steps, _ = FORMATS[bits]
    k = top_index(max_abs, bits)
    if 2.0 ** (k / steps) == max_abs:
        return max_abs
    return 2.0 ** ((k + 1) / steps)


def _aligned_group(part: np.ndarray, m: float, bits: int) -> tuple[np.ndarray, float]:
    """(float32 weights, scale) for one group: its largest weight becomes the smallest float32
    at or above its level (a float32 rounded to nearest could fall an ulp below the level, and
    the quantizer's top would then be a whole level lower)."""
    target = level_above(m, bits)
    top = np.float32(target)
    if float(top) < target:
        top = np.nextafter(top, np.float32(np.inf))
    s = float(top) / m
    for _ in range(8):
        scaled = (part * s).astype(np.float32)
        if float(np.max(np.abs(scaled))) >= target:
            return scaled, s
        s *= 1.0 + NUDGE
    raise AssertionError(f"level alignment did not converge for m={m!r}")  # float32 cannot


def aligned_weights(layer: Layer, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(new float32 weights, scale per group) for a grouped (De)Convolution ``layer``.

    Groups are the quantizer's (axis 0 split into ``group`` parts, ``weight_ranges``). A group of
    zeros or of float32 denormals (dead channels: the engine flushes denormals to zero, and a
    denormal has too few bits to be moved onto a level) keeps scale 1.
    """
    w = np.asarray(layer.blobs[0])
    groups = weight_groups(layer)
    ranges = weight_ranges(w, groups)
    parts = np.asarray(w, np.float64).reshape(groups, -1)
    out = np.asarray(w, np.float32).reshape(groups, -1).copy()
    scales = np.ones(groups)
    for g, m in enumerate(ranges):
        if m >= TINY and math.isfinite(m):
            out[g], scales[g] = _aligned_group(parts[g], float(m), bits)
    return out.reshape(w.shape), scales


def _bits(name: str, ctx: PassContext) -> int:
    marked = name if name.endswith(HP_SUFFIX) or name not in ctx.high_precision \
        else name + HP_SUFFIX
    return layer_bits(marked, ctx.quant_mode)


def _out_channels(layer: Layer) -> int:
    return int(layer.param.convolution_param.num_output)


def _candidates(g: Graph) -> list[Layer]:
    return [la for la in g.layers if la.type in PRODUCERS and la.blobs and len(la.tops) == 1
            and weight_groups(la) > 1]


def _apply(layer: Layer, weights: np.ndarray, vec: np.ndarray, chain) -> None:
    layer.blobs = [frozen(weights)] + list(layer.blobs[1:])
    if layer.param.convolution_param.bias_term and len(layer.blobs) > 1:
        bias = np.asarray(layer.blobs[1], np.float64)
        layer.blobs[1] = frozen((bias.reshape(-1) * vec).reshape(bias.shape))
    for consumer, cvec in chain.consumers:
        consumer.blobs = [frozen(divide_inputs(consumer, cvec))] + list(consumer.blobs[1:])
    for scale, svec in chain.scales:
        bias = scale_bias(scale, svec)
        if bias is not None:
            scale.blobs = [scale.blobs[0], frozen(bias)] + list(scale.blobs[2:])


def _shapes(g: Graph):
    cached: dict = {}

    def get():
        if not cached:
            from nnbuild.shapes import infer_shapes

            cached.update(infer_shapes(g, check_weights=False, partial=True))
        return cached
    return get


def rescale(graph: Graph, ctx: PassContext, weights_of) -> tuple[Graph, Changes]:
    """The pass with another choice of scales: ``weights_of(layer, bits) -> (float32 weights,
    scale per group)`` for each candidate layer (``aligned_weights`` for the pass itself;
    ``benchmarks/align_levels.py`` passes random scales to measure what any re-parametrisation
    does). Returns the new graph and the change record, as a pass does."""
    g = graph.copy()
    changes = Changes()
    aligned = []
    shapes = _shapes(g)
    for layer in _candidates(g):
        bits = _bits(layer.name, ctx)
        weights, group_scales = weights_of(layer, bits)
        vec = np.repeat(group_scales, _out_channels(layer) // len(group_scales))
        chain = trace(g, layer, vec, shapes)
        if isinstance(chain, str):
            changes.skip(layer.name, chain)
            continue
        if not chain.consumers:
            changes.skip(layer.name, "its output reaches no linear layer")
            continue
        _apply(layer, weights, vec, chain)
        smin, smax = float(group_scales.min()), float(group_scales.max())
        changes.param(layer.name, "channel_scale", 1.0, {"min": smin, "max": smax})
        aligned.append({"layer": layer.name, "bits": bits, "groups": len(group_scales),
                        "scale_min": smin, "scale_max": smax,
                        "consumers": [c.name for c, _ in chain.consumers],
                        "through": chain.through})
    changes.notes["aligned"] = aligned
    return g, changes


@register_pass("align_channel_levels")
def align_channel_levels(graph: Graph, ctx: PassContext) -> tuple[Graph, Changes]:
    """Scale each per-channel-quantized convolution so that its channel maxima sit on levels.

    Producers whose scale cannot be absorbed (see ``nnbuild.passes.channel_chain``) are left
    alone and listed under ``skipped`` with the reason. Each aligned layer gets a ``params``
    entry ``channel_scale`` (before 1, after the min/max scale applied) and a note in
    ``notes["aligned"]``: layer, bits, groups, scale range, consumers and the layers crossed.
    """
    return rescale(graph, ctx, aligned_weights)
