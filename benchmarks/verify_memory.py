"""Peak memory of `nnbuild verify` on a gzip bomb: a ~4.6 MB .tar.gz whose one member claims
(and holds) ~4.3 GiB of zeros, with a manifest listing it. verify must stream it, staying
under 100 MiB of RSS (floor: the same child importing nnbuild.archive and doing nothing).

Usage: python benchmarks/verify_memory.py [--gib 4.3] [--runs 1]
"""

from __future__ import annotations

import argparse
import gzip
import pathlib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHILD = """
import resource, sys
from nnbuild.archive import PackageError, verify
if sys.argv[1] != "-":
    try:
        verify(sys.argv[1])
    except PackageError as err:
        print(err, file=sys.stderr)
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024)
"""


def _header(name: str, kind: bytes, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info.tobuf(tarfile.USTAR_FORMAT)


def write_bomb(path: pathlib.Path, mib: int) -> None:
    """Repeated gzip members of 1 MiB of zeros (valid gzip, written in a second)."""
    body = b'{"files": {"big.bin": {"sha256": "%s", "size": %d}}}\n' % (b"0" * 64, mib << 20)
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(_header("demo", tarfile.DIRTYPE)
                              + _header("demo/big.bin", tarfile.REGTYPE, mib << 20)))
        for _ in range(mib):
            f.write(zeros)
        f.write(gzip.compress(_header("demo/manifest.json", tarfile.REGTYPE, len(body)) + body
                              + bytes(-len(body) % 512) + bytes(1024)))


def child(arg: str) -> tuple[int, float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return int(done.stdout.split()[-1]), time.perf_counter() - start, done.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.3)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bomb = pathlib.Path(tmp) / "bomb.tar.gz"
        write_bomb(bomb, int(args.gib * 1024))
        floor = statistics.median(child("-")[0] for _ in range(args.runs))
        runs = [child(str(bomb)) for _ in range(args.runs)]
        rss = statistics.median(r[0] for r in runs)
        secs = statistics.median(r[1] for r in runs)
        print(f"archive {bomb.stat().st_size / 1e6:.1f} MB claiming {args.gib} GiB; "
              f"verify: {runs[0][2]}")
        print(f"peak RSS median {rss:.0f} MiB (import-only floor {floor:.0f} MiB, limit 100 MiB), "
              f"{secs:.1f} s")
    return 0 if rss < 100 else 1


if __name__ == "__main__":
    sys.exit(main())
