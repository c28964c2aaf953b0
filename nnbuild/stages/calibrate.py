"""Stage ``calibrate``: activation ranges, planar .bgr pictures and the mapper's image list.

Outputs (docs/design.md "Stages"):

* ``ranges.json`` — ``nnbuild.nnie.calibrate.Ranges`` of the patched model: per stored blob the
  absolute maximum over the pictures and per picture, per weighted layer its weight range;
* ``images/<n>.bgr`` — each picture as the NNIE input file (planar B, G, R uint8, nnie-facts.md §3),
  ``n`` = 000, 001, ... in ``ctx.files`` order (sorted by sha256, so recipe order never matters);
* ``image_list.txt`` — those files relative to the package root (``images/000.bgr``), the form
  the mapper's ``image_list`` key reads when run from the unpacked package (§2).

Importable without numpy: heavy modules are imported inside ``run``.
"""

from __future__ import annotations

import pathlib
from typing import Any

NAME = "calibrate"
NEEDS = ("patch",)
READS = ("input", "calibration")
CODE = ("nnbuild.stages.calibrate", "nnbuild.nnie.calibrate", "nnbuild.nnie.quantpoints",
        "nnbuild.preprocess", "nnbuild.engine", "nnbuild.caffe", "nnbuild.ir")
GROUP = "calibration"


def external_inputs(recipe: dict) -> dict[str, list]:
    """The calibration pictures: ``{"calibration": [ref, ...]}`` from ``calibration.images/count``."""
    spec = recipe.get("calibration") or {}
    return {GROUP: image_refs(spec.get("images"), spec.get("count"), "calibration.images")}


def image_refs(images: Any, count: int | None, where: str) -> list:
    """Expand an IMAGES spec (list of refs, or ``{manifest, skip}``) to its first ``count`` refs.

    Manifest lines are ``url sha256`` or ../shared's ``file sha256 url`` TSV; ``#`` lines and blank
    lines are ignored. A TSV line whose file exists next to the manifest becomes a ``{path, sha256}``
    ref, anything else a ``{url, sha256}`` ref (docs/design.md "Recipe").
    """
    from nnbuild.errors import RecipeError

    if isinstance(images, dict) and "manifest" in images:
        refs = _manifest_refs(pathlib.Path(images["manifest"]), where)[int(images.get("skip", 0)):]
    elif isinstance(images, list):
        refs = list(images)
    else:
        raise RecipeError(where, "no pictures given", expected="a list of refs or {manifest: FILE}",
                          got=repr(images), hint="see docs/design.md 'Recipe'")
    refs = refs[:count] if count else refs
    if not refs:
        raise RecipeError(where, "selects no pictures", expected="at least 1", got=0,
                          hint="check count/skip against the manifest length")
    return refs


def _manifest_refs(manifest: pathlib.Path, where: str) -> list[dict]:
    from nnbuild.errors import RecipeError

    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise RecipeError(f"{where}.manifest", "cannot read the manifest", got=str(manifest),
                          hint=err.strerror or "check the path") from err
    refs = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) == 2 and len(fields[1]) == 64:
            refs.append({"url": fields[0], "sha256": fields[1]})
        elif len(fields) == 3 and len(fields[1]) == 64:
            local = manifest.parent / fields[0]
            refs.append({"path": str(local), "sha256": fields[1]} if local.is_file()
                        else {"url": fields[2], "sha256": fields[1]})
        else:
            raise RecipeError(f"{manifest}:{number}", "unreadable manifest line",
                              expected="'url sha256' or 'file sha256 url'", got=line.strip())
    return refs


def run(ctx) -> None:
    """Preprocess the pictures, write the .bgr files and list, calibrate, write ranges.json."""
    import warnings

    from nnbuild import preprocess
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import CalibrationWarning, calibrate, size_warning

    patch = ctx.upstream("patch")
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    name, shape, norm, sizing = _input_spec(ctx.recipe.get("input") or {}, graph)
    files = list(ctx.files(GROUP))
    message = size_warning(len(files))
    if message:
        ctx.log(message)
    (ctx.out / "images").mkdir()
    written: list[pathlib.Path] = []

    def feeds():
        for index, path in enumerate(files):
            rgb = preprocess.load_uint8(path, shape, **sizing)
            written.append(preprocess.write_planar_bgr(rgb, ctx.out / "images" / f"{index:03d}.bgr"))
            yield {name: preprocess.to_tensor(rgb, **norm)}

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
    sizing = {"resize": spec.get("resize", "stretch"), "pad_value": spec.get("pad_value", 0)}
    return name, shape, norm, sizing
