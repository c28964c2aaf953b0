"""Numeric proof of a patch: the float engine on the original and the patched model must agree.

For each picture and each output of the original network, ``max|a-b|`` and the relative
difference ``max|a-b| / max|a|`` (``a`` the original's output) are recorded. When the worst
relative difference exceeds the tolerance, the passes are replayed one at a time on the first
picture and the first pass after which the outputs drift is named in the failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, parse_spec, run_pass
from nnbuild.passes.cpu_split import run_split


def patched_outputs(graph: Graph, cpu_graph: Graph | None, feeds: dict) -> dict[str, np.ndarray]:
    """Outputs of the patched model (NNIE part then CPU part), keyed by Caffe name."""
    names = {**{b: graph.caffe_name(b) for b in graph.producers()},
             **({b: cpu_graph.caffe_name(b) for b in cpu_graph.producers()} if cpu_graph else {})}
    return {names.get(b, b): a for b, a in run_split(graph, cpu_graph, feeds).items()}


def original_outputs(graph: Graph, feeds: dict) -> dict[str, np.ndarray]:
    """Outputs of the original model, keyed by Caffe name."""
    from nnbuild.engine import run

    return {graph.caffe_name(b): a for b, a in run(graph, feeds).items()}


def _lookup(name: str, got: dict, renames: dict) -> np.ndarray | None:
    seen = set()
    while name not in got and name in renames and name not in seen:
        seen.add(name)
        name = renames[name]
    return got.get(name)


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], renames: dict
            ) -> dict[str, dict[str, float]]:
    """Per original output: max_abs and max_rel (``max|a-b| / max|a|``)."""
    out = {}
    for name, a in ref.items():
        b = _lookup(name, got, renames)
        if b is None or b.shape != a.shape:
            out[name] = {"max_abs": float("inf"), "max_rel": float("inf"),
                         "missing": b is None}
            continue
        diff = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
        scale = float(np.abs(a).max()) if a.size else 0.0
        out[name] = {"max_abs": diff, "max_rel": diff / scale if scale else diff}
    return out


def culprit(original: Graph, specs: list, recipe_ctx: PassContext, feeds: dict,
            tolerance: float) -> tuple[str | None, float]:
    """Replay the passes one by one; the first whose result drifts above ``tolerance``."""
    ref = original_outputs(original, feeds)
    ctx = PassContext(recipe_ctx.input_shape, recipe_ctx.input_name,
                      list(recipe_ctx.high_precision), recipe_ctx.chip,
                      quant_mode=recipe_ctx.quant_mode)
    graph = original
    for spec in specs:
        graph, _ = run_pass(graph, spec, ctx)
        diffs = compare(ref, patched_outputs(graph, ctx.cpu_graph, feeds), ctx.renames)
        worst = max((d["max_rel"] for d in diffs.values()), default=0.0)
        if worst > tolerance:
            return parse_spec(spec)[0], worst
    return None, 0.0


def prove(original: Graph, patched: Graph, pctx: PassContext, specs: list,
          pictures: list[tuple[str, dict]], tolerance: float
          ) -> tuple[dict[str, Any], PassError | None]:
    """Compare original and patched outputs on ``pictures`` (``(name, feeds)`` pairs); returns
    (report, failure or None)."""
    per_output: dict[str, dict[str, float]] = {}
    images = []
    for name, feeds in pictures:
        diffs = compare(original_outputs(original, feeds),
                        patched_outputs(patched, pctx.cpu_graph, feeds), pctx.renames)
        images.append({"image": name, "outputs": diffs})
        for name, d in diffs.items():
            agg = per_output.setdefault(name, {"max_abs": 0.0, "max_rel": 0.0})
            agg["max_abs"] = max(agg["max_abs"], d["max_abs"])
            agg["max_rel"] = max(agg["max_rel"], d["max_rel"])
    worst = max((d["max_rel"] for d in per_output.values()), default=0.0)
    report = {"tolerance": tolerance, "images": images, "outputs": per_output,
              "max_rel": worst, "passed": worst <= tolerance}
    if worst <= tolerance:
        return report, None
    name, drift = culprit(original, specs, pctx, pictures[0][1], tolerance)
    bad = max(per_output, key=lambda k: per_output[k]["max_rel"])
    report["culprit"] = name
    return report, PassError(f"pass {name or '?'}", f"changed the network's outputs (output "
                             f"{bad!r})", expected=f"max|a-b|/max|a| <= {tolerance:g}",
                             got=f"{worst:.3g}", hint="remove the pass from the recipe's patches, "
                             "or raise patch_check.tolerance if the drift is expected")
