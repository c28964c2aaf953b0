"""``nnbuild report RECIPE [--open] [--json]``: where the last build's check report is."""

from __future__ import annotations

from nnbuild.errors import NNBuildError


def register(sub) -> None:
    p = sub.add_parser("report", help="print the path of a recipe's report.html (or open it)")
    p.add_argument("recipe", help="recipe name (file stem in recipes/)")
    p.add_argument("--open", action="store_true", help="also open it in the default browser")
    p.add_argument("--json", action="store_true", help="print report.json's path instead")
    p.set_defaults(func=run)


def run(args) -> int:
    from nnbuild.build.runner import stage_output_dir
    from nnbuild.recipe.load import check_name

    check_name(args.recipe, "nnbuild report", typed=True)  # it becomes a path under cache/
    path = stage_output_dir(args.recipe, "check") / ("report.json" if args.json else "report.html")
    if not path.is_file():
        raise NNBuildError(f"recipe {args.recipe}", "no check report yet",
                           expected=str(path), got="no such file",
                           hint=f"run `doit build {args.recipe}` first")
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(path.as_uri())
    return 0
