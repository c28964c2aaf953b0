"""Recipes: extends/deep merge, path resolution, matrix names, schema messages, bad recipes."""

import subprocess
import sys
import textwrap

import pytest

from nnbuild.recipe import load as recipe
from nnbuild.build.cache import Cache
from nnbuild.errors import RecipeError
from fakestages.project import ROOT, env


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


SOURCE = """\
source: {prototxt: m.prototxt, caffemodel: {path: m.caffemodel, sha256: %s}}
""" % ("ab" * 32)


def test_deep_merge_maps_merge_lists_and_scalars_replace():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}}
    over = {"a": {"y": [3], "z": 2}, "b": {"now": "map"}, "c": None}
    assert recipe.deep_merge(base, over) == {"a": {"x": 1, "y": [3], "z": 2},
                                             "b": {"now": "map"}, "c": None}
    assert base["a"] == {"x": 1, "y": [1, 2]}  # inputs untouched


def test_zoo_recipe_resolves_extends_chain_and_paths():
    rec = recipe.load("retinaface-640-int16", ROOT / "recipes")
    data = rec.data
    # mode from the recipe itself, bias_correction from _base/common.yaml
    assert data["quant"] == {"mode": "int16", "bias_correction": True}
    assert data["input"]["shape"] == [1, 3, 640, 640]  # from retinaface-640.yaml
    assert data["check"]["task"] == "retinaface" and data["check"]["count"] == 8  # base + common
    assert data["calibration"]["images"]["manifest"] == str(ROOT / "recipes/_data/photos.txt")
    assert "extends" not in data and rec.name == "retinaface-640-int16"


def test_paths_are_relative_to_the_file_that_states_them(tmp_path):
    write(tmp_path, "recipes/_base/b.yaml", "schema_version: 1\n" + SOURCE +
          "input: {shape: [1, 3, 8, 8], color: RGB}\ncalibration: {images: [../img/a.jpg], count: 1}\n")
    write(tmp_path, "recipes/r.yaml", "extends: _base/b.yaml\ncheck: {images: [c.jpg]}\n")
    data = recipe.load("r", tmp_path / "recipes").data
    base = tmp_path / "recipes" / "_base"
    assert data["source"]["prototxt"] == {"path": str(base / "m.prototxt")}
    assert data["source"]["caffemodel"]["path"] == str(base / "m.caffemodel")
    assert data["calibration"]["images"] == [{"path": str(tmp_path / "recipes/img/a.jpg")}]
    assert data["check"]["images"] == [{"path": str(tmp_path / "recipes/c.jpg")}]
    assert recipe.names_in(tmp_path / "recipes") == ["r"]  # _base is not a recipe


def test_portable_paths_are_root_relative_even_outside_the_root(tmp_path):
    """What a package records: no absolute path, whether inside the project or beside it."""
    proj = tmp_path / "proj"
    write(tmp_path, "outside/b.yaml", "schema_version: 1\n" + SOURCE +
          "input: {shape: [1, 3, 8, 8], color: RGB}\ncalibration: {images: [../shared/a.jpg], count: 1}\n"
          "check: {images: {manifest: list.txt}}\n")
    write(proj, "recipes/r.yaml", "extends: ../../outside/b.yaml\n"
          "description: a text that names %s/x without being a path\n" % proj +
          "patch_check: {images: [p.jpg]}\n")
    data = recipe.portable(recipe.load("r", proj / "recipes").data, root=proj)
    assert data["source"]["prototxt"] == {"path": "../outside/m.prototxt"}
    assert data["source"]["caffemodel"]["path"] == "../outside/m.caffemodel"
    assert data["calibration"]["images"] == [{"path": "../shared/a.jpg"}]
    assert data["check"]["images"]["manifest"] == "../outside/list.txt"
    assert data["patch_check"]["images"] == [{"path": "recipes/p.jpg"}]
    assert data["description"].startswith("a text that names /")  # not a path field: as is


def test_matrix_expands_with_documented_names(tmp_path):
    write(tmp_path, "recipes/rf.yaml", "schema_version: 1\n" + SOURCE + textwrap.dedent("""\
        input: {shape: [1, 3, 8, 8], color: RGB}
        matrix:
          input.shape: {"512": [1, 3, 512, 512], "640": [1, 3, 640, 640]}
          quant.mode: [int8, int16]
        """))
    write(tmp_path, "recipes/sz.yaml", "schema_version: 1\n" + SOURCE +
          "input: {color: RGB}\nmatrix: {input.shape: [[1, 3, 32, 48]]}\n")
    found = recipe.load_all(tmp_path / "recipes")
    assert sorted(found) == ["rf-512-int16", "rf-512-int8", "rf-640-int16", "rf-640-int8",
                             "sz-1x3x32x48"]
    assert found["rf-640-int16"].data["input"]["shape"] == [1, 3, 640, 640]
    assert found["rf-640-int16"].data["quant"] == {"mode": "int16"}
    assert "matrix" not in found["rf-512-int8"].data
    assert recipe.load("rf-512-int16", tmp_path / "recipes").data["quant"]["mode"] == "int16"


