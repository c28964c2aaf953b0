"""The bytes nnbuild expects in a weight block (wk-format.md §3), from the layer's weights.

Only the established layouts are built; everything else returns None so that callers report
"not verifiable" instead of guessing.

* 8-bit dense (§3): four 16-byte records ``{i32 bias, u32 M, 8 zero bytes}``, one per output
  slot, with ``bias = rint(b * 2^(n/16))`` and ``M = rint(2^((672 - n)/16))`` (one ``n`` per layer),
  then the codes in order y, x, input group of 16, output slot (4), 16 inputs; inputs beyond
  C_in are 0x00, output slots beyond C_out hold zero codes (0x80). Ties round to even: the one
  exact tie among the 531 raw blocks of the 8-bit RetinaFace file (rf_c2_aggr, 37194.5) is
  stored as 37194.
* 16-bit dense (§3): one record ``{i32 bias, i32 scale, i32 shift, 0}`` + 48 zero bytes, then the
  kernel in HWC order, split in 4 quarters of K/4 emitted in 8-word chunks. Only K a multiple of
  32 is established. Record: with an unfolded BatchNorm (a, b) after the conv, scale =
  ``rint(a * 2^(E/128))`` and shift = ``rint(b * 4096)`` (§3; E one integer per layer, b the
  BatchNorm + Scale offset without the conv bias — verified on the 16-bit RetinaFace file, whose
  convs with a bias carry it in the bias field, which is not predicted); without one (ENet), bias =
  ``rint(b * 2^(n/128))``, scale = ``rint(2^((5376 - n)/128))``, shift 0 — the 16-bit form of the
  8-bit record (672 = 42 * 16, 5376 = 42 * 128), verified on the ENet file's raw blocks.
"""

from __future__ import annotations

import math
import struct

import numpy as np

RECORD8, RECORD16 = 16, 64
M8_BASE, M16_BASE = 672, 5376     # 42 octaves in 1/16 and 1/128 steps


def rint(value: float) -> int:
    """Round half to even (the tie rule the real file shows)."""
    return int(np.rint(value))


def dense8_length(shape: tuple[int, ...]) -> int:
    """Payload bytes of an 8-bit dense block under the established layout."""
    _, inputs, kh, kw = shape
    return 4 * RECORD8 + kh * kw * -(-inputs // 16) * 64


def dense8_weights(codes: np.ndarray, first: int) -> np.ndarray:
    """The weight part of the block holding outputs ``first..first+3`` (uint8 codes, OCHW).

    Works for any integer array (pass indices to learn which weight each byte holds).
    """
    outputs, inputs, kh, kw = codes.shape
    groups = -(-inputs // 16)
    slots = np.zeros((4, groups * 16, kh, kw), dtype=codes.dtype)
    slots[:, :inputs] = 0x80
    part = codes[first:first + 4]
    slots[:len(part), :inputs] = part
    return slots.reshape(4, groups, 16, kh, kw).transpose(3, 4, 1, 0, 2).reshape(-1)


def dense8_records(bias: np.ndarray, n: int, first: int) -> bytes:
    """The four records of the block starting at output ``first``."""
    out = b""
    for slot in range(first, first + 4):
        if slot < len(bias):
            out += struct.pack("<iI8x", rint(float(bias[slot]) * 2.0 ** (n / 16)),
                               rint(2.0 ** ((M8_BASE - n) / 16)))
        else:
            out += bytes(RECORD8)
    return out


def exponent8(payload: bytes) -> int | None:
    """``n`` of a raw 8-bit dense block, from its first record's M (None when M is 0)."""
    m = struct.unpack_from("<I", payload, 4)[0]
    return M8_BASE - rint(16 * math.log2(m)) if m else None


def dense16_length(shape: tuple[int, ...]) -> int | None:
    """Payload bytes of a 16-bit dense block; None when K is not a multiple of 32."""
    k = int(np.prod(shape[1:]))
    return RECORD16 + 2 * k if k % 32 == 0 else None


def dense16_words(codes: np.ndarray, output: int) -> np.ndarray:
    """The weight words of output ``output`` (16-bit codes, OCHW; K a multiple of 32)."""
    flat = codes[output].transpose(1, 2, 0).reshape(-1)       # HWC: f = (y*KW + x)*C + c
    quarter = flat.size // 4
    return flat.reshape(4, quarter // 8, 8).transpose(1, 0, 2).reshape(-1)


def record16_plain(bias: float, n: int) -> bytes:
    """The 16-bit record of a conv without BatchNorm (ENet)."""
    return struct.pack("<iiii", rint(bias * 2.0 ** (n / 128)),
                       rint(2.0 ** ((M16_BASE - n) / 128)), 0, 0) + bytes(48)


def record16_bn(scale: float, shift: float, e: int) -> bytes:
    """The 16-bit record of a conv followed by an unfolded BatchNorm (bias field 0)."""
    return struct.pack("<iiii", 0, rint(scale * 2.0 ** (e / 128)), rint(shift * 4096), 0) + \
        bytes(48)


def exponent16(payload: bytes, scale: float | None) -> int | None:
    """``n`` (no BatchNorm) or ``E`` (with BatchNorm scale ``a``) of a raw 16-bit block."""
    stored = struct.unpack_from("<i", payload, 4)[0]
    ratio = stored if scale is None else (stored / scale if scale else 0.0)
    if ratio <= 0:
        return None
    if scale is None:
        return M16_BASE - rint(128 * math.log2(ratio))
    return rint(128 * math.log2(ratio))


def _int32_bytes(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, 4 * len(columns)) little-endian bytes of int64 columns, and which fit i32."""
    values = np.stack(columns, axis=1)
    valid = ((values >= -2 ** 31) & (values < 2 ** 31)).all(axis=1)
    values = np.where(valid[:, None], values, 0)
    return values.astype("<i4").view(np.uint8).reshape(len(values), -1), valid


def records_many(bits: int, exponents: np.ndarray, *, bias=None, first: int = 0,
                 scale=None, shift=None) -> tuple[np.ndarray, np.ndarray, int]:
    """The record bytes that depend on the exponent, for every candidate exponent.

    Returns:
        (bytes (candidates, L), valid (candidates,), zero bytes of the records not included).
    """
    e = np.asarray(exponents, dtype=np.float64)
    if bits == 8:
        columns = []
        for slot in range(first, first + 4):
            if slot < len(bias):
                columns += [np.rint(float(bias[slot]) * 2.0 ** (e / 16)),
                            np.rint(2.0 ** ((M8_BASE - e) / 16))]
            else:
                columns += [np.zeros_like(e), np.zeros_like(e)]
        data, valid = _int32_bytes([c.astype(np.int64) for c in columns])
        return data, valid, 4 * 8
    if scale is None:
        columns = [np.rint(float(bias) * 2.0 ** (e / 128)), np.rint(2.0 ** ((M16_BASE - e) / 128))]
    else:
        columns = [np.rint(scale * 2.0 ** (e / 128))]
    data, valid = _int32_bytes([c.astype(np.int64) for c in columns])
    fixed = b"" if scale is None else struct.pack("<i", 0)
    tail = b"" if scale is None else struct.pack("<i", rint(shift * 4096))
    if scale is not None:       # bias 0 | scale | shift | 0 (record16_bn)
        data = np.concatenate([np.tile(np.frombuffer(fixed, np.uint8), (len(data), 1)), data,
                               np.tile(np.frombuffer(tail, np.uint8), (len(data), 1))], axis=1)
        return data, valid, 4 + 48
    return data, valid, 8 + 48
