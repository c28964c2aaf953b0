"""Quantized execution: the float engine with NNIE's weight/activation rounding applied.

What is simulated (details and sources in ``nnbuild.nnie.quantpoints``):

* weights of Convolution/Deconvolution/InnerProduct fake-quantized with the NNIE logarithmic
  quantizer (nnie-facts.md §4), one range per layer, or per group for grouped and depthwise
  convolutions (wk-format.md §4.2), 8- or 16-bit by compile_mode (§2); biases in float
  (the mapper keeps them as 24-bit accumulator integers, "24.0", §2);
* every stored activation fake-quantized once, when its producer writes it, with its calibrated
  range (so every reader sees the same rounded values);
* network outputs rounded to 20.12 fixed point (int32 / 4096, §2, §3);
* arithmetic inside a layer is float32: NNIE accumulates in wide integers, which float32 matches
  to well below the 8-bit steps.

Quantized weights and the activation rounding tables (``nnbuild.nnie.fastquant``, bit-exact with
the quantizer, ~0.8 MB per stored blob in 8-bit, 1.5 MB in 16-bit) are computed once per ``Plan``;
reuse a plan for many pictures.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Layer
from nnbuild.nnie import quantize as nq
from nnbuild.nnie.fastquant import Table, group_codes
from nnbuild.nnie.calibrate import Ranges
from nnbuild.nnie.quantpoints import QuantPoints, quant_points


def fake_quant(values: np.ndarray, max_abs: float, bits: int) -> np.ndarray:
    """NNIE rounding of ``values`` for a tensor of range ``max_abs`` (float32 out).

    A range of 0 (a blob that was zero on every calibration picture) has no levels: NNIE can only
    store zeros there (``nnbuild.nnie.quantize`` returns zeros for it).
    """
    return np.asarray(nq.quantize(values, max_abs, bits=bits), dtype=np.float32)


@dataclasses.dataclass
class Plan:
    """Everything ``simulate`` needs that does not depend on the picture.

    Attributes:
        graph: the graph being simulated.
        mode: compile_mode (0, 1, 2) or recipe mode name it was built for.
        points: the quantization points.
        blob_max: stored blob -> calibrated absolute maximum.
        weights: layer -> replacement ``blobs`` (quantized weights, float bias and the rest).
        weight_max: layer -> the weight range used (the largest group range for grouped layers).
        weight_ranges: layer -> the range of each weight group (one entry for dense layers).
    """

    graph: Graph
    mode: Any
    points: QuantPoints
    blob_max: dict[str, float]
    weights: dict[str, list[np.ndarray]]
    weight_max: dict[str, float]
    tables: dict[str, Table] = dataclasses.field(default_factory=dict)
    weight_ranges: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def round_blob(self, blob: str, array: np.ndarray) -> np.ndarray | None:
        """The stored form of ``blob`` (None when NNIE does not round it)."""
        if blob in self.points.blobs:
            table = self.tables.get(blob)
            if table is None:
                table = Table(self.blob_max[blob], self.points.blobs[blob])
                self.tables[blob] = table
            return table(array)
        if blob in self.points.outputs:
            return np.asarray(nq.output_fixed_point(array), dtype=np.float32)
        return None

    def on_blob(self, layer: Layer | None, blob: str, array: np.ndarray) -> np.ndarray | None:
        """Engine hook: round each blob as its producer stores it (inputs stay exact U8)."""
        if layer is None:
            return None
        return self.round_blob(blob, array)


def _weight_ranges(ranges: Ranges, layer: Layer, groups: int) -> np.ndarray:
    """The weight ranges of ``layer``: per group (wk-format.md §4.2) when ``groups > 1``, else
    the calibrated layer range, else the weights' own abs-max."""
    if groups == 1 and layer.name in ranges.weights:
        return np.array([float(ranges.weights[layer.name])])
    return nq.weight_ranges(layer.blobs[0], groups)


