"""The nnie_mapper .cfg file: every key of nnie-facts.md §2 derived from the recipe, none by hand.

``make_cfg(recipe, instruction_name=...)`` returns the files to write next to each other in the
package root: ``nnie_mapper.cfg`` and, for norm_type 2/5, ``mean.txt``. All paths in the cfg are
relative to that root, so the package can be unpacked anywhere and the mapper run from there.

How each key is chosen (all from nnie-facts.md §2 unless said otherwise):

* ``RGB_order`` = the recipe's ``input.color``, i.e. the order the network was *trained* on. The
  board/simulator input is BGR planar whatever RGB_order says (§3); RGB_order only tells the mapper
  whether to swap to RGB before the first layer. nnbuild writes its .bgr files BGR always
  (``preprocess.write_planar_bgr``) and reorders for its own simulator from the same
  ``input.color`` (``preprocess.to_tensor``), so the cfg, the calibration files and the simulator
  cannot disagree — there is no second place where the order could be set (the SDK-script trap of
  §3: a script that never swaps, hidden by a grey test picture).
* ``norm_type`` / ``data_scale`` / ``mean_file`` from ``input.mean`` and ``input.scale``: no mean
  and scale 1 -> 0 (none); mean only -> 2 (channel mean); scale only -> 3; both -> 5 (channel mean,
  then x data_scale — the order ``preprocess.to_tensor`` uses, §3). ``mean_file`` is ``null`` when
  there is no mean (the key must still be present); ``data_scale`` is 1.0 when there is no scale
  (not the guide's default 1/256), so a mapper that applied it anyway would change nothing. The
  mean file holds one value per line in the network's channel order (the order after RGB_order's
  swap) — an inference: the guide only says "one float per channel". Every model in ../shared has
  equal channel means, so a real mapper has not confirmed the order.
* ``compile_mode`` from ``quant.mode``: int8 0, int16 1, mixed 2 (layers named ``*_hp`` in 16-bit).
* ``batch_num`` = the number of calibration pictures (``calibration.count``), clamped to 1..256:
  the value that uses every picture of ``image_list`` whichever way the mapper reads the key.
* ``image_type`` 1 (U8 picture), ``net_type`` 0 (CNN), ``sparse_rate`` 0,
  ``is_check_prototxt`` 0, ``is_simulation`` 0 (an "inst" .wk for the chip).
* ``compress_mode`` from ``mapper.compress``: ``normal`` 0 (default), ``bypass`` 1 — the way to
  get fully verifiable files from a real mapper: the guide's "Bypass" should store every weight
  block raw, so ``nnbuild verify-wk`` can compare all of them byte for byte (wk-format.md §4.5;
  untested on a real mapper).
* ``internal_stride`` and ``log_level`` from ``mapper`` (defaults 16 and 2, the guide's DDR3 value
  and the example cfg's level).
* ``instruction_name`` — spelled so, not ``instructions_name`` (every real cfg; §2).

The chip (``target.chip``) decides the mapper *executable* (nnie_mapper_11 vs 12, §1,
``nnbuild.nnie.chips``); §2 documents one key set for both versions, so the text does not depend on it,
but an unknown chip is rejected here so no cfg is ever written for a target nnbuild cannot map.
Only single-input networks are supported (the recipe has one ``input``); the per-input keys
(§2) are therefore written once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from nnbuild.nnie.chips import get_chip
from nnbuild.nnie.quantpoints import compile_mode
from nnbuild.errors import RecipeError

CFG_NAME = "nnie_mapper.cfg"
MEAN_NAME = "mean.txt"
# Recipe quant.mode -> compile_mode (§2).
COLORS = ("RGB", "BGR")
# Recipe mapper.compress -> compress_mode (§2: 0 normal, 1 bypass).
COMPRESS_MODES = {"normal": 0, "bypass": 1}
# §2: data_scale must lie in (1/4096, FLT_MAX).
MIN_DATA_SCALE = 1.0 / 4096
MAX_BATCH = 256


@dataclasses.dataclass(frozen=True)
class Norm:
    """The mapper's input normalisation: ``(x - mean) * data_scale`` (norm_type 5 order, §3)."""

    norm_type: int
    data_scale: float
    mean: tuple[float, ...] | None  # per channel, network order; None when norm_type has none


def _number(value: float) -> str:
    """Shortest text that reads back as the same double (``0.0078125``, ``127.0``)."""
    return repr(float(value))


def norm_from_input(spec) -> Norm:
    """norm_type, data_scale and mean from the recipe's ``input`` (``InputSpec``).

    Raises:
        RecipeError: a mean with other than 1 or 3 values, or a scale outside (1/4096, inf).
    """
    mean = list(spec.mean)
    if len(mean) == 1:
        mean = mean * 3
    if len(mean) != 3 or not all(math.isfinite(float(m)) for m in mean):
        raise RecipeError("input.mean", "mean must have one value or one per channel",
                          expected="1 or 3 finite numbers", got=list(spec.mean))
    scale = float(spec.scale)
    if not MIN_DATA_SCALE < scale < math.inf:
        raise RecipeError("input.scale", "scale is outside the mapper's data_scale range",
                          expected="a number in (1/4096, inf)", got=spec.scale,
                          hint="nnie-facts.md §2 data_scale")
    has_mean, has_scale = any(float(m) != 0.0 for m in mean), scale != 1.0
    norm_type = {(False, False): 0, (True, False): 2, (False, True): 3, (True, True): 5}[
        (has_mean, has_scale)]
    return Norm(norm_type, scale, tuple(float(m) for m in mean) if has_mean else None)


