"""YuFaceDetect end to end through cpu_split and the check stage (real model, real photos):
the NNIE part is lint-clean, the report compares NNIE outputs (not the data-dependent
DetectionOutput rows), the ssd task sees the same float detections as the unsplit network, and
an internal error in the check stage reaches the user as one line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.errors import NNBuildError

YU = MODELS / "yufacedetect-v1" / "yufacedetectnet-open-v1"
INPUT = {"name": "data", "shape": [1, 3, 240, 320], "color": "BGR", "mean": [104, 117, 123],
         "scale": 1.0, "resize": "stretch"}
PHOTOS = sorted((IMAGES / "photos").glob("*.jpg"))


def _feeds(path):
    from nnbuild import preprocess
    return {"data": preprocess.load_tensor(path, (240, 320), color="BGR", mean=(104, 117, 123))}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """patch (with cpu_split) and calibrate outputs at 320x240 int8, 4 calibration photos."""
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import calibrate
    from nnbuild.passes import PassContext, run_passes

    original = io.load(f"{YU}.prototxt", f"{YU}.caffemodel").graph
    ctx = PassContext(input_shape=(1, 3, 240, 320), chip="hi3516dv300")
    nnie, _ = run_passes(original, ["set_input_shape", "drop_layers", "cpu_split"], context=ctx)
    root = tmp_path_factory.mktemp("yu")
    for name in ("patch", "calibrate", "map"):
        (root / name).mkdir()
    patch = root / "patch"
    io.save(nnie, patch / "model.prototxt", patch / "model.caffemodel")
    io.save(ctx.cpu_graph, patch / "cpu.prototxt", patch / "cpu.caffemodel")
    nnie = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrate(nnie, (_feeds(p) for p in PHOTOS[:4])).save(root / "calibrate" / "ranges.json")
    return root, original, nnie


def _run(root, tmp_path, files):
    from nnbuild.stages import check as stage
    from nnbuild.build.context import StageContext

    (tmp_path / "out").mkdir()
    (tmp_path / "scratch").mkdir()
    recipe = {"input": INPUT, "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
              "check": {"task": "ssd", "min_output_cosine": 0.99, "min_layer_cosine": 0.98,
                        "min_recall_vs_float": 0.5, "max_box_px": 0.5}}
    ctx = StageContext(name="yu-test", stage="check", recipe=recipe, out=tmp_path / "out",
                       scratch=tmp_path / "scratch",
                       upstream_dirs={s: root / s for s in ("patch", "calibrate", "map")},
                       fetch_group=lambda group: list(files), upstream_keys={},
                       log=lambda msg: None)
    stage.run(ctx)
    return ctx, json.loads((tmp_path / "out" / "report.json").read_text())


def _cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_nnie_part_is_lint_clean(upstream):
    from nnbuild.nnie.lint import lint

    _, _, nnie = upstream
    findings = lint(nnie, "hi3516dv300")
    assert [f.severity for f in findings] == ["warning"] * 4  # the four Normalize layers
    assert [nnie.caffe_name(b) for b in nnie.outputs] == ["mbox_loc", "mbox_conf"]


def test_check_report_on_the_split_model(upstream, tmp_path):
    from nnbuild.engine import run
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import simulate

    root, original, nnie = upstream
    photos = PHOTOS[16:18]
    ctx, report = _run(root, tmp_path, photos)
    assert ctx.failure is None and report["verdict"] == "pass"
    # DetectionOutput keeps a data-dependent number of rows: only the NNIE outputs are compared.
    assert [o["blob"] for o in report["outputs"]] == ["mbox_loc", "mbox_conf"]
    ranges = Ranges.load(root / "calibrate" / "ranges.json")
    for i, photo in enumerate(photos):
        feeds = _feeds(photo)
        ref = run(original, feeds, keep=["mbox_loc", "mbox_conf"])
        quant = simulate(nnie, ranges, "int8", feeds)
        for out in report["outputs"]:
            want = _cos(ref[out["blob"]], quant[out["blob"]])
            assert out["metrics"]["per_image_cosine"][i] == pytest.approx(want, abs=1e-6)
        # Float detections of the unsplit network, thresholded and scaled by hand.
        rows = ref["detection_out"].reshape(-1, 7)
        rows = rows[rows[:, 2] >= 0.5]
        task = report["task"]["per_image"][i]
        assert len(task["float"]) == len(rows) > 0
        np.testing.assert_allclose([d["box"] for d in task["float"]],
                                   rows[:, 3:7] * [320, 240, 320, 240], rtol=1e-5)
        hits = sum(any(_iou(f["box"], q["box"]) >= 0.5 for q in task["quant"])
                   for f in task["float"])
        assert task["matched"] == hits  # greedy 1:1 matching equals any-overlap here
    metrics = report["task"]["metrics"]
    n_float = sum(len(p["float"]) for p in report["task"]["per_image"])
    assert metrics["recall_vs_float"] == pytest.approx(
        sum(p["matched"] for p in report["task"]["per_image"]) / n_float)
    print("yufacedetect ssd metrics (2 photos, 4 calibration photos):", metrics)


def test_internal_error_in_check_is_one_line(upstream, tmp_path, monkeypatch):
    from nnbuild.check import image as check_image

    def boom(job):
        raise ValueError("boom")

    monkeypatch.setattr(check_image, "check_image", boom)
    root, _, _ = upstream
    with pytest.raises(NNBuildError, match=r"internal error ValueError: boom\. Hint: this is an "
                                           r"nnbuild bug \(raised at .*test_yufacedetect_e2e"
                                           ) as info:
        _run(root, tmp_path, PHOTOS[16:17])  # one picture: the in-process path
    assert "\n" not in str(info.value) and str(info.value).startswith("check ")