def prepare(graph: Graph, ranges: Ranges, mode: str | int) -> Plan:
    """Quantize the weights and collect the ranges of ``graph`` for ``mode``.

    Raises:
        ModelError: if ``ranges`` lacks a stored blob of the graph (stale calibration).
    """
    points = quant_points(graph, mode)
    missing = [b for b in points.blobs if b not in ranges.blobs]
    if missing:
        raise ModelError(f"blob {graph.caffe_name(missing[0])!r}", "no calibrated range",
                         expected="a range for every stored blob",
                         got=f"{len(missing)} blob(s) without one",
                         hint="re-run the calibrate stage on this patched model")
    weights, weight_max, group_ranges = {}, {}, {}
    for layer in graph.layers:
        if layer.name in points.weights:
            groups = points.groups.get(layer.name, 1)
            group_ranges[layer.name] = _weight_ranges(ranges, layer, groups)
            weight_max[layer.name] = float(np.max(group_ranges[layer.name]))
            # fastquant.group_codes is bit-exact with nq.quantize_weights (tested), faster
            _, q = group_codes(layer.blobs[0], groups, points.weights[layer.name],
                               group_ranges[layer.name])
            weights[layer.name] = [q] + list(layer.blobs[1:])
    blob_max = {b: float(ranges.blobs[b]) for b in points.blobs}
    return Plan(graph, mode, points, blob_max, weights, weight_max,
                weight_ranges=group_ranges)


def simulate(graph: Graph, ranges: Ranges, mode: str | int, feeds: Mapping[str, np.ndarray],
             keep: Sequence[str] | str | None = None, *, plan: Plan | None = None
             ) -> dict[str, np.ndarray]:
    """Run ``graph`` as NNIE would: quantized weights and activations, outputs in 20.12.

    Args:
        graph: the patched graph.
        ranges: its calibration.
        mode: ``int8``/``int16``/``mixed`` or compile_mode 0/1/2.
        feeds: input blob -> NCHW float32 (the preprocessed picture; not rounded).
        keep: extra blobs to return, or ``"all"`` (as ``nnbuild.engine.run``); kept blobs are
            returned in their stored (rounded) form.
        plan: a ``prepare(graph, ranges, mode)`` result to reuse across pictures.

    Returns:
        Output (and kept) blob -> array, like the float engine.
    """
    from nnbuild.engine import run

    plan = plan if plan is not None else prepare(graph, ranges, mode)
    return run(graph, dict(feeds), keep, weights=plan.weights, on_blob=plan.on_blob)


def simulate_layer(graph: Graph, ranges: Ranges, mode: str | int, layer: str | Layer,
                   inputs: Sequence[np.ndarray], *, plan: Plan | None = None,
                   quantize_inputs: bool = True) -> list[np.ndarray]:
    """Run one layer quantized on its own, from float inputs (for per-layer checks).

    The inputs are first rounded to the form their producers store them in (what the layer reads
    on NNIE; the exact U8 network input stays as is), then the layer runs with quantized weights,
    and its outputs are rounded as stored. Comparing with the float layer on the same float inputs
    isolates the error this layer adds, independent of the layers before it.

    Args:
        graph, ranges, mode, plan: as for ``simulate``.
        layer: the layer or its name.
        inputs: float arrays, one per bottom.
        quantize_inputs: set False to feed the inputs unrounded (weights and outputs only).

    Returns:
        One array per top.
    """
    from nnbuild.engine import run_layer

    plan = plan if plan is not None else prepare(graph, ranges, mode)
    layer = graph.layer(layer) if isinstance(layer, str) else layer
    if quantize_inputs:
        inputs = [_or(plan.round_blob(b, x), x) if b in plan.points.blobs else x
                  for b, x in zip(layer.bottoms, inputs)]
    outputs = run_layer(layer, list(inputs), weights=plan.weights.get(layer.name))
    return [_or(plan.round_blob(top, out), out) for top, out in zip(layer.tops, outputs)]


def _or(value: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    return default if value is None else value