def test_schema_messages_one_line_per_problem(tmp_path):
    path = write(tmp_path, "recipes/x.yaml", "schema_version: 1\n" + SOURCE + textwrap.dedent("""\
        input: {shape: [1, 3, 8, 8], color: RGB}
        quant: {mode: int4, high_precison: [conv1]}
        patches: [set_input_shape, remove_crops]
        """))
    with pytest.raises(RecipeError) as info:
        recipe.load_file(path)
    lines = str(info.value).splitlines()
    where = recipe.display(path)
    assert f"{where}: quant.mode: expected one of int8, int16, mixed, got 'int4'" in str(info.value)
    assert f"{where}: quant.high_precison: unknown key (did you mean 'high_precision'?)" in lines
    assert any(line.startswith(f"{where}: patches[1]: expected one of set_input_shape")
               and "got 'remove_crops' (did you mean 'remove_crop'?)" in line for line in lines)
    assert len(lines) == 3


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "recipes/bad.yaml", "schema_version: 1\ninput: {shape: [1, 3\nq: 1\n")
    with pytest.raises(RecipeError, match=r"bad.yaml:3:\d+: YAML syntax error"):
        recipe.load_file(path)


def test_extends_cycle_and_missing_base(tmp_path):
    write(tmp_path, "recipes/a.yaml", "extends: _base/b.yaml\n")
    write(tmp_path, "recipes/_base/b.yaml", "extends: ../a.yaml\n")
    with pytest.raises(RecipeError, match=r"extends cycle.*a.yaml -> .*b.yaml -> .*a.yaml"):
        recipe.load("a", tmp_path / "recipes")
    write(tmp_path, "recipes/c.yaml", "extends: _base/nope.yaml\n")
    with pytest.raises(RecipeError, match=r"c.yaml: extends: base file not found.*got _base/nope"):
        recipe.load("c", tmp_path / "recipes")


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "-x", "a b", ""])
def test_unsafe_names_are_rejected(tmp_path, name):
    with pytest.raises(RecipeError, match="not a safe recipe name"):
        recipe.load(name, tmp_path)


def test_unknown_recipe_lists_known(tmp_path):
    write(tmp_path, "recipes/one.yaml", "schema_version: 1\n")
    with pytest.raises(RecipeError, match=r"unknown recipe. Expected one of one, got 'two'"):
        recipe.load("two", tmp_path / "recipes")


def test_validation_is_cached_by_content(tmp_path):
    cache = Cache(tmp_path / "cache")
    recipe.load("retinaface-640", ROOT / "recipes", cache)
    assert len(list((cache.base / "valid").iterdir())) == 1
    code = ("import sys; from nnbuild.recipe import load as recipe; from nnbuild.build.cache import Cache; "
            f"recipe.load('retinaface-640', recipe.Path({str(ROOT / 'recipes')!r}), "
            f"Cache({str(tmp_path / 'cache')!r})); print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env(tmp_path), check=True).stdout
    assert out.strip() == "False"


def test_new_recipe_extends_the_source(tmp_path):
    write(tmp_path, "recipes/base.yaml", "schema_version: 1\n" + SOURCE +
          "input: {shape: [1, 3, 8, 8], color: RGB}\nmatrix: {quant.mode: [int8, int16]}\n")
    path = recipe.new_recipe("mine", "base-int16", tmp_path / "recipes")
    mine = recipe.load("mine", tmp_path / "recipes").data
    other = recipe.load("base-int16", tmp_path / "recipes").data
    assert {k: v for k, v in mine.items() if k != "description"} == {
        k: v for k, v in other.items() if k != "description"}
    assert "extends: base.yaml" in path.read_text()
    with pytest.raises(RecipeError, match="already exists"):
        recipe.new_recipe("mine", "base-int16", tmp_path / "recipes")


def test_cli_validate_exit_2_and_nothing_in_cache(tmp_path):
    write(tmp_path, "recipes/x.yaml", "schema_version: 1\n" + SOURCE + "input: {color: RGBA}\n")
    result = subprocess.run([sys.executable, "-m", "nnbuild.cli", "validate", "x"], cwd=tmp_path,
                            capture_output=True, text=True, env=env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nnbuild: error: recipes/x.yaml: input.color: expected one of RGB, BGR, GRAY, got 'RGBA'"
        " (did you mean 'RGB'?)"]
    assert not (tmp_path / "cache").exists()
