"""The content-addressed cache: immutable files by sha256 plus stage results by stage key.

Layout (``CACHE_VERSION`` is part of every path, so a format change never reads old data)::

    cache/v1/cas/sha256/ab/<hex>          immutable file contents
    cache/v1/ac/<stage>/ab/<key>.json     stage key -> outputs (name, sha256, size), key document
    cache/v1/tmp/                         staging on the same filesystem, then os.replace
    cache/v1/out/<recipe>/<stage>/        materialised outputs of the last build of a recipe
    cache/v1/locks/<recipe>.<stage>.lock  held while a build swaps those outputs (flock)

Every write is tmp file + ``os.replace`` and the action-cache entry is written after all of its
files, so a build killed at any moment leaves a complete entry or none. A corrupt or partial
entry is a miss: it is removed and reported, never a crash. The entry file's mtime records its
last use, which ``gc`` uses for LRU eviction.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

from nnbuild.build.fingerprint import Fingerprints
from nnbuild.errors import CacheError
from nnbuild.hashing import CHUNK, StatCache, canonical_json

CACHE_VERSION = "v1"
ENTRY_SCHEMA = 1
_HEX = frozenset("0123456789abcdef")


def default_warn(message: str) -> None:
    """Report a cache problem that was recovered from (corrupt entry, changed file)."""
    print(f"nnbuild: cache: {message}", file=sys.stderr)


def is_sha256(text: object) -> bool:
    """True for a 64-character lowercase hex string."""
    return isinstance(text, str) and len(text) == 64 and set(text) <= _HEX


class Cache:
    """One cache directory (``<project>/cache`` by default).

    Args:
        root: the ``cache/`` directory; ``v1/`` is created below it.
        warn: callback for recovered problems (defaults to a stderr line).
    """

    def __init__(self, root: str | os.PathLike, warn: Callable[[str], None] = default_warn):
        self.root = Path(root).resolve()
        self.base = self.root / CACHE_VERSION
        self.warn = warn
        self.stats = StatCache(self.base / "stat.json")
        # Code fingerprints (import closures), for the key of anything cached under base/.
        self.prints = Fingerprints(self.stats, self.base / "imports.json")

    # -- paths ---------------------------------------------------------------------------------
    def cas_path(self, digest: str) -> Path:
        """Path of the CAS file holding content ``digest``."""
        return self.base / "cas" / "sha256" / digest[:2] / digest

    def entry_path(self, stage: str, key: str) -> Path:
        """Path of the action-cache entry of ``stage`` under ``key``."""
        return self.base / "ac" / stage / key[:2] / f"{key}.json"

    def out_dir(self, recipe: str, stage: str) -> Path:
        """Where the outputs of ``stage`` for ``recipe`` are materialised for users."""
        return self.base / "out" / recipe / stage

    def tmp_path(self, tag: str = "") -> Path:
        """A fresh, unique path inside ``cache/v1/tmp`` (not created)."""
        tmp = self.base / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{tag}{os.getpid()}-{uuid.uuid4().hex[:12]}"

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock ``locks/<name>.lock`` (``flock``) inside the block.

        Builds in other processes that share this cache wait for it; the kernel drops the lock
        of a killed process, so a ``kill -9`` never leaves it held. The lock file stays (empty).
        """
        locks = self.base / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- content store -------------------------------------------------------------------------
    def put_file(self, src: str | os.PathLike, expected: str | None = None) -> str:
        """Copy ``src`` into the store, hashing while copying; return its sha256.

        Args:
            src: file to store.
            expected: if given, the content must hash to it, else nothing is stored.

        Raises:
            CacheError: ``expected`` does not match the file's content.
        """
        tmp = self.tmp_path("put-")
        digest = hashlib.sha256()
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
        except BaseException:  # a full disk or Ctrl-C: no partial blob left in tmp/
            tmp.unlink(missing_ok=True)
            raise
        hexd = digest.hexdigest()
        if expected is not None and hexd != expected:
            tmp.unlink()
            raise CacheError(str(src), "content changed while storing it", expected=expected,
                             got=hexd, hint="do not edit inputs during a build")
        self._commit_blob(tmp, hexd)
        return hexd

    def adopt(self, tmp: Path, digest: str) -> Path:
        """Move an already verified file at ``tmp`` (inside cache/v1/tmp) into the store."""
        self._commit_blob(tmp, digest)
        return self.cas_path(digest)

    def _commit_blob(self, tmp: Path, digest: str) -> None:
        dest = self.cas_path(digest)
        if dest.exists():
            tmp.unlink()
            os.utime(dest)  # recent mtime protects it from gc's grace window while in use
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)  # CAS files are immutable; a stage must never edit them in place
        os.replace(tmp, dest)  # same content from a concurrent writer is harmless

    def verify_blob(self, digest: str) -> bool:
        """Re-hash a stored file; a mismatch removes it and is reported."""
        path = self.cas_path(digest)
        if not path.exists():
            return False
        h = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                h.update(chunk)
        if h.hexdigest() == digest:
            return True
        self.warn(f"{path}: content changed behind nnbuild's back (sha256 {h.hexdigest()}, "
                  f"expected {digest}); removed, it will be rebuilt")
        path.unlink(missing_ok=True)
        return False

    # -- action cache --------------------------------------------------------------------------
    def read_entry(self, stage: str, key: str) -> dict | None:
        """Load the entry of ``stage``/``key``; a missing one is ``None``, a corrupt or partial
        one (unreadable JSON, wrong fields, a referenced file missing or of the wrong size) is
        removed, reported, and also ``None``."""
        path = self.entry_path(stage, key)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        problem = None
        try:
            entry = json.loads(text)
        except ValueError as err:
            problem, entry = f"unreadable JSON ({err})", None
        if entry is not None:
            problem = self._entry_problem(entry, stage, key)
        if problem:
            self.warn(f"{path}: corrupt entry removed ({problem}); the stage will run again")
            path.unlink(missing_ok=True)
            return None
        return entry

    def _entry_problem(self, entry: object, stage: str, key: str) -> str | None:
        if not isinstance(entry, dict) or entry.get("schema") != ENTRY_SCHEMA:
            return "unknown entry format"
        if entry.get("stage") != stage or entry.get("key") != key:
            return "stage/key do not match the file name"
        outputs = entry.get("outputs")
        if not isinstance(outputs, dict):
            return "no outputs table"
        for name, info in outputs.items():
            if not (isinstance(info, dict) and is_sha256(info.get("sha256"))
                    and isinstance(info.get("size"), int)):
                return f"bad output record for {name!r}"
            try:
                size = self.cas_path(info["sha256"]).stat().st_size
            except FileNotFoundError:
                return f"output {name!r} missing from the content store"
            if size != info["size"]:
                return f"output {name!r} has size {size}, expected {info['size']}"
        return None

    def write_entry(self, stage: str, key: str, entry: dict) -> Path:
        """Atomically write an entry; call only after all its files are in the store."""
        entry = dict(entry, schema=ENTRY_SCHEMA, stage=stage, key=key)
        path = self.entry_path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_path("entry-")
        try:
            tmp.write_text(json.dumps(entry, sort_keys=True, indent=1))
            os.replace(tmp, path)
        except BaseException:  # a full disk: no entry, and no partial record in tmp/
            tmp.unlink(missing_ok=True)
            raise
        return path

    def drop_entry(self, stage: str, key: str) -> None:
        """Remove an entry (its files stay until ``gc``)."""
        self.entry_path(stage, key).unlink(missing_ok=True)

    def touch_entry(self, stage: str, key: str) -> None:
        """Record a use of an entry for LRU eviction."""
        try:
            os.utime(self.entry_path(stage, key))
        except FileNotFoundError:
            pass  # removed by a concurrent gc: the next build simply misses

    def restore(self, entry: dict, dest: Path) -> bool:
        """Copy an entry's outputs into the empty directory ``dest``, verifying every hash.

        Returns:
            False if a stored file was missing or changed: that file and the entry are removed
            (and reported), ``dest`` may hold a partial copy, and the caller treats it as a miss.
        """
        for name, info in sorted(entry["outputs"].items()):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self._copy_verified(info["sha256"], target):
                self.drop_entry(entry["stage"], entry["key"])
                return False
        return True

    def _copy_verified(self, digest: str, target: Path) -> bool:
        src = self.cas_path(digest)
        h = hashlib.sha256()
        try:
            with open(src, "rb") as fin, open(target, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    h.update(chunk)
                    fout.write(chunk)
        except FileNotFoundError:
            self.warn(f"{src}: missing from the content store; the stage will run again")
            return False
        if h.hexdigest() != digest:
            self.warn(f"{src}: content changed behind nnbuild's back (sha256 {h.hexdigest()}, "
                      f"expected {digest}); removed, the stage will run again")
            src.unlink(missing_ok=True)
            return False
        self.stats.remember(target, digest)
        return True

    def iter_entries(self):
        """Yield ``(path, entry_or_None)`` for every action-cache entry file."""
        for path in sorted((self.base / "ac").glob("*/*/*.json")):
            try:
                yield path, json.loads(path.read_text())
            except (OSError, ValueError):
                yield path, None


def write_json_atomic(path: Path, value: object, cache: Cache) -> None:
    """Write canonical JSON to ``path`` through the cache's tmp directory."""
    tmp = cache.tmp_path("json-")
    try:
        tmp.write_text(canonical_json(value))
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """Remove a directory tree that nnbuild owns (CAS files are read-only, hence the chmod)."""
    if not path.exists():
        return

    def _retry(func, target, _exc):
        os.chmod(target, 0o644)
        func(target)

    shutil.rmtree(path, onexc=_retry) if sys.version_info >= (3, 12) else shutil.rmtree(
        path, onerror=_retry)


def stale_tmp(cache: Cache, older_than: float) -> list[Path]:
    """Staging files/directories left by killed builds, older than ``older_than`` seconds."""
    tmp = cache.base / "tmp"
    if not tmp.is_dir():
        return []
    limit = time.time() - older_than
    return [p for p in tmp.iterdir() if p.lstat().st_mtime < limit]
