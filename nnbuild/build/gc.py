"""Keeping the cache in bounds: ``gc`` (stale staging files, unreferenced content, least
recently used entries) and ``stats``.

gc removes stale staging files of killed builds, content files no entry references (older than
``grace`` seconds, so a build that is storing files right now keeps them), then the least
recently used stage entries (entry mtime = last use) until the content store fits the size.
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


def gc(cache, max_size: int | None = None, grace: float = 600.0) -> dict[str, int]:
    """Collect garbage; returns counts and bytes removed/kept."""
    from nnbuild.build.cache import remove_tree, stale_tmp

    removed = {"tmp": 0, "files": 0, "entries": 0, "bytes": 0}
    for path in stale_tmp(cache, older_than=max(grace, 3600.0)):
        remove_tree(path) if path.is_dir() else path.unlink(missing_ok=True)
        removed["tmp"] += 1
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
    while max_size is not None and entries and sum(s for s, _m in blobs.values()) > max_size:
        _mtime, path, refs = entries.pop(0)
        path.unlink(missing_ok=True)
        removed["entries"] += 1
        still = set().union(*(r for _t, _p, r in entries)) if entries else set()
        for digest in refs - still:
            if digest in blobs:
                _drop_blob(cache, digest, blobs[digest][0], blobs, removed)
    removed["kept_entries"] = len(entries)
    removed["kept_bytes"] = sum(s for s, _m in blobs.values())
    return removed


def _drop_blob(cache, digest: str, size: int, blobs: dict, removed: dict) -> None:
    cache.cas_path(digest).unlink(missing_ok=True)
    blobs.pop(digest, None)
    removed["files"] += 1
    removed["bytes"] += size


def stats(cache) -> dict[str, Any]:
    """Entry counts per stage, content-store size, materialised-output size."""
    per_stage: dict[str, int] = {}
    for path in (cache.base / "ac").glob("*/*/*.json"):
        stage = path.parent.parent.name
        per_stage[stage] = per_stage.get(stage, 0) + 1
    blobs = _blob_sizes(cache)
    out_bytes = sum(p.stat().st_size for p in (cache.base / "out").rglob("*") if p.is_file())
    return {"root": str(cache.root), "entries": dict(sorted(per_stage.items())),
            "files": len(blobs), "bytes": sum(s for s, _m in blobs.values()),
            "out_bytes": out_bytes}
