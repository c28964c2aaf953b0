"""RetinaFace decoder against hand-computed anchors/deltas, and on the real mnet model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.errors import ModelError
from nnbuild.check.tasks import retinaface as rf


def fake_outputs(hw=(64, 64)):
    """Nine all-background head outputs for an input of ``hw`` pixels."""
    out = {}
    for s in rf.STRIDES:
        h, w = -(-hw[0] // s), -(-hw[1] // s)
        cls = np.zeros((1, 4, h, w), np.float32)
        cls[0, :2] = 1.0  # background probability of both anchors
        out[f"cls{s}"] = cls
        out[f"bbox{s}"] = np.zeros((1, 8, h, w), np.float32)
        out[f"lmk{s}"] = np.zeros((1, 20, h, w), np.float32)
    return out


def test_anchors_match_the_original_generator():
    # generate_anchors(base 16, ratio 1, scale 2) = [-8, -8, 23, 23]; shifted by (x, y) * 8.
    a = rf.anchors(4, 5, 8).reshape(4, 5, 2, 4)
    np.testing.assert_allclose(a[2, 3, 0], [-8 + 24, -8 + 16, 23 + 24, 23 + 16])
    np.testing.assert_allclose(a[0, 0, 1], [0, 0, 15, 15])          # scale 1 = the base anchor
    np.testing.assert_allclose(rf.anchors(1, 1, 32)[0], [-248, -248, 263, 263])


def test_decode_one_face_with_deltas_and_landmarks():
    out = fake_outputs()
    # stride 8, row 2, col 3, anchor 1 (16 px): channel 2 + anchor = face score.
    out["cls8"][0, 3, 2, 3] = 0.8
    out["bbox8"][0, 4:8, 2, 3] = [0.5, -0.25, np.log(2), 0.0]
    out["lmk8"][0, 10:20, 2, 3] = [0.1 * k for k in range(10)]
    [face] = rf.decode(out, (64, 64))
    cx, cy, width = 3 * 8 + 7.5, 2 * 8 + 7.5, 16.0
    px, py, pw = cx + 0.5 * width, cy - 0.25 * width, 2 * width
    np.testing.assert_allclose(face["box"], [px - (pw - 1) / 2, py - (width - 1) / 2,
                                             px + (pw - 1) / 2, py + (width - 1) / 2])
    assert face["score"] == pytest.approx(0.8)
    expected = [[cx + 0.1 * (2 * k) * width, cy + 0.1 * (2 * k + 1) * width] for k in range(5)]
    np.testing.assert_allclose(face["landmarks"], expected, rtol=1e-6)


def test_decode_threshold_and_nms():
    out = fake_outputs()
    out["cls8"][0, 2, 2, 3] = 0.9      # two neighbouring 32 px anchors: IoU 0.6 -> one is dropped
    out["cls8"][0, 2, 2, 4] = 0.7
    out["cls8"][0, 2, 6, 6] = 0.6      # far away: kept
    out["cls8"][0, 2, 0, 0] = 0.4      # below the threshold
    faces = rf.decode(out, (64, 64), score_threshold=0.5, nms_iou=0.4)
    assert [round(f["score"], 2) for f in faces] == [0.9, 0.6]


def test_nms_uses_plus_one_areas():
    # With +1: areas 100, intersection 50, IoU 1/3; without it would be 36 / 126 = 0.29.
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9]], float)
    assert rf.nms(boxes, np.array([0.8, 0.9]), 0.3) == [1]
    assert rf.nms(boxes, np.array([0.8, 0.9]), 0.3334) == [1, 0]


def test_missing_heads_are_reported():
    out = fake_outputs()
    del out["lmk16"]
    with pytest.raises(ModelError, match="missing landmark@stride16"):
        rf.decode(out, (64, 64))


def test_wider_gt_reader_and_recall(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("a.jpg\n2\n10 10 40 20 0 0 0 0 0 0\n100 100 8 8 0 0 0 1 0 0\n"
                  "b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\nc.jpg\n1\n0 0 10 10 0 0 0 0 0 0\n")
    rows = rf.read_wider_gt(gt)
    assert sorted(rows) == ["a.jpg", "b.jpg", "c.jpg"] and rows["b.jpg"].shape == (0, 10)
    np.testing.assert_array_equal(rf.gt_boxes(rows["a.jpg"]), [[10, 10, 50, 30]])  # invalid gone
    assert rf.gt_boxes(rows["a.jpg"], min_size=41).shape == (0, 4)
    truth = np.array([[10, 10, 50, 30], [60, 60, 70, 70]], float)
    dets = [{"box": [12, 10, 50, 30], "score": 1}, {"box": [66, 66, 76, 76], "score": 1}]
    assert rf.found_faces(truth, dets) == 1  # IoU 0.95 and 16/184


def test_gt_file_of_the_shared_set_parses():
    rows = rf.read_wider_gt(IMAGES / "widerface-val416" / "gt.txt")
    assert len(rows) == 120
    assert rows["0_Parade_Parade_0_102.jpg"].shape == (39, 10)
    assert MODELS.is_dir()
