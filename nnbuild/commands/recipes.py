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
    check.add_argument("recipes", nargs="*", metavar="RECIPE",
                       help="names or recipe file paths (default: all in recipes/)")
    check.set_defaults(func=run_validate)


def run_new(args: argparse.Namespace) -> int:
    """Write the new recipe and print its path."""
    from nnbuild.recipe.load import display, new_recipe

    print(display(new_recipe(args.name, args.source)))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validate (no validation cache: always the full schema) and print one line per recipe."""
    import sys

    from nnbuild.recipe.load import load, recipes_dir
    from nnbuild.recipe.scan import load_each

    folder = recipes_dir()
    found, problems = {}, []
    for ref in args.recipes:
        recipe = load(ref, folder)
        found[recipe.name] = recipe
    if not args.recipes:  # every file: a bad one is reported and the others still checked
        found, problems = load_each(folder)
    for err in problems:
        print(f"nnbuild: error: {err}", file=sys.stderr)
    for name in sorted(found):
        print(f"{name}: ok")
    return 2 if problems else 0
