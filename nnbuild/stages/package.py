"""Stage ``package``: the deployable ``<recipe>.tar.gz`` and its ``manifest.json``.

Layout of the archive (one folder named after the recipe; paths in ``nnie_mapper.cfg`` are
relative to it, so it can be unpacked anywhere and the mapper run from inside)::

    <recipe>/model.prototxt, model.caffemodel      patched NNIE model (patch stage), or with
                                                   quant.bias_correction the corrected one and
                                                   bias-correction.json (calibrate stage)
    <recipe>/cpu.prototxt, cpu.caffemodel          CPU part, only with cpu_split
    <recipe>/nnie_mapper.cfg, mean.txt             mapper configuration (map stage)
    <recipe>/quant.json, quant.npz, <name>.wk      quantization result (+ .wk from a real mapper)
    <recipe>/image_list.txt, images/*.bgr          calibration set (package.include_calibration)
    <recipe>/report.html, report.json              check stage
    <recipe>/postprocess/<task>.{h,c}              generated C decoder (nnbuild.board), if any
    <recipe>/recipe.yaml                           the resolved recipe
    <recipe>/manifest.json                         written last, describes everything above
"""

from __future__ import annotations

NAME = "package"
NEEDS = ("fetch", "patch", "calibrate", "map", "check")
USES_NAME = True  # the recipe name is in the outputs (see runner.key_doc)
# The whole recipe, every default filled in, is packaged as recipe.yaml: every field is in the key.
READS = ("description", "source", "input", "patches", "patch_check", "calibration", "quant",
         "target", "mapper", "check", "package")

FROM_STAGES = {
    "patch": ("model.prototxt", "model.caffemodel", "cpu.prototxt", "cpu.caffemodel",
              "patch-report.json", "lint.json"),
    # quant.bias_correction: the corrected model the mapper compiles replaces the patched one
    "calibrate": ("model.prototxt", "model.caffemodel", "bias-correction.json"),
    "map": ("nnie_mapper.cfg", "mean.txt", "mean.binaryproto", "quant.json", "quant.npz", "*.wk",
            "mapper.log", "wk-verify.json"),
    "check": ("report.html", "report.json"),
}


def run(ctx) -> None:
    import json

    from nnbuild import __version__
    from nnbuild.archive import file_entries, write_archive

    files = _collect(ctx)
    recipe_yaml = ctx.out / "_recipe.yaml"
    recipe_yaml.write_text(_dump_recipe(ctx.spec.to_dict()), encoding="utf-8")
    files["recipe.yaml"] = recipe_yaml
    generated = _postprocess(ctx)
    files.update(generated)
    quant = json.loads(files["quant.json"].read_text()) if "quant.json" in files else {}
    manifest = {
        "schema_version": 1,
        "recipe": ctx.name,
        "nnbuild_version": __version__,
        "files": file_entries(files),
        "stage_keys": dict(sorted(getattr(ctx, "upstream_keys", {}).items())),
        "source": _sources(ctx.spec.source),
        "target": {"chip": ctx.spec.target.chip,
                   "mapper_version": quant.get("mapper_version"),
                   "mapper": quant.get("mapper", "builtin")},
        "outputs": _outputs(files["model.prototxt"]),
        "input": _board_input(ctx.spec.input, files["patch-report.json"]),
    }
    write_archive(ctx.out / f"{ctx.name}.tar.gz", ctx.name, files, manifest)
    recipe_yaml.unlink()
    if generated:
        import shutil
        shutil.rmtree(ctx.out / "_board")


def _collect(ctx) -> dict:
    files = {}
    for stage, patterns in FROM_STAGES.items():
        folder = ctx.upstream(stage)
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                files[path.name] = path
    if ctx.spec.package.include_calibration:
        folder = ctx.upstream("calibrate")
        files["image_list.txt"] = folder / "image_list.txt"
        for path in sorted((folder / "images").glob("*.*")):  # .bgr, or input.format's frames
            files[f"images/{path.name}"] = path
    return files


def _postprocess(ctx) -> dict:
    """Generated C post-processing (``nnbuild.board``) as arcname -> staged file; {} for raw."""
    from nnbuild.board.generate import generate, has_decoder
    from nnbuild.board.spec import board_spec

    if not has_decoder(ctx.spec.check.task):
        return {}
    staged = {}
    for arcname, text in generate(board_spec(ctx.name, ctx.spec, ctx.upstream("patch"))).items():
        path = ctx.out / "_board" / arcname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        staged[arcname] = path
    return staged


def _dump_recipe(recipe: dict) -> str:
    import yaml

    from nnbuild.recipe.load import portable

    # Paths relative to the project root: the archive must not depend on the checkout's place.
    public = {k: v for k, v in portable(recipe).items() if not k.startswith("_")}
    return yaml.safe_dump(public, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _sources(source: dict) -> dict:
    out = {}
    for role, ref in sorted(source.items()):
        if isinstance(ref, dict):
            out[role] = {k: ref[k] for k in ("url", "sha256") if k in ref}
    return out


def _outputs(prototxt) -> list:
    """Output blobs in the order NNIE returns them (prototxt order) with their .wk names."""
    from nnbuild.caffe.io import load
    from nnbuild.archive import nnie_output_names

    graph = load(prototxt).graph
    names = graph.caffe_names()
    return nnie_output_names(names[blob] for blob in graph.outputs)


def _board_input(spec, patch_report) -> dict:
    """What board code must feed: planar BGR uint8 (nnie-facts.md §3), size and normalisation.
    Name and shape are the patched model's (the recipe's when it states them)."""
    import json

    from nnbuild.board.frames import board_format

    ((name, shape),) = json.loads(patch_report.read_text())["input"].items()
    return {"name": name, "shape": list(shape), "board_format": board_format(spec),
            "network_color_order": spec.color, "mean": list(spec.mean), "scale": spec.scale,
            "resize": spec.resize, "pad_value": spec.pad_value}
