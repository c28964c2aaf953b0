"""``nnbuild sizes RECIPE [--range 256:1280] [--step 1]``: input sizes where the patches are valid.

Lists the valid heights and widths (every pair of them is valid; pairs are verified with full
shape inference) and, with ``--check HxW``, which layer breaks at that size and why. ``--model
PROTOTXT`` (with ``--passes``) works without a recipe.
"""

from __future__ import annotations

import argparse
import pathlib

from nnbuild.errors import RecipeError


def register(subparsers) -> None:
    p = subparsers.add_parser("sizes", help="input sizes at which a recipe's patches are valid",
                              description=__doc__.splitlines()[0])
    p.add_argument("recipe", nargs="?", help="recipe name (file stem under recipes/)")
    p.add_argument("--model", type=pathlib.Path, help="a prototxt instead of a recipe")
    p.add_argument("--passes", default="remove_crop",
                   help="with --model: comma-separated passes (default remove_crop)")
    p.add_argument("--range", default="256:1280", help="side range LO:HI (default 256:1280)")
    p.add_argument("--height-range", help="height range LO:HI (default --range)")
    p.add_argument("--width-range", help="width range LO:HI (default --range)")
    p.add_argument("--step", type=int, default=1)
    p.add_argument("--check", help="explain one size, HxW")
    p.set_defaults(func=main)


def parse_range(text: str, step: int, where: str) -> range:
    """``LO:HI`` (inclusive) -> range."""
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        lo = hi = -1
    if lo < 1 or hi < lo or step < 1:
        raise RecipeError(where, "malformed range", expected="LO:HI with 1 <= LO <= HI, step "
                          ">= 1", got=f"{text} step {step}", hint="e.g. --range 256:1280")
    return range(lo, hi + 1, step)


def _recipe_graph(name: str):
    """The recipe's original graph (through the fetch logic) and its patch specs."""
    from nnbuild.build.cache import Cache
    from nnbuild.caffe import io
    from nnbuild.build.fetch import fetch
    from nnbuild.recipe.load import load, project_root

    recipe = load(name)
    path = fetch(recipe.spec.source["prototxt"], Cache(project_root() / "cache"),
                 "source.prototxt")
    return io.load(path).graph, list(recipe.spec.patches), recipe.spec


def load_problem(args: argparse.Namespace):
    """(graph after set_input_shape, specs) for a recipe or ``--model``."""
    from nnbuild.caffe import io
    from nnbuild.passes import PassContext, run_passes
    from nnbuild.passes.patching import pass_context

    if args.model:
        graph, specs, ctx = io.load(args.model).graph, args.passes.split(","), PassContext()
    elif args.recipe:
        graph, specs, spec = _recipe_graph(args.recipe)
        ctx = pass_context(spec)
    else:
        raise RecipeError("nnbuild sizes", "nothing to solve", expected="RECIPE or --model",
                          got="neither", hint="e.g. nnbuild sizes retinaface-640")
    if ctx.input_shape is None:
        ctx.input_shape = next(iter(graph.inputs.values()))
    graph, _ = run_passes(graph, ["set_input_shape"], context=ctx)
    return graph, [s for s in specs if s != "set_input_shape"]


def main(args: argparse.Namespace) -> int:
    from nnbuild.passes import sizes

    graph, specs = load_problem(args)
    if args.check:
        hw = tuple(int(v) for v in args.check.lower().split("x"))
        problems = sizes.Solver(graph, specs).problems(hw)
        print(f"{sizes.format_hw(hw)}: " + ("valid" if not problems else "invalid"))
        for p in problems:
            print(f"  {p}")
        below, above = sizes.nearest_valid(graph, specs, hw)
        print(f"nearest valid: below {below and sizes.format_hw(below)}, "
              f"above {above and sizes.format_hw(above)}")
        return 0
    hs = parse_range(args.height_range or args.range, args.step, "--height-range")
    ws = parse_range(args.width_range or args.range, args.step, "--width-range")
    sol = sizes.solve(graph, specs, hs, ws)
    print(f"valid heights: {sizes.format_sides(sol.heights) or 'none'}")
    print(f"valid widths:  {sizes.format_sides(sol.widths) or 'none'}")
    print(f"every (H, W) of these is valid: verified {sol.verified} of {sol.pairs} pairs "
          f"with full shape inference, {len(sol.failures)} failed")
    for hw, problems in sol.failures[:10]:
        print(f"  {sizes.format_hw(hw)}: {problems[0]}")
    return 0
