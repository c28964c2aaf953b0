"""Benchmark of the float engine: median ms per forward pass, a GEMM floor, peak memory, BLAS.

    python benchmarks/engine.py [--runs 15] [--cases mnet640,mnet1024,mobilefacenet] [--steps 12]

Cases: RetinaFace mnet.25 at 640x640 and 1024x1024, MobileFaceNet at 112x112 (models from
../shared/models). For each: median and best ms over ``--runs`` forward passes, the network's
MACs, and a *floor* measured in the same run: one float32 GEMM with the same number of MACs on
one BLAS thread (the engine runs BLAS single-threaded, see nnbuild/engine/blas.py). The machine
is shared, so absolute numbers are noisy; the ratio to the floor is the stable figure. Memory:
the traced peak of numpy buffers during one forward pass (tracemalloc) and the process's peak
RSS so far. Targets (issue #3): mnet 640 <= 100 ms, MobileFaceNet <= 15 ms, mnet 1024 < 1 GiB.

``--steps N`` also times every step of the run (one layer or one fused group) and prints the N
costliest kinds of step, each the sum over its steps of the *fastest* of the runs: on a loaded
machine that sum is steadier than the median of whole passes (it omits the Python glue between
steps and, on a busy machine, the interference that the whole passes suffer).
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODELS = ROOT.parent / "shared" / "models"

from nnbuild.caffe.io import load  # noqa: E402
from nnbuild.engine import blas, run, runner  # noqa: E402
from nnbuild.shapes.stats import graph_stats, totals  # noqa: E402

CASES = {
    "mnet640": ("retinaface-mnet25/mnet", (1, 3, 640, 640), 100.0),
    "mnet1024": ("retinaface-mnet25/mnet", (1, 3, 1024, 1024), None),
    "mobilefacenet": ("mobilefacenet/mobilefacenet", (1, 3, 112, 112), 15.0),
}


def macs(graph, feeds) -> int:
    shapes = {}
    run(graph, feeds, on_blob=lambda layer, blob, arr: shapes.__setitem__(blob, arr.shape))
    return totals(graph_stats(graph, shapes))[1]


def gemm_floor_ms(n_macs: int, runs: int) -> float:
    """Median ms of one float32 (256 x K) @ (K x 1024) GEMM with ``n_macs`` MACs, 1 thread."""
    k = max(1, n_macs // (256 * 1024))
    a = np.random.default_rng(0).standard_normal((256, k), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((k, 1024), dtype=np.float32)
    times = []
    with blas.limited(1):
        a @ b
        for _ in range(runs):
            start = time.perf_counter()
            a @ b
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench(name: str, runs: int) -> dict:
    stem, shape, target = CASES[name]
    graph = load(MODELS / f"{stem}.prototxt", MODELS / f"{stem}.caffemodel").graph
    [input_name] = graph.inputs
    feeds = {input_name: np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)}
    run(graph, feeds)  # warm-up (also flushes denormal weights once)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(graph, feeds)
        times.append((time.perf_counter() - start) * 1000)
    tracemalloc.start()
    run(graph, feeds)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n_macs = macs(graph, feeds)
    return {"case": name, "median_ms": statistics.median(times), "best_ms": min(times),
            "target_ms": target, "gmacs": n_macs / 1e9, "floor_ms": gemm_floor_ms(n_macs, runs),
            "peak_traced_mib": peak / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _step_kind(layers, blobs) -> str:
    first = layers[0]
    kind = "+".join(layer.type for layer in layers)
    if first.type == "Convolution" and first.bottoms[0] in blobs:
        cp = first.param.convolution_param
        shape = "x".join(map(str, blobs[first.bottoms[0]].shape[1:]))
        kind += f" {'dw' if cp.group > 1 else 'k' + 'x'.join(map(str, cp.kernel_size))} {shape}"
    return kind


def step_profile(name: str, runs: int, top: int) -> tuple[float, float, list]:
    """(min ms of whole passes, sum of per-step minima, [(ms, count, kind), ...] costliest)."""
    stem, shape, _ = CASES[name]
    graph = load(MODELS / f"{stem}.prototxt", MODELS / f"{stem}.caffemodel").graph
    [input_name] = graph.inputs
    feeds = {input_name: np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)}
    best: dict[int, float] = {}
    kinds: dict[int, str] = {}
    counter = [0]
    group, layer = runner._run_group, runner.run_layer

    def timed(kind: str, call):
        start = time.perf_counter()
        result = call()
        i, counter[0] = counter[0], counter[0] + 1
        best[i] = min(best.get(i, float("inf")), time.perf_counter() - start)
        kinds[i] = kind
        return result

    runner._run_group = lambda step, blobs, *a: timed(
        _step_kind(step.layers, blobs), lambda: group(step, blobs, *a))
    runner.run_layer = lambda lay, inputs, *a: timed(lay.type, lambda: layer(lay, inputs, *a))
    try:
        passes = []
        for _ in range(runs):
            counter[0] = 0
            start = time.perf_counter()
            run(graph, feeds)
            passes.append(time.perf_counter() - start)
    finally:
        runner._run_group, runner.run_layer = group, layer
    total, count = collections.Counter(), collections.Counter()
    for i, kind in kinds.items():
        total[kind] += best[i] * 1000
        count[kind] += 1
    return (min(passes) * 1000, sum(best.values()) * 1000,
            [(ms, count[k], k) for k, ms in total.most_common(top)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="also print the N costliest kinds of step (see the module doc)")
    args = parser.parse_args(argv)
    print(f"BLAS: {blas.info()}")
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name in args.cases.split(","):
        r = bench(name, args.runs)
        target = f" (target <= {r['target_ms']:.0f})" if r["target_ms"] else ""
        print(f"{name:14s} median {r['median_ms']:7.1f} ms{target}, best {r['best_ms']:7.1f} ms | "
              f"{r['gmacs']:.3f} GMAC, GEMM floor {r['floor_ms']:6.1f} ms "
              f"(x{r['median_ms'] / r['floor_ms']:.1f}) | peak traced {r['peak_traced_mib']:.0f} "
              f"MiB, peak RSS so far {r['peak_rss_mib']:.0f} MiB")
        if args.steps:
            whole, steps, rows = step_profile(name, args.runs, args.steps)
            print(f"  steps: fastest pass {whole:.1f} ms, sum of per-step minima {steps:.1f} ms")
            for ms, n, kind in rows:
                print(f"  {ms:8.2f} ms  x{n:<3d} {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
