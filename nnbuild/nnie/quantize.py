"""The NNIE quantizer: the living specification of NNIE number formats, in vectorised numpy.

Every rule here comes from nnie-facts.md §4 (HiSilicon's GFPQ quantization library, which the
mapper shares — it logs the same ``computeNonlinearQuantizationDelta`` — checked bit-exact on
400,000 random values; MQBench's NNIE docs give the same 8-bit table) or §2/§3 for the output format.

The format is *logarithmic sign-magnitude*, per tensor: per layer for activations and dense
weights (§4), per group for the weights of grouped and depthwise convolutions (rule 6, established
on the real mapper's files, docs/wk-format.md §4.2). For a tensor whose calibrated absolute
maximum is ``m``, with ``S`` levels per octave and ``Q`` steps:

==========  =====  ======  ==========================================================
bits        S      Q       source
==========  =====  ======  ==========================================================
8           16     127     §4, compile_mode 0 ("1.3.4": sign, 3-bit octave, 4-bit step)
16          128    1407    §4, compile_mode 1 ("1.5.7": sign, 5-bit octave, 7-bit step);
                           inferred from the 2-byte elements of high-precision .wk files
==========  =====  ======  ==========================================================

Rules, in the order they are applied (all §4):

1. ``k = floor(S * log2(m))`` — the top level ``2**(k/S)`` is the largest level ``<= m``
   (so for m = 9 the top is 8.724, not 9).
2. ``z = k - Q`` — the smallest positive level is ``2**(z/S)``: Q/S octaves below the top.
3. ``x > 0``: ``q = clip(round(S*log2(x) - z), 0, Q)``, value ``+2**((z+q)/S)``.
   ``x < 0``: ``q = clip(round(S*log2(-x) - z), 1, Q)``, value ``-2**((z+q)/S)``.
   Negative values have one level fewer: their ``q = 0`` code is the zero code (rule 5).
4. ``|x|`` strictly below half the smallest level *of its sign* becomes 0; everything above the
   top saturates to the top (the clip in rule 3).
5. Codes (``encode``) are sign + magnitude: 8-bit ``q`` for positives, ``0x80 | q`` for negatives,
   ``0x80`` is zero (§4). 16-bit codes are the words the real mapper stores in a .wk:
   ``sign << 15 | q << 2`` (wk-format.md §3, "16-bit dense payload", verified on 267 of 271 raw
   blocks of the 16-bit RetinaFace file), so ``q << 2`` for positives, ``0x8000 | q << 2`` for
   negatives, ``0x8000`` is zero; the two low bits are always 0.
6. **Weights of grouped and depthwise convolutions** (and grouped Deconvolutions, e.g. the
   group-64 upsampling) have **one range per group**: the weights are split along axis 0 into
   ``group`` equal parts and each part is quantized with its own abs-max (``weight_ranges``,
   ``quantize_weights``, ``encode_weights``). Source: wk-format.md §4.2 — 1,230 live depthwise
   channels of the 8-bit RetinaFace file fit only per-channel codes (1,210) or both (20), none
   only per-layer codes; the 16-bit files agree. Dense layers (group 1) keep one range.

Rounding in rule 3 is round-half-up (``floor(v + 0.5)``). A tie would need ``S*log2(x)`` to be
exactly a half-integer, i.e. ``x = 2**(odd/(2S))``, which no float can represent, so the choice
never changes a result; it is fixed here so that the code is deterministic and documented.

A range ``m <= 0`` (a tensor that was zero on every calibration picture) has no levels at all:
NNIE can only store zeros, and ``quantize``/``encode`` return all zeros / all zero codes for it.

Network outputs are not quantized this way: they reach the CPU as int32 with 12 fractional bits
("20.12", §2; divide by 4096, ``SAMPLE_SVP_NNIE_QUANT_BASE``, §3) — see ``output_fixed_point``.
"""

from __future__ import annotations

import math

import numpy as np

# bits -> (levels per octave S, steps below the top Q), nnie-facts.md §4.
FORMATS: dict[int, tuple[int, int]] = {8: (16, 127), 16: (128, 1407)}
# bits -> (code dtype, sign bit / zero code), rule 5 of the module docstring.
CODES: dict[int, tuple[type, int]] = {8: (np.uint8, 0x80), 16: (np.uint16, 0x8000)}
# bits -> left shift of the magnitude inside a code (rule 5: 16-bit words are sign<<15 | q<<2).
CODE_SHIFT: dict[int, int] = {8: 0, 16: 2}
# Outputs: int32 with 12 fractional bits, nnie-facts.md §2 ("20.12") and §3 (divide by 4096).
OUTPUT_FRACTION_BITS = 12
OUTPUT_SCALE = 1 << OUTPUT_FRACTION_BITS


