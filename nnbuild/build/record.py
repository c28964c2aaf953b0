"""The team cache's action record: its bytes on the remote, and the checks it must pass before
anything it says is used (the trust rule of ``build.teamcache``; docs/design.md "Trust").

A record is the local cache entry of one stage key without local marks: ``schema``, ``stage``,
``key``, ``outputs`` (name -> sha256, size), ``doc`` (the key document), ``labels``, ``failure``
(a recorded gate failure), ``seconds``, ``recipe``. It is trusted no further than it can be
checked: the key document must hash to the key, names must stay inside the stage folder, and
the blobs it names are verified by sha256 when they are downloaded.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from nnbuild.build.cache import ENTRY_SCHEMA, is_sha256
from nnbuild.hashing import canonical_json, sha256_json

RECORD_FIELDS = ("outputs", "doc", "labels", "failure", "seconds", "recipe")


def record_bytes(entry: dict, stage: str, key: str) -> bytes:
    """The remote record of a local entry: its fields in canonical JSON (no local marks)."""
    record = {k: entry.get(k) for k in RECORD_FIELDS}
    record.update(schema=ENTRY_SCHEMA, stage=stage, key=key)
    return canonical_json(record).encode()


def _safe_name(name: object) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def record_problem(record: object, stage: str, key: str) -> str | None:
    """Why a remote record cannot be used for ``stage``/``key`` (None: it can, blobs aside)."""
    if not isinstance(record, dict) or record.get("schema") != ENTRY_SCHEMA:
        return "unknown record format"
    if record.get("stage") != stage or record.get("key") != key:
        return "stage/key do not match the record's path"
    if not isinstance(record.get("doc"), dict) or sha256_json(record["doc"]) != key:
        return "its key document does not hash to its key"
    outputs = record.get("outputs")
    if not isinstance(outputs, dict):
        return "no outputs table"
    for name, info in outputs.items():
        if not _safe_name(name):
            return f"output name {name!r} leaves the stage folder"
        if not (isinstance(info, dict) and is_sha256(info.get("sha256"))
                and isinstance(info.get("size"), int) and info["size"] >= 0):
            return f"bad output record for {name!r}"
    for field, kind in (("failure", dict), ("labels", dict), ("recipe", str)):
        if record.get(field) is not None and not isinstance(record[field], kind):
            return f"bad {field} field"
    return None
