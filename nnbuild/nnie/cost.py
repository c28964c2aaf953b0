"""The cost model: per-layer MACs and bytes moved, and an ESTIMATED latency on an NNIE chip.

This is an estimate, not a measurement. The only real-device anchors public are two latencies
(nnie-facts.md §1, hanson-young/nniefacelib README): RetinaFace mnet0.25 at 640x640 on Hi3516DV300
(1.0 TOPS) runs in 17 ms in low precision (8-bit, BatchNorm merged) and 34 ms in high precision
(16-bit). The model is

    latency = sum over layers of 2 * MACs / (TOPS * 1e12 * efficiency[bits of the layer])

with one efficiency factor per precision, fitted so that RetinaFace-640 (``RETINAFACE_640_MACS``,
the MAC count of that graph under ``nnbuild.shapes.stats``'s conventions; the test recomputes it from the
real model) gives exactly 17 ms and 34 ms. It scales with MACs only: memory-bound layers
(pooling, element-wise, concat), depthwise convolutions' lower utilisation and per-run overheads
are not modelled. That is why it gives MobileFaceNet (112x112, 0.22 GMACs) about 4 ms where
nniefacelib issue #60 reports about 10 ms: small and depthwise-heavy nets run slower than this.
Bytes moved are reported per layer (activations in and out plus weights, at the layer's bit
width) for inspection; they are not part of the latency because no public number could fit a
bandwidth term.
"""

from __future__ import annotations

import collections
import math
from typing import Mapping

from nnbuild.nnie.chips import DEFAULT_CHIP, Chip, get_chip
from nnbuild.ir import Graph

# The fit (see module docstring): MACs of RetinaFace mnet0.25 at 640x640 and its published times.
RETINAFACE_640_MACS = 981_657_600
PUBLISHED_MS = {8: 17.0, 16: 34.0}
REFERENCE_TOPS = 1.0  # Hi3516DV300, nnie-facts.md §1
# Fraction of the chip's peak ops/s that RetinaFace-640 achieved at each precision.
EFFICIENCY = {bits: 2 * RETINAFACE_640_MACS / (REFERENCE_TOPS * 1e12 * ms * 1e-3)
              for bits, ms in PUBLISHED_MS.items()}
FITTED_TO = ("RetinaFace mnet0.25 640x640 on Hi3516DV300: 17 ms 8-bit, 34 ms 16-bit "
             "(nniefacelib README; nnie-facts.md section 1)")


def _default_bits(bits: Mapping[str, int]) -> int:
    """Bit width assumed for layers not in ``bits``: the most common one given, else 8."""
    counts = collections.Counter(bits.values())
    return counts.most_common(1)[0][0] if counts else 8


def _bytes(shapes: list, params: int, bits: int) -> int:
    elements = sum(math.prod(s) for s in shapes if s is not None) + params
    return elements * bits // 8


def layer_costs(graph: Graph, bits: Mapping[str, int] | None = None) -> list[dict]:
    """Per layer: name, type, bits, MACs and bytes moved (in + out activations and weights).

    Args:
        graph: the network (its input shapes fix every blob's shape).
        bits: layer name -> 8 or 16 (e.g. the quantization points' weight bits); layers not
            named take the most common width given (8 when ``bits`` is empty).
    """
    from nnbuild.shapes import stats
    from nnbuild.shapes import infer_shapes

    bits = dict(bits or {})
    default = _default_bits(bits)
    shapes = infer_shapes(graph)
    rows = []
    for st in stats.graph_stats(graph, shapes):
        width = bits.get(st.name, default)
        moved = [shapes.get(b) for b in st.bottoms] + list(st.out_shapes)
        rows.append({"name": st.name, "type": st.type, "bits": width, "macs": st.macs,
                     "bytes": _bytes(moved, st.params, width)})
    return rows


def latency_ms(macs: int, bits: int, chip: Chip) -> float | None:
    """Estimated milliseconds for ``macs`` at ``bits`` on ``chip`` (None if its TOPS is unknown)."""
    if chip.tops is None:
        return None
    if bits not in EFFICIENCY:
        raise ValueError(f"cost model: bits must be 8 or 16, got {bits!r}")
    return 2 * macs / (chip.tops * 1e12 * EFFICIENCY[bits]) * 1e3


def estimate(graph: Graph, chip: str | Chip | None = None, *,
             bits: Mapping[str, int] | None = None) -> dict:
    """The latency estimate of ``graph`` on ``chip``, JSON-ready (for quant.json and the report).

    Args:
        graph: the (patched) network.
        chip: chip name or ``Chip`` (default Hi3516DV300).
        bits: layer name -> 8/16, as for ``layer_costs``.

    Returns:
        dict with ``estimate`` (always True), ``note``, ``fitted_to``, ``chip``, ``tops``,
        ``efficiency`` (per bit width), totals ``macs``/``bytes``/``latency_ms`` (None when the
        chip's TOPS is not published, e.g. Hi3559AV100) and ``layers`` (per-layer rows with ``ms``).
    """
    chip = chip if isinstance(chip, Chip) else get_chip(chip or DEFAULT_CHIP)
    rows = layer_costs(graph, bits)
    for row in rows:
        row["ms"] = latency_ms(row["macs"], row["bits"], chip)
    total = None if chip.tops is None else sum(row["ms"] for row in rows)
    note = ("estimate from MACs and the chip's TOPS, one efficiency per precision; "
            "memory-bound layers and overheads are not modelled")
    if chip.tops is None:
        note = f"no published TOPS for {chip.name} (nnie-facts.md section 1): no latency estimate"
    return {"estimate": True, "note": note, "fitted_to": FITTED_TO, "chip": chip.name,
            "tops": chip.tops, "efficiency": {str(b): e for b, e in EFFICIENCY.items()},
            "macs": sum(r["macs"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
            "latency_ms": total, "layers": rows}
