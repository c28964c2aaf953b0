"""The typed recipe: one frozen dataclass per recipe section, every default written once.

``RecipeSpec.from_data`` turns a resolved recipe dict (after ``extends``, ``matrix``, paths and
the JSON Schema) into the values every stage and library reads; nothing else in nnbuild reads
recipe dicts. The checks the schema cannot express run here too, at load time, each one line
naming the recipe key: the input shape against the chip's limits and nnbuild's simulation
budget, and ``input.color`` (no default on purpose: a guessed channel order is the silent
RGB/BGR swap, docs/nnie-facts.md §3; a 1-channel network has none and gets ``GRAY``). The
per-task checks (gate keys, ``task_args``) need the task registry and run with schema
validation (``recipe.schema``), whose result is cached.

Standard library only: the no-op build builds a spec for every recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nnbuild.errors import RecipeError
from nnbuild.nnie.chips import DEFAULT_CHIP, get_chip

COLORS = ("RGB", "BGR")
GRAY = "GRAY"  # the "order" of a 1-channel input (input.shape C == 1, input.format gray)
RESIZES = ("stretch", "letterbox")
QUANT_MODES = ("int8", "int16", "mixed")
# nnbuild's own limit, not NNIE's: the float engine and the simulator hold several blobs of the
# input's size; past a 3x4096x4096 input (200 MB float32) a build would exhaust memory instead
# of failing (a [1,3,100000,100000] input was killed by the OOM killer at 23 GB).
MAX_SIMULATED_INPUT = 3 * 4096 * 4096
# Gates every task has (the task's own gates come from its GATES table).
GENERIC_GATES = {"min_output_cosine": 0.9, "min_layer_cosine": 0.8}


@dataclass(frozen=True)
class InputSpec:
    """``input``: the network input and how pictures become it."""

    color: str
    name: str | None = None               # None: the model's only input
    shape: tuple[int, ...] | None = None  # None: the model's own input shape
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    resize: str = "stretch"
    pad_value: float = 0.0
    format: str = "bgr"                   # camera frames the board feeds (nnbuild.board.frames)
    mean_file: Any = None                 # REF of a per-pixel mean image (.binaryproto)


@dataclass(frozen=True)
class ImagesSpec:
    """``patch_check`` / ``calibration`` / ``check`` image selection."""

    images: Any = None                    # list of REFs or {manifest, skip}
    count: int | None = None              # None: every image


@dataclass(frozen=True)
class PatchCheckSpec(ImagesSpec):
    tolerance: float = 1e-4               # float outputs before/after the passes, relative


@dataclass(frozen=True)
class QuantSpec:
    mode: str = "int8"
    high_precision: tuple[str, ...] = ()
    bias_correction: bool = False         # nnbuild.nnie.biascorrect, in the calibrate stage


@dataclass(frozen=True)
class TargetSpec:
    chip: str = DEFAULT_CHIP


@dataclass(frozen=True)
class MapperSpec:
    path: str | None = None
    internal_stride: int = 16             # the guide's DDR3 value (nnie-facts.md §2)
    log_level: int = 2
    compress: str = "normal"              # bypass: [compress_mode] 1, every block raw


@dataclass(frozen=True)
class CheckSpec(ImagesSpec):
    task: str = "raw"
    task_args: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)   # min_*/max_* keys the recipe states
    divergence_cosine: float | None = None      # None: min_layer_cosine

    def threshold(self, key: str, default: float | None = None) -> float | None:
        """The recipe's value of gate ``key``, else ``default`` (generic gates have theirs)."""
        return self.gates.get(key, GENERIC_GATES.get(key, default))

    @property
    def divergence(self) -> float:
        """Layer cosine below which a layer is named "first divergent" (not a gate)."""
        if self.divergence_cosine is not None:
            return self.divergence_cosine
        return self.threshold("min_layer_cosine")


@dataclass(frozen=True)
class PackageSpec:
    include_calibration: bool = True


