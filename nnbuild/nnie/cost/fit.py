"""Fitting the cost model's efficiency to the board times, and its leave-one-out error.

The model (``nnbuild.nnie.cost.model``) has one free parameter per NNIE generation, ``eta``.
``fit`` chooses it to minimise the squared log error over that generation's NNIE-only points
(a relative error: 10 ms and 100 ms points weigh the same); a generation with no point takes
the value pooled over all points. The '+ CPU' times are constraints: eta may not be so low that a
prediction exceeds one of them. ``leave_one_out`` refits without each point in turn and predicts
it, which is the error the README and the report state.

The reference nets are the real RetinaFace mnet0.25 and MobileFaceNet from ../shared/models
(``reference_nets(models_dir)``) and the shape-only graphs of ``nnbuild.nnie.cost.netdefs``.
"""

from __future__ import annotations

import math
import pathlib
from typing import Iterable, Mapping, Sequence

from nnbuild.nnie.cost import measurements, model
from nnbuild.nnie.cost.work import LayerWork, graph_work

Works = Mapping[str, Sequence[LayerWork]]


def reference_nets(models_dir: str | pathlib.Path) -> dict[str, list[LayerWork]]:
    """Net key -> per-layer work, for every net the measurements name."""
    from nnbuild.caffe import io
    from nnbuild.nnie.cost import netdefs
    from nnbuild.passes import PassContext, run_passes

    models = pathlib.Path(models_dir)
    retina = io.load(models / "retinaface-mnet25" / "mnet.prototxt").graph
    retina, _ = run_passes(retina, ["set_input_shape", "remove_crop"],
                           context=PassContext(input_shape=(1, 3, 640, 640)))
    graphs = {"retinaface-640": retina,
              "mobilefacenet": io.load(models / "mobilefacenet" / "mobilefacenet.prototxt").graph}
    graphs.update({name: build() for name, build in netdefs.BUILDERS.items()})
    return {name: graph_work(graph) for name, graph in graphs.items()}


def predict(point: measurements.Measurement, works: Works, eta: float) -> float:
    """The model's milliseconds for ``point`` at efficiency ``eta``."""
    return model.network_ms(works[point.net], point.bits, model.CHIPS[point.chip], eta)


def _golden(f, lo: float, hi: float, steps: int = 100) -> float:
    """Minimum of a unimodal ``f`` on [lo, hi] by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(steps):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if f(a) <= f(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def _lowest_eta(bound: measurements.Measurement, works: Works) -> float:
    """log(eta) at which ``bound``'s prediction equals its time (latency falls with eta)."""
    return _golden(lambda x: abs(math.log(predict(bound, works, math.exp(x)) / bound.ms)),
                   math.log(1e-3), 0.0)


def _fit_one(points: Sequence[measurements.Measurement], works: Works,
             bounds: Sequence[measurements.Measurement] = ()) -> float:
    """log-eta least squares, with eta no lower than any '+ CPU' bound allows."""
    def loss(log_eta: float) -> float:
        return sum(math.log(predict(p, works, math.exp(log_eta)) / p.ms) ** 2 for p in points)
    lo = max([math.log(1e-3)] + [_lowest_eta(b, works) for b in bounds])
    return math.exp(_golden(loss, lo, 0.0))


def _generation(point: measurements.Measurement) -> str:
    return model.CHIPS[point.chip].generation


def fit(points: Iterable[measurements.Measurement], works: Works,
        bounds: Iterable[measurements.Measurement] | None = None) -> dict[str, float]:
    """Generation -> fitted eta (see module docstring).

    Args:
        points: NNIE-only measurements to fit.
        works: net key -> per-layer work (``reference_nets``).
        bounds: '+ CPU' measurements the prediction must stay below (default all of them):
            each sets a lowest eta for its generation.
    """
    points = list(points)
    bounds = list(measurements.upper_bounds() if bounds is None else bounds)
    by_gen: dict[str, list] = {}
    for p in points:
        by_gen.setdefault(_generation(p), []).append(p)
    etas = {gen: _fit_one(pts, works, [b for b in bounds if _generation(b) == gen])
            for gen, pts in by_gen.items()}
    pooled = _fit_one(points, works, bounds) if points else None
    return {gen: etas.get(gen, pooled) for gen in sorted(model.EFFICIENCY)}


def leave_one_out(works: Works, points: Sequence[measurements.Measurement] | None = None
                  ) -> list[dict]:
    """For each NNIE-only point: measured, predicted without it, relative error."""
    points = list(points or measurements.nnie_only())
    rows = []
    for i, point in enumerate(points):
        etas = fit(points[:i] + points[i + 1:], works)
        ms = predict(point, works, etas[model.CHIPS[point.chip].generation])
        rows.append({"point": point.label, "measured_ms": point.ms, "predicted_ms": ms,
                     "error": ms / point.ms - 1.0})
    return rows
