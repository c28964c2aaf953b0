"""``nnbuild new NAME --from RECIPE`` and ``nnbuild validate [RECIPE...]``: recipe files."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``new`` and ``validate`` sub-commands."""
    new = subparsers.add_parser("new", help="write recipes/NAME.yaml extending another recipe",
                                description="Write recipes/NAME.yaml that extends RECIPE.")
    new.add_argument("name", help="new recipe name (file stem)")
    new.add_argument("--from", dest="source", required=True, metavar="RECIPE",
                     help="recipe to extend")
    new.set_defaults(func=run_new)
    check = subparsers.add_parser("validate", help="check recipes against the schema",
                                  description="Validate recipes (default: all in recipes/).")
    check.add_argument("recipes", nargs="*", metavar="RECIPE", help="names (default: all)")
    check.set_defaults(func=run_validate)


def run_new(args: argparse.Namespace) -> int:
    """Write the new recipe and print its path."""
    from nnbuild.recipe.load import display, new_recipe

    print(display(new_recipe(args.name, args.source)))
    return 0


def known_pass_names() -> set[str] | None:
    """Pass names of the pass registry, when the package provides one (import is lazy)."""
    try:
        from nnbuild import passes
    except ImportError:
        return None
    names = getattr(passes, "PASSES", None) or {}
    return set(names) | set(getattr(passes, "PASS_MODULES", ()))


def pass_problems(data: dict, registry: set[str] | None) -> list[str]:
    """Patch entries whose pass name the registry does not know."""
    if not registry:
        return []
    problems = []
    for index, item in enumerate(data.get("patches") or []):
        name = item if isinstance(item, str) else next(iter(item), None) if isinstance(item, dict) else None
        if name is not None and name not in registry:
            problems.append(f"patches[{index}]: unknown pass {name!r}")
    return problems


def run_validate(args: argparse.Namespace) -> int:
    """Validate (no validation cache: always the full schema) and print one line per recipe."""
    from nnbuild.errors import RecipeError
    from nnbuild.recipe.load import load, load_all, recipes_dir

    folder = recipes_dir()
    found = {n: load(n, folder) for n in args.recipes} if args.recipes else load_all(folder)
    registry = known_pass_names()
    problems = [f"{r.name}: {p}" for r in found.values() for p in pass_problems(r.data, registry)]
    if problems:
        raise RecipeError("recipes", "; ".join(problems), hint="see nnbuild/passes")
    for name in sorted(found):
        print(f"{name}: ok")
    return 0
