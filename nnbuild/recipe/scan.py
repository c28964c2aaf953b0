"""Tolerant discovery of ``recipes/``: one bad file is reported and skipped, not fatal.

``load.names_in`` and ``load.load_all`` stop at the first bad file, which let one YAML typo (or a
file named ``a..b.yaml``) block ``doit build`` / ``doit list`` / ``nnbuild validate`` of every
other recipe. ``scan`` returns the good names and one ``RecipeError`` per bad file instead.
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import RecipeError
from nnbuild.recipe.load import (Recipe, check_name, display, expand_matrix, load_file,
                                 load_yaml, recipe_files, recipes_dir)


def _names_of(path: Path) -> list[str]:
    check_name(path.stem, display(path))
    data = load_yaml(path)
    names = list(expand_matrix(path.stem, data, display(path))) if "matrix" in data else [path.stem]
    for name in names:
        check_name(name, f"{display(path)}: matrix")
    return names


def scan(folder: Path | None = None) -> tuple[list[str], list[RecipeError]]:
    """(recipe names of the readable files, one error per unreadable file), without validating."""
    names: list[str] = []
    problems: list[RecipeError] = []
    for path in recipe_files(folder or recipes_dir()):
        try:
            names.extend(_names_of(path))
        except RecipeError as err:
            problems.append(err)
    return sorted(names), problems


def load_each(folder: Path | None = None, cache=None) -> tuple[dict[str, Recipe], list[RecipeError]]:
    """Every valid recipe by name, and one error per file that is not (validated, like
    ``load.load_all``; a name defined twice is an error of the second file)."""
    found: dict[str, Recipe] = {}
    problems: list[RecipeError] = []
    for path in recipe_files(folder or recipes_dir()):
        try:
            recipes = load_file(path, cache)
        except RecipeError as err:
            problems.append(err)
            continue
        for name, recipe in recipes.items():
            if name in found:
                problems.append(RecipeError(display(path), f"recipe name {name!r} defined twice",
                                            expected="unique names",
                                            got=f"also in {display(found[name].path)}",
                                            hint="rename a file or a matrix label"))
                continue
            found[name] = recipe
    return found, problems
