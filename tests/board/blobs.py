"""Write simulator outputs as the one-file NNIE blob dump the C harnesses read."""

from __future__ import annotations

import pathlib

from nnbuild.board.layout import to_nnie

POISON = -0x41414142  # written into row padding: a decoder reading it goes visibly wrong


def dump(spec, outputs: dict, path: pathlib.Path) -> pathlib.Path:
    """Every output of ``spec`` in .wk order, NNIE layout (padding poisoned), into ``path``."""
    path.write_bytes(b"".join(to_nnie(outputs[o.name], spec.align, pad_fill=POISON)
                              for o in spec.outputs))
    return path
