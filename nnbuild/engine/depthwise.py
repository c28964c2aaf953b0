"""Depthwise convolution (group == C == num_output), float32, by the fastest of three layouts.

* banded GEMM (inputs up to ``_BAND_MAX_RATIO`` kernel widths wide: every depthwise layer of
  MobileFaceNet, RetinaFace's from 40x40 down). The output columns are cut into tiles of Wt;
  for output row y, tile t and kernel row i the tile's window of Q = s*(Wt-1) + d*(kw-1) + 1
  padded input columns is copied into ``rows[c, y, t, i]``, and one small GEMM per channel
  ``rows (Ho*T, kh*Q) @ band (kh*Q, Wt)`` gives every output, where ``band`` holds the kernel
  row's weights on diagonals (column stride, dilation and padding live in the band). It does
  about (Wt+2)/kw times the direct MACs, but in BLAS, with a band of a few KB per channel that
  stays in cache. Measured per layer vs the best of the two paths below: 28x28 1.6x, 56x56
  (stride 2) 2-4x, 14x14 and 7x7 2x faster; 80x80 and wider slower.
* batched GEMV over a (C, kh*kw, Ho*pw) column buffer (small outputs of wide inputs);
* kh*kw multiply-adds of long contiguous runs (large maps: RetinaFace at 640).

The band of each weight array is built once; the padded input and the rows buffer once per
thread and geometry (the padding is never written, so it stays zero across calls).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnbuild.engine import channelwise, scratch

Pair = tuple[int, int]


def padded(x: np.ndarray, pad: Pair) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pad`` zeros on both sides of H and W (no copy when pad is 0)."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.float32)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


# scratch.temporary slot of the banded path's rows
_ROWS_SLOT = 1

# Banded GEMM while the input is at most this many kernel widths wide (measured in full
# MobileFaceNet/RetinaFace runs: 56x56 as fast or faster, 80x80 15% slower than slices).
_BAND_MAX_RATIO = 20


def depthwise(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
              stride: Pair, pad: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Caffe depthwise convolution of ``x`` (N, C, H, W) with ``weight`` (C, 1, kh, kw) + ``bias``.

    Args:
        x: the input, float32.
        weight: one kh x kw kernel per channel.
        bias: (C,) or None.
        stride, pad, dilation: (h, w) pairs as in Caffe.
        out_hw: the output size (Caffe's floor formula), computed by the caller.

    Returns:
        A fresh (N, C, Ho, Wo) float32 array.
    """
    kernel = weight.shape[2:]
    if x.shape[3] <= _BAND_MAX_RATIO * kernel[1]:
        return _depthwise_banded(x, weight, bias, stride, pad, dilation, out_hw)
    xp = padded(x, pad)
    if out_hw[0] * out_hw[1] > _DW_GEMV_MAX:
        out = _depthwise_slices(xp, weight, kernel, stride, dilation, out_hw)
    else:
        out = _depthwise_gemv(xp, weight, kernel, stride, dilation, out_hw)
    return out if bias is None else channelwise.add(out, bias, out=out)


