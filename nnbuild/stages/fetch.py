"""Stage ``fetch``: the recipe's source prototxt and caffemodel, verified, as stage outputs.

Outputs: ``model.prototxt`` and ``model.caffemodel``, byte-identical to the pinned originals.
"""

from __future__ import annotations

import shutil

NAME = "fetch"
NEEDS: tuple[str, ...] = ()
READS: tuple[str, ...] = ()  # the content enters the key through external_inputs' hashes
ROLES = ("prototxt", "caffemodel")


def external_inputs(spec) -> dict[str, list]:
    """``{"prototxt": [ref], "caffemodel": [ref]}`` from the recipe's ``source``."""
    source = spec.source
    return {role: [source[role]] for role in ROLES if role in source}


def run(ctx) -> None:
    """Copy the verified files from the content store to ``model.<role>``."""
    for role in ROLES:
        (path,) = ctx.files(role)
        shutil.copyfile(path, ctx.out / f"model.{role}")
