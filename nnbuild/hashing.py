"""Content hashing: canonical JSON and file sha256 with a stat cache.

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


def stat_signature(st: os.stat_result) -> list[int]:
    """What identifies one version of a file without reading it: size, mtime, inode, ctime."""
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
        sig = stat_signature(os.stat(key))
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
        self._load()[key] = stat_signature(os.stat(key)) + [digest]
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
