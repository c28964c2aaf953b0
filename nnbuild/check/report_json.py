"""Assemble report.json (docs/report-json.md) from the per-image check results, and gate it."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from nnbuild.check import metrics as check
from nnbuild.check.image import HIST_BINS, load_models
from nnbuild.recipe.spec import GENERIC_GATES

SENSITIVITY_IMAGES = 2
HISTOGRAM_LAYERS = 5


def layer_results(graph, plan, ranges, results: Sequence[dict]) -> list[dict]:
    """``layer_result`` entries, one per produced blob, in execution order."""
    entries = []
    for index, layer in enumerate(graph.layers):
        for top in layer.tops:
            iso = [r["isolated"][top] for r in results if top in r["isolated"]]
            entries.append({
                "index": index, "layer": layer.name, "type": layer.type,
                "blob": graph.caffe_name(top), "ssa_blob": top,
                "bits": plan.points.blobs.get(top),
                "accumulated": check.aggregate([r["accumulated"][top] for r in results]),
                "isolated": check.aggregate(iso) if len(iso) == len(results) else None,
                "float_abs_max": ranges.blobs.get(top)})
    return entries


def histograms(graph, plan, layers: list[dict], results: Sequence[dict]) -> list[dict]:
    """Activation histograms vs quantizer levels for the worst layers (lowest isolated cosine)."""
    from nnbuild.nnie import quantize

    stored = [e for e in layers if e["isolated"] and e["ssa_blob"] in plan.blob_max]
    worst = sorted(stored, key=lambda e: e["isolated"]["cosine"])[:HISTOGRAM_LAYERS]
    out = []
    for entry in worst:
        blob, top = entry["ssa_blob"], plan.blob_max[entry["ssa_blob"]]
        bits = plan.points.blobs[blob]
        counts = np.sum([r["histograms"][blob] for r in results], axis=0)
        levels = np.asarray(quantize.levels(top, bits), dtype=np.float64) if top > 0 else []
        levels = [float(v) for v in levels if 0 < v <= top]
        out.append({"layer": entry["layer"], "blob": entry["blob"], "max_abs": top, "bits": bits,
                    "edges": np.linspace(0.0, top, HIST_BINS + 1).tolist(),
                    "counts": counts.astype(int).tolist(), "levels": levels})
    return out


def gate_rules(check_spec, outputs: list[dict], task_cls, task_metrics: dict,
               first_layer: tuple[str, float] | None) -> tuple[list, dict]:
    """(rules, thresholds in force) from the recipe's ``check`` (``CheckSpec``) and the task's
    GATES."""
    thresholds = {key: check_spec.threshold(key) for key in GENERIC_GATES}
    rules = [check.Threshold("min_output_cosine", o["blob"], o["metrics"]["cosine"],
                             thresholds["min_output_cosine"], "min") for o in outputs]
    if first_layer is not None:
        rules.append(check.Threshold("min_layer_cosine", f"layer {first_layer[0]}",
                                     first_layer[1], thresholds["min_layer_cosine"], "min"))
    for key, metric, kind, default in task_cls.GATES:
        value = check_spec.threshold(key, default)
        if value is None or metric not in task_metrics:
            continue
        thresholds[key] = value
        rules.append(check.Threshold(key, f"task {metric}", task_metrics[metric], value, kind))
    return rules, thresholds


def sensitivity(graph, ranges, jobs: Sequence) -> list[dict]:
    """Single-layer 16-bit trials on the first images (``check.rank_sensitivity`` order)."""
    from nnbuild.check.suggest import SimScorer

    feeds = []
    for job in jobs[:SENSITIVITY_IMAGES]:
        feeds.append(job.input.feed(job.image))
    scorer = SimScorer(graph, ranges, feeds)
    base = scorer.score(frozenset())
    single = {n: scorer.score(frozenset([n])) for n in scorer.candidates}
    return check.rank_sensitivity(base, single)


def build(ctx, jobs: Sequence, results: Sequence[dict], hashes: dict[str, str]) -> dict:
    """The report.json dict (docs/report-json.md), gate applied."""
    from nnbuild.check.tasks import registry

    job = jobs[0]
    graph, _, ranges, plan = load_models(job.model, job.cpu, job.ranges, job.mode, job.compiled)
    spec = ctx.spec.check
    layers = layer_results(graph, plan, ranges, results)
    outputs = [{"blob": name, "ssa_blob": name,
                "metrics": check.aggregate([r["outputs"][name] for r in results])}
               for name in results[0]["outputs"]]
    task_cls = registry.get(job.task)
    per_image = [r["task"] for r in results]
    task = {"name": job.task, "metrics": task_cls.summarize(per_image, job.task_args),
            "per_image": per_image}
    # Two thresholds on the accumulated layer cosine: min_layer_cosine gates the build;
    # divergence_cosine (default: the same value) only names the first divergent layer in the
    # report, so a passing build can still show where quantization error starts to build up.
    min_layer = spec.threshold("min_layer_cosine")
    first = check.first_divergent(layers, spec.divergence)
    gated = check.first_divergent(layers, min_layer)
    gated_cos = next((e["accumulated"]["cosine"] for e in layers if e["layer"] == gated), None)
    rules, thresholds = gate_rules(spec, outputs, task_cls, task["metrics"],
                                   None if gated is None else (gated, gated_cos))
    thresholds["divergence_cosine"] = spec.divergence
    failures = check.gate(rules)
    ranking = []
    if job.mode != "int16" and failures:  # the explanation names the top three
        ranking = sensitivity(graph, ranges, jobs)
    suggested = [r["layer"] for r in ranking[:3]]
    return {
        "schema_version": 1, "recipe": ctx.name,
        "verdict": "fail" if failures else "pass", "failures": failures,
        "explanation": check.explain(failures, first, suggested),
        "thresholds": thresholds,
        "quant": {"mode": job.mode, "high_precision": list(ctx.spec.quant.high_precision)},
        "target": {"chip": ctx.spec.target.chip},
        "images": [{"name": j.task_args["image_name"], "sha256": hashes[j.image]} for j in jobs],
        "outputs": outputs, "layers": layers, "first_divergent_layer": first,
        "sensitivity": ranking, "suggested_hp": suggested, "task": task,
        "latency": latency(ctx), "inputs": _inputs(job, hashes), "wk": wk_section(ctx),
        "histograms": histograms(graph, plan, layers, results)}


def _inputs(job, hashes: dict[str, str]) -> dict:
    named = {"model.prototxt": job.model[0], "model.caffemodel": job.model[1],
             "ranges.json": job.ranges}
    if job.cpu:
        named.update({"cpu.prototxt": job.cpu[0], "cpu.caffemodel": job.cpu[1]})
    if job.compiled:  # the bias-corrected model the mapper compiles (calibrate stage)
        named.update({"compiled.prototxt": job.compiled[0], "compiled.caffemodel": job.compiled[1]})
    return {name: hashes[path] for name, path in named.items()}


def wk_section(ctx) -> dict | None:
    """verify-wk of a real mapper's .wk (map stage ``wk-verify.json``), None without one."""
    from nnbuild.nnie.wk.stagecheck import report_section

    return report_section(ctx.upstream("map"))


