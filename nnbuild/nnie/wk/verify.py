"""Verify nnbuild against a real ``.wk``: per layer verified / differs / not verifiable.

For every weighted layer of the model the file was compiled from (``blockmap``), nnbuild builds
the block payload it expects (``expect``; NNIE codes from ``nnbuild.nnie.quantize``, per group
for depthwise layers, wk-format.md §4.2) and ``checks.LayerCheck`` compares:

* raw blocks byte for byte (codes, layout, records). The per-layer record exponent (``n``, or
  ``E`` with an unfolded 16-bit BatchNorm) depends on the mapper's calibration, which nnbuild
  cannot know: it is read from the layer's first raw block and every record is checked against
  it. The first difference names the weight (output, input, y, x) or the record byte.
* compressed 0x11 blocks through their symbol table (``tables``); without a raw block giving
  the exponent, every exponent is tried ("exponent searched" in the notes). 0x01 blocks have no
  table and are counted as not checkable.
* depthwise blocks (layout not established) per channel: the per-channel codes must occur in
  the block's table. Dead channels (dead BN, stored with the unexplained code ±0x10) are
  counted apart.

Unestablished layouts (RetinaFace's first conv, 16-bit K not a multiple of 32, Deconvolution,
InnerProduct) are reported as not verifiable with the reason — never guessed. Each dense layer's
input exponent follows from ``n`` (§4.4): ``z_x = -n - z_w``, ``k_x = z_x + Q``; with ``ranges``
(blob -> calibrated abs-max) the difference to nnbuild's ``k`` is given in 1/16-octave steps.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

import numpy as np

from nnbuild.ir import Graph
from nnbuild.nnie import quantize as nq
from nnbuild.nnie.wk.blockmap import map_blocks
from nnbuild.nnie.wk.checks import LayerCheck, bn_after
from nnbuild.nnie.wk.fold import fold_nniefacelib
from nnbuild.nnie.wk.reader import WkFile

FOLDS = ("none", "nniefacelib")


def _weights(layer, folded) -> tuple[np.ndarray, np.ndarray]:
    if layer.name in folded:
        return folded[layer.name]
    weights = np.asarray(layer.blobs[0], dtype=np.float32)
    outputs = weights.shape[0] if layer.type != "Deconvolution" else weights.shape[1]
    bias = (np.asarray(layer.blobs[1], dtype=np.float32) if len(layer.blobs) > 1
            else np.zeros(outputs, dtype=np.float32))
    return weights, bias


def _verdict(row: dict[str, Any]) -> str:
    raw, table, channels = row["raw"], row["table"], row["channels"]
    failed = raw["differs"] + table["inconsistent"] + sum(
        v for k, v in channels.items() if k.startswith("differs"))
    passed = raw["identical"] + table["consistent"] + sum(
        v for k, v in channels.items() if k.startswith("consistent"))
    if failed:
        return "differs"
    return "verified" if passed else "not verifiable"


def _input_exponent(check: LayerCheck, graph: Graph, ranges: Mapping[str, float] | None):
    exponent, bits = check.row["exponent"], check.bits
    if exponent is None or check.entry.kind != "dense" or (bits == 16 and check.bn is not None):
        return None
    steps, qmax = nq.FORMATS[bits]
    z_w = nq.top_index(float(np.max(np.abs(check.weights))), bits) - qmax
    k_x = -exponent - z_w + qmax
    ssa = check.entry.layer.bottoms[0]
    blob = graph.caffe_name(ssa)
    out = {"blob": blob, "k_x": k_x, "steps_per_octave": steps,
           "max_in": float(2.0 ** (k_x / steps))}
    calibrated = (ranges or {}).get(ssa, (ranges or {}).get(blob))
    if calibrated is not None and calibrated > 0:
        k_nn = nq.top_index(float(calibrated), bits)
        out["nnbuild_k"] = k_nn
        out["difference_sixteenths"] = (k_x - k_nn) * 16 / steps
    return out


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total = {key: Counter() for key in ("raw", "table", "channels")}
    for row in rows:
        for key in total:
            total[key].update(row[key])
    verdicts = Counter(row["verdict"] for row in rows)
    return {"raw_blocks": dict(total["raw"], total=sum(total["raw"].values())),
            "table_blocks": dict(total["table"], total=sum(total["table"].values())),
            "untabled_blocks": sum(row["untabled"] for row in rows),
            "depthwise_channels": dict(total["channels"],
                                       total=sum(total["channels"].values())),
            "layers": dict(verdicts)}


def verify_wk(wk: WkFile, graph: Graph, *, fold: str = "none",
              ranges: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Compare ``wk`` with what nnbuild expects for ``graph`` (see module docstring).

    Args:
        wk: the file (``read_wk``).
        graph: the model it was compiled from, with weights.
        fold: ``nniefacelib`` to merge BatchNorms as nniefacelib's tool did before compiling
            (wk-format.md §4.1), ``none`` to compare the weights as given.
        ranges: blob (SSA name of ``graph``, or Caffe name) -> calibrated absolute maximum
            (optional; ``Ranges.blobs`` of the calibrate stage).

    Returns:
        The report: ``summary`` (block and channel counts, layer verdicts), ``layers`` (one row
        per weighted layer) and ``unexplained`` (every raw block that is not identical, why).
    """
    folded = fold_nniefacelib(graph) if fold == "nniefacelib" else {}
    consumers = graph.consumers()
    rows, unexplained = [], []
    for entry in map_blocks(wk, graph):
        weights, bias = _weights(entry.layer, folded)
        bn = None
        if wk.data_width == 16 and entry.layer.name not in folded:
            bn = bn_after(graph, entry.layer, consumers)
        check = LayerCheck(entry, wk, weights, bias, bn)
        if entry.kind == "dense":
            check.run_dense()
        elif entry.kind == "per_group":
            check.run_per_group()
        else:
            for block in entry.blocks:
                check.skip(block, f"{entry.kind} layout not established (§3)")
        check.row["verdict"] = _verdict(check.row)
        check.row["input_exponent"] = _input_exponent(check, graph, ranges)
        for key in ("raw", "table", "channels"):
            check.row[key] = dict(check.row[key])
        rows.append(check.row)
        unexplained += check.unexplained
    return {"file": wk.path, "bits": wk.data_width, "fold": fold,
            "summary": _totals(rows), "layers": rows, "unexplained": unexplained}
