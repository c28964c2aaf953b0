"""The remote store: blobs and action records of the team cache on any fsspec filesystem.

Configured by ``NNBUILD_REMOTE`` or ``[tool.nnbuild] remote`` in pyproject.toml: an
``s3://bucket/prefix`` URL (s3fs, the standard AWS credential chain; ``NNBUILD_REMOTE_ENDPOINT``
or fsspec's own configuration for an S3-compatible endpoint), a ``file://`` URL or a plain
directory (relative to the project root in pyproject.toml), or any other fsspec URL.
``off`` (or an empty value) means no remote. Layout below the URL, versioned like the local
cache::

    v1/cas/sha256/ab/<hex>          immutable file contents
    v1/ac/<stage>/<key>.json        action record: the local cache entry of that stage key

This module only moves bytes; what may be trusted is ``build.teamcache``'s business. Every
operation is bounded (connect / read timeouts, ``NNBUILD_REMOTE_TIMEOUT=CONNECT,READ``) and
never raises: the first failure prints ONE line (how to provide credentials, when they are
missing) and disables the store for the rest of the process, so the build goes on locally.
fsspec is imported on first use only: a no-op build never loads it.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path
from typing import Callable

LAYOUT = "v1"
OFF = ("", "off", "none", "0")
TIMEOUTS = (2.0, 10.0)  # seconds: connect, read
CONCURRENT = 16  # downloads in flight at once on an async filesystem (S3)
# Object stores publish an object only when its upload completed: a put is already atomic.
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_CREDENTIAL_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError")
CREDENTIAL_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile "
                   "in ~/.aws/credentials), or run where an instance role provides them")


def default_warn(message: str) -> None:
    """Report a remote problem (one line on stderr); the build goes on without the remote."""
    print(f"nnbuild: remote: {message}", file=sys.stderr)


def redact(url: str) -> str:
    """``url`` without any ``user:secret@`` part, for messages."""
    return re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", r"\1", url)


def configured_url(root: Path | None = None) -> str | None:
    """The remote URL: ``NNBUILD_REMOTE`` if set, else ``[tool.nnbuild] remote``; None = off."""
    raw = os.environ.get("NNBUILD_REMOTE")
    if raw is None:
        raw, root = _pyproject_remote(root)
        if raw and "://" not in raw and root is not None:
            raw = str((root / raw).resolve())  # a directory, relative to the project
    if raw is None or raw.strip().lower() in OFF:
        return None
    return raw.strip()


def _pyproject_remote(root: Path | None) -> tuple[str | None, Path | None]:
    import tomllib

    if root is None:
        from nnbuild.recipe.load import project_root

        root = project_root()
    try:
        with open(root / "pyproject.toml", "rb") as handle:
            value = tomllib.load(handle).get("tool", {}).get("nnbuild", {}).get("remote")
    except (OSError, tomllib.TOMLDecodeError):
        return None, root
    return (value if isinstance(value, str) else None), root


def timeouts() -> tuple[float, float]:
    """``(connect, read)`` seconds: ``NNBUILD_REMOTE_TIMEOUT=CONNECT,READ`` or the defaults."""
    raw = os.environ.get("NNBUILD_REMOTE_TIMEOUT", "")
    try:
        connect, read = (float(x) for x in raw.split(","))
    except ValueError:
        return TIMEOUTS
    return connect, read


def one_line(err: BaseException) -> str:
    """``Type: message`` of an exception on one line (botocore messages span several)."""
    text = " ".join(str(err).split()) or repr(err)
    return f"{type(err).__name__}: {text[:300]}"


class RemoteStore:
    """One remote (a URL); see the module docstring for the layout and the fault rule.

    Args:
        url: the remote URL or directory.
        warn: callback for the one line reported when the remote fails.
    """

    def __init__(self, url: str, warn: Callable[[str], None] = default_warn):
        self.url, self.display, self.warn = url, redact(url), warn
        self.protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        self.disabled = False
        self.failure: str | None = None
        self._fs = None
        self._root = ""

    # -- paths ---------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        """Remote path of the blob with content ``digest``."""
        return f"{self._root}/{LAYOUT}/cas/sha256/{digest[:2]}/{digest}"

    def record_path(self, stage: str, key: str) -> str:
        """Remote path of the action record of ``stage`` under ``key``."""
        return f"{self._root}/{LAYOUT}/ac/{stage}/{key}.json"

    # -- the filesystem ------------------------------------------------------------------------
    def _filesystem(self):
        if self._fs is None:
            import fsspec.core

            connect, read = timeouts()
            options: dict = {}
            if self.protocol in ("s3", "s3a"):
                options = {"skip_instance_cache": True, "config_kwargs": {
                    "connect_timeout": connect, "read_timeout": read,
                    "retries": {"max_attempts": 1, "mode": "standard"}}}
                if os.environ.get("NNBUILD_REMOTE_ENDPOINT"):
                    options["endpoint_url"] = os.environ["NNBUILD_REMOTE_ENDPOINT"]
            elif self.protocol == "file":
                options = {"auto_mkdir": True}
            fs, root = fsspec.core.url_to_fs(self.url, **options)
            if self.protocol in ("s3", "s3a"):
                fs.retries = 1  # s3fs retries timeouts 5 times itself: one try, then local
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    def _call(self, what: str, func: Callable, missing=None, absent_ok: bool = True):
        """Run ``func(fs)``; a missing file gives ``missing`` (when ``absent_ok``); any other
        failure is reported once, disables the store and gives ``missing`` too."""
        if self.disabled:
            return missing
        try:
            return func(self._filesystem())
        except FileNotFoundError as err:
            if not absent_ok:
                self._disable(what, err)
            return missing
        except Exception as err:  # noqa: BLE001 - a remote never fails a build: reported, off
            self._disable(what, err)
            return missing

    def _disable(self, what: str, err: BaseException) -> None:
        self.disabled = True
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & set(_CREDENTIAL_ERRORS):
            self.failure = "no credentials"
            self.warn(f"{self.display}: no AWS credentials found; building without the remote. "
                      f"Hint: {CREDENTIAL_HINT}")
            return
        self.failure = one_line(err)
        if isinstance(err, ImportError):  # fsspec, or the protocol's package (s3fs), is missing
            self.warn(f"{self.display}: {self.failure}; building without the remote. Hint: "
                      f"pip install 'nnbuild[remote]' (fsspec, s3fs)")
            return
        self.warn(f"{self.display}: {what} failed ({self.failure}); building without the "
                  f"remote for the rest of this build. Hint: check the network and "
                  f"NNBUILD_REMOTE, or build with --remote=off")

    # -- operations ----------------------------------------------------------------------------
    def get_record(self, stage: str, key: str) -> bytes | None:
        """The record's bytes, or None (absent, or the remote failed)."""
        return self._call("reading a record", lambda fs: fs.cat_file(self.record_path(stage, key)))

    def has_record(self, stage: str, key: str) -> bool:
        """True when a record exists (``nnbuild explain``; its content is not checked)."""
        return bool(self._call("looking up a record",
                               lambda fs: fs.exists(self.record_path(stage, key)), missing=False))

    def put_record(self, stage: str, key: str, data: bytes) -> bool:
        """Publish a record: one put of the complete bytes (a reader never sees a part)."""
        return self._put("writing a record", lambda: self.record_path(stage, key),
                         lambda fs, path: fs.pipe_file(path, data))

    def blob_size(self, digest: str) -> int | None:
        """Size of a remote blob, or None when absent (or the remote failed)."""
        return self._call("looking up a file", lambda fs: int(fs.info(self.blob_path(digest))["size"]))

    def get_blobs(self, wanted: list[tuple[str, Path]]) -> list[bool]:
        """Download blobs ``[(digest, local file)]`` (concurrently on an async filesystem such
        as S3); True for each one downloaded, False for one missing. The caller verifies them.
        """
        def run(fs):
            if getattr(fs, "async_impl", False):
                from fsspec.asyn import sync

                return sync(fs.loop, self._get_async, fs, wanted)
            return [self._get_one(fs, digest, local) for digest, local in wanted]

        return self._call("downloading files", run, missing=[False] * len(wanted))

    def _get_one(self, fs, digest: str, local: Path) -> bool:
        try:
            fs.get_file(self.blob_path(digest), str(local))
        except FileNotFoundError:
            return False
        return True

    async def _get_async(self, fs, wanted: list[tuple[str, Path]]) -> list[bool]:
        import asyncio

        gate = asyncio.Semaphore(CONCURRENT)

        async def one(digest: str, local: Path) -> bool:
            async with gate:
                try:
                    await fs._get_file(self.blob_path(digest), str(local))
                except FileNotFoundError:
                    return False
                return True

        return list(await asyncio.gather(*(one(d, p) for d, p in wanted)))

    def put_blob(self, digest: str, local: Path) -> bool:
        """Upload the local file ``local`` as the blob ``digest``."""
        return self._put("uploading a file", lambda: self.blob_path(digest),
                         lambda fs, path: fs.put_file(str(local), path))

    def _put(self, what: str, where: Callable[[], str], write: Callable) -> bool:
        def run(fs):
            path = where()  # after the filesystem (and with it the URL's root) is resolved
            if self.protocol in ATOMIC_PUT:
                write(fs, path)
                return True
            # A file system shows a file while it is written: write aside, then rename (atomic
            # on one file system; a concurrent writer of the same path wrote the same bytes).
            tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            parent = path.rsplit("/", 1)[0]
            fs.makedirs(parent, exist_ok=True)
            write(fs, tmp)
            fs.mv(tmp, path)
            return True

        return bool(self._call(what, run, missing=False, absent_ok=False))

    def list_records(self) -> list[tuple[str, str]]:
        """``[(stage, key)]`` of every record on the remote (for tests and maintenance)."""
        def run(fs):
            found = fs.glob(f"{self._root}/{LAYOUT}/ac/*/*.json")
            return sorted((p.rsplit("/", 2)[-2], p.rsplit("/", 1)[-1][:-5]) for p in found)

        return self._call("listing records", run, missing=[])
