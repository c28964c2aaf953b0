"""Board-side code generated per package: C99 post-processing of NNIE's output blobs.

``generate(spec)`` returns ``{archive path: text}`` for the task of a ``BoardSpec``
(``nnbuild.board.spec``), or ``{}`` for tasks without a decoder (``raw``). One generator module
per task, listed in ``GENERATORS`` and imported on first use.
"""

from __future__ import annotations

import importlib

# check.task -> module of nnbuild.board with generate(spec) -> {path: text}
GENERATORS = {"retinaface": "retinaface", "ultraface": "ultraface", "ssd": "ssd",
              "embedding": "embedding"}


def has_decoder(task: str) -> bool:
    """True when packages of ``task`` get generated post-processing."""
    return task in GENERATORS


def generate(spec) -> dict[str, str]:
    """Generated files for ``spec.task`` (``{}`` when the task has no decoder)."""
    if spec.task not in GENERATORS:
        return {}
    module = importlib.import_module(f"nnbuild.board.{GENERATORS[spec.task]}")
    return module.generate(spec)
