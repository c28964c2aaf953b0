"""Name the user's file, not its cache copy, in errors about an external input.

Stages read verified copies in the content-addressed store (``cache/v1/cas/sha256/xx/<sha256>``);
a message naming that path tells the user nothing. ``origin`` maps a copy back to the recipe's
reference (its path or URL) by the copy's file name, the sha256.
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import NNBuildError


def origin(path: str | Path, refs: list) -> str:
    """The path or URL the recipe gave for the copy at ``path`` (``path`` itself if unknown).

    Unpinned local files (``{path}`` without ``sha256``) are hashed to find theirs: this runs
    only on the way to an error message.
    """
    from nnbuild.hashing import sha256_file

    digest = Path(path).name
    for ref in refs:
        if isinstance(ref, dict) and ref.get("sha256") == digest:
            return str(ref.get("path") or ref.get("url") or path)
    for ref in refs:
        local = ref.get("path") if isinstance(ref, dict) and not ref.get("sha256") else None
        if local and Path(local).is_file() and sha256_file(local) == digest:
            return str(local)
    return str(path)


def renamed_copy(err: NNBuildError, copies: dict[str, tuple[str, object]]) -> NNBuildError:
    """``err`` naming the recipe's file when its *where* starts with a stage's copy of it.

    Args:
        err: the error (e.g. a prototxt syntax error at ``<copy>:2:1``).
        copies: ``{copy path: (recipe key, REF)}``, e.g. the fetch stage's ``model.prototxt``
            -> ``("source.prototxt", ref)``.

    Returns:
        The error with *where* ``<recipe key>: <path or URL><rest of where>`` (line and column
        stay: the copy is byte-identical), or ``err`` unchanged.
    """
    for copy, (key, ref) in copies.items():
        if err.where == copy or err.where.startswith(copy + ":"):
            label = ref.get("path") or ref.get("url") if isinstance(ref, dict) else ref
            return type(err)(f"{key}: {label or copy}{err.where[len(copy):]}", err.what,
                             expected=err.expected, got=err.got, hint=err.hint)
    return err


def renamed(err: NNBuildError, path: str | Path, refs: list, section: str) -> NNBuildError:
    """``err`` with its *where* naming ``<section>: <the recipe's file>`` when it named the copy
    ``path``; other errors are returned unchanged."""
    if err.where != str(path):
        return err
    return type(err)(f"{section}: {origin(path, refs)}", err.what, expected=err.expected,
                     got=err.got, hint=err.hint)
