"""Stage ``patch``: the recipe's passes, their numeric proof and the NNIE lint
(``nnbuild.passes.patching``).

Outputs (docs/design.md "Stages"): ``model.prototxt``/``model.caffemodel`` (patched; the NNIE
part), ``cpu.prototxt``/``cpu.caffemodel`` (only with ``cpu_split``), ``patch-report.json``
(each pass's changes, the per-output float differences, the final outputs) and ``lint.json``.
A proof above ``patch_check.tolerance`` fails the stage (outputs are still written).
"""

from __future__ import annotations

NAME = "patch"
NEEDS = ("fetch",)
READS = ("input", "patches", "patch_check", "quant.high_precision", "target.chip")
# align_channel_levels aligns each layer to its precision's levels: only recipes using it are
# keyed by quant.mode (``reads``); an int8 and an int16 recipe without it still share a patch.
MODE_PASS = "align_channel_levels"
MODE_READS = READS + ("quant.mode",)
GROUP = "patch_check"


def reads(values: dict) -> tuple[str, ...]:
    """The recipe fields in this stage's key: ``MODE_READS`` when ``MODE_PASS`` is listed."""
    names = {p if isinstance(p, str) else next(iter(p), None) for p in values.get("patches") or []}
    return MODE_READS if MODE_PASS in names else READS


def external_inputs(spec) -> dict[str, list]:
    """The proof pictures: ``{"patch_check": [ref, ...]}`` (none without ``patch_check``)."""
    from nnbuild.build.fetch import image_refs

    images = spec.patch_check
    if not images.images:
        return {GROUP: []}
    return {GROUP: image_refs(images.images, images.count, "patch_check.images")}


def run(ctx) -> None:
    """Patch, save, lint and prove."""
    from nnbuild.build.origins import renamed, renamed_copy
    from nnbuild.caffe import io
    from nnbuild.errors import NNBuildError
    from nnbuild.passes.patching import patch_model, write_outputs

    up = ctx.upstream("fetch")
    try:
        original = io.load(up / "model.prototxt", up / "model.caffemodel").graph
    except NNBuildError as err:  # name the recipe's model files, not fetch's copies
        raise renamed_copy(err, {str(up / f"model.{role}"): (f"source.{role}", ref)
                                 for role, ref in ctx.spec.source.items()
                                 if role in ("prototxt", "caffemodel")}) from None
    pictures = list(ctx.files(GROUP))
    try:
        result = patch_model(original, ctx.spec, pictures, log=ctx.log)
    except NNBuildError as err:  # a bad proof picture: name the recipe's, not its cache copy
        refs = external_inputs(ctx.spec)[GROUP]
        for path in pictures:
            err = renamed(err, path, refs, "patch_check.images")
        raise err from None
    if (up / "onnx-proof.json").is_file():  # an ONNX source: the conversion's proof (fetch)
        import json

        result["report"]["source_proof"] = json.loads((up / "onnx-proof.json").read_text())
    write_outputs(result, ctx.out)
    if result["failure"] is not None:
        ctx.fail(result["failure"])
