"""The check stage end to end on UltraFace-slim (real model, real photos): report.json numbers
against an independent recomputation, per-image caching, and the gate's failure paragraph."""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.errors import CheckFailed

INPUT = {"name": "input", "shape": [1, 3, 240, 320], "color": "RGB", "mean": [127, 127, 127],
         "scale": 0.0078125, "resize": "stretch"}


def _feeds(path):
    from nnbuild import preprocess
    return {"input": preprocess.load_tensor(path, (240, 320), color="RGB", mean=(127, 127, 127),
                                            scale=0.0078125)}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """patch/calibrate/map stage outputs for UltraFace-slim 320x240 int8 (8 calibration photos)."""
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import calibrate
    from nnbuild.passes import PassContext, run_passes

    folder = MODELS / "ultraface-slim-320"
    graph = io.load(folder / "slim-320.prototxt", folder / "slim-320.caffemodel").graph
    graph, _ = run_passes(graph, ["set_input_shape", "reshape_batch_zero"],
                          context=PassContext(input_shape=(1, 3, 240, 320)))
    root = tmp_path_factory.mktemp("upstream")
    for name in ("patch", "calibrate", "map"):
        (root / name).mkdir()
    io.save(graph, root / "patch" / "model.prototxt", root / "patch" / "model.caffemodel")
    photos = sorted((IMAGES / "photos").glob("*.jpg"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranges = calibrate(graph, (_feeds(p) for p in photos[:8]))
    ranges.save(root / "calibrate" / "ranges.json")
    return root, photos[16:]


def _run(upstream, tmp_path, files, **check):
    from nnbuild.stages import check as stage
    from nnbuild.stages.context import StageContext

    root, _ = upstream
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    out.mkdir()
    (tmp_path / "scratch").mkdir(exist_ok=True)
    logs = []
    recipe = {"input": INPUT, "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
              "check": {"task": "ultraface", **check}}
    ctx = StageContext(name="uf-test", stage="check", recipe=recipe, out=out,
                       scratch=tmp_path / "scratch",
                       upstream_dirs={s: root / s for s in ("patch", "calibrate", "map")},
                       fetch_group=lambda group: list(files), upstream_keys={}, log=logs.append)
    stage.run(ctx)
    return ctx, json.loads((out / "report.json").read_text()), logs


def _cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_report_numbers_match_independent_recomputation(upstream, tmp_path):
    from nnbuild.caffe import io
    from nnbuild.engine import run, run_layer
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import simulate, simulate_layer

    root, photos = upstream
    ctx, report, logs = _run(upstream, tmp_path, photos[:2])
    assert ctx.failure is None and report["verdict"] == "pass" and report["failures"] == []
    assert (ctx.out / "report.html").is_file()
    graph = io.load(root / "patch" / "model.prototxt", root / "patch" / "model.caffemodel").graph
    ranges = Ranges.load(root / "calibrate" / "ranges.json")
    layers = {e["ssa_blob"]: e for e in report["layers"]}
    assert [e["layer"] for e in report["layers"]][:3] == [layer.name for layer in graph.layers[:3]]
    conv = [layer for layer in graph.layers if layer.type == "Convolution"]
    picks = [conv[1].tops[0], conv[len(conv) // 2].tops[0], "boxes"]
    acc = {b: [] for b in picks}
    iso = []
    for photo in photos[:2]:
        feeds = _feeds(photo)
        f = run(graph, feeds, "all")
        q = simulate(graph, ranges, "int8", feeds, "all")
        for b in picks:
            acc[b].append(_cos(f[b], q[b]))
        layer = conv[len(conv) // 2]
        alone = simulate_layer(graph, ranges, "int8", layer, [f[x] for x in layer.bottoms])
        iso.append(_cos(run_layer(layer, [f[x] for x in layer.bottoms])[0], alone[0]))
    for b in picks:
        assert layers[b]["accumulated"]["cosine"] == pytest.approx(np.mean(acc[b]), abs=1e-6)
        assert layers[b]["accumulated"]["per_image_cosine"] == pytest.approx(acc[b], abs=1e-6)
    assert layers[picks[1]]["isolated"]["cosine"] == pytest.approx(np.mean(iso), abs=1e-6)
    out = {o["blob"]: o["metrics"] for o in report["outputs"]}
    assert out["boxes"]["cosine"] == pytest.approx(np.mean(acc["boxes"]), abs=1e-6)
    assert report["task"]["name"] == "ultraface" and len(report["task"]["per_image"]) == 2
    assert 0.8 < report["task"]["metrics"]["recall_vs_float"] <= 1.0
    assert report["task"]["metrics"]["float_detections"] > 0
    hist = report["histograms"][0]
    assert sum(hist["counts"]) > 0 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert all(0 < v <= hist["max_abs"] for v in hist["levels"])


def test_per_image_results_are_cached(upstream, tmp_path):
    _, photos = upstream
    _run(upstream, tmp_path, photos[:2])
    _, report, logs = _run(upstream, tmp_path, photos[:3])
    assert any("2 image(s) cached, 1 to compute" in line for line in logs), logs
    assert len(report["images"]) == 3
    _, again, logs = _run(upstream, tmp_path, photos[:3])
    assert any("3 image(s) cached, 0 to compute" in line for line in logs), logs
    assert again["outputs"] == report["outputs"]


def test_gate_failure_explains_itself(upstream, tmp_path):
    _, photos = upstream
    ctx, report, _ = _run(upstream, tmp_path, photos[:2], min_output_cosine=0.9999,
                          max_box_px=0.0001)
    assert isinstance(ctx.failure, CheckFailed) and ctx.failure.exit_code == 1
    assert report["verdict"] == "fail"
    assert {f["metric"] for f in report["failures"]} == {"min_output_cosine", "max_box_px"}
    assert len(report["suggested_hp"]) == 3
    assert report["sensitivity"][0]["gain"] >= report["sensitivity"][-1]["gain"]
    text = report["explanation"]
    assert "min_output_cosine on boxes" in text and ", ".join(report["suggested_hp"]) in text
    assert "max_box_px" in text and str(ctx.failure).startswith("check uf-test: min_output_cosine")
