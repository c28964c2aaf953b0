"""Per-channel arithmetic on (N, C, ...) blobs — bias, BatchNorm/Scale factors, PReLU slopes.

Why a module for ``x * v`` with ``v`` one value per channel: numpy (2.4, float32, measured on
the 2-core development machine) runs such a broadcast through its *buffered* iterator whenever
a row (one channel of one image, H*W elements) is shorter than the ufunc buffer, 8192 elements
by default. It then copies ``v`` out into the buffer to make inner loops of 8192 and the
operation costs ~0.4 ns per element, 3.5x a scalar multiply (~0.12 ns): 128x28x28 takes ~40 us
instead of ~12. MobileFaceNet has 33 PReLUs and ~50 biases on rows of 49 to 3136 elements.
Three measures, all here:

* ``small_ufunc_buffer``: ``run`` sets numpy's ufunc buffer to ``BUFSIZE`` elements for the
  length of a forward pass (numpy keeps the setting in a context variable, so other threads and
  the caller are not affected). Rows at least that long then need no buffering: 128x28x28
  37 -> 17 us, 256x14x14 20 -> 14 us (rows of 196 elements: that is why 192, not more).
* rows shorter than ``BUFSIZE`` (7x7 maps) would then be buffered in pieces of a few
  elements, ~2x slower than with the default buffer; they get a full-size (C, H*W) copy of
  ``v`` instead, made once per read-only weight array (``scratch.derived``), so both operands
  are contiguous and numpy runs one flat loop: 512x7x7 12 -> 10 us (and not ~2x slower).
* the operation runs on the (N, C, H*W) view: numpy does not always merge H and W of the 4-D
  form into one row (256x14x14: 22.7 us as (1, C, H, W), 13.7 us as (C, H*W)).

Whole-network effect, interleaved A/B in one process: MobileFaceNet 15.8 -> 15.1 ms median
(measured before PReLU's two-pass change in ``activation.py``, which removed other passes).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from nnbuild.engine import scratch

# Ufunc buffer size during a forward pass (numpy wants a multiple of 16). Smaller than the
# rows of every blob whose rows are long enough to be worth streaming (>= 14x14).
BUFSIZE = 192


@contextlib.contextmanager
def small_ufunc_buffer() -> Iterator[None]:
    """numpy's ufunc buffer at ``BUFSIZE`` elements inside the block (see the module doc)."""
    old = np.setbufsize(BUFSIZE)
    try:
        yield
    finally:
        np.setbufsize(old)


def _operands(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x as (N, C, R) rows, v shaped to broadcast over them) for a C-contiguous ``x``."""
    n, c = x.shape[0], x.shape[1]
    rows = x.reshape(n, c, -1)
    if v.dtype != np.float32 or x.dtype != np.float32:  # not from the engine: no fast path
        return rows.astype(np.float32, copy=False), np.asarray(v, np.float32).reshape(c, 1)
    length = rows.shape[2]
    if length >= BUFSIZE or length == 1 or v.flags.writeable:
        return rows, v.reshape(c, 1)  # a writable v may change: never serve a stale copy
    full = scratch.derived((v,), ("channel rows", length),
                           lambda: np.ascontiguousarray(
                               np.broadcast_to(v.reshape(c, 1), (c, length)), np.float32))
    return rows, full


def _apply(ufunc, x: np.ndarray, v, out: np.ndarray | None) -> np.ndarray:
    if np.ndim(v) == 0 or x.ndim < 2 or not x.flags.c_contiguous \
            or (out is not None and not out.flags.c_contiguous):  # plain numpy broadcasting
        vv = v if np.ndim(v) == 0 else np.reshape(v, (1, -1) + (1,) * (x.ndim - 2))
        return ufunc(x, vv, out=out, dtype=np.float32)
    rows, vv = _operands(x, np.asarray(v))  # float32 both: no dtype= needed (it costs a lookup per call)
    if out is None:
        return ufunc(rows, vv).reshape(x.shape)
    ufunc(rows, vv, out=out.reshape(rows.shape))
    return out


def mul(x: np.ndarray, v, out: np.ndarray | None = None) -> np.ndarray:
    """``x * v`` with ``v`` a scalar or one value per channel (axis 1), in float32.

    Args:
        x: (N, C, ...) float32.
        v: a scalar, or an array of C values (any shape with C elements).
        out: where to write (may be ``x`` itself), or None for a fresh array.
    """
    return _apply(np.multiply, x, v, out)


def add(x: np.ndarray, v, out: np.ndarray | None = None) -> np.ndarray:
    """``x + v`` with ``v`` a scalar or one value per channel (axis 1), in float32; see ``mul``."""
    return _apply(np.add, x, v, out)
