"""ONNX conversion speed: converting SCRFD-500M-KPS (640x640, cut at its nine heads) in-process,
against the floor of ``onnx.load`` of the same file (medians).

Three numbers: ``onnx.load`` (the floor: reading the protobuf), ``convert(prove=False)`` (read,
check, fold, convert) and ``convert()`` with its numeric proof (one engine pass and one
onnxruntime pass at 640x640). The target is conversion under 2 s (reported, not a gate: the machine may be loaded). Each run starts from the
file; the first, which imports onnx/onnxruntime and the converters, is reported separately.

Usage: python benchmarks/onnx_convert.py [--runs 7]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = ROOT.parent / "shared" / "models" / "scrfd-500m" / "scrfd_500m_kps.onnx"
HEADS = ["437", "438", "439", "480", "481", "482", "523", "524", "525"]
TARGET_S = 2.0


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    import onnx

    from nnbuild.onnx import convert

    convert(MODEL, outputs=HEADS, prove=False)
    first = time.perf_counter() - start
    floor = median_seconds(lambda: onnx.load(str(MODEL)), args.runs)
    bare = median_seconds(lambda: convert(MODEL, outputs=HEADS, prove=False), args.runs)
    proved = median_seconds(lambda: convert(MODEL, outputs=HEADS), args.runs)
    print(f"first conversion in a fresh process (imports included): {first * 1000:.0f} ms")
    print(f"onnx.load (floor): {floor * 1000:.1f} ms (median of {args.runs})")
    print(f"convert, no proof: {bare * 1000:.0f} ms = {bare / floor:.0f}x the floor "
          f"(target < {TARGET_S:g} s)")
    print(f"convert + proof (engine and onnxruntime at 640x640): {proved * 1000:.0f} ms "
          f"(target < {TARGET_S:g} s)")
    print("target met" if bare < TARGET_S else "TARGET MISSED (conversion >= 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
