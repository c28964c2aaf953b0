"""Deployable packages: byte-reproducible ``.tar.gz`` archives with a verifiable manifest.

Reproducibility rules (two builds from clean caches on different paths give the same sha256):
entries sorted by name under one top-level folder, every mtime fixed to ``EPOCH``, uid/gid 0 with
empty owner names, modes 0644 (files) / 0755 (folders), the PAX format, and gzip written with
``mtime=0`` and no file name in its header.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pathlib
import tarfile
from typing import Iterable, Mapping

from nnbuild.errors import NNBuildError
from nnbuild.hashing import sha256_file

EPOCH = 0
MANIFEST = "manifest.json"
NNIE_NAME_LEN = 31  # SVP_NNIE_NODE_NAME_LEN 32 incl. the terminating NUL (nnie-facts.md §5)


class PackageError(NNBuildError):
    """A package archive is unreadable or does not match its manifest."""


def file_entries(files: Mapping[str, pathlib.Path]) -> dict[str, dict]:
    """``{arcname: {"sha256", "size"}}`` for the files of a package, sorted by name."""
    return {name: {"sha256": sha256_file(path), "size": path.stat().st_size}
            for name, path in sorted(files.items())}


def canonical_json(value: object) -> bytes:
    """The manifest's byte form: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def write_archive(out: pathlib.Path, root: str, files: Mapping[str, pathlib.Path],
                  manifest: Mapping) -> None:
    """Write ``files`` (arcname -> path) and ``manifest.json`` as ``root/...`` into ``out``."""
    payload = {name: path.read_bytes() for name, path in files.items()}
    payload[MANIFEST] = canonical_json(manifest)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in _folders(payload, root):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(payload):
            data = payload[name]
            tar.addfile(_info(f"{root}/{name}", tarfile.REGTYPE, 0o644, len(data)),
                        io.BytesIO(data))
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0,
                                             compresslevel=9) as gz:
        gz.write(raw.getvalue())
    tmp.replace(out)


def _folders(payload: Iterable[str], root: str) -> list[str]:
    folders = {root}
    for name in payload:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add(f"{root}/{'/'.join(parts[:i])}")
    return sorted(folders)


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def nnie_output_names(names: Iterable[str]) -> list[dict]:
    """Output blobs in NNIE order with the name the .wk stores (first 31 characters)."""
    return [{"name": n, "nnie_name": n[:NNIE_NAME_LEN]} for n in names]


def read_archive(path: pathlib.Path) -> tuple[str, dict[str, bytes]]:
    """Return (root folder, {arcname relative to root: bytes}) of a package archive."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            roots = {m.name.split("/", 1)[0] for m in members}
            if len(roots) != 1 or any("/" not in m.name for m in members):
                raise PackageError(str(path), "archive must hold exactly one top-level folder",
                                   got=sorted(roots), hint="rebuild it with `doit build`")
            root = roots.pop()
            return root, {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in members}
    except (OSError, tarfile.TarError, EOFError) as err:
        raise PackageError(str(path), f"cannot read the archive ({err})",
                           hint="the file is truncated or not a package; rebuild it") from None


def verify(path: pathlib.Path) -> dict:
    """Check every file of a package against its manifest; return the manifest.

    Raises PackageError naming the first file that is missing, extra, or whose size or sha256
    differs from what the manifest records.
    """
    root, contents = read_archive(path)
    if MANIFEST not in contents:
        raise PackageError(str(path), f"no {MANIFEST} in {root}/",
                           hint="only archives made by nnbuild's package stage can be verified")
    try:
        manifest = json.loads(contents.pop(MANIFEST))
        recorded = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise PackageError(f"{path}:{MANIFEST}", "manifest is not valid JSON with a 'files' map",
                           hint="rebuild the package") from None
    for name in sorted(set(recorded) | set(contents)):
        if name not in contents:
            raise PackageError(f"{path}: {name}", "listed in the manifest but missing",
                               hint="the archive was edited; rebuild it")
        if name not in recorded:
            raise PackageError(f"{path}: {name}", "present but not listed in the manifest",
                               hint="the archive was edited; rebuild it")
        data, want = contents[name], recorded[name]
        got = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        if got != {"sha256": want.get("sha256"), "size": want.get("size")}:
            raise PackageError(f"{path}: {name}", "content does not match the manifest",
                               expected=f"sha256 {want.get('sha256')} ({want.get('size')} bytes)",
                               got=f"sha256 {got['sha256']} ({got['size']} bytes)",
                               hint="the file was changed after packaging; rebuild the package")
    return manifest
