"""``nnbuild explain RECIPE``: for each stage, up to date, restored from cache, or the reasons
it would run (``nnbuild.build.explain``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``explain`` sub-command."""
    parser = subparsers.add_parser("explain", help="which stages of a recipe would run, and why",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name (file stem in recipes/) or recipe file path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per stage, followed by its reasons."""
    from nnbuild.build.doit_plugin import get_recipe, pipeline
    from nnbuild.build.explain import explain
    from nnbuild.recipe.load import project_root

    root = project_root()
    rec = get_recipe(root, args.recipe)
    for stage, status, why in explain(pipeline(root), rec):
        print(f"{stage}:{rec.name}: {status}")
        for reason in why:
            print(f"  {reason}")
    return 0
