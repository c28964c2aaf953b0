"""The patch library: a recipe's passes run on a model, proven numerically, linted.

``patch_model`` is what the patch stage and ``nnbuild patch`` both call. The proof runs the float
engine on the original and the patched model (NNIE part, then CPU part) on the ``patch_check``
pictures; per output it records ``max|a-b|`` and ``max|a-b| / max|a|``. Above the tolerance the
passes are replayed one by one to name the pass that changed the numbers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from nnbuild.passes import PassContext


def pass_context(spec) -> PassContext:
    """The ``PassContext`` a recipe (``RecipeSpec``) gives its passes."""
    return PassContext(input_shape=spec.input.shape, input_name=spec.input.name,
                       high_precision=list(spec.quant.high_precision), chip=spec.target.chip,
                       quant_mode=spec.quant.mode)


def pass_specs(spec) -> list:
    """The recipe's ``patches``, plus ``mark_high_precision`` last when ``quant.high_precision``
    names layers and the recipe did not place the pass itself: compile_mode 2 only sees the
    ``_hp`` suffix (nnie-facts.md §2), so a list without the renaming would silently do nothing.
    """
    specs = list(spec.patches)
    names = {s if isinstance(s, str) else next(iter(s)) for s in specs}
    if spec.quant.high_precision and "mark_high_precision" not in names:
        specs.append("mark_high_precision")
    return specs


def patch_model(original, spec, pictures: list[Path], log=None) -> dict[str, Any]:
    """Run the passes and the proof; returns graphs, report, lint findings and any failure."""
    from nnbuild.nnie.lint import lint
    from nnbuild.passes import run_passes
    from nnbuild.passes.proof import prove
    from nnbuild.preprocess import NetworkInput

    specs = pass_specs(spec)
    pctx = pass_context(spec)
    patched, passes = run_passes(original, specs, context=pctx)
    findings = lint(patched, spec.target.chip)
    net = NetworkInput.of(spec.input, original)
    feeds = [(Path(p).name, net.feed(p)) for p in pictures]
    proof, failure = prove(original, patched, pctx, specs, feeds, spec.patch_check.tolerance)
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
