"""The team cache: read-through from and write-back to a remote store, beside the local cache.

Read-through (``pull``): on a local miss the stage key's record is fetched, checked, every blob
it names is downloaded into ``cache/v1/tmp``, verified by sha256 and size, and moved into the
local content store; the local entry is written last (marked ``"origin": "remote"``), so the
runner restores it exactly like a local hit. Write-back (``push``): blobs first, the record
last, so a reader never meets a record whose blobs are missing.

Trust rule (``build.record``): a record is never trusted beyond its blobs. Its stage and key
must match its path, its key document must hash to its key (the key already holds the code
fingerprint, so a record of other code can never match), its output names must stay inside the
stage's folder, and every blob must hash to the digest the record names. Anything else is a corrupt or partial
entry: a miss, reported once and noted in ``cache/v1/remote/bad.json`` so it is not tried again
(a later push of that key from this machine clears the note). Counters (hits, misses, bytes
down/up) accumulate in ``cache/v1/remote/stats.json`` (``nnbuild cache stats --remote``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from nnbuild.build.cache import Cache, write_json_atomic
from nnbuild.build.record import RECORD_FIELDS, record_bytes, record_problem
from nnbuild.build.remote import RemoteStore, configured_url, default_warn, redact
from nnbuild.hashing import CHUNK

BUILD_ID = "NNBUILD_BUILD_ID"  # one build (all its processes), for the one-warning rule
STATS = ("hits", "misses", "bad", "bytes_down", "bytes_up", "uploads", "errors")


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class TeamCache:
    """The remote side of one local cache (inactive when no remote is configured).

    Args:
        cache: the local cache.
        url: the remote; default: resolved on first use by ``remote.configured_url``.
        warn: callback for the lines reported (remote failures, corrupt records).
    """

    def __init__(self, cache: Cache, url: str | None = None,
                 warn: Callable[[str], None] = default_warn):
        self.cache, self.warn = cache, warn
        self._url, self._store, self._resolved = url, None, url is not None
        self._counts = dict.fromkeys(STATS, 0)
        self._bad: dict[str, str] | None = None
        self._error_counted = False

    @property
    def folder(self) -> Path:
        """``cache/v1/remote``: stats and notes about the remote."""
        return self.cache.base / "remote"

    @property
    def store(self) -> RemoteStore | None:
        """The remote store, or None when none is configured or it failed in this process."""
        if not self._resolved:
            self._url, self._resolved = configured_url(), True
        if self._url is None:
            return None
        if self._store is None:
            self._store = RemoteStore(self._url, self._warn_once_per_build)
        if not self._store.disabled and self._down_in_this_build() is not None:
            self._store.disabled = True  # a sibling process of this build met the failure
        if self._store.disabled:
            if not self._error_counted:
                self._counts["errors"] += 1
                self._error_counted = True
            return None
        return self._store

    # -- one warning per build -----------------------------------------------------------------
    # `doit build -n N` runs stages in N processes, each with its own store: the first one to
    # meet a remote failure notes it under the build's id (NNBUILD_BUILD_ID, set by the build
    # command) and warns; the others see the note and stay quiet and off.
    def _down_in_this_build(self) -> str | None:
        build = os.environ.get(BUILD_ID)
        if not build:
            return None
        try:
            note = json.loads((self.folder / "down.json").read_text())
        except (OSError, ValueError):
            return None
        return note.get("message") if isinstance(note, dict) and note.get("build") == build \
            else None

    def _warn_once_per_build(self, message: str) -> None:
        build = os.environ.get(BUILD_ID)
        if not build:
            self.warn(message)
            return
        with self.cache.locked("remote-down"):
            if self._down_in_this_build() is not None:
                return
            write_json_atomic(self.folder / "down.json", {"build": build, "message": message},
                              self.cache)
        self.warn(message)

    # -- bad-record notes ----------------------------------------------------------------------
    def _notes(self) -> dict[str, str]:
        if self._bad is None:
            try:
                self._bad = json.loads((self.folder / "bad.json").read_text())
            except (OSError, ValueError):
                self._bad = {}
        return self._bad

    def is_bad(self, stage: str, key: str) -> bool:
        """True when the remote record of ``stage``/``key`` was found corrupt here before."""
        return f"{stage}/{key}" in self._notes()

    def _set_note(self, stage: str, key: str, reason: str | None) -> None:
        with self.cache.locked("remote-notes"):
            self._bad = None  # re-read: another process may have added notes
            notes = self._notes()
            if reason is None:
                if notes.pop(f"{stage}/{key}", None) is None:
                    return
            else:
                notes[f"{stage}/{key}"] = reason
            write_json_atomic(self.folder / "bad.json", notes, self.cache)

    def _reject(self, store: RemoteStore, stage: str, key: str, reason: str) -> bool:
        self._counts["bad"] += 1
        self.warn(f"{store.display}: {stage} record {key[:12]}: corrupt or partial ({reason}); "
                  f"a miss, not trusted again (noted in {self.folder / 'bad.json'}); the stage "
                  f"runs here")
        self._set_note(stage, key, reason)
        return False

    # -- read-through --------------------------------------------------------------------------
    def pull(self, stage: str, key: str) -> bool:
        """Copy the remote entry of ``stage``/``key`` into the local cache, verified.

        Returns:
            True when the local cache now holds the entry; False on a miss, a corrupt or
            partial record (reported, noted) or a remote failure (reported once).
        """
        store = self.store
        if store is None or self.is_bad(stage, key):
            return False
        data = store.get_record(stage, key)
        if data is None:
            self._counts["misses"] += 0 if store.disabled else 1
            return False
        try:
            record = json.loads(data)
        except ValueError as err:
            return self._reject(store, stage, key, f"unreadable JSON: {err}")
        problem = record_problem(record, stage, key)
        if problem:
            return self._reject(store, stage, key, problem)
        problem = self._pull_blobs(store, record["outputs"])
        if store.disabled:
            return False
        if problem:
            return self._reject(store, stage, key, problem)
        entry = {k: record.get(k) for k in RECORD_FIELDS}
        self.cache.write_entry(stage, key, dict(entry, origin="remote"))  # last, as locally
        self._counts["hits"] += 1
        return True

    def _pull_blobs(self, store: RemoteStore, outputs: dict) -> str | None:
        """Download the blobs of ``outputs`` missing here, verify, adopt; the first problem."""
        wanted = []
        for name, info in sorted(outputs.items()):
            try:
                if self.cache.cas_path(info["sha256"]).stat().st_size == info["size"]:
                    continue  # already here (the local restore re-verifies it)
            except FileNotFoundError:
                pass
            wanted.append((name, info, self.cache.tmp_path("remote-")))
        got = store.get_blobs([(info["sha256"], tmp) for _name, info, tmp in wanted])
        problem = None
        for (name, info, tmp), ok in zip(wanted, got):
            if problem is None and not store.disabled:
                problem = self._adopt(name, info, tmp) if ok else \
                    f"output {name!r}: file missing on the remote"
            tmp.unlink(missing_ok=True)  # adopted files were moved away already
        return problem

    def _adopt(self, name: str, info: dict, tmp: Path) -> str | None:
        got, got_size = _hash_file(tmp)
        if got != info["sha256"] or got_size != info["size"]:
            return f"output {name!r}: content has sha256 {got[:12]}.. and {got_size} bytes, " \
                   f"expected {info['sha256'][:12]}.. and {info['size']}"
        self.cache.adopt(tmp, info["sha256"])
        self._counts["bytes_down"] += info["size"]
        return None

    def on_remote(self, stage: str, key: str) -> bool:
        """True when the remote has a record of ``stage``/``key`` not noted as corrupt."""
        store = self.store
        return store is not None and not self.is_bad(stage, key) and store.has_record(stage, key)

    # -- write-back ----------------------------------------------------------------------------
    def push(self, stage: str, key: str, entry: dict) -> bool:
        """Upload a local entry: every blob the remote lacks, then the record (one put).

        Returns:
            True when the record is on the remote; False when no remote is configured or it
            failed (reported once; the build is never failed by it).
        """
        store = self.store
        if store is None:
            return False
        # After a corrupt record of this key was met here, its blobs are uploaded again even
        # when a file of the right size is there: that file may be the corrupt one.
        repair = self.is_bad(stage, key)
        for info in entry["outputs"].values():
            digest, size = info["sha256"], info["size"]
            if not repair and store.blob_size(digest) == size:
                continue  # content-addressed: the same bytes are there already
            if store.disabled or not store.put_blob(digest, self.cache.cas_path(digest)):
                return False
            self._counts["bytes_up"] += size
        if not store.put_record(stage, key, record_bytes(entry, stage, key)):
            return False
        self._counts["uploads"] += 1
        if repair:
            self._set_note(stage, key, None)  # replaced by a record this machine built
        return True

    # -- counters ------------------------------------------------------------------------------
    def save(self) -> None:
        """Add this process's counters to ``stats.json`` (nothing to do: no file touched)."""
        if not any(self._counts.values()):
            return
        with self.cache.locked("remote-stats"):
            totals = read_stats(self.cache)
            for name, value in self._counts.items():
                totals[name] = totals.get(name, 0) + value
            write_json_atomic(self.folder / "stats.json", totals, self.cache)
        self._counts = dict.fromkeys(STATS, 0)

    @property
    def url(self) -> str | None:
        """The configured remote URL (credentials removed), or None."""
        if not self._resolved:
            self._url, self._resolved = configured_url(), True
        return None if self._url is None else redact(self._url)


def read_stats(cache: Cache) -> dict[str, int]:
    """The counters of ``cache/v1/remote/stats.json`` (zeros when there is none)."""
    try:
        found = json.loads((cache.base / "remote" / "stats.json").read_text())
    except (OSError, ValueError):
        found = {}
    return {name: int(found.get(name, 0)) for name in STATS} if isinstance(found, dict) else \
        dict.fromkeys(STATS, 0)

