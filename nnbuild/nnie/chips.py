"""The chip table: each NNIE target's mapper version, throughput and prototxt limits.

Sources are nnie-facts.md §1 (chips, mapper versions, TOPS) and §5 (limits). The recipe's
``target.chip`` picks the row; the mapper version is never chosen by hand, because a .wk built
for the wrong version fails to load on the board (nnie-facts.md §1).
"""

from __future__ import annotations

import dataclasses

from nnbuild.errors import RecipeError

# nnie-facts.md §5: Power is only supported with these exponents.
POWER_EXPONENTS = (-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0)


@dataclasses.dataclass(frozen=True)
class Chip:
    """One NNIE target.

    Attributes:
        name: lower-case chip name as used in recipes (``hi3516dv300``).
        mapper_version: 11 (nnie_mapper_11, NNIE 1.1) or 12 (nnie_mapper_12, NNIE 1.2).
        tops: published NNIE throughput in TOPS; None where nnie-facts.md §1 gives none.
        nnie_cores: number of NNIE cores.
        clock_mhz: NNIE clock where published, else None.
        max_width: largest feature-map width.
        kernel_range, pad_range, stride_range: inclusive limits of those parameters.
        max_group: largest Convolution group.
        max_segments: most segments (NNIE/CPU parts) the mapper accepts in one net.
        max_segment_io: most inputs, and most outputs, of one segment.
        max_name_len: longest node name the .wk keeps (``SVP_NNIE_NODE_NAME_LEN`` 32 incl. NUL).
        power_exponents: allowed ``Power`` exponents.
    """

    name: str
    mapper_version: int
    tops: float | None
    nnie_cores: int
    clock_mhz: int | None = None
    max_width: int = 4096
    kernel_range: tuple[int, int] = (1, 255)
    # nnie-facts.md §5 says "kernel, pad, stride 1..255", but pad 0 is what every model in
    # ../shared uses (RetinaFace's 1x1 convs and the 2x upsampling Deconvolution) and those
    # compiled into the published .wk files (§6): a pad of 0 is clearly allowed, so the range
    # checked is 0..255.
    pad_range: tuple[int, int] = (0, 255)
    stride_range: tuple[int, int] = (1, 255)
    max_group: int = 2048
    max_segments: int = 8
    max_segment_io: int = 16
    max_name_len: int = 31
    power_exponents: tuple[float, ...] = POWER_EXPONENTS


# nnie-facts.md §1. Core counts: §1 names two cores only for Hi3559AV100; the others have one.
CHIPS: dict[str, Chip] = {chip.name: chip for chip in (
    Chip("hi3516cv500", mapper_version=12, tops=0.5, nnie_cores=1),
    Chip("hi3516dv300", mapper_version=12, tops=1.0, nnie_cores=1),
    Chip("hi3516av300", mapper_version=12, tops=1.0, nnie_cores=1),
    Chip("hi3519av100", mapper_version=12, tops=2.0, nnie_cores=1),
    Chip("hi3559av100", mapper_version=11, tops=None, nnie_cores=2, clock_mhz=840),
)}

DEFAULT_CHIP = "hi3516dv300"


def get_chip(name: str, where: str = "target.chip") -> Chip:
    """The chip called ``name`` (case-insensitive).

    Raises:
        RecipeError: the name is not in the table; the message lists the valid names.
    """
    chip = CHIPS.get(str(name).lower())
    if chip is None:
        raise RecipeError(where, f"unknown chip {name!r}", expected="one of " + ", ".join(CHIPS),
                          got=name, hint="pick a chip from the list (nnie-facts.md §1)")
    return chip
