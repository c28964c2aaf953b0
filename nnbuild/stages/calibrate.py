"""Stage ``calibrate``: activation ranges, planar .bgr pictures and the mapper's image list.

Outputs (docs/design.md "Stages"):

* ``ranges.json`` — ``nnbuild.nnie.calibrate.Ranges`` of the patched model: per stored blob the
  absolute maximum over the pictures and per picture, per weighted layer its weight range;
* ``images/<n>.bgr`` — each picture as the NNIE input file (planar B, G, R uint8, nnie-facts.md §3;
  other ``input.format`` frames: ``.rgb``, ``.gray``, ``.nv12``, ``.nv21``, nnbuild.board.frames),
  ``n`` = 000, 001, ... in ``ctx.files`` order (sorted by sha256, so recipe order never matters);
* ``image_list.txt`` — those files relative to the package root (``images/000.bgr``), the form
  the mapper's ``image_list`` key reads when run from the unpacked package (§2).

Importable without numpy: heavy modules are imported inside ``run``.
"""

from __future__ import annotations

import pathlib

NAME = "calibrate"
NEEDS = ("patch",)
READS = ("input", "calibration")
GROUP = "calibration"


def external_inputs(recipe: dict) -> dict[str, list]:
    """The calibration pictures: ``{"calibration": [ref, ...]}`` from ``calibration.images/count``."""
    from nnbuild.build.fetch import image_refs

    from nnbuild.board.frames import mean_file_refs

    spec = recipe.get("calibration") or {}
    return {GROUP: image_refs(spec.get("images"), spec.get("count"), "calibration.images"),
            **mean_file_refs(recipe)}


def run(ctx) -> None:
    """Preprocess the pictures, write the .bgr files and list, calibrate, write ranges.json."""
    import warnings

    from nnbuild import preprocess
    from nnbuild.board import frames
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import CalibrationWarning, calibrate, size_warning

    patch = ctx.upstream("patch")
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    name, shape, norm, sizing = _input_spec(ctx.recipe.get("input") or {}, graph)
    if "mean_file" in norm:
        norm["mean_file"] = str(ctx.files("mean_file")[0])  # the verified copy
    files = list(ctx.files(GROUP))
    message = size_warning(len(files))
    if message:
        ctx.log(message)
    (ctx.out / "images").mkdir()
    written: list[pathlib.Path] = []

    def feeds():
        for index, path in enumerate(files):
            rgb = preprocess.load_uint8(path, shape, **sizing)
            fmt = norm.get("format", "bgr")
            written.append(frames.write_frame(rgb, ctx.out / "images" / f"{index:03d}", fmt))
            yield {name: frames.network_input(rgb, **norm)}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # already logged above
        ranges = calibrate(graph, ctx.progress(feeds(), total=len(files), desc="calibrate"),
                           names=[p.name for p in files])
    ranges.save(ctx.out / "ranges.json")
    preprocess.write_image_list(written, ctx.out / "image_list.txt", relative_to=ctx.out)


def _input_spec(spec: dict, graph) -> tuple[str, tuple, dict, dict]:
    """(input blob, NCHW shape, to_tensor kwargs, load_uint8 kwargs) from the recipe ``input``."""
    from nnbuild.errors import RecipeError

    name = spec.get("name") or next(iter(graph.inputs))
    if name not in graph.inputs or len(graph.inputs) != 1:
        raise RecipeError("input.name", "does not name the model's single input",
                          expected=list(graph.inputs), got=name,
                          hint="calibration supports one image input per network")
    shape = tuple(spec.get("shape") or graph.inputs[name])
    norm = {"color": spec.get("color", "RGB"), "mean": spec.get("mean", (0, 0, 0)),
            "scale": spec.get("scale", 1.0)}
    # camera frames / per-pixel mean (nnbuild.board.frames.network_input); only when set, so the
    # check stage's per-image cache keys of other recipes stay as they were
    from nnbuild.board.frames import frame_format
    if spec.get("format"):
        norm["format"] = frame_format(dict(spec, shape=shape))
    if spec.get("mean_file"):
        ref = spec["mean_file"]
        norm["mean_file"] = ref if isinstance(ref, str) else ref["path"]
    sizing = {"resize": spec.get("resize", "stretch"), "pad_value": spec.get("pad_value", 0)}
    return name, shape, norm, sizing