def _format(bits: int) -> tuple[int, int]:
    if bits not in FORMATS:
        raise ValueError(f"NNIE quantizer: bits must be 8 or 16, got {bits!r}")
    return FORMATS[bits]


def _has_levels(max_abs: float) -> bool:
    """True when the range has levels; False for m <= 0. NaN/inf ranges are bugs upstream."""
    if not math.isfinite(max_abs):
        raise ValueError(f"NNIE quantizer: max_abs must be finite, got {max_abs!r}")
    return max_abs > 0


def top_index(max_abs: float, bits: int = 8) -> int:
    """``k = floor(S * log2(m))``: the top level is ``2**(k/S)`` (rule 1; quant.json's "16*log2 top").

    Args:
        max_abs: calibrated absolute maximum ``m`` (> 0).
        bits: 8 or 16.
    """
    steps, _ = _format(bits)
    if not _has_levels(float(max_abs)):
        raise ValueError(f"NNIE quantizer: top_index needs max_abs > 0, got {max_abs!r}")
    k = math.floor(steps * math.log2(max_abs))
    # log2 can be off by one ulp at exact levels (m = 2**(k/S)); the top must satisfy rule 1.
    if 2.0 ** ((k + 1) / steps) <= max_abs:
        k += 1
    elif 2.0 ** (k / steps) > max_abs:
        k -= 1
    return k


def _level_table(max_abs: float, bits: int) -> np.ndarray:
    """Magnitudes ``2**((z+q)/S)`` for q = 0..Q, float64."""
    steps, qmax = _format(bits)
    z = top_index(max_abs, bits) - qmax
    return np.exp2((z + np.arange(qmax + 1, dtype=np.float64)) / steps)


def levels(max_abs: float, bits: int = 8) -> np.ndarray:
    """Every value a tensor of range ``max_abs`` can hold, ascending, float32.

    8-bit gives 127 negative levels, 0 and 128 positive levels: 256 values, one per code. For
    ``max_abs <= 0`` the only value is 0.
    """
    if not _has_levels(float(max_abs)):
        return np.zeros(1, dtype=np.float32)
    table = _level_table(max_abs, bits)
    return np.concatenate([-table[:0:-1], [0.0], table]).astype(np.float32)


def _as_float(values) -> np.ndarray:
    """float32 arrays stay float32 (exact fast path); anything else becomes float64."""
    arr = np.asarray(values)
    return arr if arr.dtype == np.float32 else arr.astype(np.float64)


def _ceil_to(values: np.ndarray, dtype) -> np.ndarray:
    """Smallest ``dtype`` numbers >= the float64 ``values``.

    For an input ``x`` of that dtype, ``x >= t`` is then exactly ``x >= _ceil_to(t)``: the
    threshold comparisons below are exact for float32 inputs too.
    """
    out = values.astype(dtype)
    with np.errstate(invalid="ignore"):
        low = out.astype(np.float64) < values
    out[low] = np.nextafter(out[low], dtype(np.inf))
    return out


def _magnitude_index(values: np.ndarray, max_abs: float, bits: int):
    """Rules 2-4: (q, negative mask, zero mask) for a float32/float64 array.

    ``round(S*log2|x| - z)`` is a comparison of ``|x|`` with the level midpoints
    ``2**((z+q+0.5)/S)``. It is computed fast with a float32 log2 (off by at most one step) and
    then made exact by comparing with the midpoints, so the result is the float64 rule's.
    """
    steps, qmax = _format(bits)
    if np.isnan(values).any():
        raise ValueError("NNIE quantizer: values contain NaN")
    z = top_index(max_abs, bits) - qmax
    work = np.float32 if values.dtype == np.float32 and z / steps > -120 else np.float64
    mag = np.abs(values).astype(work, copy=False)
    negative = values < 0
    mid = np.exp2((z + np.arange(qmax, dtype=np.float64) + 0.5) / steps)
    # NaN edges never compare true: nothing goes above Q (saturation) or below 0.
    up_edge = _ceil_to(np.append(mid, np.nan), work)      # level q -> q+1 at or above this
    down_edge = _ceil_to(np.insert(mid, 0, np.nan), work)  # level q -> q-1 below this
    with np.errstate(divide="ignore", invalid="ignore"):
        approx = np.floor(work(steps) * np.log2(mag) + work(0.5 - z))
    q = np.clip(approx, 0, qmax).astype(np.intp)
    step = (mag >= up_edge[q]).view(np.int8) - (mag < down_edge[q]).view(np.int8)
    q += step
    np.maximum(q, negative, out=q)  # rule 3: negative codes start at q = 1
    # Rule 4: the smallest level is 2**(z/S) for positives and 2**((z+1)/S) for negatives.
    half = _ceil_to(0.5 * np.exp2(np.array([z, z + 1], dtype=np.float64) / steps), work)
    zero = mag < half[negative.view(np.uint8)]
    return q, negative, zero


