"""Calibration: the absolute maximum of every quantization point over a set of pictures.

NNIE's per-tensor range is a plain running absolute maximum (GFPQ "INIT" computes abs-max,
"UPDATE" keeps the larger one; nnie-facts.md §4). How the mapper aggregates over its image list is
not public; the maximum over all pictures is what the public QAT tools document, so that is the
range used. The per-picture maxima are kept too, so the check report can show their spread.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nnbuild.errors import ModelError
from nnbuild.ir import Graph
from nnbuild.nnie.quantpoints import quant_points

RANGES_VERSION = 1
# HiSVP development guide, image_list: "20-50 typical images" (nnie-facts.md §2).
GUIDE_MIN_IMAGES, GUIDE_MAX_IMAGES = 20, 50


class CalibrationWarning(UserWarning):
    """The calibration set is smaller than the guide recommends."""


def size_warning(count: int) -> str | None:
    """The warning text for a calibration set of ``count`` pictures, or None when it is enough."""
    if count >= GUIDE_MIN_IMAGES:
        return None
    return (f"calibration: only {count} picture(s). Expected {GUIDE_MIN_IMAGES}-{GUIDE_MAX_IMAGES} "
            f"typical pictures (HiSVP guide, nnie-facts.md §2), got {count}. Hint: ranges from few "
            f"pictures may clip activations that other pictures reach")


@dataclasses.dataclass
class Ranges:
    """Calibrated ranges of one graph.

    Attributes:
        blobs: SSA blob -> absolute maximum over all pictures.
        per_image: SSA blob -> absolute maximum of each picture, in ``images`` order.
        weights: layer name -> absolute maximum of its weights (``blobs[0]``).
        images: names of the calibration pictures, in the order they were run.
    """

    blobs: dict[str, float]
    per_image: dict[str, list[float]]
    weights: dict[str, float]
    images: list[str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``ranges.json`` format, versioned)."""
        return {"version": RANGES_VERSION, "images": list(self.images),
                "weights": dict(self.weights),
                "blobs": {b: {"max": m, "per_image": self.per_image.get(b, [])}
                          for b, m in self.blobs.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "ranges.json") -> "Ranges":
        """Inverse of ``to_json``.

        Raises:
            ModelError: if the version or the structure is not the one written here.
        """
        if not isinstance(data, Mapping) or data.get("version") != RANGES_VERSION:
            got = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise ModelError(where, "unsupported ranges file", expected=f"version "
                             f"{RANGES_VERSION}", got=got, hint="re-run the calibrate stage")
        blobs = {b: float(v["max"]) for b, v in data["blobs"].items()}
        per_image = {b: [float(x) for x in v.get("per_image", [])]
                     for b, v in data["blobs"].items()}
        weights = {k: float(v) for k, v in data["weights"].items()}
        return cls(blobs, per_image, weights, list(data.get("images", [])))

    def save(self, path: str | pathlib.Path) -> None:
        """Write ``to_json()`` as sorted, indented JSON (byte-stable for the cache)."""
        text = json.dumps(self.to_json(), indent=1, sort_keys=True)
        pathlib.Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "Ranges":
        """Read a file written by ``save``."""
        return cls.from_json(json.loads(pathlib.Path(path).read_text(encoding="utf-8")), str(path))


def weight_ranges(graph: Graph) -> dict[str, float]:
    """Layer -> absolute maximum of its weights, for every layer whose weights NNIE quantizes."""
    points = quant_points(graph)
    return {layer.name: float(np.max(np.abs(layer.blobs[0]))) for layer in graph.layers
            if layer.name in points.weights}


def calibrate(graph: Graph, feeds: Iterable[Mapping[str, np.ndarray]], *,
              names: Iterable[str] | None = None,
              run: Callable[..., dict] | None = None) -> Ranges:
    """Run the float engine over the calibration pictures and record every point's range.

    Args:
        graph: the patched graph (with weights).
        feeds: one ``{input blob: NCHW float32}`` dict per picture (an iterator is fine: pictures
            are consumed one at a time).
        names: picture names for ``Ranges.images`` (default ``"0"``, ``"1"``, ...).
        run: the engine entry point (default ``nnbuild.engine.run``); for tests.

    Returns:
        The ranges. Warns ``CalibrationWarning`` below the guide's 20 pictures.
    """
    if run is None:
        from nnbuild.engine import run
    points = quant_points(graph)
    per_image: dict[str, list[float]] = {blob: [] for blob in points.blobs}

    def record(layer: Any, blob: str, array: np.ndarray) -> None:
        if blob in per_image:
            per_image[blob].append(float(np.max(np.abs(array))) if array.size else 0.0)

    count = 0
    for feed in feeds:
        run(graph, dict(feed), on_blob=record)
        count += 1
    if count == 0:
        raise ModelError("calibration", "no calibration pictures", expected="at least 1", got=0,
                         hint="set calibration.images/count in the recipe")
    message = size_warning(count)
    if message:
        warnings.warn(message, CalibrationWarning, stacklevel=2)
    bad = [b for b, v in per_image.items() if not all(map(math.isfinite, v))]
    if bad:
        raise ModelError(f"blob {graph.caffe_name(bad[0])!r}", "non-finite activation during "
                         "calibration", expected="finite values", got="inf/nan",
                         hint="check the input preprocessing (mean/scale) and the weights")
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(count)]
    if len(names) != count:
        raise ModelError("calibration", "picture names do not match the pictures run",
                         expected=count, got=len(names), hint="pass one name per feed")
    blobs = {b: max(v) for b, v in per_image.items()}
    return Ranges(blobs, per_image, weight_ranges(graph), names)
