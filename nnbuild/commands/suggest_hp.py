"""``nnbuild suggest-hp RECIPE --budget N``: propose the ``_hp`` layers and print the recipe diff.

Reads the recipe's built patch and calibrate outputs (run ``doit build RECIPE`` first), simulates
on the first few check images, and prints the chosen layers, the cosines before and after, and a
unified diff of the recipe (``quant: {mode: mixed, high_precision: [...]}``) that ``patch -p1``
or ``git apply`` applies.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from nnbuild.errors import RecipeError


def register(subparsers) -> None:
    parser = subparsers.add_parser("suggest-hp", help="propose 16-bit (_hp) layers for a recipe",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name (file stem under recipes/)")
    parser.add_argument("--budget", default="15%",
                        help="most _hp layers: a count (8) or a percentage of the weighted "
                             "layers (15%%, the default)")
    parser.add_argument("--images", type=int, default=2,
                        help="check images to simulate (default 2)")
    parser.add_argument("--width", type=int, default=4,
                        help="candidates tried per greedy step (default 4)")
    parser.add_argument("-o", "--output", help="also write the diff to this file")
    parser.set_defaults(func=main)


def stage_dir(name: str, stage: str) -> pathlib.Path:
    """The materialised outputs of ``stage`` for recipe ``name`` (RecipeError when not built)."""
    from nnbuild.build import runner

    path = pathlib.Path(runner.stage_output_dir(name, stage))
    if not path.is_dir():
        raise RecipeError(name, f"the {stage} stage has not been built",
                          expected=f"outputs in {path}", got="nothing",
                          hint=f"run `doit build {name}` first")
    return path


def check_feeds(recipe, graph, count: int) -> list[dict]:
    """Preprocessed feeds of the first ``count`` check images."""
    from nnbuild.build.cache import Cache
    from nnbuild.build.fetch import fetch, image_refs
    from nnbuild.preprocess import NetworkInput
    from nnbuild.recipe.load import project_root

    check = recipe.spec.check
    refs = image_refs(check.images, check.count, "check.images")[:max(1, count)]
    cache = Cache(os.environ.get("NNBUILD_CACHE") or project_root() / "cache")
    net = NetworkInput.of(recipe.spec.input, graph)
    return [net.feed(fetch(ref, cache, "check.images")) for ref in refs]


def main(args: argparse.Namespace) -> int:
    from nnbuild.recipe import load as recipes
    from nnbuild.check import suggest
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import Ranges

    recipe = recipes.load(args.recipe)
    patch = stage_dir(recipe.name, "patch")
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    ranges = Ranges.load(stage_dir(recipe.name, "calibrate") / "ranges.json")
    scorer = suggest.SimScorer(graph, ranges, check_feeds(recipe, graph, args.images))
    budget = suggest.parse_budget(args.budget, len(scorer.candidates))
    result = suggest.search(scorer.score, scorer.candidates, budget, full=scorer.full(),
                            width=args.width)
    print(f"# {recipe.name}: {len(result.layers)} of {len(scorer.candidates)} weighted layers "
          f"in 16-bit (budget {budget})", file=sys.stderr)
    print(f"# mean output cosine: int8 {result.base:.4f} -> {result.score:.4f} "
          f"(int16 {result.full:.4f}; {100 * result.fraction:.0f}% of the way)", file=sys.stderr)
    text = recipe.path.read_text(encoding="utf-8")
    rel = recipe.path.relative_to(recipes.project_root())
    diff = suggest.recipe_diff(str(rel), text, result.layers)
    sys.stdout.write(diff)
    if args.output:
        pathlib.Path(args.output).write_text(diff, encoding="utf-8")
    return 0

