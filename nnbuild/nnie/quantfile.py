"""The map stage's quantization record: ``quant.npz`` (integer codes) and ``quant.json`` (readable).

``quant.npz`` holds, per weighted layer, the NNIE codes of its weights (``nnbuild.nnie.quantize``
encoding, nnie-facts.md §4; 16-bit codes are the .wk words ``sign << 15 | q << 2``, wk-format.md
§3) and its range, plus one range per group for grouped/depthwise layers (``weight_ranges/``,
wk-format.md §4.2); per stored blob its range and bit width. It is written
with a fixed zip timestamp so equal content gives equal bytes (the package is byte-reproducible).
``quant.json`` summarises the same per layer for people: bit width, range, the top level index
``k = floor(L * log2(max))`` (L = 16 levels per octave in 8-bit, 128 in 16-bit, §4), and the
fraction of weights flushed to zero or saturated.
"""

from __future__ import annotations

import io
import pathlib
import zipfile
from typing import Any

import numpy as np

from nnbuild.nnie import quantize as nq
from nnbuild.nnie.fastquant import group_codes
from nnbuild.nnie.simulate import Plan

NPZ_DATE = (1980, 1, 1, 0, 0, 0)


def top_level(max_abs: float, bits: int) -> int | None:
    """``k = floor(L * log2(max_abs))``: the top level is ``2**(k/L)`` (None for a zero range)."""
    if not max_abs > 0:
        return None
    return nq.top_index(max_abs, bits)


def weight_stats(weights: np.ndarray, max_abs: float, bits: int,
                 group_ranges: np.ndarray | None = None) -> dict:
    """Per-layer numbers for quant.json (from ``nnbuild.nnie.quantize.summary``).

    With ``group_ranges`` (one range per group, wk-format.md §4.2) the fractions are over all
    groups, each quantized with its own range, and ``groups`` says how many there are.

    Returns:
        ``bits``, ``max``, ``k``, ``zero_fraction`` (non-zero weights that become 0),
        ``saturated_fraction`` (weights whose nearest level is above the top, clipped to it) and
        ``groups`` (number of weight ranges).
    """
    ranges = np.array([max_abs]) if group_ranges is None else np.asarray(group_ranges)
    parts = np.asarray(weights).reshape(len(ranges), -1)
    zero = saturated = 0.0
    for part, m in zip(parts, ranges):
        stats = nq.summary(part, float(m), bits)
        zero += stats["flushed_to_zero"] * part.size
        saturated += stats["saturated"] * part.size
    size = max(1, parts.size)
    return {"bits": bits, "max": float(max_abs), "k": top_level(max_abs, bits),
            "zero_fraction": zero / size, "saturated_fraction": saturated / size,
            "groups": len(ranges)}


def summary(plan: Plan) -> dict[str, Any]:
    """The ``layers`` and ``blobs`` sections of quant.json for a prepared plan."""
    graph, points = plan.graph, plan.points
    layers = []
    for layer in graph.layers:
        if layer.name in plan.weights:
            bits = points.weights[layer.name]
            stats = weight_stats(layer.blobs[0], plan.weight_max[layer.name], bits,
                                 plan.weight_ranges.get(layer.name))
            layers.append({"name": layer.name, "type": layer.type, **stats})
    blobs = [{"name": graph.caffe_name(b), "ssa": b, "bits": bits, "max": plan.blob_max[b],
              "k": top_level(plan.blob_max[b], bits),
              "layers": list(points.chains.get(b, ()))}
             for b, bits in points.blobs.items()]
    outputs = [{"name": graph.caffe_name(b), "ssa": b, "format": "20.12"} for b in points.outputs]
    return {"layers": layers, "blobs": blobs, "outputs": outputs}


def arrays(plan: Plan) -> dict[str, np.ndarray]:
    """The arrays of quant.npz: ``codes/<layer>``, ``weight_max/<layer>``, blob ranges."""
    out: dict[str, np.ndarray] = {}
    for layer in plan.graph.layers:
        if layer.name in plan.weights:
            bits = plan.points.weights[layer.name]
            wmax = plan.weight_max[layer.name]
            ranges = plan.weight_ranges.get(layer.name, np.array([wmax]))
            # group_codes is bit-exact with nq.encode_weights (tests/nnie), only faster
            out[f"codes/{layer.name}"] = group_codes(layer.blobs[0], len(ranges), bits,
                                                     ranges)[0]
            out[f"weight_max/{layer.name}"] = np.float32(wmax)
            if len(ranges) > 1:
                out[f"weight_ranges/{layer.name}"] = np.asarray(ranges, dtype=np.float32)
            out[f"weight_bits/{layer.name}"] = np.int32(bits)
    names = list(plan.points.blobs)
    out["blob_names"] = np.array(names, dtype=np.str_)
    out["blob_max"] = np.array([plan.blob_max[b] for b in names], dtype=np.float32)
    out["blob_bits"] = np.array([plan.points.blobs[b] for b in names], dtype=np.int32)
    return out


def write_npz(path: str | pathlib.Path, data: dict[str, np.ndarray]) -> None:
    """``np.savez``-compatible file with fixed timestamps and order (reproducible bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(data):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(data[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=NPZ_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
