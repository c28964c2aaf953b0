"""Benchmark: read + verify a real ~3 MB .wk (issue 15: under 2 s), against reading + hashing it.

Usage: ``python benchmarks/wk.py [--runs 7] [--file nniefacelib-mnet-640-16bit.wk]``. Each run
reads the file (``read_wk``: CRC over 2.8 MB, header, nodes, block index), loads the model it was
compiled from and verifies every weight block (``verify_wk``); the floor is reading the file and
hashing it with sha256 in the same process. Runs alternate with the floor, so load on the shared
machine hits both alike; medians are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

# file -> (prototxt, caffemodel, fold)
FILES = {
    "nniefacelib-mnet-640-16bit.wk": ("wk/nniefacelib-mnet.prototxt",
                                      "models/retinaface-mnet25/mnet.caffemodel", "none"),
    "nniefacelib-mnet-640-8bit.wk": ("wk/nniefacelib-mnet.prototxt",
                                     "models/retinaface-mnet25/mnet.caffemodel", "nniefacelib"),
    "enet-cityscapes-16bit.wk": ("wk/enet.prototxt", "wk/enet.caffemodel", "none"),
}
TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--file", default="nniefacelib-mnet-640-16bit.wk", choices=sorted(FILES))
    args = parser.parse_args(argv)

    from nnbuild.caffe.io import load
    from nnbuild.nnie.wk.reader import read_wk
    from nnbuild.nnie.wk.verify import verify_wk

    path = SHARED / "wk" / args.file
    proto, weights, fold = FILES[args.file]
    floor, full = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        hashlib.sha256(path.read_bytes()).hexdigest()
        floor.append(time.perf_counter() - start)
        start = time.perf_counter()
        wk = read_wk(path)
        graph = load(SHARED / proto, SHARED / weights).graph
        report = verify_wk(wk, graph, fold=fold)
        full.append(time.perf_counter() - start)
    raw = report["summary"]["raw_blocks"]
    size = path.stat().st_size / 1e6
    print(f"{args.file} ({size:.1f} MB, {len(wk.blocks)} blocks, raw identical "
          f"{raw.get('identical', 0)}/{raw['total']})")
    print(f"read + load model + verify: median {statistics.median(full) * 1000:.0f} ms "
          f"(min {min(full) * 1000:.0f}), target < {TARGET_S:.0f} s")
    print(f"floor, read + sha256: median {statistics.median(floor) * 1000:.1f} ms")
    return 0 if statistics.median(full) < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
