"""The generator registry: ``check.task`` -> the module writing its C, and ``generate(spec)``.

Kept out of ``nnbuild/board/__init__.py`` on purpose: stage keys follow imports
(``nnbuild.build.fingerprint``), and ``nnbuild.board.frames`` (read by calibrate, map and check)
must not bring the generators and their templates into those stages' keys.
"""

from __future__ import annotations

import importlib

# check.task -> module of nnbuild.board with generate(spec) -> {path: text}
GENERATORS = {"retinaface": "retinaface", "ultraface": "ultraface", "ssd": "ssd",
              "embedding": "embedding", "scrfd": "scrfd"}


def has_decoder(task: str) -> bool:
    """True when packages of ``task`` get generated post-processing."""
    return task in GENERATORS


def generate(spec) -> dict[str, str]:
    """Generated files ``{archive path: text}`` for ``spec.task`` ({} without a decoder)."""
    if spec.task not in GENERATORS:
        return {}
    module = importlib.import_module(f"nnbuild.board.{GENERATORS[spec.task]}")
    return module.generate(spec)
