"""Keeping the cache in bounds: ``gc`` (stale staging files, unreferenced content, least
recently used entries) and ``stats``.

gc removes staging files of killed builds (older than ``grace``; never a running build's), the
folders of recipes that no longer exist, content files no entry references (older than
``grace`` seconds, so a build that is storing files right now keeps them), then the least
recently used stage entries (entry mtime = last use) and per-recipe folders until everything
nnbuild keeps fits the size (``footprint.py``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from nnbuild.errors import NNBuildError

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "T": 1e12, "TB": 1e12}


def parse_size(text: str) -> int:
    """``"5GB"`` -> 5_000_000_000; ``"512MiB"`` -> 536870912."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not match or match.group(2).upper() not in _UNITS:
        raise NNBuildError("--max-size", "not a size", expected="e.g. 500MB, 5GB, 2GiB",
                           got=repr(text))
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _blob_sizes(cache) -> dict[str, tuple[int, float]]:
    blobs = {}
    for path in (cache.base / "cas" / "sha256").glob("*/*"):
        st = path.stat()
        blobs[path.name] = (st.st_size, st.st_mtime)
    return blobs


def gc(cache, max_size: int | None = None, grace: float = 600.0,
       recipes: set[str] | None = None) -> dict[str, int]:
    """Collect garbage; returns counts and bytes removed/kept.

    ``max_size`` bounds everything nnbuild keeps (store, ``out/``, ``scratch/``, ``tmp/``):
    least recently used entries go first, then per-recipe folders, oldest first. ``recipes``
    (the names that still exist) lets gc remove the folders of deleted recipes.
    """
    from nnbuild.build import footprint
    from nnbuild.build.cache import remove_tree

    removed = {"tmp": 0, "files": 0, "entries": 0, "bytes": 0, "folders": 0}

    def drop_tree(path) -> None:
        removed["bytes"] += footprint.tree_size(path)
        remove_tree(path) if path.is_dir() else path.unlink(missing_ok=True)

    for path in footprint.removable_tmp(cache, grace):
        drop_tree(path)
        removed["tmp"] += 1
    folders = footprint.recipe_dirs(cache)
    if recipes is not None:
        for path in [p for p in folders if p.name not in recipes]:
            drop_tree(path)
            removed["folders"] += 1
        folders = [p for p in folders if p.name in recipes]
    entries = []  # (last use, path, referenced digests)
    for path, entry in cache.iter_entries():
        if entry is None or not isinstance(entry.get("outputs"), dict):
            path.unlink(missing_ok=True)  # corrupt entries are misses anyway
            removed["entries"] += 1
            continue
        refs = {o.get("sha256") for o in entry["outputs"].values() if isinstance(o, dict)}
        entries.append((path.stat().st_mtime, path, refs))
    entries.sort(key=lambda item: item[0])
    blobs = _blob_sizes(cache)
    live = set().union(*(refs for _t, _p, refs in entries)) if entries else set()
    now = time.time()
    for digest, (size, mtime) in list(blobs.items()):
        if digest not in live and now - mtime >= grace:
            _drop_blob(cache, digest, size, blobs, removed)
    other = sum(footprint.sizes(cache).values())  # out/, scratch/, tmp/ left after the above

    def total() -> int:
        return sum(s for s, _m in blobs.values()) + other

    while max_size is not None and entries and total() > max_size:
        _mtime, path, refs = entries.pop(0)
        path.unlink(missing_ok=True)
        removed["entries"] += 1
        still = set().union(*(r for _t, _p, r in entries)) if entries else set()
        for digest in refs - still:
            if digest in blobs:
                _drop_blob(cache, digest, blobs[digest][0], blobs, removed)
    for path in footprint.by_last_use(folders) if max_size is not None else []:
        if total() <= max_size:
            break
        size = footprint.tree_size(path)
        drop_tree(path)
        other -= size
        removed["folders"] += 1
    removed["kept_entries"] = len(entries)
    removed["kept_bytes"] = total()
    return removed


def _drop_blob(cache, digest: str, size: int, blobs: dict, removed: dict) -> None:
    cache.cas_path(digest).unlink(missing_ok=True)
    blobs.pop(digest, None)
    removed["files"] += 1
    removed["bytes"] += size


def stats(cache) -> dict[str, Any]:
    """Entry counts per stage; bytes in the content store, out/, scratch/ and tmp/."""
    from nnbuild.build import footprint

    per_stage: dict[str, int] = {}
    for path in (cache.base / "ac").glob("*/*/*.json"):
        stage = path.parent.parent.name
        per_stage[stage] = per_stage.get(stage, 0) + 1
    blobs = _blob_sizes(cache)
    kept = footprint.sizes(cache)
    return {"root": str(cache.root), "entries": dict(sorted(per_stage.items())),
            "files": len(blobs), "bytes": sum(s for s, _m in blobs.values()),
            "out_bytes": kept["out"], "scratch_bytes": kept["scratch"], "tmp_bytes": kept["tmp"]}
