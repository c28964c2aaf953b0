"""Stage ``patch``: run the recipe's passes, prove the result numerically, lint it.

Outputs (docs/design.md "Stages"): ``model.prototxt``/``model.caffemodel`` (patched; the NNIE
part), ``cpu.prototxt``/``cpu.caffemodel`` (only with ``cpu_split``), ``patch-report.json``
(each pass's changes, the per-output float differences, the final outputs) and ``lint.json``.

The numeric proof runs the float engine on the original and on the patched model (NNIE part, then
CPU part) at the recipe's input size on the ``patch_check`` pictures; per output it records
``max|a-b|`` and ``max|a-b| / max|a|`` (``a`` the original). Above ``patch_check.tolerance``
(default 1e-4) the passes are replayed one by one on the first picture to name the pass that
changed the numbers, and the stage fails (outputs are still written, for inspection).

Importable without numpy: heavy modules are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NAME = "patch"
NEEDS = ("fetch",)
READS = ("input", "patches", "patch_check", "quant.high_precision", "target.chip")
GROUP = "patch_check"
DEFAULT_TOLERANCE = 1e-4


def external_inputs(recipe: dict) -> dict[str, list]:
    """The proof pictures: ``{"patch_check": [ref, ...]}`` (none without ``patch_check``)."""
    from nnbuild.build.fetch import image_refs

    spec = recipe.get("patch_check") or {}
    if not spec.get("images"):
        return {GROUP: []}
    return {GROUP: image_refs(spec["images"], spec.get("count"), "patch_check.images")}


def pass_context(recipe: dict):
    """The ``PassContext`` a recipe gives its passes."""
    from nnbuild.passes import PassContext

    inp = recipe.get("input") or {}
    return PassContext(input_shape=tuple(inp["shape"]) if inp.get("shape") else None,
                       input_name=inp.get("name"),
                       high_precision=list((recipe.get("quant") or {}).get("high_precision")
                                           or []),
                       chip=(recipe.get("target") or {}).get("chip"))


def pass_specs(recipe: dict) -> list:
    """The recipe's ``patches``, plus ``mark_high_precision`` last when ``quant.high_precision``
    names layers and the recipe did not place the pass itself: compile_mode 2 only sees the
    ``_hp`` suffix (nnie-facts.md §2), so a list without the renaming would silently do nothing.
    """
    specs = list(recipe.get("patches") or [])
    names = {spec if isinstance(spec, str) else next(iter(spec)) for spec in specs}
    if (recipe.get("quant") or {}).get("high_precision") and "mark_high_precision" not in names:
        specs.append("mark_high_precision")
    return specs


def load_feed(path: Path, recipe: dict, graph) -> dict:
    """One picture preprocessed as the recipe says, keyed by the graph's input blob."""
    from nnbuild.preprocess import load_tensor

    inp = recipe.get("input") or {}
    name = inp.get("name") or next(iter(graph.inputs))
    shape = inp.get("shape") or graph.inputs[name]
    x = load_tensor(path, shape, color=inp.get("color", "RGB"), mean=inp.get("mean", (0, 0, 0)),
                    scale=inp.get("scale", 1.0), resize=inp.get("resize", "stretch"),
                    pad_value=inp.get("pad_value", 0))
    return {name: x}


def run(ctx) -> None:
    """Patch, save, lint and prove (see the module docstring)."""
    from nnbuild.caffe import io

    up = ctx.upstream("fetch")
    original = io.load(up / "model.prototxt", up / "model.caffemodel").graph
    result = patch_model(original, ctx.recipe, ctx.files(GROUP), log=ctx.log)
    write_outputs(result, ctx.out)
    if result["failure"] is not None:
        ctx.fail(result["failure"])


def patch_model(original, recipe: dict, pictures: list[Path], log=None) -> dict[str, Any]:
    """Run the passes and the proof; returns graphs, report, lint findings and any failure."""
    from nnbuild.nnie.lint import lint
    from nnbuild.passes import run_passes
    from nnbuild.passes.proof import prove

    specs = pass_specs(recipe)
    pctx = pass_context(recipe)
    patched, passes = run_passes(original, specs, context=pctx)
    chip = (recipe.get("target") or {}).get("chip") or "hi3516dv300"
    findings = lint(patched, chip)
    check = (recipe.get("patch_check") or {})
    tolerance = float(check.get("tolerance", DEFAULT_TOLERANCE))
    proof, failure = prove(original, patched, pctx, specs, recipe, pictures, tolerance)
    if log:
        log(f"{len(specs)} passes, {len(original.layers)} -> {len(patched.layers)} layers, "
            f"max rel diff {proof.get('max_rel', 0.0):.3g} on {len(pictures)} pictures")
    report = {"schema_version": 1, "passes": passes, "check": proof,
              "input": {n: list(s) for n, s in patched.inputs.items()},
              "outputs": [patched.caffe_name(b) for b in patched.outputs],
              "renamed_outputs": dict(pctx.renames),
              "layers": {"before": len(original.layers), "after": len(patched.layers)},
              "cpu_split": _cpu_summary(pctx)}
    return {"graph": patched, "cpu_graph": pctx.cpu_graph, "report": report,
            "lint": findings, "failure": failure}


def _cpu_summary(pctx) -> dict | None:
    if pctx.cpu_graph is None:
        return None
    g = pctx.cpu_graph
    return {"layers": [la.name for la in g.layers],
            "inputs": {g.caffe_name(b): list(s) for b, s in g.inputs.items()},
            "shape_only": [g.caffe_name(b) for b in pctx.cpu_split.get("shape_only", [])],
            "outputs": [g.caffe_name(b) for b in g.outputs]}


def write_outputs(result: dict, out: Path) -> None:
    """model.*, cpu.* (if split), patch-report.json and lint.json into ``out``."""
    import dataclasses

    from nnbuild.caffe import io

    io.save(result["graph"], out / "model.prototxt", out / "model.caffemodel")
    if result["cpu_graph"] is not None:
        io.save(result["cpu_graph"], out / "cpu.prototxt", out / "cpu.caffemodel")
    _write_json(out / "patch-report.json", result["report"])
    findings = [dataclasses.asdict(f) for f in result["lint"]]
    clean = not [f for f in findings if f["severity"] in ("error", "warning")]
    _write_json(out / "lint.json", {"clean": clean, "findings": findings})


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