def _depthwise_banded(x, weight, bias, stride, pad, dilation, out_hw) -> np.ndarray:
    """Depthwise conv as C GEMMs ``rows (Ho*T, kh*Q + 1) @ band (kh*Q + 1, Wt)``.

    See the module doc; the last column of ``rows`` is all ones and the band's last row holds
    the bias, so the bias costs no pass over the output.
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[2:]
    ho, wo = out_hw
    wt = _tile_width(wo)
    tiles = -(-wo // wt)
    q = stride[1] * (wt - 1) + dilation[1] * (kw - 1) + 1  # padded input columns of one tile
    xpad, view = _buffers((c, h, w, kh, ho, tiles, wt, q, stride, pad, dilation))
    band = scratch.derived((weight, bias), ("band", stride[1], dilation[1], wt, q),
                           lambda: band_matrix(weight, bias, stride[1], dilation[1], wt, q))
    # a temporary rather than a buffer per geometry: the previous depthwise layer's rows are
    # still in the cache (measured: 0.7 ms of MobileFaceNet's ~13.5); the ones are rewritten
    rows = scratch.temporary((c, ho, tiles, kh * q + 1), slot=_ROWS_SLOT)
    rows[..., -1] = 1
    windows = rows[:, :, :, :kh * q].reshape(c, ho, tiles, kh, q)
    out = np.empty((n, c, ho, wo), dtype=np.float32)
    wide = None if tiles * wt == wo else np.empty((c, ho, tiles * wt), np.float32)
    for b in range(n):
        xpad[:, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x[b]
        np.copyto(windows, view)
        dst = out[b] if wide is None else wide
        np.matmul(rows.reshape(c, ho * tiles, kh * q + 1), band,
                  out=dst.reshape(c, ho * tiles, wt))
        if wide is not None:
            out[b] = wide[:, :, :wo]
    return out


def _tile_width(wo: int) -> int:
    """Output columns per tile: all up to 16, else a divisor of ``wo`` in 8..16 nearest 14.

    Narrow tiles keep the band small (W/kw times the direct MACs becomes (Wt+2)/Wt * kh);
    too narrow ones make short rows that numpy copies slowly (measured: 14 best at 28 and 56).
    """
    if wo <= 16:
        return wo
    divisors = [t for t in range(8, 17) if wo % t == 0]
    return min(divisors, key=lambda t: abs(t - 14)) if divisors else 14


def band_matrix(weight: np.ndarray, bias: np.ndarray | None, stride: int, dilation: int,
                wt: int, q: int) -> np.ndarray:
    """(C, kh*Q + 1, Wt): block i, column u holds ``weight[c, 0, i, j]`` at row ``s*u + d*j``.

    Row ``r`` of block i is column ``r`` of the tile's window of the padded input; the last row
    is the bias (0 without one).
    """
    c, _, kh, kw = weight.shape
    band = np.zeros((c, kh * q + 1, wt), np.float32)
    blocks = band[:, :kh * q].reshape(c, kh, q, wt)
    u = np.arange(wt)
    for j in range(kw):
        # distinct (row, u) pairs within one j and across j (the row differs for a fixed u)
        blocks[:, :, stride * u + dilation * j, u] = weight[:, 0, :, j][:, :, None]
    if bias is not None:
        band[:, -1, :] = bias.reshape(c, 1)
    return band


def _buffers(geometry: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(xpad, view) of ``geometry``, made once per thread (``scratch.buffers``).

    ``xpad`` (C, Hp, Wp) is the zero-padded input (wide enough for the last tile); only its
    interior is ever written, so the padding stays zero across calls. ``view`` is the
    (C, Ho, T, kh, Q) window of ``xpad`` read by output row y, tile t and kernel row i; it is
    copied to ``rows`` (C, Ho, T, kh*Q + 1), whose last column is all ones.
    """
    return scratch.buffers(("depthwise",) + geometry, lambda: _make_buffers(*geometry))


def _make_buffers(c, h, w, kh, ho, tiles, wt, q, stride, pad, dil):
    hp = max(h + 2 * pad[0], stride[0] * (ho - 1) + dil[0] * (kh - 1) + 1)
    wp = max(w + 2 * pad[1], stride[1] * wt * (tiles - 1) + q)
    xpad = np.zeros((c, hp, wp), np.float32)
    item = xpad.itemsize
    view = as_strided(xpad, shape=(c, ho, tiles, kh, q), writeable=False,
                      strides=(hp * wp * item, stride[0] * wp * item, stride[1] * wt * item,
                               dil[0] * wp * item, item))
    return xpad, view


# Depthwise works on blocks of channels of about this many output elements, so the running sum
# and the product buffer stay in the L2 cache across the kh*kw passes.
_DW_BLOCK = 1 << 16


