"""Float-vs-quantized comparison: per-blob metrics, their aggregation, first divergence, the gate.

The metric definitions are the ones documented in docs/report-json.md ("Comparison metrics");
keep the two in step. Everything here works on plain numpy arrays and JSON-able dicts, so the
check stage, suggest-hp and the tests share one implementation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from nnbuild.errors import CheckFailed, NNBuildError

# Layer types that only move data: their quantization error is always inherited, never their own,
# so the report gives them no isolated metrics (docs/report-json.md, layer_result).
DATA_MOVEMENT_TYPES = frozenset({"Input", "Reshape", "Flatten", "Concat", "Split", "Crop",
                                 "Permute", "Dropout", "Slice", "Silence"})
# Layer types whose output row count depends on the data (detections kept after the score
# threshold and NMS): float and quantized runs legitimately keep different numbers of rows, so
# element-wise metrics do not apply to them or to anything computed from them. The task metric
# (e.g. ``ssd``) compares those results instead.
DYNAMIC_SIZE_TYPES = frozenset({"DetectionOutput", "Proposal"})


def dynamic_blobs(graph) -> set[str]:
    """Caffe names of the blobs whose size depends on the data (``DYNAMIC_SIZE_TYPES`` and after)."""
    dynamic: set[str] = set()
    for layer in graph.layers:
        if layer.type in DYNAMIC_SIZE_TYPES or any(
                graph.caffe_name(b) in dynamic for b in layer.bottoms):
            dynamic.update(graph.caffe_name(t) for t in layer.tops)
    return dynamic


def compare(reference: np.ndarray, other: np.ndarray, where: str = "compare"
            ) -> dict[str, float | None]:
    """Metrics of ``other`` against the float ``reference`` (one blob, one image).

    Args:
        reference: the float result.
        other: the quantized result, same number of elements.
        where: what is compared (a blob name), for the error message.

    Raises:
        NNBuildError: the sizes differ. Callers only compare fixed-size blobs (see
            ``dynamic_blobs``), so this is an nnbuild bug, reported as one line all the same.

    Returns:
        ``{"cosine", "snr_db", "max_abs", "rel_err"}``; infinite values are ``None``.
    """
    a = np.asarray(reference, dtype=np.float64).ravel()
    b = np.asarray(other, dtype=np.float64).ravel()
    if a.size != b.size:
        raise NNBuildError(where, "float and quantized results differ in size",
                           expected=f"{a.size} elements", got=b.size,
                           hint="this is an nnbuild bug (blobs of data-dependent size must not "
                                "be compared element-wise): please report it with the recipe")
    diff = a - b
    energy, noise = float(a @ a), float(diff @ diff)
    norm_a, norm_b = math.sqrt(energy), math.sqrt(float(b @ b))
    if norm_a == 0.0 and norm_b == 0.0:
        cosine = 1.0
    elif norm_a == 0.0 or norm_b == 0.0:
        cosine = 0.0
    else:
        cosine = float(np.clip((a @ b) / (norm_a * norm_b), -1.0, 1.0))
    if noise == 0.0:
        snr = None
    elif energy == 0.0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(energy / noise)
    rel = 0.0 if noise == 0.0 else (None if energy == 0.0 else math.sqrt(noise) / norm_a)
    return {"cosine": cosine, "snr_db": _finite(snr),
            "max_abs": float(np.max(np.abs(diff))) if diff.size else 0.0, "rel_err": rel}


def _finite(value: float | None) -> float | None:
    """``None`` for values JSON cannot hold (infinities)."""
    if value is None or math.isinf(value):
        return None
    return value


def aggregate(per_image: Sequence[Mapping[str, float | None]]) -> dict:
    """Combine one blob's per-image metrics into the report's ``metrics`` object.

    Mean cosine/SNR/relative error, worst-image cosine, max of max_abs (docs/report-json.md).
    """
    if not per_image:
        raise ValueError("aggregate: no images")
    cos = [m["cosine"] for m in per_image]
    snr = [m["snr_db"] for m in per_image]
    rel = [m["rel_err"] for m in per_image]
    return {
        "cosine": float(np.mean(cos)),
        "cosine_min": float(np.min(cos)),
        "snr_db": None if any(s is None for s in snr) else float(np.mean(snr)),
        "max_abs": float(max(m["max_abs"] for m in per_image)),
        "rel_err": None if any(r is None for r in rel) else float(np.mean(rel)),
        "per_image_cosine": [float(c) for c in cos],
    }


def first_divergent(layers: Iterable[Mapping], threshold: float) -> str | None:
    """Name of the first layer (in the given execution order) whose accumulated cosine < threshold.

    Args:
        layers: ``layer_result`` dicts (docs/report-json.md) in execution order.
        threshold: ``check.min_layer_cosine``.
    """
    for entry in layers:
        acc = entry.get("accumulated")
        if acc is not None and acc["cosine"] < threshold:
            return entry["layer"]
    return None


def rank_sensitivity(baseline: float, single: Mapping[str, float]) -> list[dict]:
    """Rank layers by the output quality reached with only that layer in 16-bit.

    Args:
        baseline: mean output cosine with every layer 8-bit.
        single: layer -> mean output cosine with only that layer 16-bit.

    Returns:
        ``[{"layer", "output_cosine", "gain"}]`` best first; ties keep the given order.
    """
    ranked = sorted(single.items(), key=lambda kv: -kv[1])
    return [{"layer": name, "output_cosine": float(cos), "gain": float(cos - baseline)}
            for name, cos in ranked]


@dataclasses.dataclass(frozen=True)
class Threshold:
    """One gate rule: the recipe key, where the value lives, and which side must hold."""

    key: str          # recipe key under ``check`` (e.g. "min_output_cosine")
    where: str        # what it is compared with (output blob, task metric)
    value: float | None
    threshold: float
    kind: str         # "min": value >= threshold; "max": value <= threshold

    def missed(self) -> bool:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return True
        return self.value < self.threshold if self.kind == "min" else self.value > self.threshold

    def as_failure(self) -> dict:
        return {"metric": self.key, "where": self.where, "value": self.value,
                "threshold": self.threshold, "kind": self.kind}


def gate(rules: Iterable[Threshold]) -> list[dict]:
    """The ``failures`` list of report.json: every rule that misses, in the given order."""
    return [rule.as_failure() for rule in rules if rule.missed()]


def _describe(failure: Mapping) -> str:
    value = failure["value"]
    shown = "nothing" if value is None else f"{value:.4g}"
    side = "at least" if failure["kind"] == "min" else "at most"
    by = "" if value is None else f", off by {abs(value - failure['threshold']):.3g}"
    return f"{failure['metric']} on {failure['where']} is {shown} ({side} " \
           f"{failure['threshold']:.4g} required{by})"


def explain(failures: Sequence[Mapping], first_layer: str | None,
            suggested: Sequence[str]) -> str:
    """The gate's one-paragraph explanation (empty when nothing missed)."""
    if not failures:
        return ""
    parts = ["The quantized model missed the check gate: "
             + "; ".join(_describe(f) for f in failures) + "."]
    if first_layer:
        parts.append(f"The first layer whose accumulated cosine falls below the layer threshold "
                     f"is {first_layer!r}.")
    else:
        parts.append("No single layer falls below the layer threshold: the error builds up "
                     "gradually.")
    if suggested:
        parts.append("Putting these layers in 16-bit helps most: "
                     + ", ".join(suggested[:3]) + " (quant.mode: mixed, quant.high_precision; "
                     "`nnbuild suggest-hp` proposes a full set).")
    return " ".join(parts)


def check_failed(recipe: str, failures: Sequence[Mapping], explanation: str) -> CheckFailed:
    """The CheckFailed error a failing gate raises (one line; the paragraph is in report.json)."""
    first = failures[0]
    return CheckFailed(f"check {recipe}: {first['metric']}",
                       f"{len(failures)} gate threshold(s) missed",
                       expected=f"{'>=' if first['kind'] == 'min' else '<='} "
                                f"{first['threshold']} on {first['where']}",
                       got=first["value"], hint=explanation or "see report.json")
