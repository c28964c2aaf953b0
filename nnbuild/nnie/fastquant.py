"""Table-driven NNIE rounding of float32 activations, bit-exact with ``nnbuild.nnie.quantize``.

Why: the simulator rounds ~15 M activations per RetinaFace-640 picture; evaluating log2 per element
costs more than the float network itself. NNIE's rounding (nnie-facts.md §4) is a monotone step
function of ``|x|`` whose steps are a factor 2**(1/16) (8-bit) or 2**(1/128) (16-bit) apart. The
top 16 (8-bit) or 17 (16-bit) bits of a float32 — sign, exponent and 7/8 mantissa bits — cut the
number line into buckets narrower than one step (2**-7 < 2**(1/16) - 1 and 2**-8 < 2**(1/128) - 1),
so each bucket holds at most one rounding threshold. Per bucket the table keeps the code of the
rounded value below that threshold (the value above it has the next code) and the threshold's bit
pattern; all of it is computed *by* ``nnbuild.nnie.quantize``, the only specification of the
arithmetic.
"""

from __future__ import annotations

import numpy as np

from nnbuild.nnie import quantize as nq

SHIFT = {8: 16, 16: 15}  # bits -> how far to shift the float32 pattern to get the bucket index
_NO_THRESHOLD = np.uint32(0xFFFFFFFF)
_FINITE = np.float32(np.finfo(np.float32).max)


class Table:
    """The rounding table of one tensor range; ``table(x)`` rounds a float32 array."""

    def __init__(self, max_abs: float, bits: int):
        self.shift = SHIFT[bits]
        count = 1 << (32 - self.shift)
        low_bits = np.arange(count, dtype=np.uint32) << np.uint32(self.shift)
        high_bits = low_bits | np.uint32((1 << self.shift) - 1)
        low, high = self._quantize(low_bits, max_abs, bits), self._quantize(high_bits, max_abs, bits)
        self.threshold = np.full(count, _NO_THRESHOLD, dtype=np.uint32)
        step = np.flatnonzero(low != high)
        self.threshold[step] = self._search(low_bits[step], high_bits[step], high[step],
                                            max_abs, bits)
        self.codes, self.values = self._code_table(low, high)

    @staticmethod
    def _quantize(pattern: np.ndarray, max_abs: float, bits: int) -> np.ndarray:
        # inf/NaN patterns are clamped to the largest float (NNIE saturates them to the top level)
        values = np.nan_to_num(pattern.view(np.float32), nan=_FINITE, posinf=_FINITE,
                               neginf=-_FINITE)
        return np.asarray(nq.quantize(values, max_abs, bits=bits), dtype=np.float32)

    @classmethod
    def _search(cls, lo: np.ndarray, hi: np.ndarray, above: np.ndarray, max_abs: float,
                bits: int) -> np.ndarray:
        """Smallest pattern per bucket whose rounded value is ``above`` (bisection)."""
        lo, hi = lo.copy(), hi.copy()
        while np.any(hi - lo > 1):
            mid = lo + (hi - lo) // np.uint32(2)
            is_above = cls._quantize(mid, max_abs, bits) == above
            hi = np.where(is_above, mid, hi)
            lo = np.where(is_above, lo, mid)
        return hi

    @staticmethod
    def _code_table(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Number the rounded values in bit-pattern order, so crossing a threshold is ``code + 1``.

        Walking the buckets in pattern order (positives upwards, then negatives from -0 outwards)
        the rounded value changes only at thresholds; each change starts a new code. Zero gets one
        code per sign, which keeps the +1 rule without a special case.
        """
        walk = np.stack([low, high], axis=1).ravel()
        change = np.concatenate([[True], walk[1:] != walk[:-1]])
        code = (np.cumsum(change) - 1).astype(np.uint16)
        return code[0::2].copy(), walk[change]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        pattern = x.view(np.uint32)
        index = pattern >> np.uint32(self.shift)
        above = pattern >= self.threshold.take(index)
        code = self.codes.take(index)
        np.add(code, above, out=code, casting="unsafe")
        return self.values.take(code).reshape(np.shape(values))


def group_codes(weights, groups: int, bits: int, ranges=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-group weight codes and values in one vectorised pass (rule 6 of ``quantize``).

    Bit-exact with ``nq.encode_weights`` / ``nq.quantize_weights``, which quantize each group with
    its own level table: for tiny groups (a depthwise channel has 9 weights) building 1,407-entry
    tables per channel costs far more than the rounding. Here each weight is compared with its
    own two neighbouring midpoints ``2**((z+q±0.5)/S)``, computed with the same float64 expression
    the specification uses, so every comparison, and therefore every code, is the same.

    Returns:
        (codes uint8/uint16, values float32), both shaped like ``weights``.
    """
    x = np.asarray(weights)
    x = x if x.dtype == np.float32 else x.astype(np.float64)
    parts = x.reshape(groups, -1)
    ranges = nq.weight_ranges(x, groups) if ranges is None else np.asarray(ranges, np.float64)
    steps, qmax = nq.FORMATS[bits]
    dtype, sign = nq.CODES[bits]
    live = ranges > 0
    tops = np.array([nq.top_index(float(m), bits) if ok else 0 for m, ok in zip(ranges, live)])
    z = (tops - qmax)[:, None]
    if np.isnan(parts).any():
        raise ValueError("NNIE quantizer: values contain NaN")
    mag = np.abs(parts).astype(np.float64)
    negative = parts < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        approx = np.floor(steps * np.log2(mag) + 0.5 - z)
    q = np.clip(np.nan_to_num(approx, nan=0.0, neginf=0.0, posinf=qmax), 0, qmax).astype(np.int64)
    up = (q < qmax) & (mag >= np.exp2((z + q.astype(np.float64) + 0.5) / steps))
    down = (q > 0) & (mag < np.exp2((z + (q - 1).astype(np.float64) + 0.5) / steps))
    q = q + up - down
    q = np.maximum(q, negative)
    zero = (mag < 0.5 * np.exp2((z + negative).astype(np.float64) / steps)) | ~live[:, None]
    codes = np.where(negative, (q << nq.CODE_SHIFT[bits]) | sign, q << nq.CODE_SHIFT[bits])
    codes[zero] = sign
    values = np.exp2((z + q).astype(np.float64) / steps).astype(np.float32)
    values[negative] *= -1
    values[zero] = 0.0
    return codes.astype(dtype).reshape(x.shape), values.reshape(x.shape)