def _flat_taps(x: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """Kernel taps of ``x`` (C, H, W) as contiguous runs of flattened stride phases.

    Tap (r, q) of a strided window reads phase ``x[:, r % sh::sh, q % sw::sw]`` at offset
    (r // sh, q // sw), so every tap is one contiguous slice ``flat[:, start:start + span]`` of
    that (copied, flattened) phase. The output is then computed on a (Ho, phase width) grid
    whose extra columns read wrapped-around values and are dropped at the end; in exchange
    numpy runs over one long run per channel instead of Ho short rows (5-10x faster at 14x14).

    Returns:
        (taps, pw, span): ``taps`` lists (flat_phase, start) in kernel order, ``pw`` is the grid
        width and ``span = (Ho - 1) * pw + Wo`` the length of each run.
    """
    sh, sw = stride
    h, w = x.shape[1:]
    if h % sh or w % sw:  # equal phase sizes keep the offsets uniform; the extra zeros are unread
        grown = np.zeros((x.shape[0], -(-h // sh) * sh, -(-w // sw) * sw), dtype=np.float32)
        grown[:, :h, :w] = x
        x = grown
    phases = {(a, e): np.ascontiguousarray(x[:, a::sh, e::sw]) for a in range(sh)
              for e in range(sw)}
    pw = phases[(0, 0)].shape[2]
    flat = {key: ph.reshape(x.shape[0], -1) for key, ph in phases.items()}
    taps = []
    for i, j in np.ndindex(*kernel):
        r, q = i * dilation[0], j * dilation[1]
        taps.append((flat[(r % sh, q % sw)], (r // sh) * pw + q // sw))
    return taps, pw, (out_hw[0] - 1) * pw + out_hw[1]


# Up to this many output pixels per channel, depthwise conv is faster as a batched GEMV over a
# (C, kh*kw, Ho*pw) column buffer (measured 1.5-2x at 14x14..40x40); above it, as shifted slices.
_DW_GEMV_MAX = 40 * 40


def _depthwise_gemv(xp, weight, kernel, stride, dilation, out_hw) -> np.ndarray:
    """Depthwise conv as one GEMV per channel over a (kh*kw, Ho*pw) column buffer."""
    n, c = xp.shape[:2]
    (ho, wo), k = out_hw, kernel[0] * kernel[1]
    out = np.empty((n, c) + out_hw, dtype=np.float32)
    for b in range(n):
        taps, pw, span = _flat_taps(xp[b], kernel, stride, dilation, out_hw)
        cols = np.empty((c, k, ho * pw), dtype=np.float32)
        cols[:, :, span:] = 0  # the grid's last, never-read columns: keep garbage out of BLAS
        for t, (src, start) in enumerate(taps):
            cols[:, t, :span] = src[:, start:start + span]
        res = np.matmul(weight.reshape(c, 1, k), cols)
        out[b] = res.reshape(c, ho, pw)[:, :, :wo]
    return out


def _depthwise_slices(xp, weight, kernel, stride, dilation, out_hw) -> np.ndarray:
    """Depthwise conv as kh*kw multiply-adds of long contiguous runs, by blocks of channels."""
    n, c = xp.shape[:2]
    (ho, wo), k = out_hw, kernel[0] * kernel[1]
    wt = weight.reshape(c, k, 1)
    out = np.empty((n, c, ho, wo), dtype=np.float32)
    for b in range(n):
        taps, pw, span = _flat_taps(xp[b], kernel, stride, dilation, out_hw)
        step = max(1, _DW_BLOCK // (ho * pw))
        for c0 in range(0, c, step):
            acc = np.empty((min(step, c - c0), ho * pw), dtype=np.float32)
            tmp = np.empty((acc.shape[0], span), dtype=np.float32)
            for t, (src, start) in enumerate(taps):
                rows = src[c0:c0 + step, start:start + span]
                if t == 0:
                    np.multiply(rows, wt[c0:c0 + step, t], out=acc[:, :span])
                else:
                    acc[:, :span] += np.multiply(rows, wt[c0:c0 + step, t], out=tmp)
            out[b, c0:c0 + step] = acc.reshape(-1, ho, pw)[:, :, :wo]
    return out
