"""The cost model: an ESTIMATED NNIE latency per layer and per network, fitted to board times.

Not a measurement. ``work`` says what NNIE does per layer (depthwise expanded as the hardware
runs it, fused chains, bytes moved), ``model`` turns it into milliseconds on a chip (compute at
a fitted fraction of the chip's peak or DRAM traffic at its datasheet bandwidth, whichever
binds), ``fit`` fits that fraction to the published NNIE-only times of ``measurements`` and
states the leave-one-out error, ``netdefs`` builds the published nets that have no public
weights. ``estimate`` is what the map stage writes into quant.json.
"""

from __future__ import annotations

import collections
from typing import Mapping

from nnbuild.ir import Graph
from nnbuild.nnie.cost import model
from nnbuild.nnie.cost.work import graph_work

FITTED_TO = ("the NNIE-only board times in nnbuild/nnie/cost/measurements.py (RetinaFace 640 "
             "8/16-bit and MobileFaceNet on Hi3516DV300, MobileFaceNet and YOLOv5s-416 on one "
             "Hi3559AV100 core), with the '+ CPU' times as upper bounds")
DEFAULT_CHIP = "hi3516dv300"


def _default_bits(bits: Mapping[str, int]) -> int:
    """Bit width assumed for layers not in ``bits``: the most common one given, else 8."""
    counts = collections.Counter(bits.values())
    return counts.most_common(1)[0][0] if counts else 8


def chip_cost(chip) -> model.ChipCost:
    """The cost row of ``chip`` (a name or ``nnbuild.nnie.chips.Chip``); RecipeError if unknown."""
    from nnbuild.nnie.chips import get_chip

    name = chip if isinstance(chip, str) else getattr(chip, "name", None) or DEFAULT_CHIP
    return model.CHIPS[get_chip(name).name]


def layer_costs(graph: Graph, bits: Mapping[str, int] | None = None, chip=None) -> list[dict]:
    """Per layer: name, type, bits, MACs, work MACs, bytes moved, estimated ms and its bound.

    Args:
        graph: the network (its input shapes fix every blob's shape).
        bits: layer name -> 8 or 16; layers not named take the most common width given (8 when
            ``bits`` is empty).
        chip: chip name or ``Chip`` (default Hi3516DV300).
    """
    bits = dict(bits or {})
    default = _default_bits(bits)
    spec = chip_cost(chip or DEFAULT_CHIP)
    eta = model.EFFICIENCY[spec.generation]
    rows = []
    for work in graph_work(graph):
        width = bits.get(work.name, bits.get(work.fused_into, default))
        ms, bound = model.layer_ms(work, width, spec, eta)
        rows.append({"name": work.name, "type": work.type, "bits": width, "macs": work.macs,
                     "work_macs": work.work_macs,
                     "bytes": (work.act_elems + work.weight_elems) * width // 8,
                     "ms": ms, "bound": bound})
    return rows


def total_ms(graph: Graph, bits: Mapping[str, int] | int, chip=None) -> float:
    """Estimated ms of ``graph`` with one width for every layer or a per-layer mapping."""
    if isinstance(bits, int):
        bits = {layer.name: bits for layer in graph.layers}
    return sum(r["ms"] for r in layer_costs(graph, bits, chip))


def estimate(graph: Graph, chip=None, *, bits: Mapping[str, int] | None = None) -> dict:
    """The latency estimate of ``graph`` on ``chip``, JSON-ready (for quant.json and the report).

    Args:
        graph: the (patched) network.
        chip: chip name or ``Chip`` (default Hi3516DV300).
        bits: layer name -> 8/16, as for ``layer_costs`` (the recipe's mode).

    Returns:
        dict with ``estimate`` (True), ``note``, ``fitted_to``, ``chip``, ``cores_used`` (1),
        ``efficiency``, ``uncertainty`` (largest leave-one-out error of the chip's NNIE
        generation, a fraction), ``uncertainty_all`` (largest over every board point), totals ``macs``/``work_macs``/``bytes``/``latency_ms`` (the
        recipe's mode), ``totals`` (``int8``, ``int16``, ``mode`` in ms) and ``layers`` (rows of
        ``layer_costs``).
    """
    spec = chip_cost(chip or DEFAULT_CHIP)
    rows = layer_costs(graph, bits, spec.name)
    names = [layer.name for layer in graph.layers]
    total = sum(r["ms"] for r in rows)
    totals = {"int8": total_ms(graph, dict.fromkeys(names, 8), spec.name),
              "int16": total_ms(graph, dict.fromkeys(names, 16), spec.name), "mode": total}
    uncertainty = model.LOO_ERROR[spec.generation]
    note = (f"estimate, one NNIE core of {spec.cores}; depthwise as dense per-group operations; "
            f"leave-one-out error up to {100 * uncertainty:.0f}% on NNIE {spec.generation}")
    return {"estimate": True, "note": note, "fitted_to": FITTED_TO, "chip": spec.name,
            "tops": spec.tops, "cores_used": 1, "efficiency": model.EFFICIENCY[spec.generation],
            "uncertainty": uncertainty, "uncertainty_all": max(model.LOO_ERROR.values()),
            "macs": sum(r["macs"] for r in rows),
            "work_macs": sum(r["work_macs"] for r in rows),
            "bytes": sum(r["bytes"] for r in rows), "latency_ms": total, "totals": totals,
            "layers": rows}
