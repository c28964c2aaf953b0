"""The shape-only published nets: MACs and parameters against their published figures."""

from __future__ import annotations

import pytest

from nnbuild.shapes import stats
from nnbuild.nnie.cost import netdefs
from nnbuild.shapes import infer_shapes


def _counts(graph):
    params, macs = stats.totals(stats.graph_stats(graph, infer_shapes(graph)))
    return params, macs


@pytest.mark.parametrize("name, gmacs, mparams, tol", [
    # ultralytics v6.0 README: YOLOv5s 16.5 GFLOPs at 640 (2 FLOPs/MAC), 7.2 M params
    ("yolov5s-416", 16.5 / 2 * (416 / 640) ** 2, 7.2, 0.01),
    # darknet prints 65.86 BFLOPs for yolov3.cfg at 416; 61.9 M params (yolov3.weights)
    ("yolov3-416", 65.86 / 2, 61.9, 0.005),
    # OpenVINO model zoo ssd300 (Caffe VGG16, VOC): 62.815 GFLOPs, 26.285 M params
    ("vgg16-ssd300", 62.815 / 2, 26.285, 0.005),
])
def test_published_macs_and_params(name, gmacs, mparams, tol):
    graph = netdefs.BUILDERS[name]()
    params, macs = _counts(graph)
    assert macs / 1e9 == pytest.approx(gmacs, rel=tol)
    assert params / 1e6 == pytest.approx(mparams, rel=0.01)


def test_output_shapes():
    shapes = infer_shapes(netdefs.yolov5s(416))
    assert sorted(shapes[o][2] for o in netdefs.yolov5s(416).outputs) == [13, 26, 52]
    ssd = netdefs.vgg16_ssd300()
    sizes = sorted({infer_shapes(ssd)[o][2] for o in ssd.outputs})
    assert sizes == [1, 3, 5, 10, 19, 38]  # the six SSD300 source maps
