"""Everything nnbuild keeps besides the content store, for ``cache gc`` and ``cache stats``.

``cache/v1/out/<recipe>/`` (materialised outputs of the last build), ``scratch/<recipe>/``
(per-image sub-results) and ``tmp/`` (staging) hold as much as the store itself; gc used to
count only the store, so ``--max-size 50MB`` "kept 48 MB" next to 405 MB of outputs, recipes
deleted long ago included. A staging item is named ``<tag><pid>-<random>``: one whose process
still runs belongs to a build in progress and is never removed, whatever ``--grace`` says.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

_PID = re.compile(r"^[a-z-]*?(\d+)-[0-9a-f]{12}")
PER_RECIPE = ("out", "scratch")


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (or of ``path`` itself), links not followed."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def removable_tmp(cache, grace: float) -> list[Path]:
    """Staging items older than ``grace`` seconds whose build process is not running."""
    tmp = cache.base / "tmp"
    if not tmp.is_dir():
        return []
    limit = time.time() - grace
    found = []
    for path in tmp.iterdir():
        owner = _PID.match(path.name)
        if path.lstat().st_mtime <= limit and not (owner and _running(int(owner.group(1)))):
            found.append(path)
    return found


def recipe_dirs(cache) -> list[Path]:
    """``out/<recipe>`` and ``scratch/<recipe>`` folders."""
    return sorted(p for kind in PER_RECIPE if (cache.base / kind).is_dir()
                  for p in (cache.base / kind).iterdir() if p.is_dir())


def by_last_use(dirs: list[Path]) -> list[Path]:
    """Oldest first, by the newest mtime inside (a build touches its markers and files)."""
    def last(path: Path) -> float:
        times = [path.lstat().st_mtime] + [p.lstat().st_mtime for p in path.rglob("*")]
        return max(times)
    return sorted(dirs, key=last)


def sizes(cache) -> dict[str, int]:
    """Bytes in ``out/``, ``scratch/`` and ``tmp/``."""
    return {kind: tree_size(cache.base / kind) if (cache.base / kind).exists() else 0
            for kind in (*PER_RECIPE, "tmp")}
