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
import re
import tarfile
import zlib
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


# -- verification (streamed: memory stays bounded whatever the archive claims) ----------------
CHUNK = 1 << 20
MAX_MANIFEST = 16 << 20  # a manifest lists files; 16 MiB is thousands of times a real one
MAX_READ = 64 << 20  # largest single read: a header, or one CHUNK of member data
MAX_MEMBERS = 100_000  # a package holds tens of files (hundreds of calibration images at most)
_SAFE_PART = re.compile(r"^[A-Za-z0-9._+-]+$")
_EDITED = "the archive was edited or is not an nnbuild package; rebuild it with `doit build`"


def _member_name(path: pathlib.Path, member: tarfile.TarInfo) -> str:
    """The member's name without a trailing '/'; refuses absolute, '..' and odd names."""
    name = member.name.rstrip("/") if member.isdir() else member.name
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name
            or any(p in ("", ".", "..") or not _SAFE_PART.match(p) for p in parts)):
        raise PackageError(f"{path}: {member.name}", "unsafe member name",
                           expected="a relative name of letters, digits, '.', '_', '+', '-' "
                           "(no '/' at the start, no '..')", got=repr(member.name), hint=_EDITED)
    return name


def _check_member(path: pathlib.Path, member: tarfile.TarInfo, seen: set[str]) -> str:
    """Refuse links, devices, fifos, special mode bits and duplicate names; return the name."""
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        kind = ("symlink" if member.issym() else "hardlink" if member.islnk()
                else "fifo" if member.isfifo() else "device" if member.isdev()
                else f"member of type {member.type!r}")
        raise PackageError(f"{path}: {member.name}", f"member is a {kind}",
                           expected="only regular files and folders", got=kind, hint=_EDITED)
    name = _member_name(path, member)
    if member.mode & ~0o777:
        raise PackageError(f"{path}: {member.name}", "member has special mode bits",
                           expected="permissions within 0o777", got=oct(member.mode), hint=_EDITED)
    if name in seen:
        raise PackageError(f"{path}: {member.name}", "member appears twice",
                           expected="each name once", got="a duplicate", hint=_EDITED)
    seen.add(name)
    return name


def _stream_digest(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int | None = None):
    """(sha256 hex, size, bytes if ``limit`` is given) of a member, read ``CHUNK`` at a time."""
    digest, size, kept = hashlib.sha256(), 0, []
    f = tar.extractfile(member)
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if limit is not None:
            kept.append(chunk)
    return digest.hexdigest(), size, b"".join(kept) if limit is not None else None


class _BoundedReader:
    """A file wrapper refusing any single read larger than ``MAX_READ``: tarfile reads PAX and
    GNU long-name headers whole, so a header claiming gigabytes would otherwise be held in
    memory (member data is read in ``CHUNK``s and never trips it)."""

    def __init__(self, fileobj, where: str):
        self._f, self._where = fileobj, where

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_READ:
            raise PackageError(self._where, "archive header too large",
                               expected=f"at most {MAX_READ} bytes",
                               got=f"{size} bytes" if size >= 0 else "read to end", hint=_EDITED)
        return self._f.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def _scan(path: pathlib.Path, on_file) -> str:
    """Check every member's header; call ``on_file(relative name, member, tar)`` for files.

    Returns the single top-level folder. Members are read one at a time and forgotten (tarfile's
    member list is cleared), so neither a member nor the list of headers is ever held whole.
    """
    seen: set[str] = set()
    root = None
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz, \
            tarfile.open(fileobj=_BoundedReader(gz, str(path)), mode="r:") as tar:
        while (member := tar.next()) is not None:
            tar.members.clear()
            if len(seen) >= MAX_MEMBERS:
                raise PackageError(str(path), "too many members", hint=_EDITED,
                                   expected=f"at most {MAX_MEMBERS}", got="more")
            name = _check_member(path, member, seen)
            top, _, rest = name.partition("/")
            if root not in (None, top) or (not rest and not member.isdir()):
                raise PackageError(str(path), "archive must hold exactly one top-level folder",
                                   got=sorted({root or top, top}), hint=_EDITED)
            root = top
            if member.isfile():
                on_file(rest, member, tar)
    if root is None:
        raise PackageError(str(path), "the archive is empty", hint=_EDITED)
    return root