@dataclass(frozen=True)
class RecipeSpec:
    """A whole recipe, typed."""

    source: dict
    input: InputSpec
    patches: tuple = ()
    patch_check: PatchCheckSpec = PatchCheckSpec()
    calibration: ImagesSpec = ImagesSpec()
    quant: QuantSpec = QuantSpec()
    target: TargetSpec = TargetSpec()
    mapper: MapperSpec = MapperSpec()
    check: CheckSpec = CheckSpec()
    package: PackageSpec = PackageSpec()
    description: str = ""

    @classmethod
    def from_data(cls, data: dict, where: str = "recipe") -> "RecipeSpec":
        """The spec of a resolved, schema-valid recipe dict.

        Raises:
            RecipeError: a value the schema cannot judge (colour, shape limits).
        """
        check = dict(data.get("check") or {})
        known = {f.name for f in dataclasses.fields(CheckSpec)}
        gates = {k: check.pop(k) for k in list(check) if k not in known}
        quant = data.get("quant") or {}
        spec = cls(
            source=dict(data.get("source") or {}),
            input=_input(data.get("input") or {}, where),
            patches=tuple(data.get("patches") or ()),
            patch_check=PatchCheckSpec(**(data.get("patch_check") or {})),
            calibration=ImagesSpec(**(data.get("calibration") or {})),
            quant=QuantSpec(**{**quant, "high_precision": tuple(quant.get("high_precision", ()))}),
            target=TargetSpec(**(data.get("target") or {})),
            mapper=MapperSpec(**(data.get("mapper") or {})),
            check=CheckSpec(**check, gates=gates),
            package=PackageSpec(**(data.get("package") or {})),
            description=data.get("description") or "")
        check_shape(spec, where)
        return spec

    def to_dict(self) -> dict:
        """JSON- and YAML-able values with every default filled in, in the recipe's own format
        (stage keys read it; the package's recipe.yaml is written from it)."""
        out = _plain(dataclasses.asdict(self))
        gates = out["check"].pop("gates")
        out["check"].update(gates)
        return out


def _plain(value: Any) -> Any:
    """Tuples become lists, recursively (YAML's safe dumper knows no tuples)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _color(values: dict, where: str) -> str:
    """``input.color``: RGB or BGR for a 3-channel network (stated, never guessed); ``GRAY`` for
    a 1-channel one (``input.shape`` C == 1), which states no order (``color`` omitted or GRAY).
    """
    color, shape = values.get("color"), values.get("shape")
    channels = int(shape[1]) if shape is not None else None
    if channels == 1:
        if color not in (None, GRAY):
            raise RecipeError(f"{where}: input.color", "a 1-channel network has no channel order",
                              expected=f"no input.color, or {GRAY}", got=color,
                              hint=f"omit input.color (or write {GRAY}) for input.shape "
                                   f"{list(shape)}")
        mean = values.get("mean", 0.0)
        if not isinstance(mean, (int, float)) and len(mean) != 1:
            raise RecipeError(f"{where}: input.mean", "a 1-channel network has one mean",
                              expected="one value", got=list(mean), hint="write input.mean: [m]")
        return GRAY
    if color == GRAY:
        raise RecipeError(f"{where}: input.color", f"{GRAY} is for 1-channel networks only",
                          expected=" or ".join(COLORS) + " (the order a 3-channel network was "
                          "trained on)", got=f"{GRAY} with input.shape {list(shape)}" if shape is not None
                          else f"{GRAY} without input.shape",
                          hint="a 1-channel network states input.shape [1, 1, H, W] and "
                               "input.format: gray")
    if color not in COLORS:
        raise RecipeError(f"{where}: input.color", "the network's channel order must be stated",
                          expected=" or ".join(COLORS), got=color,
                          hint="give the order the model was trained on (RetinaFace mnet: RGB); "
                               "1-channel networks state input.shape [1, 1, H, W] instead")
    return color


def _input(values: dict, where: str) -> InputSpec:
    values = dict(values, color=_color(values, where))
    mean = values.get("mean", InputSpec.mean)
    mean = (mean,) * 3 if isinstance(mean, (int, float)) else tuple(float(m) for m in mean)
    values["mean"] = mean * 3 if len(mean) == 1 else mean
    if values.get("shape") is not None:
        values["shape"] = tuple(int(d) for d in values["shape"])
    spec = InputSpec(**values)
    from nnbuild.board.frames import frame_format
    frame_format(spec, where)  # format vs channels and even sizes, at load time
    return spec


def check_shape(spec: RecipeSpec, where: str) -> None:
    """An input shape NNIE or the simulator cannot take fails before anything is allocated."""
    shape = spec.input.shape
    if shape is None:
        return
    chip = get_chip(spec.target.chip)
    n, c, h, w = shape
    if n != 1:
        raise RecipeError(f"{where}: input.shape", "NNIE runs one image per forward pass",
                          expected="batch 1", got=list(shape), hint="set the first dimension to 1")
    if w > chip.max_width:
        raise RecipeError(f"{where}: input.shape", f"width is over {spec.target.chip}'s limit",
                          expected=f"width <= {chip.max_width} (nnie-facts.md §5)",
                          got=list(shape), hint="resize the input or tile the picture")
    if c * h * w > MAX_SIMULATED_INPUT:
        raise RecipeError(f"{where}: input.shape", "input too large to simulate",
                          expected=f"C*H*W <= {MAX_SIMULATED_INPUT} (3x4096x4096)",
                          got=f"{list(shape)} = {c * h * w}", hint="use a smaller input size")
