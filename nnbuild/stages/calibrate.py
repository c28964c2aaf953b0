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

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # already logged above
        ranges = calibrate(graph, ctx.progress(feeds(), total=len(files), desc="calibrate"),
                           names=[p.name for p in files])
    ranges.save(ctx.out / "ranges.json")
    preprocess.write_image_list(written, ctx.out / "image_list.txt", relative_to=ctx.out)
