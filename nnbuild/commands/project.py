"""``nnbuild init [DIR]``, ``nnbuild zoo`` and ``nnbuild build [RECIPE ...]``: nnbuild in a
project of one's own (``nnbuild.build.scaffold``, ``nnbuild.recipe.zoo``, ``doit_plugin``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``init``, ``zoo`` and ``build``."""
    init = subparsers.add_parser("init", help="write a new nnbuild project (recipes/, config)",
                                 description="Write recipes/example.yaml, pyproject.toml, "
                                             ".gitignore and README.md into DIR.")
    init.add_argument("folder", nargs="?", default=".", type=Path, metavar="DIR")
    init.set_defaults(func=run_init)
    zoo = subparsers.add_parser("zoo", help="list the zoo recipes (extends: zoo:NAME)")
    zoo.set_defaults(func=run_zoo)
    build = subparsers.add_parser("build", help="build recipes (same as doit build)",
                                  description="Build every stage of the named recipes "
                                              "(default: all in recipes/), as doit build does.")
    build.add_argument("recipes", nargs="*", metavar="RECIPE",
                       help="recipe names, or recipe files in recipes/")
    build.add_argument("-n", "--process", type=int, default=None, metavar="N",
                       help="build with N processes")
    build.add_argument("--remote", default=None, metavar="off|URL",
                       help="team cache for this build (default: NNBUILD_REMOTE or pyproject)")
    build.set_defaults(func=run_build)


def run_init(args: argparse.Namespace) -> int:
    """Write the project and say what to run next."""
    from nnbuild.build.scaffold import init

    for path in init(args.folder):
        print(path)
    print(f"next: cd {args.folder} && nnbuild build example")
    return 0


def run_zoo(args: argparse.Namespace) -> int:
    """One line per zoo recipe: ``zoo:NAME  description``."""
    del args
    import yaml

    from nnbuild.recipe.zoo import zoo_dir, zoo_names

    for name in zoo_names():
        text = (zoo_dir() / f"{name}.yaml").read_text(encoding="utf-8")
        description = (yaml.safe_load(text) or {}).get("description", "")
        print(f"zoo:{name:<24} {description}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Hand over to doit with nnbuild's loader and build command."""
    from nnbuild.build.doit_plugin import run_build

    names = [Path(r).stem if r.endswith((".yaml", ".yml")) else r for r in args.recipes]
    return run_build(names, args.process, args.remote)
