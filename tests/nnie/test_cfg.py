"""Tests for nnbuild.nnie.cfg: golden cfg files and the key-by-key rules of nnie-facts.md §2/§3.

Golden files live in tests/golden/cfg/. After a deliberate change, regenerate them with
``NNBUILD_REGEN_GOLDEN=1 pytest tests/nnie/test_cfg.py`` and review the diff.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from nnbuild.errors import RecipeError
from nnbuild.nnie import cfg as nc
from nnbuild.recipe.spec import RecipeSpec

GOLDEN = pathlib.Path(__file__).parent.parent / "golden" / "cfg"

# The parts of the resolved recipes (recipes/retinaface-640*.yaml, recipes/ultraface-slim-320.yaml
# with their _base files) that the cfg reads.
RETINAFACE = {
    "input": {"name": "data", "shape": [1, 3, 640, 640], "color": "RGB", "mean": [0, 0, 0],
              "scale": 1.0, "resize": "letterbox", "pad_value": 0},
    "calibration": {"count": 16}, "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
}
ULTRAFACE = {
    "input": {"name": "input", "shape": [1, 3, 240, 320], "color": "RGB",
              "mean": [127, 127, 127], "scale": 0.0078125, "resize": "stretch"},
    "calibration": {"count": 16}, "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
}
CASES = {
    "retinaface-640": (RETINAFACE, {}),
    "retinaface-640-int16": (RETINAFACE, {"quant": {"mode": "int16"}}),
    "retinaface-640-mixed": (RETINAFACE, {"quant": {"mode": "mixed", "high_precision": []}}),
    "ultraface-slim-320": (ULTRAFACE, {}),
}


def recipe(base, **changes):
    return RecipeSpec.from_data({**base, **changes})


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    base, changes = CASES[name]
    files = nc.make_cfg(recipe(base, **changes), instruction_name=name)
    for fname, text in files.items():
        golden = GOLDEN / f"{name}.{fname}"
        if os.environ.get("NNBUILD_REGEN_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden} drifted"
    assert (nc.MEAN_NAME in files) == (name == "ultraface-slim-320")


def test_every_key_present_once_no_comments():
    text = nc.make_cfg(recipe(RETINAFACE), instruction_name="retinaface")[nc.CFG_NAME]
    keys = nc.parse_cfg(text)
    expected = {"prototxt_file", "caffemodel_file", "net_type", "image_list", "image_type",
                "norm_type", "data_scale", "mean_file", "batch_num", "sparse_rate", "compile_mode",
                "compress_mode", "is_simulation", "instruction_name", "internal_stride",
                "is_check_prototxt", "log_level", "RGB_order"}
    assert set(keys) == expected and all(len(v) == 1 for v in keys.values())
    assert "instructions_name" not in text and "#" not in text


@pytest.mark.parametrize("mean, scale, norm, data_scale, mean_lines", [
    ([0, 0, 0], 1.0, "0", "1.0", None),
    ([104, 117, 123], 1.0, "2", "1.0", ["104.0", "117.0", "123.0"]),
    ([0], 0.00390625, "3", "0.00390625", None),
    ([127.5], 0.0078125, "5", "0.0078125", ["127.5"] * 3),
])
def test_norm_type_from_mean_and_scale(mean, scale, norm, data_scale, mean_lines):
    r = recipe(RETINAFACE, input={**RETINAFACE["input"], "mean": mean, "scale": scale})
    files = nc.make_cfg(r, instruction_name="x")
    keys = nc.parse_cfg(files[nc.CFG_NAME])
    assert keys["norm_type"] == [norm] and keys["data_scale"] == [data_scale]
    assert float(keys["data_scale"][0]) == scale  # the text reads back as the same number
    if mean_lines is None:
        assert keys["mean_file"] == ["null"] and nc.MEAN_NAME not in files
    else:
        assert keys["mean_file"] == [nc.MEAN_NAME]
        assert files[nc.MEAN_NAME].splitlines() == mean_lines


@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_rgb_order_is_the_training_order(color):
    r = recipe(RETINAFACE, input={**RETINAFACE["input"], "color": color})
    assert nc.parse_cfg(nc.make_cfg(r, instruction_name="x")[nc.CFG_NAME])["RGB_order"] == [color]


def test_options_from_recipe():
    r = recipe(RETINAFACE, mapper={"internal_stride": 32, "log_level": 0},
               calibration={"count": 999})
    keys = nc.parse_cfg(nc.make_cfg(r, instruction_name="out/net", is_simulation=True)[nc.CFG_NAME])
    assert keys["internal_stride"] == ["32"] and keys["log_level"] == ["0"]
    assert keys["batch_num"] == ["256"] and keys["is_simulation"] == ["1"]
    assert keys["instruction_name"] == ["out/net"]
    keys = nc.parse_cfg(nc.make_cfg(recipe(RETINAFACE), instruction_name="n", image_count=3)[nc.CFG_NAME])
    assert keys["batch_num"] == ["3"]


@pytest.mark.parametrize("changes, where", [
    ({"input": {"mean": [0, 0, 0], "scale": 1.0}}, "input.color"),
    ({"input": {"color": "GRB"}}, "input.color"),
    ({"input": {"color": "RGB", "mean": [1, 2]}}, "input.mean"),
    ({"input": {"color": "RGB", "scale": 1 / 5000}}, "input.scale"),
    ({"quant": {"mode": "int4"}}, "quant.mode"),
    ({"target": {"chip": "hi3518ev200"}}, "target.chip"),
    ({"mapper": {"internal_stride": 8}}, "mapper.internal_stride"),
    ({"calibration": {}}, "calibration.count"),
])
def test_recipe_errors(changes, where):
    with pytest.raises(RecipeError, match=f"(^|: ){where}: "):
        nc.make_cfg(recipe(RETINAFACE, **changes), instruction_name="x")


def test_paths_must_be_package_relative():
    with pytest.raises(ValueError, match="package-relative"):
        nc.make_cfg(recipe(RETINAFACE), instruction_name="x", prototxt="/abs/model.prototxt")


def test_parse_cfg_rejects_garbage():
    with pytest.raises(ValueError, match="line 2"):
        nc.parse_cfg("[a] 1\nb 2\n")
