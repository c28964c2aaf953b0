"""calibrate + map stages end to end on MobileFaceNet (real model, real faces), builtin mapper."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from conftest import IMAGES, MODELS


def _ctx(tmp_path, stage, recipe, upstream, files=()):
    from nnbuild.build.context import StageContext

    out, scratch = tmp_path / stage, tmp_path / f"scratch-{stage}"
    out.mkdir()
    scratch.mkdir()
    logs = []
    ctx = StageContext(name="mfn", stage=stage, recipe=recipe, out=out, scratch=scratch,
                       upstream_dirs=upstream, fetch_group=lambda group: list(files),
                       upstream_keys={}, log=logs.append)
    ctx.progress = lambda items, total=None, desc="": items  # the runner's progress bar
    return ctx, logs


@pytest.fixture(scope="module")
def built(tmp_path_factory, monkeypatch_module):
    from nnbuild.stages import calibrate as calibrate_stage
    from nnbuild.stages import map as map_stage

    monkeypatch_module.delenv("NNIE_MAPPER", raising=False)
    tmp = tmp_path_factory.mktemp("stages")
    patch = tmp / "patch"
    patch.mkdir()
    for suffix in ("prototxt", "caffemodel"):
        shutil.copy(MODELS / "mobilefacenet" / f"mobilefacenet.{suffix}", patch / f"model.{suffix}")
    recipe = {"input": {"name": "data", "shape": [1, 3, 112, 112], "color": "RGB",
                        "mean": [127.5] * 3, "scale": 0.0078125, "resize": "stretch"},
              "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
              "mapper": {"path": None}, "calibration": {"count": 4}}
    faces = sorted((IMAGES / "faces112").glob("*.jpg"))
    ctx, logs = _ctx(tmp, "calibrate", recipe, {"patch": patch}, faces)
    calibrate_stage.run(ctx)
    mctx, _ = _ctx(tmp, "map", recipe, {"patch": patch, "calibrate": ctx.out})
    map_stage.run(mctx)
    return recipe, patch, ctx.out, mctx.out, logs


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_stage_modules_import_without_numpy():
    import subprocess

    code = ("import sys, nnbuild.stages.calibrate, nnbuild.stages.map; "
            "sys.exit('numpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_calibrate_stage_outputs(built):
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.preprocess import load_uint8

    _, _, calib, _, logs = built
    assert (calib / "image_list.txt").read_text() == "".join(
        f"images/{i:03d}.bgr\n" for i in range(4))
    first = sorted((IMAGES / "faces112").glob("*.jpg"))[0]
    planar = np.fromfile(calib / "images" / "000.bgr", np.uint8).reshape(3, 112, 112)
    rgb = load_uint8(first, (112, 112))
    np.testing.assert_array_equal(planar, rgb[:, :, ::-1].transpose(2, 0, 1))  # B, G, R planes
    ranges = Ranges.load(calib / "ranges.json")
    assert all(len(v) == 4 and max(v) == ranges.blobs[b] for b, v in ranges.per_image.items())
    assert any("20-50" in line for line in logs)  # 4 pictures < the guide's 20


def test_map_stage_writes_cfg_and_quant_record(built):
    from nnbuild.caffe import io
    from nnbuild.nnie import quantize as nq

    _, patch, _, out, _ = built
    assert sorted(p.name for p in out.iterdir()) == ["mean.txt", "nnie_mapper.cfg", "quant.json",
                                                     "quant.npz"]
    cfg = (out / "nnie_mapper.cfg").read_text()
    assert "[compile_mode] 0\n" in cfg and "[image_list] image_list.txt\n" in cfg
    record = json.loads((out / "quant.json").read_text())
    assert record["mapper"] == "builtin" and record["compile_mode"] == 0
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    layers = {row["name"]: row for row in record["layers"]}
    assert len(layers) == 50  # 49 convolutions + 1 InnerProduct
    npz = np.load(out / "quant.npz")
    for name, row in layers.items():
        weights = graph.layer(name).blobs[0]
        assert row["max"] == pytest.approx(float(np.abs(weights).max()))
        assert row["k"] == nq.top_index(row["max"], 8) and row["bits"] == 8
        codes = npz[f"codes/{name}"]
        groups = graph.layer(name).param.convolution_param.group if row["type"] != \
            "InnerProduct" else 1
        assert row["groups"] == groups
        if groups == 1:
            np.testing.assert_array_equal(nq.decode(codes, row["max"], 8),
                                          nq.quantize(weights, row["max"], 8))
            continue
        # depthwise: one range per channel (wk-format.md §4.2), each its channel's abs-max
        ranges = npz[f"weight_ranges/{name}"]
        assert ranges.max() == row["max"]
        for channel, m in enumerate(ranges):
            assert m == np.abs(weights[channel]).max()
            np.testing.assert_array_equal(nq.decode(codes[channel], m, 8),
                                          nq.quantize(weights[channel], m, 8))
    assert record["cost"]["latency_ms"] > 0
    assert set(npz["blob_bits"]) == {8} and len(npz["blob_names"]) == len(record["blobs"])


def test_quant_npz_is_byte_reproducible(built, tmp_path):
    from nnbuild.stages import map as map_stage

    recipe, patch, calib, out, _ = built
    again, _ = _ctx(tmp_path, "map", recipe, {"patch": patch, "calibrate": calib})
    map_stage.run(again)
    for name in ("quant.npz", "quant.json", "nnie_mapper.cfg"):
        assert (again.out / name).read_bytes() == (out / name).read_bytes()
