"""``mapper.compress: bypass`` -> ``[compress_mode] 1`` (the way to a fully verifiable .wk)."""

from __future__ import annotations

import pytest

from nnbuild.errors import RecipeError
from nnbuild.nnie import cfg as nc
from nnbuild.recipe.schema import schema_problems
from nnbuild.recipe.spec import RecipeSpec

RECIPE = {"input": {"name": "data", "shape": [1, 3, 64, 64], "color": "RGB"},
          "calibration": {"count": 4}, "quant": {"mode": "int8"},
          "target": {"chip": "hi3516dv300"}}


def compress_mode(mapper=None) -> list[str]:
    recipe = dict(RECIPE, **({"mapper": mapper} if mapper is not None else {}))
    return nc.parse_cfg(nc.make_cfg(RecipeSpec.from_data(recipe), instruction_name="n")[nc.CFG_NAME])["compress_mode"]


def test_default_normal_and_bypass():
    assert compress_mode() == ["0"]
    assert compress_mode({"compress": "normal"}) == ["0"]
    assert compress_mode({"compress": "bypass"}) == ["1"]


def test_unknown_value_one_line():
    with pytest.raises(RecipeError) as info:
        compress_mode({"compress": "zip"})
    assert str(info.value) == ("mapper.compress: unknown compress mode. Expected normal | bypass, "
                               "got zip. Hint: bypass stores every weight block raw (fully "
                               "verifiable .wk).")


def test_schema():
    assert not [p for p in schema_problems({"mapper": {"compress": "bypass"}}) if "compress" in p]
    assert [p for p in schema_problems({"mapper": {"compress": "zip"}}) if "compress" in p]
