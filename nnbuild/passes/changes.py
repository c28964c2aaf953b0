"""The record a pass returns of what it changed, as written to ``patch-report.json``."""

from __future__ import annotations

import dataclasses
from typing import Any


def _jsonable(value: Any) -> Any:
    """Plain JSON values for report fields (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


@dataclasses.dataclass
class Changes:
    """What one pass did; every list holds small dicts (or names) in the order things happened."""

    removed: list[str] = dataclasses.field(default_factory=list)
    rewired: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    renamed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    params: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    moved: list[str] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def remove(self, layer: str) -> None:
        self.removed.append(layer)

    def rewire(self, layer: str, before: str, after: str) -> None:
        """``layer`` now reads ``after`` where it read ``before`` (Caffe blob names)."""
        self.rewired.append({"layer": layer, "before": before, "after": after})

    def rename(self, kind: str, before: str, after: str) -> None:
        """A ``kind`` ("layer" or "blob") was renamed."""
        self.renamed.append({"kind": kind, "before": before, "after": after})

    def param(self, layer: str, field: str, before: Any, after: Any) -> None:
        self.params.append({"layer": layer, "field": field, "before": _jsonable(before),
                            "after": _jsonable(after)})

    def skip(self, layer: str, reason: str) -> None:
        """A candidate the pass left alone, and why (e.g. an unfoldable BatchNorm)."""
        self.skipped.append({"layer": layer, "reason": reason})

    @property
    def empty(self) -> bool:
        return not (self.removed or self.rewired or self.renamed or self.params or self.moved)

    def as_dict(self) -> dict[str, Any]:
        """The non-empty fields, JSON-ready."""
        out = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {k: v for k, v in out.items() if v}
