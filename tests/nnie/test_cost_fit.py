"""The cost model against the published board times: leave-one-out error and '+ CPU' bounds."""

from __future__ import annotations

import pytest

from conftest import MODELS
from nnbuild.nnie.cost import fit, measurements, model

# The Done-when of issue 20: LOO error <= 25% on each NNIE-only point the model represents.
LIMIT = 0.25


@pytest.fixture(scope="module")
def works():
    return fit.reference_nets(MODELS)


@pytest.fixture(scope="module")
def loo(works):
    rows = fit.leave_one_out(works)
    print("\n" + "\n".join(f"{r['point']:45s} measured {r['measured_ms']:6.1f} ms, LOO "
                           f"{r['predicted_ms']:6.2f} ms, error {100 * r['error']:+.1f}%"
                           for r in rows))
    return {r["point"]: r for r in rows}


@pytest.mark.parametrize("point", [p.label for p in measurements.nnie_only()
                                   if p.chip != "hi3559av100" or p.net != "mobilefacenet"])
def test_leave_one_out_error_within_25_percent(loo, point):
    assert abs(loo[point]["error"]) <= LIMIT


def test_leave_one_out_mobilefacenet_hi3559av100_measured(loo):
    # Honest miss (README, model.py): NNIE 1.1 runs MobileFaceNet 1.5x slower relative to
    # YOLOv5s than the model says. Pinned so a change in either direction is seen.
    error = loo["MobileFaceNet-112, Hi3559AV100 (one core)"]["error"]
    assert -0.38 < error < -0.33


def test_cpu_points_are_upper_bounds(works):
    etas = fit.fit(measurements.nnie_only(), works)
    for bound in measurements.upper_bounds():
        ms = fit.predict(bound, works, etas[model.CHIPS[bound.chip].generation])
        assert ms <= bound.ms * (1 + 1e-6), bound.label


def test_fitted_constants_have_not_drifted(works, loo):
    etas = fit.fit(measurements.nnie_only(), works)
    assert etas == pytest.approx(model.EFFICIENCY, rel=1e-5)
    for gen, value in model.LOO_ERROR.items():
        worst = max(abs(r["error"]) for r in loo.values()
                    if model.CHIPS[_chip(r["point"])].generation == gen)
        assert value == pytest.approx(worst, abs=5e-4)


def _chip(label: str) -> str:
    return next(p.chip for p in measurements.POINTS if p.label == label)


def test_depthwise_hypotheses_against_the_dv300_points(works):
    """Only 'dense per group' gives RetinaFace and MobileFaceNet one MAC rate on Hi3516DV300."""
    def rate(net, ms, key):
        return sum(getattr(r, key) for r in works[net]) / ms
    real = rate("retinaface-640", 17.0, "macs") / rate("mobilefacenet", 10.0, "macs")
    dense = rate("retinaface-640", 17.0, "work_macs") / rate("mobilefacenet", 10.0, "work_macs")
    assert real > 2.4 and 0.9 < dense < 1.1

    def padded16(net, ms):  # each group padded to 16 input channels
        return sum(r.macs * min(16, r.groups) for r in works[net]) / ms
    assert padded16("retinaface-640", 17.0) / padded16("mobilefacenet", 10.0) > 2.0


def test_fixed_cost_per_group_contradicts_the_yolov3_bound(works):
    """Real MACs + a fixed cost per group operation: solve on the two DV300 8-bit points."""
    def features(net):
        rows = [r for r in works[net] if r.kind in ("compute", "memory")]
        return sum(r.macs for r in rows) / 1e9, sum(r.groups for r in rows)
    (m1, g1), (m2, g2) = features("retinaface-640"), features("mobilefacenet")
    ms_per_gmac = (17.0 * g2 - 10.0 * g1) / (m1 * g2 - m2 * g1)
    ms_per_group = (17.0 - m1 * ms_per_gmac) / g1
    assert ms_per_gmac > 0 and ms_per_group > 0
    yolo_macs, yolo_groups = features("yolov3-416")
    assert yolo_macs * ms_per_gmac + yolo_groups * ms_per_group > 238.0 * 2  # bound incl. CPU
