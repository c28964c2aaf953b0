"""Depthwise convolution (group == C == num_output), float32, by the fastest of three layouts.

* banded GEMM (maps up to ``_BAND_MAX_RATIO`` kernel widths wide, i.e. every depthwise layer of
  MobileFaceNet): each channel's output is one small GEMM ``rows (Ho, kh*W) @ band (kh*W, Wo)``
  where ``rows`` stacks, per kernel row i, the input row read by that kernel row, and ``band``
  holds the kernel row's weights on the diagonals of a (W, Wo) matrix, so padding, stride and
  dilation of the columns live in the band and cost nothing at run time. It does W/kw times the
  MACs but as BLAS; measured 1.3-2x faster than the alternatives below up to 56x56.
* batched GEMV over a (C, kh*kw, Ho*pw) column buffer (small maps with wide inputs);
* kh*kw multiply-adds of long contiguous runs (large maps: RetinaFace at 640).

The band matrices are built once per weight array and the stacked-rows buffer once per thread and
geometry: its zero rows (padding) are never written, so each call only copies the input rows.
"""

from __future__ import annotations

import threading

import numpy as np

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


# Banded GEMM while the input is at most this many kernel widths wide: its extra MACs (W / kw
# times the direct count) stay cheaper than numpy's per-tap passes (measured: 56x56 1.1x faster,
# 80x80 1.7x slower).
_BAND_MAX_RATIO = 15


def depthwise(x: np.ndarray, weight: np.ndarray, *, stride: Pair, pad: Pair, dilation: Pair,
              out_hw: Pair) -> np.ndarray:
    """Caffe depthwise convolution of ``x`` (N, C, H, W) with ``weight`` (C, 1, kh, kw), no bias.

    Args:
        x: the input, float32.
        weight: one kh x kw kernel per channel.
        stride, pad, dilation: (h, w) pairs as in Caffe.
        out_hw: the output size (Caffe's floor formula), computed by the caller.

    Returns:
        A fresh (N, C, Ho, Wo) float32 array.
    """
    kernel = weight.shape[2:]
    if x.shape[3] <= _BAND_MAX_RATIO * kernel[1]:
        return _depthwise_banded(x, weight, stride, pad, dilation, out_hw)
    xp = padded(x, pad)
    if out_hw[0] * out_hw[1] > _DW_GEMV_MAX:
        return _depthwise_slices(xp, weight, kernel, stride, dilation, out_hw)
    return _depthwise_gemv(xp, weight, kernel, stride, dilation, out_hw)


def _depthwise_banded(x, weight, stride, pad, dilation, out_hw) -> np.ndarray:
    """Depthwise conv as C GEMMs ``rows (Ho, kh*W) @ band (kh*W, Wo)`` (see the module doc)."""
    n, c, h, w = x.shape
    band = _cached_band(weight, w, stride[1], pad[1], dilation[1], out_hw[1])
    rows, copies = _rows_buffer((c, h, w, weight.shape[2], stride[0], pad[0], dilation[0],
                                 out_hw[0]))
    out = np.empty((n, c) + out_hw, dtype=np.float32)
    for b in range(n):
        for (y0, y1, col0, src) in copies:
            rows[:, y0:y1, col0:col0 + w] = x[b, :, src]
        np.matmul(rows, band, out=out[b])
    return out


def band_matrix(weight: np.ndarray, w_in: int, stride: int, pad: int, dilation: int,
                w_out: int) -> np.ndarray:
    """(C, kh*W, Wo): block i, column xo holds ``weight[c, 0, i, j]`` at row ``s*xo + d*j - p``.

    Rows outside [0, W) are the zero padding and are simply left out.
    """
    c, _, kh, kw = weight.shape
    band = np.zeros((c, kh, w_in, w_out), np.float32)
    xo = np.arange(w_out)
    for j in range(kw):
        k = stride * xo + dilation * j - pad
        ok = (k >= 0) & (k < w_in)
        # distinct (k, xo) pairs within one j and across j (k differs for a fixed xo)
        band[:, :, k[ok], xo[ok]] = weight[:, 0, :, j][:, :, None]
    return band.reshape(c, kh * w_in, w_out)


_BANDS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_BAND_BYTES = [0]
# Band matrices of MobileFaceNet take ~17 MB; past this, start over rather than grow forever.
_BAND_BYTES_MAX = 128 << 20


def _cached_band(weight, w_in, stride, pad, dilation, w_out) -> np.ndarray:
    """``band_matrix`` memoised on the identity of the (read-only) weight array."""
    key = (id(weight), weight.shape, w_in, stride, pad, dilation, w_out)
    hit = _BANDS.get(key)
    if hit is not None and hit[0] is weight:
        return hit[1]
    band = band_matrix(weight, w_in, stride, pad, dilation, w_out)
    if _BAND_BYTES[0] + band.nbytes > _BAND_BYTES_MAX:
        _BANDS.clear()
        _BAND_BYTES[0] = 0
    _BANDS[key] = (weight, band)  # holds the weight, so its id stays unique while cached
    _BAND_BYTES[0] += band.nbytes
    return band


_LOCAL = threading.local()  # the rows buffers are scratch: one set per thread


def _rows_buffer(geometry: tuple) -> tuple[np.ndarray, list]:
    """The zero-initialised (C, Ho, kh*W) rows buffer of ``geometry`` and its row copies.

    ``copies`` lists (y0, y1, col0, src): output rows y0..y1 of kernel row i read input rows
    ``src`` (a strided slice) into columns col0..col0+W. Rows reading the padding are never
    written, so they stay zero across calls.
    """
    cache = getattr(_LOCAL, "rows", None)
    if cache is None:
        cache = _LOCAL.rows = {}
    hit = cache.get(geometry)
    if hit is not None:
        return hit
    c, h, w, kh, s, p, d, ho = geometry
    copies = []
    for i in range(kh):
        ys = [y for y in range(ho) if 0 <= s * y + d * i - p < h]
        if ys:
            first = s * ys[0] + d * i - p
            copies.append((ys[0], ys[-1] + 1, i * w, slice(first, first + s * (len(ys) - 1) + 1, s)))
    if len(cache) > 64:  # many geometries (e.g. a sweep over input sizes): start over
        cache.clear()
    cache[geometry] = (np.zeros((c, ho, kh * w), np.float32), copies)
    return cache[geometry]


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
