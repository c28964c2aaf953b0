"""Name the user's file, not its cache copy, in errors about an external input.

Stages read verified copies in the content-addressed store (``cache/v1/cas/sha256/xx/<sha256>``);
a message naming that path tells the user nothing. ``origin`` maps a copy back to the recipe's
reference (its path or URL) by the copy's file name, the sha256.
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import NNBuildError


def origin(path: str | Path, refs: list) -> str:
    """The path or URL the recipe gave for the copy at ``path`` (``path`` itself if unknown)."""
    digest = Path(path).name
    for ref in refs:
        if isinstance(ref, dict) and ref.get("sha256") == digest:
            return str(ref.get("path") or ref.get("url") or path)
    return str(path)


def renamed(err: NNBuildError, path: str | Path, refs: list, section: str) -> NNBuildError:
    """``err`` with its *where* naming ``<section>: <the recipe's file>`` when it named the copy
    ``path``; other errors are returned unchanged."""
    if err.where != str(path):
        return err
    return type(err)(f"{section}: {origin(path, refs)}", err.what, expected=err.expected,
                     got=err.got, hint=err.hint)
