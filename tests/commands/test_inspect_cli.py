"""``nnbuild inspect`` end to end on the real models: table, totals, lint, exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import MODELS, ROOT

from nnbuild.cli import main

MNET = str(MODELS / "retinaface-mnet25" / "mnet.prototxt")
YUFACE = str(MODELS / "yufacedetect-v1" / "yufacedetectnet-open-v1.prototxt")


def inspect(capsys, *args):
    status = main(["inspect", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_retinaface_text_report(capsys):
    status, out, _ = inspect(capsys, MNET)
    assert status == 1
    lines = out.splitlines()
    assert [ln.split()[1] for ln in lines if "error[crop]" in ln] == ["crop0:", "crop1:"]
    reshape = [ln for ln in lines if "error[reshape]" in ln]
    assert len(reshape) == 6 and all("first dim is 1, not 0" in ln for ln in reshape)
    assert "all become 'face_rpn_cls_prob_reshape_strid' after truncation to 31" in out
    # totals checked layer by layer in test_stats.py
    assert "total: 210 layers, 434,463 params (0.434 M), 981,657,600 MACs (0.982 GMAC)" in out
    row = next(ln for ln in lines if ln.startswith("mobilenet0_conv0 "))
    assert row.split()[1:] == ["Convolution", "data", "->", "mobilenet0_conv0", "1x8x320x320",
                               "216", "22,118,400"]


def test_retinaface_json_outputs_at_640(capsys):
    status, out, _ = inspect(capsys, MNET, "--input-shape", "1,3,640,640", "--json", "--weights",
                             MNET.replace(".prototxt", ".caffemodel"))
    info = json.loads(out)
    assert status == 1 and info["chip"] == "hi3516dv300" and info["mapper_version"] == 12
    # nnie-facts.md §6: 8/20/4 channels at 20², 40², 80²
    assert sorted(tuple(s) for s in info["outputs"].values()) == sorted(
        (1, c, n, n) for n in (20, 40, 80) for c in (8, 20, 4))
    assert info["totals"] == {"layers": 210, "params": 434_463, "macs": 981_657_600}
    assert {f["rule"] for f in info["findings"]} >= {"crop", "reshape", "output_name_collision"}


def test_input_shape_override(capsys):
    _, out, _ = inspect(capsys, MNET, "--input-shape", "data=1,3,320,320", "--json")
    outputs = json.loads(out)["outputs"]
    assert outputs["face_rpn_landmark_pred_stride8"] == [1, 20, 40, 40]


def test_yufacedetect_reports_cpu_layers(capsys):
    status, out, _ = inspect(capsys, YUFACE, "--chip", "hi3559av100")
    assert status == 1
    assert "chip hi3559av100 (nnie_mapper_11)" in out
    cpu = [ln for ln in out.splitlines() if "error[cpu_layer]" in ln]
    assert len(cpu) == 5
    assert sum("PriorBox cannot run on NNIE" in ln for ln in cpu) == 4
    assert "DetectionOutput cannot run on NNIE and must run on the CPU" in cpu[-1]
    assert "segments: nnie(70 layers) -> cpu(6 layers)" in out


def test_lint_clean_model_exits_0(capsys):
    model = MODELS / "mtcnn" / "det1.prototxt"
    status, out, _ = inspect(capsys, model, "--weights", model.with_suffix(".caffemodel"))
    assert status == 0 and "lint: clean" in out


def test_unused_weights_are_listed(capsys):
    # det3's caffemodel also holds training-only layers; the loader reports them
    model = MODELS / "mtcnn" / "det3.prototxt"
    _, out, _ = inspect(capsys, model, "--weights", model.with_suffix(".caffemodel"), "--json")
    assert json.loads(out)["unused_weights"]


@pytest.mark.parametrize("args, message", [
    (["missing.prototxt"], "missing.prototxt: file not found"),
    ([MNET, "--chip", "hi9999"], "--chip: unknown chip 'hi9999'. Expected one of hi3516cv500"),
    ([MNET, "--input-shape", "1,3,x"], "--input-shape: not a shape"),
    ([MNET, "--input-shape", "img=1,3,64,64"], "input 'img': not a network input"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    status, out, err = inspect(capsys, *args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_shape_mismatch_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('input: "a" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
                   'input: "b" input_shape { dim: 1 dim: 2 dim: 5 dim: 4 }\n'
                   'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "c" }\n')
    status, _, err = inspect(capsys, bad)
    assert status == 2
    assert "layer 'sum' (Eltwise): Eltwise inputs differ in shape. Expected (1, 2, 4, 4), " \
           "got (1, 2, 5, 4)" in err


def test_no_traceback_from_the_real_command(tmp_path):
    broken = tmp_path / "broken.prototxt"
    broken.write_text('layer { name: "x" type: "ReLU" bottom: "a" top: "b"\n')  # missing }
    proc = subprocess.run([sys.executable, "-m", "nnbuild.cli", "inspect", str(broken)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("nnbuild: error: ") and proc.stderr.count("\n") == 1