def latency(ctx) -> dict | None:
    """The map stage's cost-model estimate from quant.json, when it wrote one."""
    path = ctx.upstream("map") / "quant.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    cost = data.get("cost")
    if not isinstance(cost, dict) or cost.get("latency_ms") is None:
        return None
    layers = [{"name": r["name"], "ms": round(float(r["ms"]), 5), "bits": r.get("bits"),
               "bound": r.get("bound")} for r in cost.get("layers") or [] if r.get("ms")]
    return {"chip": cost.get("chip", data.get("chip")), "ms": float(cost["latency_ms"]),
            "mode": data.get("mode"), "fitted_to": cost.get("fitted_to"), "estimate": True,
            "totals": cost.get("totals"), "uncertainty": cost.get("uncertainty"),
            "uncertainty_all": cost.get("uncertainty_all"),
            "layers": layers}


def write_html(ctx, report: dict, jobs: Sequence) -> None:
    """report.html (``nnbuild.check.report_html``) with a thumbnail of each check picture."""
    from nnbuild.check import report_html as html_report

    def loader(i: int):
        net = jobs[i].input
        return html_report.jpeg_thumbnail(net.uint8(jobs[i].image)), (int(net.shape[3]),
                                                                        int(net.shape[2]))

    html_report.write(report, ctx.out / "report.html", loader)
