"""Which BLAS numpy uses, and a context manager running OpenBLAS single-threaded.

Why single-threaded: the engine's GEMMs are batch-1 and small (at most a few hundred MFLOP), so
OpenBLAS's thread hand-off costs more than it gains, and on a shared 2-core machine a busy
second core turns every GEMM into a wait. Measured on the development machine, RetinaFace mnet
640x640: ~600 ms per image with OpenBLAS's default 2 threads under load, ~110 ms with 1 thread.
Parallelism belongs at the image level (the check stage's process pool).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import pathlib
from typing import Iterator

# Symbol prefixes of the OpenBLAS builds numpy wheels ship (plain and scipy-openblas 32/64-bit).
_PREFIXES = (("openblas_", ""), ("scipy_openblas_", "64_"), ("scipy_openblas_", ""))


@functools.lru_cache(maxsize=1)
def _openblas() -> tuple | None:
    """(library, set_threads, get_threads, get_config) of the loaded OpenBLAS, or None."""
    import numpy  # noqa: F401  (loads the BLAS library into the process)

    maps = pathlib.Path("/proc/self/maps")
    if not maps.exists():  # not Linux: leave threading alone
        return None
    paths = sorted({line.split()[-1] for line in maps.read_text().splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix, suffix in _PREFIXES:
            names = [f"{prefix}{f}{suffix}" for f in ("set_num_threads", "get_num_threads",
                                                         "get_config")]
            if all(hasattr(lib, n) for n in names):
                get_config = getattr(lib, names[2])
                get_config.restype = ctypes.c_char_p
                return path, getattr(lib, names[0]), getattr(lib, names[1]), get_config
    return None


def info() -> str:
    """A one-line description of numpy's BLAS, e.g. ``OpenBLAS 0.3.27 ... (2 threads)``."""
    found = _openblas()
    if found is None:
        import numpy

        config = getattr(numpy, "__config__", None)
        deps = getattr(config, "CONFIG", {}).get("Build Dependencies", {})
        return f"{deps.get('blas', {}).get('name', 'unknown BLAS')} (thread control unavailable)"
    path, _, get_threads, get_config = found
    return (f"{get_config().decode(errors='replace').strip()} ({get_threads()} threads; "
            f"{pathlib.Path(path).name})")


@contextlib.contextmanager
def limited(threads: int = 1) -> Iterator[None]:
    """Run the body with OpenBLAS limited to ``threads`` threads, then restore the old count."""
    found = _openblas()
    if found is None:
        yield
        return
    _, set_threads, get_threads, _ = found
    before = int(get_threads())
    if before == threads:
        yield
        return
    set_threads(threads)
    try:
        yield
    finally:
        set_threads(before)
