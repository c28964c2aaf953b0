"""Fixtures for the board tests: zoo recipes built once with doit, and NNIE outputs of real photos.

``built`` builds the decodable recipes in a throw-away project (small image counts, as the e2e
tests do); ``quantized(name, count)`` runs the NNIE simulator of that build on the recipe's own
check photos and returns ``(spec, [(photo, outputs by prototxt name), ...])``.
"""

from __future__ import annotations

import hashlib
import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from e2e.e2e_project import SHARED, doit, make_project, override_text, write_recipe  # noqa: E402

RECIPES = ("retinaface-640", "ultraface-slim-320", "yufacedetect-v1", "mobilefacenet")
# A camera-frame recipe: UltraFace fed NV21 frames (input.format yvu420sp, image_type 3).
NV21 = "ultraface-slim-320-nv21"


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(project folder, {recipe: resolved recipe}) after one ``doit build`` of ``RECIPES``."""
    from nnbuild.recipe import load_merged

    proj = make_project(tmp_path_factory.mktemp("board") / "proj", list(RECIPES))
    write_recipe(proj, NV21, override_text("ultraface-slim-320") + "input: {format: yvu420sp}\n")
    names = (*RECIPES, NV21)
    result = doit(proj, "build", *names, timeout=1200)
    assert result.returncode == 0, result
    return proj, {name: load_merged(proj / "recipes" / f"{name}.yaml") for name in names}


def check_photos(recipe: dict, count: int) -> list[pathlib.Path]:
    """The first ``count`` pictures of the recipe's check set, found in ../shared by sha256."""
    from nnbuild.fetch import image_refs

    refs = image_refs(recipe["check"]["images"], count, "check.images")
    folders = [SHARED / "images" / d for d in ("photos", "faces112")]
    by_hash = {hashlib.sha256(p.read_bytes()).hexdigest(): p
               for folder in folders for p in sorted(folder.glob("*.jpg"))}
    return [by_hash[ref["sha256"]] for ref in refs]


@pytest.fixture(scope="session")
def quantized(built):
    """``quantized(name, count) -> (spec, [(photo, {output name: array}), ...])``."""
    from nnbuild import preprocess
    from nnbuild.board.frames import network_input
    from nnbuild.board.spec import board_spec
    from nnbuild.caffe import io
    from nnbuild.check_image import final_outputs
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import prepare, simulate
    from nnbuild.stages.calibrate import _input_spec

    proj, recipes = built
    memo: dict = {}

    def get(name: str, count: int = 4):
        if (name, count) in memo:
            return memo[(name, count)]
        out = proj / "cache" / "v1" / "out" / name
        recipe = recipes[name]
        graph = io.load(out / "patch" / "model.prototxt", out / "patch" / "model.caffemodel").graph
        cpu = out / "patch" / "cpu.prototxt"
        cpu_graph = io.load(cpu, out / "patch" / "cpu.caffemodel").graph if cpu.is_file() \
            else None
        ranges = Ranges.load(out / "calibrate" / "ranges.json")
        plan = prepare(graph, ranges, recipe["quant"]["mode"])
        blob, shape, norm, sizing = _input_spec(recipe["input"], graph)
        results = []
        for photo in check_photos(recipe, count):
            feeds = {blob: network_input(preprocess.load_uint8(photo, shape, **sizing), **norm)}
            raw = simulate(graph, ranges, recipe["quant"]["mode"], feeds,
                           "all" if cpu_graph else None, plan=plan)  # PriorBox reads shapes
            results.append((photo, final_outputs(graph, cpu_graph, raw, feeds)))
        memo[(name, count)] = (board_spec(name, recipe, out / "patch"), results)
        return memo[(name, count)]

    return get