def _saturated(values: np.ndarray, max_abs: float, bits: int) -> np.ndarray:
    """Values whose nearest level would lie above the top level (they saturate, rule 4)."""
    steps, qmax = _format(bits)
    z = top_index(max_abs, bits) - qmax
    return np.abs(values) >= np.exp2((z + qmax + 0.5) / steps)


def quantize(values, max_abs: float, bits: int = 8) -> np.ndarray:
    """Round ``values`` to the nearest NNIE level of a tensor whose range is ``max_abs``.

    Args:
        values: array-like of floats (any shape).
        max_abs: the tensor's calibrated absolute maximum ``m``.
        bits: 8 (compile_mode 0) or 16 (compile_mode 1).

    Returns:
        float32 array, same shape: the dequantized values (what NNIE computes with).

    Raises:
        ValueError: bits not 8/16, ``max_abs`` not finite, or NaN in ``values``.
    """
    x = _as_float(values)
    if not _has_levels(float(max_abs)):
        _format(bits)
        return np.zeros(x.shape, dtype=np.float32)
    q, negative, zero = _magnitude_index(x, max_abs, bits)
    y = _level_table(max_abs, bits).astype(np.float32)[q]
    np.negative(y, out=y, where=negative)
    y[zero] = 0.0
    return y


def encode(values, max_abs: float, bits: int = 8) -> np.ndarray:
    """Integer codes of ``values`` (rule 5): uint8 for 8-bit, uint16 for 16-bit.

    8-bit: positive values give ``q``, negative ones ``0x80 | q``; zero is 0x80. 16-bit: ``q << 2``
    and ``0x8000 | q << 2``; zero is 0x8000 (the .wk word, wk-format.md §3).
    """
    x = _as_float(values)
    _format(bits)
    dtype, sign = CODES[bits]
    if not _has_levels(float(max_abs)):
        return np.full(x.shape, sign, dtype=dtype)
    q, negative, zero = _magnitude_index(x, max_abs, bits)
    q = q << CODE_SHIFT[bits]
    codes = np.where(negative, q | sign, q)
    codes[zero] = sign
    return codes.astype(dtype)


def decode(codes, max_abs: float, bits: int = 8) -> np.ndarray:
    """Values (float32) of NNIE ``codes`` for a tensor of range ``max_abs``; inverse of ``encode``.

    Raises:
        ValueError: a code's magnitude is above Q, or a 16-bit code has its low 2 bits set.
    """
    _, qmax = _format(bits)
    dtype, sign = CODES[bits]
    c = np.asarray(codes).astype(np.int64)
    if not _has_levels(float(max_abs)):
        return np.zeros(c.shape, dtype=np.float32)
    shift = CODE_SHIFT[bits]
    q = (c & (sign - 1)) >> shift
    low = c & ((1 << shift) - 1)
    if (q > qmax).any() or low.any() or (c < 0).any() or (c > np.iinfo(dtype).max).any():
        raise ValueError(f"NNIE quantizer: {bits}-bit codes must have magnitude <= {qmax}"
                         + (" in bits 2..12 (sign << 15 | q << 2)" if shift else ""))
    y = _level_table(max_abs, bits).astype(np.float32)[q]
    negative = (c & sign) != 0
    np.negative(y, out=y, where=negative)
    y[negative & (q == 0)] = 0.0
    return y


def summary(values, max_abs: float, bits: int = 8) -> dict:
    """What quantizing ``values`` does, for quant.json.

    Returns:
        dict with ``bits``, ``max_abs``, ``top_index`` (k = S*log2 of the top level, rule 1),
        ``top`` and ``smallest`` levels, ``flushed_to_zero`` (fraction of non-zero values that
        become 0, rule 4) and ``saturated`` (fraction whose nearest level would be above the top).
    """
    x = _as_float(values)
    out = {"bits": bits, "max_abs": float(max_abs), "top_index": None, "top": 0.0,
           "smallest": 0.0, "flushed_to_zero": 0.0, "saturated": 0.0}
    if x.size == 0:
        return out
    if not _has_levels(float(max_abs)):
        out["flushed_to_zero"] = float(np.count_nonzero(x) / x.size)
        return out
    _, _, zero = _magnitude_index(x, max_abs, bits)
    saturated = _saturated(x, max_abs, bits)
    table = _level_table(max_abs, bits)
    out.update(top_index=top_index(max_abs, bits), top=float(table[-1]), smallest=float(table[0]),
               flushed_to_zero=float(np.count_nonzero(zero & (x != 0)) / x.size),
               saturated=float(np.count_nonzero(saturated) / x.size))
    return out


