"""Run the float engine with denormal numbers flushed to zero (x86-64 with glibc).

Why: pruned channels of trained models carry weights of 1e-30 and smaller; their activations
are ~1e-35, and a PReLU slope or the next layer's weights turn them into denormals (MobileFaceNet
on the benchmark input: 56,000 denormal PReLU products per forward pass). x86 arithmetic
that produces or reads a denormal takes a microcode assist of ~100 cycles instead of a fraction
of one. ``nnbuild/engine/denormal.py`` already flushes denormal *weights*; this flushes the
ones computed on the way, by setting the FTZ (flush-to-zero, MXCSR bit 15) and DAZ
(denormals-are-zero, bit 6) bits of the SSE control register for the duration of a forward
pass, in the calling thread only (MXCSR is per thread; the engine runs BLAS in that thread, see
``blas.py``). Measured in interleaved A/B runs: MobileFaceNet 15.08 -> 14.82 ms median.

What changes: a result below float32's smallest normal number, 1.2e-38, becomes 0. Every value
that matters to a network output is many orders of magnitude above that, and NNIE's fixed-point
arithmetic has no denormals at all. The caller's floating-point environment is restored on exit.

Elsewhere (other CPUs or C libraries) this is a no-op: the layout of ``fenv_t`` used below is
glibc's on x86-64 (the x87 environment, 28 bytes, then MXCSR).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
from typing import Iterator

_FTZ_DAZ = (1 << 15) | (1 << 6)
_MXCSR_OFFSET = 28
_FENV_BYTES = 32
_EXCEPTION_MASKS = 0x1F80  # all six SSE exceptions masked: the state every C program starts in


class _Env(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_uint8 * _FENV_BYTES)]


@functools.lru_cache(maxsize=1)
def _libm():
    """libm when this is x86-64 glibc whose fenv_t shows a plausible MXCSR, else None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        libm = ctypes.CDLL("libm.so.6")
        env = _Env()
        if libm.fegetenv(ctypes.byref(env)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return libm if _mxcsr(env) & _EXCEPTION_MASKS == _EXCEPTION_MASKS else None


def _mxcsr(env: _Env) -> int:
    return int.from_bytes(bytes(env.raw[_MXCSR_OFFSET:_MXCSR_OFFSET + 4]), "little")


def _set_mode_bits(libm, bits: int) -> int:
    """Set MXCSR's FTZ/DAZ bits to ``bits``; return what they were."""
    env = _Env()
    libm.fegetenv(ctypes.byref(env))
    value = _mxcsr(env)
    env.raw[_MXCSR_OFFSET:_MXCSR_OFFSET + 4] = (ctypes.c_uint8 * 4)(
        *((value & ~_FTZ_DAZ) | bits).to_bytes(4, "little"))
    libm.fesetenv(ctypes.byref(env))
    return value & _FTZ_DAZ


def supported() -> bool:
    """Whether ``flush_denormals`` changes anything on this machine."""
    return _libm() is not None


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Denormal results and inputs count as zero inside the block (calling thread only)."""
    libm = _libm()
    if libm is None:
        yield
        return
    before = _set_mode_bits(libm, _FTZ_DAZ)
    try:
        yield
    finally:
        _set_mode_bits(libm, before)
