"""What align_channel_levels does to a recipe's quantized accuracy, against random re-parametrisations.

Patches the recipe's model as its recipe does (without the pass), calibrates on its calibration
photos and compares float vs the NNIE simulation on its check photos (as the check stage does:
cosine per output, mean over photos) for:

* ``plain``: the recipe without the pass;
* ``aligned``: with ``align_channel_levels`` (each depthwise channel's maximum on a level);
* ``random-N``: the same chains rescaled by random per-channel factors in [1, 2**(1/S)) - the
  same float function, and the same distribution of scales as the pass, but no alignment. Their
  spread is how much the result moves when nothing but the rounding pattern changes;
* ``weights-only`` rows: the same with float activations (only weights quantized).

    python benchmarks/align_levels.py retinaface-640 --random 4
    python benchmarks/align_levels.py retinaface-640 --random 2 --check-dir ../shared/images/widerface-val416
    python benchmarks/align_levels.py retinaface-640 --random 2 --bias-correction

``--bias-correction`` corrects every variant's biases for its weight rounding first
(``nnbuild.nnie.biascorrect``, as ``quant.bias_correction`` does in a build) and compares the
corrected simulation with the uncorrected float model.

Prints one line per variant: worst output cosine and the mean over the outputs whose name
contains none of ``--exclude`` (default ``cls``, RetinaFace's class scores; box and landmark
regressions remain).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def local(ref: dict, cache) -> pathlib.Path:
    """A pinned file from the mirrors (or its URL), through a throw-away cache."""
    from nnbuild.build.fetch import fetch

    return fetch(ref, cache)


def photos(selection, cache) -> list[pathlib.Path]:
    from nnbuild.build.fetch import image_refs

    return [local(ref, cache) for ref in image_refs(selection.images, selection.count)]


def measure(graph, spec, cal, chk, ref, weights_only: bool,
            bias_correction: bool = False) -> dict[str, float]:
    """Mean cosine per output (float vs simulation) over the check feeds."""
    from nnbuild.engine import run
    from nnbuild.nnie import biascorrect
    from nnbuild.nnie.calibrate import calibrate
    from nnbuild.nnie.simulate import prepare, simulate

    if bias_correction:
        graph = biascorrect.apply(graph, biascorrect.corrections(graph, spec.quant.mode, cal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guide's 20-picture warning
        ranges = calibrate(graph, iter(cal))
    plan = prepare(graph, ranges, spec.quant.mode)
    out: dict[str, list[float]] = {}
    for feed, expected in zip(chk, ref):
        got = run(graph, feed, weights=plan.weights) if weights_only else \
            simulate(graph, ranges, spec.quant.mode, feed, plan=plan)
        for blob, value in expected.items():
            out.setdefault(graph.caffe_name(blob), []).append(cosine(value, got[blob]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def random_weights(seed: int):
    """A ``rescale`` strategy: per-group scales uniform in [1, 2**(1/S))."""
    from nnbuild.nnie.quantize import FORMATS
    from nnbuild.nnie.quantpoints import weight_groups

    rng = np.random.default_rng(seed)

    def weights_of(layer, bits):
        groups = weight_groups(layer)
        scales = rng.uniform(1.0, 2.0 ** (1 / FORMATS[bits][0]), groups)
        w = np.asarray(layer.blobs[0], np.float64).reshape(groups, -1) * scales[:, None]
        return w.astype(np.float32).reshape(np.shape(layer.blobs[0])), scales
    return weights_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--random", type=int, default=4, help="random re-parametrisations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", default="cls", help="outputs left out of the mean")
    parser.add_argument("--weights-only", action="store_true", help="also float activations")
    parser.add_argument("--bias-correction", action="store_true",
                        help="correct each variant's biases for its weight rounding first")
    parser.add_argument("--check-dir", type=pathlib.Path,
                        help="check on the pictures of this folder instead of the recipe's")
    parser.add_argument("--check-count", type=int, default=60,
                        help="pictures taken from --check-dir (sorted by name)")
    args = parser.parse_args()

    from nnbuild.build.cache import Cache
    from nnbuild.recipe.load import load

    spec = load(args.recipe, ROOT / "recipes").spec
    if "prototxt" not in spec.source:
        sys.exit(f"{args.recipe}: only Caffe sources (prototxt + caffemodel) are supported here")
    with tempfile.TemporaryDirectory(prefix="nnbuild-align-") as tmp:
        report(args, spec, Cache(tmp))


def report(args, spec, cache) -> None:
    """Build the variants and print their lines (see the module docstring)."""
    from nnbuild.caffe import io
    from nnbuild.engine import run
    from nnbuild.passes import run_passes
    from nnbuild.passes.align_channel_levels import rescale
    from nnbuild.passes.patching import pass_context, pass_specs
    from nnbuild.preprocess import NetworkInput

    original = io.load(local(spec.source["prototxt"], cache),
                       local(spec.source["caffemodel"], cache)).graph
    specs = [s for s in pass_specs(spec) if s != "align_channel_levels"]
    plain, _ = run_passes(original, specs, context=pass_context(spec))
    net = NetworkInput.of(spec.input, original)
    cal = [net.feed(p) for p in photos(spec.calibration, cache)]
    if args.check_dir is not None:
        pictures = sorted(p for p in args.check_dir.rglob("*") if p.suffix.lower() in
                          (".jpg", ".jpeg", ".png"))[:args.check_count]
        chk = [net.feed(p) for p in pictures]
        print(f"check set: {len(chk)} pictures of {args.check_dir}", flush=True)
    else:
        chk = [net.feed(p) for p in photos(spec.check, cache)]
    ref = [run(plain, feed) for feed in chk]
    variants = {"plain": plain,
                "aligned": run_passes(plain, ["align_channel_levels"],
                                      context=pass_context(spec))[0]}
    for i in range(args.random):
        variants[f"random-{i}"] = rescale(plain, pass_context(spec),
                                          random_weights(args.seed + i))[0]
    for weights_only in ([False, True] if args.weights_only else [False]):
        for name, graph in variants.items():
            m = measure(graph, spec, cal, chk, ref, weights_only, args.bias_correction)
            kept = [v for k, v in m.items() if args.exclude not in k]
            label = name + (" (weights only)" if weights_only else "")
            print(f"{label:26s} worst {min(m.values()):.4f}  mean {np.mean(kept):.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
