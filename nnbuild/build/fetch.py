"""Pinned external inputs: find a file by local path, mirror directory or URL, always verified.

A REF (after recipe resolution) is a dict ``{"path"?: abs, "url"?: str, "sha256"?: hex}``.
Look-up order: the content store, the local path, every directory of ``NNBUILD_MIRROR``
(``os.pathsep``-separated, files matched by sha256 whatever their name, through an index that
is cached and only rebuilt when a directory's stat data changed), then the URL (urllib with a
timeout and retries, into ``cache/v1/tmp``, verified, then ``os.replace`` into the store, so a
partial download never enters the cache). ``NNBUILD_OFFLINE=1`` forbids downloads.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from nnbuild.build.cache import Cache, is_sha256, write_json_atomic
from nnbuild.errors import FetchError, RecipeError
from nnbuild.hashing import CHUNK, sha256_text

TIMEOUT = 30.0
RETRIES = 3


def ref_label(ref: dict) -> str:
    """Short human name of a REF (file name of its path or URL)."""
    where = ref.get("path") or ref.get("url") or "?"
    return where.rstrip("/").rsplit("/", 1)[-1]


def input_digest(ref: dict, cache: Cache, where: str = "input") -> str:
    """The content hash a REF stands for, without copying anything.

    Pinned REFs answer from their ``sha256`` (after checking their local file, if they name
    one that exists); unpinned local files are hashed through the stat cache (a stat call when
    unchanged).

    Raises:
        FetchError: an unpinned path that does not exist, or a pinned local file that changed.
    """
    if ref.get("sha256"):
        _check_local(ref, cache, where)
        return ref["sha256"]
    path = ref.get("path")
    if not path or not os.path.isfile(path):
        raise FetchError(where, "file not found", expected="an existing file or a {url, sha256}",
                         got=path, hint="fix the path (relative to the recipe file) or pin it")
    return cache.stats.sha256(path)


def fetch(ref: dict, cache: Cache, where: str = "input") -> Path:
    """Make the content of ``ref`` available in the store and return the store path.

    Args:
        ref: resolved REF dict.
        cache: the cache whose content store receives the file.
        where: recipe key path for error messages (e.g. ``source.caffemodel``).

    Raises:
        FetchError: sha256 mismatch (both hashes named) or the file is nowhere to be found.
    """
    want = ref.get("sha256")
    _check_local(ref, cache, where)
    if want and cache.cas_path(want).is_file():
        # Stat-cached check: a store file edited behind our back is re-fetched, not trusted.
        if cache.stats.sha256(cache.cas_path(want)) == want:
            return cache.cas_path(want)
        cache.verify_blob(want)  # reports and removes it
    tried: list[str] = []
    path = ref.get("path")
    if path and os.path.isfile(path):
        got = cache.stats.sha256(path)
        cache.put_file(path, expected=got)
        return cache.cas_path(got)
    if path:
        tried.append(f"path {path}")
    if not want:
        raise FetchError(where, "file not found", expected="an existing file", got=path,
                         hint="fix the path (relative to the recipe file) or give {url, sha256}")
    found = _from_mirrors(want, cache, tried)
    if found is None and ref.get("url"):
        found = _download(ref["url"], want, cache, tried, where)
    if found is None:
        raise FetchError(where, f"{ref_label(ref)} (sha256 {want}) not found",
                         expected="the file in one of: " + "; ".join(tried or ["(nowhere)"]),
                         got="nothing", hint=_how_to_provide(ref))
    return found


def _check_local(ref: dict, cache: Cache, where: str) -> None:
    """A pinned REF whose local file exists must still match its pin, even when the store
    already holds the pinned content: a changed source is a mistake to report, not to hide."""
    want, path = ref.get("sha256"), ref.get("path")
    if not (want and path and os.path.isfile(path)):
        return
    got = cache.stats.sha256(path)
    if got != want:
        raise FetchError(f"{where} ({path})", "sha256 mismatch", expected=want, got=got,
                         hint="the file changed since it was pinned; restore it, or put its new "
                              "sha256 in the recipe")


def _how_to_provide(ref: dict) -> str:
    where = f"put the file at {ref['path']}" if ref.get("path") else "download it"
    return f"set NNBUILD_MIRROR to a directory holding the file (any name), or {where}"


def mirror_dirs() -> list[Path]:
    """Mirror directories, in order: ``NNBUILD_MIRROR`` when set, else the project's defaults.

    The defaults are ``[tool.nnbuild] mirror`` in the project's pyproject.toml (paths relative to
    the project root): a team points it at its shared drive once, so the plain
    ``doit build RECIPE`` works offline for everyone. Set ``NNBUILD_MIRROR=""`` to use none.
    """
    raw = os.environ.get("NNBUILD_MIRROR")
    if raw is not None:
        return [Path(p).resolve() for p in raw.split(os.pathsep) if p]
    return _project_mirrors()


def _project_mirrors() -> list[Path]:
    import tomllib

    from nnbuild.recipe.load import project_root

    root = project_root()
    try:
        with open(root / "pyproject.toml", "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return []
    dirs = config.get("tool", {}).get("nnbuild", {}).get("mirror", [])
    return [(root / d).resolve() for d in dirs if isinstance(d, str)]


def _from_mirrors(want: str, cache: Cache, tried: list[str]) -> Path | None:
    for directory in mirror_dirs():
        tried.append(f"mirror {directory}")
        for attempt in range(2):
            rel = mirror_index(directory, cache, rebuild=attempt > 0).get(want)
            if rel is None:
                break
            candidate = directory / rel
            # The index is keyed by directory stat data: an in-place edit is only found here.
            if candidate.is_file() and cache.stats.sha256(candidate) == want:
                cache.put_file(candidate, expected=want)
                return cache.cas_path(want)
    return None


def _dir_signature(directory: Path) -> list:
    """Stat data of every directory in the tree: adding, removing or renaming a file changes
    its directory's mtime, so an unchanged signature means an unchanged file list."""
    sig = []
    for root, dirs, _files in os.walk(directory):
        dirs.sort()
        st = os.stat(root)
        sig.append([os.path.relpath(root, directory), st.st_mtime_ns, st.st_ino])
    return sig


