"""Stage ``map``: the mapper configuration, the builtin quantization, and the real mapper if any.

Outputs (docs/design.md "Stages"):

* ``nnie_mapper.cfg`` (+ ``mean.txt`` for norm_type 5) from ``nnbuild.nnie.cfg``; its paths are
  relative to the package root (``model.prototxt``, ``image_list.txt``, ...);
* ``quant.npz`` / ``quant.json`` from the builtin NNIE quantizer (``nnbuild.nnie.quantfile``), with
  the cost model's latency estimate;
* ``<name>.wk`` + ``mapper.log`` + ``wk-verify.json`` (``nnbuild.nnie.wk.stagecheck``: the .wk
  read and verified against the patched model) when a real nnie_mapper is configured
  (``mapper.path`` in the recipe, else the ``NNIE_MAPPER`` environment variable). Its version
  banner belongs in the stage key: the runner calls ``tool_versions(spec)`` and hashes the result.

The model compiled is ``nnbuild.nnie.biascorrect.compiled_model``: the calibrate stage's
bias-corrected copy with ``quant.bias_correction``, else the patched model.

Importable without numpy: heavy modules are imported inside the functions that need them.
"""

from __future__ import annotations

import pathlib

NAME = "map"
NEEDS = ("patch", "calibrate")
USES_NAME = True  # the recipe name is in the outputs (see runner.key_doc)
READS = ("input", "quant", "target", "mapper")
QUANT_VERSION = 1
# Files the mapper reads, copied from upstream stages into its scratch directory so the
# cfg's package-relative paths resolve there (nnie-facts.md §2).
# The model files come from ``compiled_model``.
MAPPER_INPUTS = {"calibrate": ("image_list.txt", "images")}


def mapper_path(spec):
    """The configured nnie_mapper (recipe ``mapper.path``, else ``$NNIE_MAPPER``) or None.

    Checked against the target chip's mapper version by ``nnbuild.nnie.mapper``.
    """
    from nnbuild.nnie.mapper import mapper_for_recipe

    return mapper_for_recipe(spec)


def tool_versions(spec) -> dict[str, str]:
    """External tools this stage's outputs depend on, for the stage key (``{}`` = builtin only)."""
    path = mapper_path(spec)
    if not path:
        return {}
    from nnbuild.nnie.mapper import mapper_version

    return {"nnie_mapper": mapper_version(path)}


def run(ctx) -> None:
    """Write cfg, quant.npz and quant.json; run the real mapper when one is configured."""
    from nnbuild.caffe import io
    from nnbuild.nnie.biascorrect import compiled_model
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import prepare

    patch, calib = ctx.upstream("patch"), ctx.upstream("calibrate")
    model = compiled_model(patch, calib)
    graph = io.load(*model).graph
    ranges = Ranges.load(calib / "ranges.json")
    mode = ctx.spec.quant.mode
    plan = prepare(graph, ranges, mode)
    cfg_name = _write_cfg(ctx)
    _write_quant(ctx, graph, plan, mode)
    path = mapper_path(ctx.spec)
    if path:
        _run_mapper(ctx, path, cfg_name, graph, model)
        from nnbuild.nnie.wk.stagecheck import write_verification

        write_verification(ctx.out, ctx.out / f"{_wk_stem(ctx)}.wk", graph, ranges.blobs,
                           ctx.log)


def external_inputs(spec) -> dict[str, list]:
    """The per-pixel mean image (``input.mean_file``), copied into the package; {} without."""
    from nnbuild.board.frames import mean_file_refs

    return mean_file_refs(spec)


def _write_cfg(ctx) -> str:
    """nnie_mapper.cfg (+ mean.txt) for the recipe; returns the cfg file name."""
    from nnbuild.nnie.cfg import make_cfg

    count = len((ctx.upstream("calibrate") / "image_list.txt").read_text().split())
    files = make_cfg(ctx.spec, instruction_name=_wk_stem(ctx), image_count=count)
    for name, text in files.items():
        (ctx.out / name).write_text(text, encoding="utf-8")
    if ctx.spec.input.mean_file:
        import shutil

        from nnbuild.board.frames import MEAN_FILE_NAME
        shutil.copyfile(ctx.files("mean_file")[0], ctx.out / MEAN_FILE_NAME)
    return "nnie_mapper.cfg"


def _wk_stem(ctx) -> str:
    """``<name>`` of ``<name>.wk``: the recipe name (what the package and board code expect)."""
    return ctx.name


def _write_quant(ctx, graph, plan, mode) -> None:
    """quant.npz and quant.json (with the cost model's estimate for the target chip)."""
    import json

    from nnbuild.nnie import quantfile
    from nnbuild.nnie.quantpoints import compile_mode

    chip = ctx.spec.target.chip
    path = mapper_path(ctx.spec)
    record = {"version": QUANT_VERSION, "mode": mode, "compile_mode": compile_mode(mode),
              "chip": chip, "mapper": "nnie_mapper" if path else "builtin",
              "mapper_version": tool_versions(ctx.spec).get("nnie_mapper"),
              **quantfile.summary(plan), "cost": _cost(graph, plan, chip)}
    quantfile.write_npz(ctx.out / "quant.npz", quantfile.arrays(plan))
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
    (ctx.out / "quant.json").write_text(text + "\n", encoding="utf-8")


def _cost(graph, plan, chip) -> dict:
    """The cost model's latency estimate (an estimate, fitted to published numbers; see cost)."""
    from nnbuild.nnie.cost import estimate

    bits = {layer: b for layer, b in plan.points.weights.items()}
    return estimate(graph, chip, bits=bits)


def _run_mapper(ctx, path: str, cfg_name: str, graph, model) -> None:
    """Run the real mapper in ``ctx.scratch`` and add ``<name>.wk`` and ``mapper.log``."""
    import shutil

    from nnbuild.nnie.mapper import bgr_list_to_png, run_mapper

    work = pathlib.Path(ctx.scratch) / "mapper"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sources = [ctx.upstream(stage) / name for stage, names in MAPPER_INPUTS.items()
               for name in names]
    for source in sources + list(model):
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, work / source.name)
    for produced in ctx.out.iterdir():
        if produced.suffix in (".cfg", ".txt"):
            shutil.copy2(produced, work / produced.name)
    # the real mapper reads pictures with OpenCV, which cannot decode planar .bgr (mapper.py)
    bgr_list_to_png(work / "image_list.txt", next(iter(graph.inputs.values())))
    result = run_mapper(path, work / cfg_name, cwd=work, wk_name=_wk_stem(ctx))
    shutil.copy2(result.wk, ctx.out / f"{_wk_stem(ctx)}.wk")
    shutil.copy2(result.log, ctx.out / "mapper.log")
