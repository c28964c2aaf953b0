"""Folders nnbuild writes (``cache/``, ``dist/``): checked before a build, and OS write failures
(read-only, permission, full disk, a file where a folder belongs) reported as one line.

A read-only ``cache/`` used to surface as a sqlite traceback from inside doit, a full disk as an
``OSError`` traceback from whichever stage was writing, and ``NNBUILD_CACHE`` pointing at a file
as ``FileExistsError``. ``require_folder`` and ``require_writable`` check up front, with a
probe file (``os.access`` answers yes for root whatever the mode says); ``from_os_error`` turns
an ``OSError`` met while writing into a ``CacheError`` whose hint says what to do.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

from nnbuild.errors import CacheError

# errno values that mean "this place cannot be written", whatever wrote it.
WRITE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                          errno.ENOTDIR, errno.EEXIST, errno.EISDIR})
_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _hint(code: int | None, what: str | None) -> str:
    if code in _FULL:
        return ("free disk space (nnbuild cache gc --max-size SIZE trims the cache) or point "
                "NNBUILD_CACHE at a larger disk; nothing partial was kept")
    if code in _READ_ONLY and what == "dist/":
        return "make dist/ writable (chmod -R u+w dist)"
    if code in _READ_ONLY and what is None:
        return ("make that folder writable (chmod -R u+w); for the cache, NNBUILD_CACHE may "
                "point at a writable folder instead")
    if code in _READ_ONLY:
        return (f"make {what} writable (chmod -R u+w) or point NNBUILD_CACHE at a writable "
                "folder")
    return "remove or rename what is in the way"


def from_os_error(err: OSError, what: str | None = None, context: str | None = None
                  ) -> CacheError:
    """A one-line ``CacheError`` for an ``OSError`` met while writing.

    Args:
        err: the error; its ``filename`` (if any) becomes the *where* of the message.
        what: the folder the hint names (``"cache/"``, ``"dist/"``); None: the file's folder.
        context: the *where* when the error names no file (``write()`` on a full disk names
            none), e.g. ``check:retinaface-640``.
    """
    where = str(err.filename) if err.filename else (context or what or "nnbuild")
    reason = err.strerror or str(err)
    return CacheError(where, f"cannot write or remove files there ({reason})",
                      hint=_hint(err.errno, what))


def require_folder(path: Path, label: str) -> None:
    """``path`` is a folder or does not exist yet (it is created when needed).

    Raises:
        CacheError: ``path`` (or a parent) is a file, e.g. ``NNBUILD_CACHE`` naming a file.
    """
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                hint = ("point it at a folder, or move the file away" if label ==
                        "NNBUILD_CACHE" else "move the file away (nnbuild creates the folder)")
                raise CacheError(label, "not a folder", expected="a folder (created if missing)",
                                 got=f"the file {part}", hint=hint)
            return


def require_writable(path: Path, label: str) -> None:
    """Create ``path`` if needed and prove it writable by creating and removing a probe file.

    Raises:
        CacheError: it is a file, cannot be created, or cannot be written (read-only, full).
    """
    require_folder(path, label)
    probe = path / f".nnbuild-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"probe")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise CacheError(label, f"cannot write to {path} ({reason})",
                         hint=_hint(err.errno, label)) from None
