"""NNIE output blob memory layout: int32 in 20.12 fixed point, each row padded to the blob stride.

What the runtime hands the CPU after ``HI_MPI_SVP_NNIE_Forward`` (nnie-facts.md §3; the SDK
samples' ``SAMPLE_SVP_NNIE_GetBlobMemSize``): an S32 blob of ``num x chn x height`` rows, each row
``width`` int32 values followed by padding up to ``stride`` bytes, where ``stride`` is
``width * 4`` rounded up to the model's alignment (``internal_stride``: 16 or 32 bytes, §2).
Values are the float result times 4096 (``SAMPLE_SVP_NNIE_QUANT_BASE``).

Caffe shapes of fewer than four axes are aligned to the right: the last axis is the NNIE width
(the SDK's classification sample reads an InnerProduct output of C classes as ``width = C``), the
axis before it the height, and so on. This is an inference for 2-D and 3-D outputs (UltraFace's
``(1, N, 2)`` scores: height N, width 2); 4-D blobs are the documented case.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

QUANT_BASE = 4096  # 12 fractional bits (SAMPLE_SVP_NNIE_QUANT_BASE)
ALIGNMENTS = (16, 32)


def nchw(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """A Caffe blob shape as NNIE's (num, chn, height, width): missing leading axes are 1."""
    dims = [int(d) for d in shape]
    if not 1 <= len(dims) <= 4:
        raise ValueError(f"nchw: expected 1 to 4 axes, got {tuple(shape)}")
    dims = [1] * (4 - len(dims)) + dims
    return dims[0], dims[1], dims[2], dims[3]


def stride_bytes(width: int, align: int) -> int:
    """Bytes per row: ``width`` int32 rounded up to ``align`` (16 or 32) bytes."""
    if align not in ALIGNMENTS:
        raise ValueError(f"stride_bytes: alignment must be 16 or 32, got {align}")
    return -(-4 * int(width) // align) * align


def blob_bytes(shape: Sequence[int], align: int) -> int:
    """Size in bytes of the blob of ``shape`` in NNIE's layout."""
    n, c, h, w = nchw(shape)
    return n * c * h * stride_bytes(w, align)


def to_nnie(values: np.ndarray, align: int, *, pad_fill: int = 0) -> bytes:
    """A float output (already on the 1/4096 grid, as the simulator returns it) as NNIE's bytes.

    Args:
        values: the output array in its Caffe shape.
        align: row alignment in bytes (``internal_stride``).
        pad_fill: int32 written into the padding (tests use a poison value so a decoder that
            reads padding is caught).

    Raises:
        ValueError: a value that is not a multiple of 1/4096 (the caller did not quantize it).
    """
    arr = np.asarray(values, dtype=np.float64)
    fixed = np.rint(arr * QUANT_BASE)
    if not np.array_equal(fixed, arr * QUANT_BASE):
        raise ValueError("to_nnie: values are not on the 20.12 grid (simulate them first)")
    n, c, h, w = nchw(arr.shape)
    rows = fixed.astype("<i4").reshape(n * c * h, w)
    padded = np.full((n * c * h, stride_bytes(w, align) // 4), pad_fill, dtype="<i4")
    padded[:, :w] = rows
    return padded.tobytes()


def from_nnie(data: bytes, shape: Sequence[int], align: int) -> np.ndarray:
    """Inverse of ``to_nnie``: float64 array of ``shape`` from NNIE's bytes."""
    n, c, h, w = nchw(shape)
    rows = np.frombuffer(data, dtype="<i4").reshape(n * c * h, stride_bytes(w, align) // 4)
    return (rows[:, :w].astype(np.float64) / QUANT_BASE).reshape(tuple(shape))
