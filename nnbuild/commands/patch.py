"""``nnbuild patch MODEL.prototxt MODEL.caffemodel --passes a,b,c``: patch passes without a recipe.

Writes the patch stage's outputs (``model.*``, ``cpu.*`` with ``cpu_split``, ``patch-report.json``,
``lint.json``) to ``-o OUTDIR``; with ``--images`` it also runs the numeric proof on them.
"""

from __future__ import annotations

import argparse
import pathlib

from nnbuild.errors import RecipeError
from nnbuild.nnie.chips import DEFAULT_CHIP


def register(subparsers) -> None:
    p = subparsers.add_parser("patch", help="apply NNIE patch passes to a Caffe model",
                              description=__doc__.splitlines()[0])
    p.add_argument("prototxt", type=pathlib.Path)
    p.add_argument("caffemodel", type=pathlib.Path)
    p.add_argument("--passes", required=True,
                   help="comma-separated pass names, run in this order (e.g. "
                        "set_input_shape,remove_crop,reshape_batch_zero)")
    p.add_argument("--input-shape", help="N,C,H,W or HxW (for set_input_shape and the proof)")
    p.add_argument("--outputs", help="comma-separated output order for nnie_order")
    p.add_argument("--images", nargs="*", type=pathlib.Path, default=[],
                   help="pictures for the numeric proof (RGB, no mean/scale unless given)")
    p.add_argument("--color", default="RGB", choices=("RGB", "BGR"))
    p.add_argument("--mean", default="0,0,0", help="per-channel mean, e.g. 104,117,123")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--chip", default=DEFAULT_CHIP)
    p.add_argument("-o", "--out", type=pathlib.Path, required=True, help="output directory")
    p.set_defaults(func=main)


def parse_shape(text: str | None, channels: int = 3) -> list[int] | None:
    """``1,3,640,640`` or ``640x480`` (H x W) -> [N, C, H, W]."""
    if not text:
        return None
    try:
        if "x" in text.lower():
            h, w = (int(v) for v in text.lower().split("x"))
            return [1, channels, h, w]
        dims = [int(v) for v in text.split(",")]
    except ValueError:
        dims = []
    if len(dims) != 4:
        raise RecipeError("--input-shape", "malformed shape", expected="N,C,H,W or HxW",
                          got=text, hint="e.g. --input-shape 1,3,640,640 or 640x640")
    return dims


def recipe_from_args(args: argparse.Namespace, channels: int):
    """The recipe (``RecipeSpec``) the patch library reads, built from command-line options."""
    from nnbuild.recipe.spec import RecipeSpec

    specs: list = [s.strip() for s in args.passes.split(",") if s.strip()]
    if args.outputs:
        outs = [o.strip() for o in args.outputs.split(",") if o.strip()]
        specs = [{"nnie_order": {"outputs": outs}} if s == "nnie_order" else s for s in specs]
    inp = {"color": args.color, "mean": [float(m) for m in args.mean.split(",")],
           "scale": args.scale, "resize": "stretch"}
    shape = parse_shape(args.input_shape, channels)
    if shape:
        inp["shape"] = shape
    return RecipeSpec.from_data({"input": inp, "patches": specs, "target": {"chip": args.chip},
                                 "patch_check": {"tolerance": args.tolerance}}, "nnbuild patch")


def main(args: argparse.Namespace) -> int:
    from nnbuild.caffe import io
    from nnbuild.passes.patching import patch_model, write_outputs

    graph = io.load(args.prototxt, args.caffemodel).graph
    first = next(iter(graph.inputs.values()))
    recipe = recipe_from_args(args, int(first[1]) if first and len(first) > 1 else 3)
    result = patch_model(graph, recipe, list(args.images))
    args.out.mkdir(parents=True, exist_ok=True)
    write_outputs(result, args.out)
    report = result["report"]
    print(f"{args.out}: {report['layers']['before']} -> {report['layers']['after']} layers; "
          f"outputs: {', '.join(report['outputs'])}")
    if args.images:
        print(f"numeric proof on {len(args.images)} pictures: max rel diff "
              f"{report['check']['max_rel']:.3g} (tolerance {args.tolerance:g})")
    lint_errors = [f for f in result["lint"] if f.severity in ("error", "warning")]
    for finding in lint_errors:
        print(finding.line())
    if result["failure"] is not None:
        raise result["failure"]
    return 0
