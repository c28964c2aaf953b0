"""Strict recipe YAML: duplicate keys and alias bombs fail fast with one line, `validate` too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnbuild.errors import RecipeError
from nnbuild.recipe import load as recipe
from nnbuild.recipe.yamlsafe import MAX_NODES, load_text
from fakestages.project import env

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


def test_duplicate_key_names_file_line_and_key(tmp_path):
    path = tmp_path / "recipes" / "dup.yaml"
    path.parent.mkdir()
    path.write_text("schema_version: 1\ninput:\n  color: RGB\n  shape: [1, 3, 8, 8]\n"
                    "  color: BGR\n")
    with pytest.raises(RecipeError) as info:
        recipe.load_yaml(path)
    assert str(info.value) == (
        f"{recipe.display(path)}:5:3: duplicate key 'color'. Expected each key once per map, got "
        "'color' also on line 3. Hint: remove one of them (YAML would silently keep the last).")


def test_duplicate_top_level_key_and_merge_keys_still_work():
    with pytest.raises(RecipeError, match=r"f.yaml:2:1: duplicate key 'a'"):
        load_text("a: 1\na: 2\n", "f.yaml")
    # a merge key overridden by an explicit key is not a duplicate
    assert load_text("base: &b {x: 1, y: 2}\nv: {<<: *b, y: 3}\n", "f.yaml")["v"] == {"x": 1, "y": 3}
    assert load_text("k: [1, 2]\nm: {1: a, 2: b}\n", "f.yaml") == {"k": [1, 2], "m": {1: "a", 2: "b"}}


def test_small_aliases_are_fine_and_a_bomb_fails_fast():
    assert load_text("a: &a [1, 2]\nb: *a\n", "f.yaml") == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(RecipeError) as info:  # refused before construction (unbounded: 33 s, OOM)
        load_text(BOMB, "bomb.yaml")
    assert str(info.value).startswith("bomb.yaml:")
    assert f"YAML aliases expand too far. Expected at most {MAX_NODES} nodes" in str(info.value)
    assert "alias bomb" in str(info.value)


def test_recursive_alias_is_refused():
    with pytest.raises(RecipeError, match=r"f.yaml:1:4: recursive alias"):
        load_text("a: &a [1, *a]\n", "f.yaml")


@pytest.mark.parametrize("text, message", [
    (BOMB, "YAML aliases expand too far"),
    ("schema_version: 1\nschema_version: 1\n", "recipes/x.yaml:2:1: duplicate key 'schema_version'")])
def test_cli_validate_reports_one_line_exit_2(tmp_path, text, message):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "x.yaml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "nnbuild.cli", "validate"], cwd=tmp_path,
                            capture_output=True, text=True, env=env(tmp_path), timeout=60)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
