"""Stage ``calibrate``: activation ranges, planar .bgr pictures and the mapper's image list.

Outputs (docs/design.md "Stages"):

* ``ranges.json`` — ``nnbuild.nnie.calibrate.Ranges`` of the patched model: per stored blob the
  absolute maximum over the pictures and per picture, per weighted layer its weight range;
* ``images/<n>.bgr`` — each picture as the NNIE input file (planar B, G, R uint8, nnie-facts.md §3;
  other ``input.format`` frames: ``.rgb``, ``.gray``, ``.nv12``, ``.nv21``, nnbuild.board.frames),
  ``n`` = 000, 001, ... in ``ctx.files`` order (sorted by sha256, so recipe order never matters);
* ``image_list.txt`` — those files relative to the package root (``images/000.bgr``), the form
  the mapper's ``image_list`` key reads when run from the unpacked package (§2);
* with ``quant.bias_correction``: ``model.prototxt``/``model.caffemodel``, the patched model with
  its biases corrected for the mean error of NNIE's weight rounding on these pictures
  (``nnbuild.nnie.biascorrect``; the model the map stage compiles and the package carries), and
  ``bias-correction.json`` (per layer the largest change). ``ranges.json`` is then the corrected
  model's, as the mapper would calibrate it.

Importable without numpy: heavy modules are imported inside ``run``.
"""

from __future__ import annotations

import pathlib

NAME = "calibrate"
NEEDS = ("patch",)
READS = ("input", "calibration")
GROUP = "calibration"
# The bias corrections depend on every layer's precision: only recipes using them are keyed by
# quant (``reads``); int8 and int16 variants of a recipe without them share one calibration.
BIAS_READS = READS + ("quant.bias_correction", "quant.mode", "quant.high_precision")


def reads(values: dict) -> tuple[str, ...]:
    """The recipe fields in this stage's key: ``BIAS_READS`` with ``quant.bias_correction``."""
    return BIAS_READS if (values.get("quant") or {}).get("bias_correction") else READS


def external_inputs(spec) -> dict[str, list]:
    """The calibration pictures: ``{"calibration": [ref, ...]}`` from ``calibration.images/count``."""
    from nnbuild.build.fetch import image_refs

    from nnbuild.board.frames import mean_file_refs

    images = spec.calibration
    return {GROUP: image_refs(images.images, images.count, "calibration.images"),
            **mean_file_refs(spec)}


def run(ctx) -> None:
    """Preprocess the pictures, write the .bgr files and list, calibrate, write ranges.json."""
    import dataclasses
    import warnings

    from nnbuild import preprocess
    from nnbuild.board.frames import write_frame
    from nnbuild.build.origins import renamed
    from nnbuild.caffe import io
    from nnbuild.errors import NNBuildError
    from nnbuild.nnie.calibrate import CalibrationWarning, calibrate, size_warning

    patch = ctx.upstream("patch")
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    net = preprocess.NetworkInput.of(ctx.spec.input, graph)
    if net.mean_file is not None:
        net = dataclasses.replace(net, mean_file=str(ctx.files("mean_file")[0]))  # verified copy
    files = list(ctx.files(GROUP))
    message = size_warning(len(files))
    if message:
        ctx.log(message)
    (ctx.out / "images").mkdir()
    written: list[pathlib.Path] = []

    def feeds():
        for index, path in enumerate(files):
            try:
                rgb = net.uint8(path)
            except NNBuildError as err:  # name the recipe's picture, not its cache copy
                raise renamed(err, path, external_inputs(ctx.spec)[GROUP],
                              "calibration.images") from None
            written.append(write_frame(rgb, ctx.out / "images" / f"{index:03d}", net.format))
            yield {net.name: net.tensor(rgb)}

    if ctx.spec.quant.bias_correction:  # two passes: the corrections, then the corrected ranges
        loaded = list(feeds())
        graph = _correct_biases(ctx, graph, ctx.progress(loaded, total=len(files),
                                                         desc="bias correction"))
        pictures = ctx.progress(loaded, total=len(files), desc="calibrate")
    else:
        pictures = ctx.progress(feeds(), total=len(files), desc="calibrate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # already logged above
        ranges = calibrate(graph, iter(pictures), names=[p.name for p in files])
    ranges.save(ctx.out / "ranges.json")
    preprocess.write_image_list(written, ctx.out / "image_list.txt", relative_to=ctx.out)


def _correct_biases(ctx, graph, pictures):
    """The bias-corrected graph, saved with its report (see the module docstring)."""
    import json

    from nnbuild.caffe import io
    from nnbuild.nnie import biascorrect

    deltas = biascorrect.corrections(graph, ctx.spec.quant.mode, pictures)
    corrected = biascorrect.apply(graph, deltas)
    io.save(corrected, *(ctx.out / name for name in biascorrect.MODEL_FILES))
    report = biascorrect.summary(graph, deltas)
    (ctx.out / biascorrect.REPORT).write_text(json.dumps(report, indent=1, sort_keys=True)
                                              + "\n", encoding="utf-8")
    return corrected