def mirror_index(directory: Path, cache: Cache, rebuild: bool = False) -> dict[str, str]:
    """``{sha256: relative path}`` for every file under ``directory``, cached in the store.

    Args:
        directory: a mirror directory.
        cache: cache holding ``v1/mirror/<hash of dir>.json`` and the stat cache.
        rebuild: ignore the cached index (used when an indexed file no longer matches).
    """
    import json

    if not directory.is_dir():
        return {}
    index_file = cache.base / "mirror" / f"{sha256_text(str(directory))}.json"
    # The code that builds the index is part of its key: an index made by other code is rebuilt.
    signature = [cache.prints.digest(__name__), _dir_signature(directory)]
    if not rebuild and index_file.is_file():
        try:
            saved = json.loads(index_file.read_text())
            if saved.get("signature") == signature:
                return saved["index"]
        except (OSError, ValueError, AttributeError):
            pass  # a torn index is rebuilt below
    index: dict[str, str] = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            index.setdefault(cache.stats.sha256(full), os.path.relpath(full, directory))
    write_json_atomic(index_file, {"signature": signature, "index": index}, cache)
    cache.stats.save()
    cache.prints.save()
    return index


def _download(url: str, want: str, cache: Cache, tried: list[str], where: str) -> Path | None:
    if os.environ.get("NNBUILD_OFFLINE", "") not in ("", "0"):
        tried.append(f"url {url} (not tried: NNBUILD_OFFLINE is set)")
        return None
    import urllib.error
    import urllib.request

    last = None
    for attempt in range(RETRIES):
        tmp = cache.tmp_path("download-")
        try:
            got = _download_once(url, tmp, urllib.request)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            tmp.unlink(missing_ok=True)  # a partial download never reaches the store
            last = err
            time.sleep(0.5 * (attempt + 1))
            continue
        if got != want:
            tmp.unlink()
            raise FetchError(f"{where} ({url})", "downloaded file has the wrong sha256",
                             expected=want, got=got, hint="the URL must be pinned to a commit")
        return cache.adopt(tmp, got)
    tried.append(f"url {url} ({last})")
    return None


def _download_once(url: str, tmp: Path, request_mod) -> str:
    digest, size = hashlib.sha256(), 0
    with request_mod.urlopen(url, timeout=TIMEOUT) as resp, open(tmp, "wb") as out:
        declared = resp.headers.get("Content-Length")
        while chunk := resp.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise OSError(f"connection closed after {size} of {declared} bytes")  # retried
    return digest.hexdigest()


def image_refs(spec: list | dict, count: int | None = None, where: str = "images") -> list[dict]:
    """Expand an IMAGES spec into REFs: a list of REFs, or ``{manifest: FILE, skip: N}``.

    Manifest lines are ``url sha256`` or, with a ``file sha256 url`` header, the TSV of
    ../shared (``file`` relative to the manifest). ``count`` keeps the first N after ``skip``.

    Raises:
        RecipeError: unreadable manifest, malformed line, or fewer images than ``count``.
    """
    skip = int(spec.get("skip", 0)) if isinstance(spec, dict) else 0
    if isinstance(spec, dict):
        refs = read_manifest(Path(spec["manifest"]), where)[skip:]
    else:
        refs = list(spec)
    if count is not None:
        if len(refs) < count:
            after = f" after skip: {skip}" if skip else ""
            raise RecipeError(where, "not enough images", expected=f"at least {count}",
                              got=f"{len(refs)}{after}",
                              hint=("lower skip or count, or add images" if skip else
                                    "lower count or add images"))
        refs = refs[:count]
    return refs


def read_manifest(path: Path, where: str = "images") -> list[dict]:
    """Parse an image manifest (see ``image_refs``) into REF dicts, in file order."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise RecipeError(f"{where}.manifest", "cannot read the manifest", expected="a file",
                          got=f"{path} ({err.strerror})", hint="fix the path") from None
    tsv = bool(lines) and lines[0].split("\t")[:3] == ["file", "sha256", "url"]
    refs = []
    for number, line in enumerate(lines[1:] if tsv else lines, start=2 if tsv else 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if tsv else line.split()
        ref = _manifest_ref(fields, tsv, path)
        if ref is None:
            want = "file<TAB>sha256<TAB>url" if tsv else "url sha256"
            raise RecipeError(f"{path}:{number}", "malformed manifest line", expected=want,
                              got=repr(line[:80]), hint="one image per line")
        refs.append(ref)
    return refs


def _manifest_ref(fields: list[str], tsv: bool, path: Path) -> dict | None:
    if tsv and len(fields) >= 3 and is_sha256(fields[1]):
        return {"path": str(path.parent / fields[0]), "sha256": fields[1], "url": fields[2]}
    if not tsv and len(fields) == 2 and is_sha256(fields[1]):
        return {"url": fields[0], "sha256": fields[1]}
    return None
