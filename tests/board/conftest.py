"""Fixtures for the board tests: zoo recipes built once with doit, and NNIE outputs of real photos.

``built`` builds the decodable recipes in a throw-away project (small image counts, as the e2e
tests do); ``quantized(name, count)`` runs the NNIE simulator of that build on the recipe's own
check photos and returns ``(spec, [(photo, outputs by prototxt name), ...])``.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from e2e.e2e_project import doit, make_project, override_text, write_recipe  # noqa: E402

RECIPES = ("retinaface-640", "ultraface-slim-320", "yufacedetect-v1", "mobilefacenet",
           "scrfd-500m-640")
# A camera-frame recipe: UltraFace fed NV21 frames (input.format yvu420sp, image_type 3).
NV21 = "ultraface-slim-320-nv21"
# UltraFace with a per-pixel mean image equal to its channel mean (127): must change nothing
# but the cfg's norm_type and mean file.
MEAN_FILE = "ultraface-slim-320-meanfile"


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(project folder, {recipe: RecipeSpec}) after one ``doit build`` of ``RECIPES``."""
    from board.hostcheck import spec_of

    proj = make_project(tmp_path_factory.mktemp("board") / "proj", list(RECIPES))
    write_recipe(proj, NV21, override_text("ultraface-slim-320") + "input: {format: yvu420sp}\n")
    import numpy as np

    from nnbuild.board.frames import write_mean_file
    write_mean_file(np.full((3, 240, 320), 127.0), proj / "recipes" / "mean127.binaryproto")
    write_recipe(proj, MEAN_FILE, override_text("ultraface-slim-320")
                 + "input: {mean_file: mean127.binaryproto}\n")
    names = (*RECIPES, NV21, MEAN_FILE)
    result = doit(proj, "build", *names, timeout=1200)
    assert result.returncode == 0, result
    return proj, {name: spec_of(proj / "recipes" / f"{name}.yaml") for name in names}


@pytest.fixture(scope="session")
def quantized(built):
    """``quantized(name, count) -> (spec, [(photo, {output name: array}), ...])``, memoised."""
    from board.hostcheck import outputs_of

    proj, recipes = built
    memo: dict = {}

    def get(name: str, count: int = 4):
        if (name, count) not in memo:
            memo[(name, count)] = outputs_of(proj, name, recipes[name], count)
        return memo[(name, count)]

    return get
