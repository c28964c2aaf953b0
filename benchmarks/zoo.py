"""Build the recipe zoo from an empty cache and print the README's results table.

For each recipe: a cold ``doit build NAME`` into a fresh cache (fetch from the mirrors included),
then a no-op rebuild, then the numbers of its check report. Run from the project root:

    python benchmarks/zoo.py                       # every recipe (takes minutes)
    python benchmarks/zoo.py retinaface-640 mobilefacenet
    python benchmarks/zoo.py --without-pass align_channel_levels retinaface-640
    python benchmarks/zoo.py --add-pass align_channel_levels retinaface-640
    python benchmarks/zoo.py --bias-correction off retinaface-640

``--without-pass`` / ``--add-pass`` / ``--bias-correction on|off`` build a variant of each
recipe instead, in a temporary project (``extends: zoo:NAME`` with the pass removed from, or
appended to, its ``patches``, or ``quant.bias_correction`` set), to measure what one pass or
option does; recipes the variant would not change are skipped.

The cold time includes everything (patch proof, calibration on the recipe's full image counts,
check on its check set); the no-op time is the whole ``doit build`` process.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def recipes() -> list[str]:
    return sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))


def variant(name: str, project: pathlib.Path, without: str | None, add: str | None,
            bias: bool | None = None) -> bool:
    """Write ``project/recipes/NAME.yaml``: NAME with ``without`` removed from / ``add`` appended
    to its patches, and ``quant.bias_correction`` set to ``bias`` (None: as it is). False when
    that changes nothing (the pass absent / already there, the option already so)."""
    from nnbuild.recipe.load import load

    recipe = load(name, ROOT / "recipes")
    patches = list(recipe.data.get("patches") or [])
    names = [p if isinstance(p, str) else next(iter(p)) for p in patches]
    doc = {"extends": f"zoo:{name}"}
    if without and without in names:
        doc["patches"] = [p for p, n in zip(patches, names) if n != without]
    if add and add not in names:
        doc["patches"] = patches + [add]
    if bias is not None and recipe.spec.quant.bias_correction != bias:
        doc["quant"] = {"bias_correction": bias}
    if len(doc) == 1:
        return False
    (project / "recipes").mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc)  # JSON is YAML
    (project / "recipes" / f"{name}.yaml").write_text(text + "\n", encoding="utf-8")
    return True


def timed_build(name: str, env: dict, cwd: pathlib.Path = ROOT) -> float:
    start = time.perf_counter()
    command = ["doit"] if cwd == ROOT else ["nnbuild.cli"]
    done = subprocess.run([sys.executable, "-m", *command, "build", name], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: the check gate failed, the report still exists
        sys.exit(f"{name}: build failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def key_metrics(report: dict) -> str:
    task = report["task"]
    m = task["metrics"]
    if task["name"] in ("retinaface", "scrfd", "ultraface", "ssd"):
        text = f"recall vs float {m['recall_vs_float']:.3f}, box err {m['mean_box_px']:.2f} px"
        if "mean_landmark_px" in m:
            text += f", landmark err {m['mean_landmark_px']:.2f} px"
        return text
    if task["name"] == "embedding":
        return f"embedding cosine {m['embedding_cosine']:.4f} (min {m['embedding_cosine_min']:.4f})"
    return f"output cosine {m.get('output_cosine', float('nan')):.4f}"


def row(name: str, cache: pathlib.Path, cold: float, noop: float) -> str:
    report = json.loads((cache / "v1" / "out" / name / "check" / "report.json").read_text())
    worst = min(o["metrics"]["cosine"] for o in report["outputs"])
    latency = (report.get("latency") or {}).get("ms")
    ms = f"{latency:.2f}" if isinstance(latency, (int, float)) else "–"
    return (f"| {name} | {report['quant']['mode']} | {report['verdict']} | {worst:.4f} | "
            f"{key_metrics(report)} | {ms} | {cold:.1f} | {noop:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="recipes (default: all)")
    parser.add_argument("--without-pass", help="build each recipe without this patch pass")
    parser.add_argument("--add-pass", help="build each recipe with this pass appended")
    parser.add_argument("--bias-correction", choices=("on", "off"),
                        help="build each recipe with quant.bias_correction set so")
    args = parser.parse_args()
    bias = None if args.bias_correction is None else args.bias_correction == "on"
    print("| recipe | quant | verdict | worst output cosine | task metrics (quantized vs float) "
          "| est. latency ms | cold build s | no-op s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="nnbuild-zoo-") as tmp:
        for name in args.names or recipes():
            cache = pathlib.Path(tmp) / name  # one empty cache per recipe: every build is cold
            env = dict(os.environ, NNBUILD_CACHE=str(cache))
            cwd = ROOT
            if args.without_pass or args.add_pass or bias is not None:
                cwd = pathlib.Path(tmp) / f"{name}-project"
                if not variant(name, cwd, args.without_pass, args.add_pass, bias):
                    continue
                env.update(NNBUILD_ROOT=str(cwd), NNBUILD_MIRROR=os.pathsep.join(
                    str(ROOT.parent / "shared" / d) for d in ("models", "images")))
            cold = timed_build(name, env, cwd)
            noop = timed_build(name, env, cwd)
            print(row(name, cache, cold, noop), flush=True)


if __name__ == "__main__":
    main()
