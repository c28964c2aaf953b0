"""``nnbuild suggest-hp RECIPE --budget N``: propose the ``_hp`` layers and print the recipe diff.

Reads the recipe's built patch and calibrate outputs (run ``doit build RECIPE`` first), simulates
on the first few check images (the bias-corrected models a build compiles, with
``quant.bias_correction``), and prints the chosen layers, the cosines before and after, and a
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
    parser.add_argument("--budget-ms",
                        help="estimated latency budget instead of a layer count: ms (20) or "
                             "ms over all-8-bit (+2); layers chosen by cosine gained per ms")
    parser.add_argument("--front", help="with --budget-ms: write the sets tried (worst output "
                                        "cosine vs estimated ms) to this file: JSON, or an "
                                        "inline-SVG plot if it ends in .html")
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


def check_feeds(recipe, graph, count: int, section: str = "check") -> list[dict]:
    """Preprocessed feeds of the first ``count`` images of the recipe's ``section`` (check or
    calibration; ``count`` None: all of them)."""
    from nnbuild.build.cache import Cache
    from nnbuild.build.fetch import fetch, image_refs
    from nnbuild.preprocess import NetworkInput
    from nnbuild.recipe.load import project_root

    images = getattr(recipe.spec, section)
    refs = image_refs(images.images, images.count, f"{section}.images")
    refs = refs if count is None else refs[:max(1, count)]
    cache = Cache(os.environ.get("NNBUILD_CACHE") or project_root() / "cache")
    net = NetworkInput.of(recipe.spec.input, graph)
    return [net.feed(fetch(ref, cache, f"{section}.images")) for ref in refs]


def bias_tables(recipe, graph) -> dict | None:
    """With ``quant.bias_correction``: the int8 and int16 bias deltas of every layer on the
    recipe's calibration pictures, as the calibrate stage computes them (None without)."""
    if not recipe.spec.quant.bias_correction:
        return None
    from nnbuild.nnie.biascorrect import corrections_for

    _say("bias correction: the int8 and int16 deltas on the calibration pictures")
    return corrections_for(graph, ["int8", "int16"], check_feeds(recipe, graph, None,
                                                                 "calibration"))


def main(args: argparse.Namespace) -> int:
    from nnbuild.recipe import load as recipes
    from nnbuild.check import suggest
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import Ranges

    recipe = recipes.load(args.recipe)
    patch = stage_dir(recipe.name, "patch")
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    ranges = Ranges.load(stage_dir(recipe.name, "calibrate") / "ranges.json")
    _say(f"simulating {max(1, args.images)} check image(s) in int8 and float")
    scorer = suggest.SimScorer(graph, ranges, check_feeds(recipe, graph, args.images),
                               bias=bias_tables(recipe, graph))
    if args.budget_ms is not None:
        return _by_latency(args, recipe, graph, scorer)
    budget = suggest.parse_budget(args.budget, len(scorer.candidates))
    _say(f"ranking {len(scorer.candidates)} weighted layers, each alone in 16-bit")
    score = _Counted(scorer.score, after=1 + len(scorer.candidates))
    result = suggest.search(score, scorer.candidates, budget, full=scorer.full(),
                            width=args.width, progress=_progress)
    print(f"# {recipe.name}: {len(result.layers)} of {len(scorer.candidates)} weighted layers "
          f"in 16-bit (budget {budget})", file=sys.stderr)
    print(f"# mean output cosine: int8 {result.base:.4f} -> {result.score:.4f} "
          f"(int16 {result.full:.4f}; {100 * result.fraction:.0f}% of the way)", file=sys.stderr)
    _write_diff(args, recipe, result.layers)
    return 0


def _say(message: str) -> None:
    print(f"suggest-hp: {message}", file=sys.stderr, flush=True)


class _Counted:
    """A score function that, after the ranking's ``after`` calls, says every few seconds how
    many layer sets the greedy steps have simulated (their count is not known in advance)."""

    def __init__(self, score, after: int, every: float = 5.0):
        import time

        self.score, self.after, self.every, self.calls = score, after, every, 0
        self.clock = time.monotonic
        self.last = self.clock()

    def __call__(self, hp):
        if self.calls == self.after:  # the ranking is done: the first greedy step starts
            self.last = self.clock()
            _say("greedy search: adding the layer that helps most, step by step")
        value = self.score(hp)
        self.calls += 1
        now = self.clock()
        if self.calls > self.after and now - self.last >= self.every:
            self.last = now
            _say(f"greedy search: {self.calls - self.after} layer sets tried")
        return value


def _progress(items):
    """The search's loops, shown as the stages show theirs (bar on a terminal, else lines)."""
    from nnbuild.build.progress import progress

    return progress(items, label="suggest-hp: layers tried")


def _write_diff(args, recipe, layers) -> None:
    from nnbuild.recipe import load as recipes
    from nnbuild.check import suggest

    text = recipe.path.read_text(encoding="utf-8")
    rel = recipe.path.relative_to(recipes.project_root())
    diff = suggest.recipe_diff(str(rel), text, layers)
    sys.stdout.write(diff)
    if args.output:
        pathlib.Path(args.output).write_text(diff, encoding="utf-8")


def _by_latency(args, recipe, graph, scorer) -> int:
    """``--budget-ms``: nnbuild.check.suggest_budget's search, the front listed on stderr."""
    import json

    from nnbuild.check import suggest_budget

    chip = recipe.spec.target.chip
    base_ms, extra = suggest_budget.extra_ms(graph, scorer.candidates, chip)
    budget = suggest_budget.parse_budget_ms(args.budget_ms, base_ms)
    _say(f"ranking {len(scorer.candidates)} weighted layers by cosine gained per ms")
    result = suggest_budget.search(lambda hp: min(scorer.cosines(hp).values()),
                                   scorer.candidates, extra, base_ms, budget, width=args.width,
                                   progress=_progress)
    print(f"# {recipe.name}: {len(result.layers)} layers in 16-bit, estimated "
          f"{result.ms:.2f} ms (all 8-bit {base_ms:.2f}, budget {budget:.2f}); worst output "
          f"cosine {result.base:.4f} -> {result.score:.4f}", file=sys.stderr)
    for item in result.front():
        print(f"#   front: {item['ms']:7.2f} ms  cosine {item['score']:.4f}  "
              f"{','.join(item['layers']) or '(all 8-bit)'}", file=sys.stderr)
    if args.front:
        record = {"recipe": recipe.name, "chip": chip, "budget_ms": budget, "base_ms": base_ms,
                  "layers": result.layers, "ms": result.ms, "score": result.score,
                  "front": result.front(), "tried": result.tried}
        text = json.dumps(record, indent=1) + "\n"
        if args.front.endswith(".html"):
            from nnbuild.check.latency_report import front_chart

            text = (f"<!DOCTYPE html><meta charset=\"utf-8\"><title>{recipe.name} front</title>"
                    + front_chart(result.tried, result.front(), budget))
        pathlib.Path(args.front).write_text(text, encoding="utf-8")
    _write_diff(args, recipe, result.layers)
    return 0
