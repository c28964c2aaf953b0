"""Stage ``fetch``: the recipe's source model, verified, as ``model.prototxt`` + ``model.caffemodel``.

A Caffe source (``source: {prototxt, caffemodel}``) is copied byte-identical. An ONNX source
(``source: {onnx: REF, outputs: [...]}``) is converted by ``nnbuild.onnx`` at the recipe's
``input.shape``, cut at ``source.outputs``, and proven against onnxruntime (or ONNX's reference
evaluator) on the ``patch_check`` pictures; the proof is ``onnx-proof.json`` (the patch stage
copies it into ``patch-report.json``). A proof above ``patch_check.tolerance`` fails the stage.
"""

from __future__ import annotations

import shutil

NAME = "fetch"
NEEDS: tuple[str, ...] = ()
READS: tuple[str, ...] = ()  # the content enters the key through external_inputs' hashes
# An ONNX source is converted at input.shape, cut at source.outputs and proven on pictures
# preprocessed as input says: those fields key the stage too (``reads``), for ONNX recipes only,
# so a Caffe recipe's fetch still ignores input changes.
ONNX_READS: tuple[str, ...] = ("source.outputs", "input", "patch_check.tolerance")
ROLES = ("prototxt", "caffemodel")
PROOF = "onnx-proof.json"
PICTURES = "patch_check"


def reads(values: dict) -> tuple[str, ...]:
    """The recipe fields in this stage's key: ``ONNX_READS`` for ONNX sources, else ``READS``."""
    return ONNX_READS if "onnx" in (values.get("source") or {}) else READS


def external_inputs(spec) -> dict[str, list]:
    """``{"prototxt": [ref], "caffemodel": [ref]}``, or ``{"onnx": [ref], "patch_check": [...]}``."""
    source = spec.source
    if "onnx" in source:
        from nnbuild.build.fetch import image_refs

        images = spec.patch_check  # the patch stage's proof pictures prove the conversion too
        refs = image_refs(images.images, images.count, "patch_check.images") \
            if images.images else []
        return {"onnx": [source["onnx"]], PICTURES: refs}
    return {role: [source[role]] for role in ROLES if role in source}


def run(ctx) -> None:
    """Copy the verified Caffe files, or convert the ONNX model (module docstring)."""
    if "onnx" in ctx.spec.source:
        _convert(ctx)
        return
    for role in ROLES:
        (path,) = ctx.files(role)
        shutil.copyfile(path, ctx.out / f"model.{role}")


def _convert(ctx) -> None:
    from nnbuild.caffe import io
    from nnbuild.errors import RecipeError
    from nnbuild.onnx import convert

    spec, source = ctx.spec, ctx.spec.source
    if any(role in source for role in ROLES):
        raise RecipeError("source", "both an ONNX and a Caffe model are given",
                          expected="source.onnx or source.prototxt + source.caffemodel",
                          got=sorted(source), hint="keep one of them")
    (path,) = ctx.files("onnx")
    result = convert(path, input_shape=spec.input.shape, outputs=source.get("outputs"),
                     prove=False)
    if spec.input.name and spec.input.name not in result.graph.inputs:
        raise RecipeError("input.name", "not an input of the ONNX model",
                          expected=" or ".join(map(repr, result.graph.inputs)),
                          got=repr(spec.input.name), hint="use the ONNX input's name")
    io.save(result.graph, ctx.out / "model.prototxt", ctx.out / "model.caffemodel")
    _prove(ctx, result)


def _prove(ctx, result) -> None:
    """Engine vs ONNX runtime on the patch_check pictures -> onnx-proof.json (fail above tol)."""
    import json

    from nnbuild.errors import ModelError
    from nnbuild.onnx.proof import prove
    from nnbuild.preprocess import NetworkInput

    tolerance = ctx.spec.patch_check.tolerance
    pictures = ctx.files(PICTURES)
    net = NetworkInput.of(ctx.spec.input, result.graph)
    feeds = [net.feed(p) for p in pictures] or None
    proof = prove(result, feeds, tolerance)
    if pictures:
        proof["images"] = [dict(im, image=p.name) for im, p in zip(proof["images"], pictures)]
    (ctx.out / PROOF).write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n",
                                 encoding="utf-8")
    ctx.log(f"ONNX -> {len(result.graph.layers)} Caffe layers, max rel diff "
            f"{proof['max_rel']:.3g} vs {proof['reference']} on {len(proof['images'])} inputs")
    if not proof["passed"]:
        worst = max(proof["outputs"], key=lambda k: proof["outputs"][k]["max_rel"])
        ctx.fail(ModelError("source.onnx", f"the converted model differs from the ONNX model "
                            f"(output {worst!r})", expected=f"max|a-b|/max|a| <= {tolerance:g}",
                            got=f"{proof['max_rel']:.3g}", hint="report the model; cut the "
                            "graph before the output that drifts (source.outputs)"))
