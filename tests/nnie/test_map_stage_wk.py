"""The map stage verifies a real mapper's .wk (stand-in mapper copying the real ENet file)."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import SHARED

ENET = SHARED / "wk"


def _stage_dirs(tmp_path):
    from nnbuild.caffe.io import load
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.quantpoints import quant_points

    patch, calib = tmp_path / "patch", tmp_path / "calibrate"
    (calib / "images").mkdir(parents=True)
    patch.mkdir()
    shutil.copy(ENET / "enet.prototxt", patch / "model.prototxt")
    shutil.copy(ENET / "enet.caffemodel", patch / "model.caffemodel")
    graph = load(patch / "model.prototxt", patch / "model.caffemodel").graph
    # ranges by hand (a calibration of ENet at 512x1024 is not what this test is about)
    blobs = {b: 4.0 for b in quant_points(graph, "int16").blobs}
    Ranges(blobs, {}, {}, ["000"]).save(calib / "ranges.json")
    (calib / "images" / "000.bgr").write_bytes(bytes(3 * 512 * 1024))
    (calib / "image_list.txt").write_text("images/000.bgr\n")
    return patch, calib


def _run_map(tmp_path, monkeypatch, wk):
    from pathlib import Path

    from nnbuild.stages import map as map_stage
    from nnbuild.build.context import StageContext

    exe = tmp_path / "nnie_mapper_12"
    standin = Path(__file__).resolve().parent.parent / "fakes" / "nnie_mapper_12_standin.py"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{standin}" "$@"\n')
    exe.chmod(0o755)
    monkeypatch.setenv("NNIE_MAPPER", str(exe))
    if wk is None:
        monkeypatch.delenv("STANDIN_WK", raising=False)
    else:
        monkeypatch.setenv("STANDIN_WK", str(wk))
    patch, calib = _stage_dirs(tmp_path)
    recipe = {"input": {"name": "data", "shape": [1, 3, 512, 1024], "color": "BGR",
                        "mean": [0, 0, 0], "scale": 1.0}, "quant": {"mode": "int16"},
              "target": {"chip": "hi3516dv300"}, "mapper": {"path": None},
              "calibration": {"count": 1}}
    out, scratch = tmp_path / "map", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    logs = []
    ctx = StageContext(name="enet", stage="map", recipe=recipe, out=out, scratch=scratch,
                       upstream_dirs={"patch": patch, "calibrate": calib},
                       fetch_group=lambda group: [], upstream_keys={}, log=logs.append)
    ctx.progress = lambda items, total=None, desc="": items
    map_stage.run(ctx)
    return out, logs


def test_real_wk_is_verified(tmp_path, monkeypatch):
    out, logs = _run_map(tmp_path, monkeypatch, ENET / "enet-cityscapes-16bit.wk")
    doc = json.loads((out / "wk-verify.json").read_text())
    assert doc["readable"] and doc["inspect"]["data_width"] == 16
    raw = doc["verify"]["summary"]["raw_blocks"]
    assert raw == {"identical": 262, "not verifiable": 2, "total": 264}
    assert "map:enet: verify-wk: raw blocks 262/264 identical; layers: 2 differs, 26 not " \
           "verifiable, 65 verified" in logs
    # inputs exponents are compared with the stage's ranges (all 4.0 here: k = 32)
    exps = [r["input_exponent"] for r in doc["verify"]["layers"] if r["input_exponent"]]
    assert exps and all("difference_sixteenths" in e for e in exps if e["blob"] != "data")


def test_unreadable_wk_is_recorded_not_fatal(tmp_path, monkeypatch):
    out, logs = _run_map(tmp_path, monkeypatch, None)     # the stand-in's 16-byte stub
    doc = json.loads((out / "wk-verify.json").read_text())
    assert doc["readable"] is False
    assert doc["error"] == ("enet.wk: truncated or not a .wk file (shorter than the 192-byte "
                            "header). Expected >= 192 bytes, got 15 bytes. Hint: pass the "
                            "<name>.wk that nnie_mapper wrote, copied completely.")
    assert (out / "enet.wk").is_file() and (out / "quant.npz").is_file()


def test_report_section(tmp_path, monkeypatch):
    from nnbuild.nnie.wk.stagecheck import report_section

    assert report_section(tmp_path) is None
    out, _ = _run_map(tmp_path, monkeypatch, ENET / "enet-cityscapes-16bit.wk")
    section = report_section(out)
    assert section["readable"] and section["bits"] == 16
    assert section["summary"]["raw_blocks"]["identical"] == 262
    differs = [row["layer"] for row in section["not_verified"] if row["verdict"] == "differs"]
    assert differs == ["conv4_0_0", "conv5_0_0"]
    assert len(section["unexplained"]) == 2
