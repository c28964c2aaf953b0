"""Content hashing: canonical JSON, file sha256 with a stat cache, and code fingerprints.

Everything a stage key is made of goes through this module, so hashing and canonicalisation
are decided in one place (style.md rule 6). Only the standard library is imported: the no-op
build path runs through here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHUNK = 1 << 20


def canonical_json(value: object) -> str:
    """Serialise ``value`` so that equal values always give equal text.

    Args:
        value: JSON-compatible data (dicts, lists, str, int, float, bool, None).

    Returns:
        Compact JSON with sorted keys and no whitespace.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_text(text: str) -> str:
    """Return the hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: object) -> str:
    """Return the hex sha256 of ``canonical_json(value)``."""
    return sha256_text(canonical_json(value))


def sha256_file(path: str | os.PathLike) -> str:
    """Hash a file's bytes in 1 MiB chunks (no stat cache)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_sig(st: os.stat_result) -> list[int]:
    # ctime_ns changes on every write and cannot be set by `touch`, so a file rewritten with the
    # same size and a restored mtime is still noticed.
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class StatCache:
    """Remembers ``path -> (size, mtime_ns, inode, ctime_ns, sha256)`` so unchanged files are
    never re-hashed.

    The table lives in one JSON file; it is only a hint, so concurrent writers may lose each
    other's entries (the next run re-hashes) but never corrupt it: saves are atomic replaces.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._table: dict[str, list] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list]:
        if self._table is None:
            self._table = {}
            if self.path is not None and self.path.exists():
                try:
                    loaded = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    loaded = {}  # a torn or foreign file is only a lost hint: rebuild it
                if isinstance(loaded, dict):
                    self._table = loaded
        return self._table

    def sha256(self, path: str | os.PathLike) -> str:
        """Return the sha256 of ``path``, re-hashing only if its stat data changed."""
        key = os.path.abspath(path)
        sig = _stat_sig(os.stat(key))
        table = self._load()
        hit = table.get(key)
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == sig:
            return hit[4]
        digest = sha256_file(key)
        table[key] = sig + [digest]
        self._dirty = True
        return digest

    def remember(self, path: str | os.PathLike, digest: str) -> None:
        """Record a hash computed elsewhere (e.g. while copying) for ``path``."""
        key = os.path.abspath(path)
        self._load()[key] = _stat_sig(os.stat(key)) + [digest]
        self._dirty = True

    def save(self) -> None:
        """Write the table back if it changed (tmp file + ``os.replace``)."""
        if not self._dirty or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(canonical_json(self._table))
        os.replace(tmp, self.path)
        self._dirty = False


def module_files(module: str) -> list[Path]:
    """Source files of a module or package, found without importing it.

    ``nnbuild.x.y`` is looked up under the installed ``nnbuild`` directory (so fingerprinting
    ``nnbuild.engine`` never imports numpy); other top-level names use ``importlib`` specs.

    Args:
        module: dotted module or package name.

    Returns:
        Sorted ``.py`` files (a package contributes every ``.py`` below it).
    """
    parts = module.split(".")
    if parts[0] == "nnbuild":
        base = Path(__file__).resolve().parent.joinpath(*parts[1:])
    else:
        import importlib.util

        spec = importlib.util.find_spec(parts[0])
        if spec is None or spec.origin is None:
            return []
        base = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        base = base.joinpath(*parts[1:]) if len(parts) > 1 else base
    if base.is_dir():
        return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    single = base.with_suffix(".py") if base.suffix != ".py" else base
    return [single] if single.is_file() else []


def code_fingerprint(modules: tuple[str, ...] | list[str], stats: StatCache) -> dict[str, str]:
    """Fingerprint the code of ``modules``: one sha256 per module over its files' hashes.

    Args:
        modules: dotted names (packages include all their files).
        stats: stat cache used to avoid re-hashing unchanged sources.

    Returns:
        ``{module: sha256}``; a module with no source files maps to ``"missing"`` so that adding
        it later changes the key.
    """
    result = {}
    for module in sorted(set(modules)):
        files = module_files(module)
        if not files:
            result[module] = "missing"
            continue
        root = os.path.commonpath([str(f.parent) for f in files])
        entries = [[os.path.relpath(f, root), stats.sha256(f)] for f in files]
        result[module] = sha256_json(entries)
    return result
