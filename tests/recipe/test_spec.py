"""The typed recipe (nnbuild/recipe/spec.py): defaults in one place, and the mistakes the schema
alone let through, each one clear line from ``nnbuild validate`` (tested with the message)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fakestages.project import ROOT, env
from nnbuild.check.tasks import registry
from nnbuild.nnie.chips import CHIPS
from nnbuild.recipe import load as recipes
from nnbuild.recipe.schema import SCHEMA_PATH
from nnbuild.recipe.spec import GENERIC_GATES, RecipeSpec

SOURCE = "source: {prototxt: m.prototxt, caffemodel: {path: m.caffemodel, sha256: %s}}\n" % (
    "ab" * 32)


def validate(tmp_path, text: str, *args: str):
    (tmp_path / "recipes").mkdir(exist_ok=True)
    (tmp_path / "recipes" / "x.yaml").write_text("schema_version: 1\n" + SOURCE + text)
    return subprocess.run([sys.executable, "-m", "nnbuild.cli", "validate", *(args or ("x",))],
                          cwd=tmp_path, capture_output=True, text=True, env=env(tmp_path),
                          timeout=120)


def one_line(result) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_defaults_are_the_specs_and_fill_every_field():
    spec = RecipeSpec.from_data({"source": {}, "input": {"color": "BGR"}})
    values = spec.to_dict()
    assert values["input"] == {"color": "BGR", "name": None, "shape": None,
                               "mean": [0.0, 0.0, 0.0], "scale": 1.0, "resize": "stretch",
                               "pad_value": 0.0, "format": "bgr", "mean_file": None}
    assert values["quant"] == {"mode": "int8", "high_precision": [], "bias_correction": False}
    assert values["target"] == {"chip": "hi3516dv300"}
    assert values["mapper"] == {"path": None, "internal_stride": 16, "log_level": 2,
                                "compress": "normal"}
    assert values["patch_check"]["tolerance"] == 1e-4
    assert spec.check.threshold("min_output_cosine") == GENERIC_GATES["min_output_cosine"]
    assert spec.check.divergence == GENERIC_GATES["min_layer_cosine"]


def test_misspelt_gate_key_names_the_right_one(tmp_path):
    line = one_line(validate(tmp_path, "input: {color: RGB}\n"
                             "check: {task: retinaface, min_recal_vs_float: 0.999}\n"))
    assert line == ("nnbuild: error: recipes/x.yaml: check.min_recal_vs_float: unknown gate for "
                    "task retinaface (did you mean 'min_recall_vs_float'?)")


def test_unknown_task_arg_names_the_right_one(tmp_path):
    line = one_line(validate(tmp_path, "input: {color: RGB}\n"
                             "check: {task: ultraface, task_args: {score_treshold: 0.5}}\n"))
    assert line.endswith("check.task_args.score_treshold: unknown argument of task ultraface "
                         "(did you mean 'score_threshold'?)")


def test_gray_is_refused_for_a_3_channel_network(tmp_path):
    for shape in ("", ", shape: [1, 3, 12, 12]"):
        line = one_line(validate(tmp_path, f"input: {{color: GRAY{shape}}}\n"))
        assert line.startswith("nnbuild: error: recipes/x.yaml: input.color: GRAY is for "
                               "1-channel networks only. Expected RGB or BGR (the order a "
                               "3-channel network was trained on), got GRAY with"), line
        assert line.endswith("Hint: a 1-channel network states input.shape [1, 1, H, W] and "
                             "input.format: gray."), line
    assert "got GRAY with input.shape [1, 3, 12, 12]. Hint" in line
    # a misspelt colour is still the schema's, with the nearest name
    line = one_line(validate(tmp_path, "input: {color: GREY}\n"))
    assert line == ("nnbuild: error: recipes/x.yaml: input.color: expected one of RGB, BGR, "
                    "GRAY, got 'GREY' (did you mean 'GRAY'?)")


def test_a_1_channel_network_states_no_colour_order(tmp_path):
    gray = {"shape": [1, 1, 12, 12], "format": "gray", "mean": [127.5]}
    omitted = RecipeSpec.from_data({"source": {}, "input": gray})
    stated = RecipeSpec.from_data({"source": {}, "input": {**gray, "color": "GRAY"}})
    assert omitted.input.color == "GRAY" and omitted.to_dict() == stated.to_dict()
    assert validate(tmp_path, "input: {shape: [1, 1, 12, 12], format: gray}\n").returncode == 0
    line = one_line(validate(tmp_path, "input: {color: RGB, shape: [1, 1, 12, 12], "
                                       "format: gray}\n"))
    assert line == ("nnbuild: error: recipes/x.yaml: input.color: a 1-channel network has no "
                    "channel order. Expected no input.color, or GRAY, got RGB. Hint: omit "
                    "input.color (or write GRAY) for input.shape [1, 1, 12, 12].")
    line = one_line(validate(tmp_path, "input: {shape: [1, 1, 12, 12], format: gray, "
                                       "mean: [1, 2, 3]}\n"))
    assert line == ("nnbuild: error: recipes/x.yaml: input.mean: a 1-channel network has one "
                    "mean. Expected one value, got [1, 2, 3]. Hint: write input.mean: [m].")
    # C == 1 needs gray frames, and gray frames need C == 1
    line = one_line(validate(tmp_path, "input: {shape: [1, 1, 12, 12]}\n"))
    assert "input.format: bgr frames need a 3-channel input" in line, line
    line = one_line(validate(tmp_path, "input: {color: RGB, shape: [1, 3, 12, 12], "
                                       "format: gray}\n"))
    assert "input.format: gray frames need a 1-channel input" in line, line


def test_missing_color_is_one_line(tmp_path):
    line = one_line(validate(tmp_path, "input: {shape: [1, 3, 8, 8]}\n"))
    assert "input.color: the network's channel order must be stated" in line


@pytest.mark.parametrize("shape, what", [
    ([1, 3, 100000, 100000], "width is over hi3516dv300's limit. Expected width <= 4096"),
    ([1, 3, 100000, 4096], "input too large to simulate"),
    ([2, 3, 64, 64], "NNIE runs one image per forward pass"),
])
def test_shape_limits_fail_before_anything_is_allocated(tmp_path, shape, what):
    start = time.monotonic()
    line = one_line(validate(tmp_path, f"input: {{color: RGB, shape: {json.dumps(shape)}}}\n"))
    assert time.monotonic() - start < 30
    assert "input.shape: " in line and what in line, line


def test_overriding_images_drops_the_inherited_skip(tmp_path):
    (tmp_path / "recipes" / "_base").mkdir(parents=True)
    (tmp_path / "m.txt").write_text("")
    (tmp_path / "recipes" / "_base" / "b.yaml").write_text(
        "check: {images: {manifest: ../../m.txt, skip: 16}, count: 2}\n")
    result = validate(tmp_path, "extends: _base/b.yaml\ninput: {color: RGB}\n"
                      "check: {images: {manifest: ../m.txt}}\n")
    assert result.returncode == 0, result.stderr
    data = recipes.load("x", tmp_path / "recipes").data
    assert data["check"]["images"] == {"manifest": str(tmp_path / "m.txt")}


def test_not_enough_images_names_skip(tmp_path):
    from nnbuild.build.fetch import image_refs
    from nnbuild.errors import RecipeError

    manifest = tmp_path / "m.txt"
    manifest.write_text("".join(f"https://example.invalid/{i}.jpg {i:064x}\n" for i in range(20)))
    with pytest.raises(RecipeError, match=r"^check.images: not enough images. Expected at least "
                                          r"8, got 4 after skip: 16. Hint: lower skip or count"):
        image_refs({"manifest": str(manifest), "skip": 16}, 8, "check.images")


def test_validate_and_explain_take_file_paths(tmp_path):
    zoo = ROOT / "recipes" / "mtcnn-pnet.yaml"
    result = subprocess.run([sys.executable, "-m", "nnbuild.cli", "validate", str(zoo)],
                            cwd=tmp_path, capture_output=True, text=True, env=env(tmp_path))
    assert result.returncode == 0 and result.stdout == "mtcnn-pnet: ok\n", result.stderr
    result = subprocess.run([sys.executable, "-m", "nnbuild.cli", "explain", str(zoo)],
                            cwd=tmp_path, capture_output=True, text=True, env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "fetch:mtcnn-pnet: would run"


def test_schema_enums_are_the_registries():
    schema = json.loads(SCHEMA_PATH.read_text())
    props = schema["properties"]
    registry._load_all()
    assert set(props["check"]["properties"]["task"]["enum"]) == set(registry.TASKS)
    assert set(props["target"]["properties"]["chip"]["enum"]) == set(CHIPS)
    from nnbuild import passes as pass_registry

    pass_registry._load_all()
    assert set(schema["$defs"]["pass_name"]["enum"]) == set(pass_registry.PASSES)