def rgb_order(spec) -> str:
    """``RGB_order`` = the channel order the network was trained on (recipe ``input.color``).

    There is deliberately no default: guessing is exactly the RGB/BGR trap (§3).
    """
    color = spec.color
    if color not in COLORS:
        raise RecipeError("input.color", "the network's channel order must be stated",
                          expected=" or ".join(COLORS), got=color,
                          hint="give the order the model was trained on (RetinaFace mnet: RGB)")
    return color


def _mapper_option(spec, key: str, allowed: Sequence[int]) -> int:
    value = getattr(spec.mapper, key)
    if value not in allowed:
        raise RecipeError(f"mapper.{key}", "value not accepted by nnie_mapper",
                          expected=" | ".join(map(str, allowed)), got=value)
    return int(value)


def _compress_mode(spec) -> int:
    """``mapper.compress``: normal -> 0, bypass -> 1 (§2 compress_mode)."""
    value = spec.mapper.compress
    if value not in COMPRESS_MODES:
        raise RecipeError("mapper.compress", "unknown compress mode",
                          expected=" | ".join(COMPRESS_MODES), got=value,
                          hint="bypass stores every weight block raw (fully verifiable .wk)")
    return COMPRESS_MODES[value]


def _batch_num(spec, image_count: int | None) -> int:
    count = image_count if image_count is not None else spec.calibration.count
    if count is None:
        raise RecipeError("calibration.count", "the number of calibration pictures is needed",
                          expected="a positive integer", got="nothing (not set)")
    return max(1, min(MAX_BATCH, int(count)))


def _relative(name: str, path: str) -> str:
    if not path or path.startswith("/") or "\\" in path or "\n" in path or " " in path:
        raise ValueError(f"make_cfg: {name} must be a package-relative path without spaces, "
                         f"got {path!r}")
    return path


def make_cfg(spec, *, instruction_name: str,
             prototxt: str = "model.prototxt", caffemodel: str = "model.caffemodel",
             image_list: str = "image_list.txt", mean_file: str = MEAN_NAME,
             image_count: int | None = None, is_simulation: bool = False) -> dict[str, str]:
    """The mapper cfg (and mean file) for a resolved recipe.

    Args:
        spec: the recipe (``RecipeSpec``: ``input``, ``quant``, ``target``, ``mapper``,
            ``calibration``).
        instruction_name: ``<name>`` of the ``<name>.wk`` the mapper writes (package-relative).
        prototxt, caffemodel, image_list, mean_file: package-relative paths the cfg names.
        image_count: number of calibration pictures (default: ``calibration.count``).
        is_simulation: True for a PC functional-simulation ("func") .wk instead of the chip's.

    Returns:
        ``{"nnie_mapper.cfg": text}`` plus ``{mean_file: text}`` for norm_type 2/5.
    """
    from nnbuild.board import frames

    get_chip(spec.target.chip)
    norm = norm_from_input(spec.input)
    # camera frames and per-pixel means (nnbuild.board.frames): image_type, RGB_order, norm_type
    norm_type, mean_image = frames.mapper_norm(spec.input, norm.norm_type)
    channels = 1 if frames.frame_format(spec.input) == "gray" else 3
    options = [
        ("prototxt_file", _relative("prototxt", prototxt)),
        ("caffemodel_file", _relative("caffemodel", caffemodel)),
        ("net_type", 0),
        ("batch_num", _batch_num(spec, image_count)),
        ("sparse_rate", 0),
        ("compile_mode", compile_mode(spec.quant.mode)),
        ("compress_mode", _compress_mode(spec)),
        ("is_simulation", int(bool(is_simulation))),
        ("is_check_prototxt", 0),
        ("log_level", _mapper_option(spec, "log_level", (0, 1, 2, 3))),
        ("instruction_name", _relative("instruction_name", instruction_name)),
        ("internal_stride", _mapper_option(spec, "internal_stride", (16, 32))),
        ("RGB_order", frames.mapper_rgb_order(spec.input, rgb_order)),
        ("data_scale", _number(norm.data_scale)),
        ("image_list", _relative("image_list", image_list)),
        ("image_type", frames.image_type(spec.input)),
        ("norm_type", norm_type),
        ("mean_file", mean_image or (_relative("mean_file", mean_file) if norm.mean else "null")),
    ]
    files = {CFG_NAME: "".join(f"[{key}] {value}\n" for key, value in options)}
    if norm.mean and not mean_image:
        files[mean_file] = "".join(_number(m) + "\n" for m in norm.mean[:channels])
    return files


def parse_cfg(text: str) -> dict[str, list[str]]:
    """``[key] value`` lines -> key -> values (per-input keys repeat, §2). Used by tests/tools."""
    out: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("[") or "]" not in line:
            raise ValueError(f"cfg line {number}: expected '[key] value', got {line!r}")
        key, _, value = line[1:].partition("]")
        out.setdefault(key.strip(), []).append(value.strip())
    return out
