"""``nnbuild explain RECIPE``: for each stage, up to date or the reasons it would run.

Reasons compare the stage's current key document with the one of its last build
(``cache/v1/out/<recipe>/<stage>.json``): ``recipe_changed: calibration.count``,
``input_changed: <file>``, ``code_changed: <module>``, ``upstream_changed: <stage>``,
``tool_changed: <tool>``, ``missing_output`` (never built, or outputs deleted/edited). A stage
whose new key is already in the cache says it will be restored instead of recomputed.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``explain`` sub-command."""
    parser = subparsers.add_parser("explain", help="which stages of a recipe would run, and why",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name (file stem in recipes/) or recipe file path")
    parser.set_defaults(func=run)


def _leaf_diff(old: object, new: object, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _leaf_diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if old == new else [path]


def reasons(old: dict | None, new: dict, labels_old: dict, labels_new: dict) -> list[str]:
    """Why a stage with key document ``new`` differs from its last build's ``old``."""
    if old is None:
        return ["missing_output (never built)"]
    out = []
    if old.get("cache") != new.get("cache") or old.get("stage") != new.get("stage"):
        out.append("cache_version_changed")
    out += [f"code_changed: {m}" for m in _leaf_diff(old.get("code", {}), new["code"], "")]
    out += [f"recipe_changed: {p}" for p in _leaf_diff(old.get("recipe", {}), new["recipe"], "")]
    for group in sorted(set(old.get("inputs", {})) | set(new["inputs"])):
        before, after = set(old.get("inputs", {}).get(group, [])), set(new["inputs"].get(group, []))
        out += [f"input_changed: {labels_new.get(d, d[:12])} (new in {group})" for d in
                sorted(after - before)]
        out += [f"input_changed: {labels_old.get(d, d[:12])} (gone from {group})" for d in
                sorted(before - after)]
    out += [f"upstream_changed: {s}" for s in sorted(new["upstream"])
            if old.get("upstream", {}).get(s) != new["upstream"][s]]
    out += [f"tool_changed: {t}" for t in _leaf_diff(old.get("tools", {}), new["tools"], "")]
    return out


def explain(pipe, rec) -> list[tuple[str, str, list[str]]]:
    """``[(stage, status, reasons)]`` for every stage of ``rec``; status is ``up to date``,
    ``restore`` (key cached) or ``run``."""
    rows = []
    for stage in pipe.modules:
        pipe.forget(rec)
        if pipe.is_current(rec, stage):
            rows.append((stage, "up to date", []))
            continue
        key, doc, labels = pipe.key_doc(rec, stage, loose=True)
        marker = pipe.read_marker(rec.name, stage)
        why = reasons(marker and marker.get("doc"), doc, (marker or {}).get("labels", {}), labels)
        if marker and marker.get("key") == key or not why:
            why = why or ["missing_output (outputs deleted or edited)"]
        exact = pipe.key_doc(rec, stage)
        cached = exact is not None and pipe.cache.entry_path(stage, exact[0]).is_file()
        rows.append((stage, "restore" if cached else "run", why))
    return rows


def run(args: argparse.Namespace) -> int:
    """Print one line per stage, followed by its reasons."""
    from nnbuild.build.doit_plugin import get_recipe, pipeline
    from nnbuild.recipe.load import project_root

    root = project_root()
    rec = get_recipe(root, args.recipe)
    for stage, status, why in explain(pipeline(root), rec):
        suffix = " (from cache)" if status == "restore" else ""
        print(f"{stage}:{rec.name}: {'would run' if why and status == 'run' else status}{suffix}")
        for reason in why:
            print(f"  {reason}")
    return 0