def _parse_manifest(path: pathlib.Path, data: bytes) -> dict:
    try:
        manifest = json.loads(data)
        if not isinstance(manifest["files"], dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise PackageError(f"{path}:{MANIFEST}", "manifest is not valid JSON with a 'files' map",
                           hint="rebuild the package") from None
    return manifest


def _claims(path: pathlib.Path, name: str, size: int, manifest: dict | None) -> None:
    """Fail at the header when the manifest (if already read) does not list ``name`` at ``size``."""
    if manifest is None:
        return
    want = manifest["files"].get(name)
    if not isinstance(want, dict):
        raise PackageError(f"{path}: {name}", "present but not listed in the manifest",
                           hint="the archive was edited; rebuild it")
    if want.get("size") != size:
        raise PackageError(f"{path}: {name}", "size does not match the manifest",
                           expected=f"{want.get('size')} bytes", got=f"{size} bytes",
                           hint="the file was changed after packaging; rebuild the package")


def verify(path: pathlib.Path) -> dict:
    """Check every member of a package against its manifest; return the manifest.

    Raises PackageError naming the first member that is not a regular file or folder with a
    safe relative name, appears twice, is missing, extra, or whose size or sha256 differs from
    what the manifest records. Members are streamed in ``CHUNK``-sized reads, so memory stays
    bounded whatever sizes the archive claims.
    """
    found: dict[str, dict] = {}
    state: dict = {"manifest": None}

    def on_file(name: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if name == MANIFEST:
            if member.size > MAX_MANIFEST:
                raise PackageError(f"{path}: {name}", "manifest is too large",
                                   expected=f"at most {MAX_MANIFEST} bytes",
                                   got=f"{member.size} bytes", hint=_EDITED)
            state["manifest"] = _parse_manifest(path, _stream_digest(tar, member, MAX_MANIFEST)[2])
            for earlier, got in found.items():
                _claims(path, earlier, got["size"], state["manifest"])
            return
        _claims(path, name, member.size, state["manifest"])
        sha, size, _ = _stream_digest(tar, member)
        found[name] = {"sha256": sha, "size": size}

    try:
        root = _scan(path, on_file)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as err:
        raise PackageError(str(path), f"cannot read the archive ({err})",
                           hint="the file is truncated or not a package; rebuild it") from None
    if state["manifest"] is None:
        raise PackageError(str(path), f"no {MANIFEST} in {root}/",
                           hint="only archives made by nnbuild's package stage can be verified")
    _compare(path, state["manifest"]["files"], found)
    return state["manifest"]


def read_files(path: pathlib.Path, wanted) -> dict[str, bytes]:
    """Contents of the members ``wanted(name)`` selects, names relative to the package folder.

    Call it after ``verify``: members are streamed the same way and each is bounded by its own
    header size, which ``verify`` has checked against the manifest.
    """
    out: dict[str, bytes] = {}

    def on_file(name: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if wanted(name):
            out[name] = _stream_digest(tar, member, member.size)[2]

    _scan(path, on_file)
    return out


def _compare(path: pathlib.Path, recorded: dict, contents: dict[str, dict]) -> None:
    for name in sorted(set(recorded) | set(contents)):
        if name not in contents:
            raise PackageError(f"{path}: {name}", "listed in the manifest but missing",
                               hint="the archive was edited; rebuild it")
        if name not in recorded:
            raise PackageError(f"{path}: {name}", "present but not listed in the manifest",
                               hint="the archive was edited; rebuild it")
        got, want = contents[name], recorded[name]
        want = want if isinstance(want, dict) else {}
        if got != {"sha256": want.get("sha256"), "size": want.get("size")}:
            raise PackageError(f"{path}: {name}", "content does not match the manifest",
                               expected=f"sha256 {want.get('sha256')} ({want.get('size')} bytes)",
                               got=f"sha256 {got['sha256']} ({got['size']} bytes)",
                               hint="the file was changed after packaging; rebuild the package")
