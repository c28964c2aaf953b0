"""Benchmark: quantized simulation vs float engine on RetinaFace 640 (issue #6: at most 3x).

Usage: ``python benchmarks/quantized.py [--repeat 7] [--mode int8]``. Runs float and quantized
inference on the same picture alternately (so load on a shared machine hits both alike) and prints
the medians and their ratio. The plan (quantized weights, rounding tables) is prepared before
timing: it is built once per graph, not per picture.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--mode", default="int8", choices=("int8", "int16"))
    args = parser.parse_args(argv)

    from nnbuild import preprocess
    from nnbuild.caffe import io
    from nnbuild.engine import run
    from nnbuild.nnie.calibrate import calibrate
    from nnbuild.nnie.simulate import prepare, simulate
    from nnbuild.passes import PassContext, run_passes

    folder = SHARED / "models" / "retinaface-mnet25"
    graph = io.load(folder / "mnet.prototxt", folder / "mnet.caffemodel").graph
    graph, _ = run_passes(graph, ["set_input_shape", "remove_crop", "reshape_batch_zero",
                                  "fold_batchnorm"], context=PassContext(input_shape=(1, 3, 640, 640)))
    photos = sorted((SHARED / "images" / "photos").glob("*.jpg"))[:4]
    feeds = [{"data": preprocess.load_tensor(p, (640, 640), resize="letterbox")} for p in photos]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranges = calibrate(graph, feeds[:3])
    start = time.perf_counter()
    plan = prepare(graph, ranges, args.mode)
    simulate(graph, ranges, args.mode, feeds[3], plan=plan)  # builds the rounding tables
    setup = time.perf_counter() - start
    float_times, quant_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        run(graph, feeds[3])
        float_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        simulate(graph, ranges, args.mode, feeds[3], plan=plan)
        quant_times.append(time.perf_counter() - start)
    f, q = statistics.median(float_times), statistics.median(quant_times)
    print(f"retinaface-640 {args.mode}: float median {f * 1000:.0f} ms, quantized median "
          f"{q * 1000:.0f} ms, ratio {q / f:.2f}x (plan setup {setup * 1000:.0f} ms, "
          f"{args.repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
