"""One exception hierarchy for every mistake a user can make.

Every user-facing error reads ``<where>: <what>. Expected <x>, got <y>. Hint: <fix>`` on one line,
where *where* is a file (with line/column when known), a recipe key path, a pass name or a
layer/blob name. The CLI and the doit layer print ``str(err)`` and exit with ``err.exit_code``;
they never show a traceback for an ``NNBuildError``.
"""

from __future__ import annotations


class NNBuildError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 2

    def __init__(self, where: str, what: str, *, expected: object = None, got: object = None,
                 hint: str | None = None):
        self.where, self.what = where, what
        self.expected, self.got, self.hint = expected, got, hint
        super().__init__(self.line())

    def line(self) -> str:
        parts = [f"{self.where}: {self.what.rstrip('.')}."]
        if self.expected is not None:
            parts.append(f"Expected {self.expected}, got {self.got}.")
        elif self.got is not None:  # nothing to expect: "Expected None" told the user nothing
            parts[0] = f"{self.where}: {self.what.rstrip('.')}; got {self.got}."
        if self.hint:
            parts.append(f"Hint: {self.hint.rstrip('.')}.")
        return " ".join(parts)


class RecipeError(NNBuildError):
    """A recipe file is malformed, fails the schema, or refers to something that is not there."""


class ModelError(NNBuildError):
    """A prototxt/caffemodel cannot be read, or weights disagree with the graph."""


class GraphError(ModelError):
    """The graph is structurally invalid (missing producer, duplicate name, cycle)."""


class ShapeError(ModelError):
    """Shape inference found blobs whose shapes disagree."""


class UnsupportedLayerError(ModelError):
    """A layer type nnbuild (or the float engine) cannot handle."""


class PassError(NNBuildError):
    """A patch pass refused to change the network (it would change its meaning)."""


class FetchError(NNBuildError):
    """An external input could not be found, downloaded, or failed its sha256 check."""


class CacheError(NNBuildError):
    """The content-addressed cache is unusable (not a corrupt entry: those are plain misses)."""


class MapperError(NNBuildError):
    """The external nnie_mapper failed or produced no .wk."""


class CheckFailed(NNBuildError):
    """The quantized model missed a threshold of the recipe's check gate."""

    exit_code = 1