def output_codes(values) -> np.ndarray:
    """Network outputs as NNIE hands them to the CPU: int32 with 12 fractional bits (§2, §3).

    Rounds half up (``floor(x*4096 + 0.5)``; the hardware's tie rule is not public) and saturates
    at the int32 range.
    """
    x = np.asarray(values, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("NNIE output: values contain NaN")
    info = np.iinfo(np.int32)
    return np.clip(np.floor(x * OUTPUT_SCALE + 0.5), info.min, info.max).astype(np.int32)


def output_fixed_point(values) -> np.ndarray:
    """Network outputs after the 20.12 round trip: ``output_codes(x) / 4096`` as float32.

    This is what the board's post-processing sees after dividing by 4096 (nniefacelib divides bbox
    deltas by 4096.f, §3).
    """
    return (output_codes(values).astype(np.float64) / OUTPUT_SCALE).astype(np.float32)


def _groups(weights: np.ndarray, groups: int) -> np.ndarray:
    """``weights`` as (groups, -1): axis 0 split into ``groups`` equal parts (rule 6)."""
    if not isinstance(groups, (int, np.integer)) or groups < 1 or weights.ndim == 0 \
            or weights.shape[0] % groups:
        raise ValueError(f"NNIE quantizer: groups must be a positive divisor of the weights' "
                         f"first dimension, got {groups!r} for shape {weights.shape}")
    return weights.reshape(int(groups), -1)


def weight_ranges(weights, groups: int = 1) -> np.ndarray:
    """Rule 6: the abs-max of each of the ``groups`` parts of ``weights`` (float64, one per group).

    ``groups`` is the layer's ``group`` (1 for dense layers: one range, §4; depthwise: one per
    channel, wk-format.md §4.2).
    """
    parts = _groups(_as_float(weights), groups)
    if parts.shape[1] == 0:
        return np.zeros(parts.shape[0], dtype=np.float64)
    return np.max(np.abs(parts), axis=1).astype(np.float64)


def _per_group(function, weights, groups: int, bits: int, ranges):
    x = _as_float(weights)
    parts = _groups(x, groups)
    ranges = weight_ranges(x, groups) if ranges is None else np.atleast_1d(
        np.asarray(ranges, dtype=np.float64))
    if ranges.shape != (parts.shape[0],):
        raise ValueError(f"NNIE quantizer: expected {parts.shape[0]} group range(s), "
                         f"got {ranges.shape}")
    # Groups whose ranges share the top index k (rule 1) have the same levels, so they are
    # quantized together, with any of their ranges (a speed-up only: the result is per group).
    keys = [top_index(float(m), bits) if _has_levels(float(m)) else None for m in ranges]
    out = None
    for key in dict.fromkeys(keys):
        rows = [i for i, k in enumerate(keys) if k == key]
        part = function(parts[rows], float(ranges[rows[0]]), bits)
        if out is None:
            out = np.empty(parts.shape, dtype=part.dtype)
        out[rows] = part
    return out.reshape(x.shape)


def quantize_weights(weights, groups: int = 1, bits: int = 8, ranges=None) -> np.ndarray:
    """Rule 6: ``quantize`` each group of ``weights`` with its own range (float32 out).

    Args:
        weights: the layer's ``blobs[0]`` (axis 0 = output channels, or input channels for
            Deconvolution; either way the axis Caffe splits into groups).
        groups: the layer's ``group`` (1 = one range for the layer).
        bits: 8 or 16.
        ranges: one range per group (default: ``weight_ranges(weights, groups)``).
    """
    return _per_group(quantize, weights, groups, bits, ranges).astype(np.float32)


def encode_weights(weights, groups: int = 1, bits: int = 8, ranges=None) -> np.ndarray:
    """Rule 6: ``encode`` each group with its own range (uint8 / uint16 codes)."""
    return _per_group(encode, weights, groups, bits, ranges)


def decode_weights(codes, ranges, groups: int = 1, bits: int = 8) -> np.ndarray:
    """Inverse of ``encode_weights`` for the given per-group ``ranges``."""
    return _per_group(lambda part, m, b: decode(part, m, b), np.asarray(codes), groups, bits,
                      ranges).astype(np.float32)
