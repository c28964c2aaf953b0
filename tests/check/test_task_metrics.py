"""Tests for the task-metrics registry and the raw/embedding/ultraface/ssd/detection metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnbuild.errors import ModelError, RecipeError
from nnbuild.check.tasks import matching, registry, ultraface


def _det(box, score=0.9, landmarks=None):
    d = {"box": list(map(float, box)), "score": score}
    if landmarks is not None:
        d["landmarks"] = landmarks
    return d


def test_iou_by_hand():
    # 10x10 box vs the same box shifted by 5 in x: intersection 50, union 150.
    iou = matching.iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert iou == pytest.approx(np.array([[1 / 3, 0.0, 1.0]]))
    assert matching.iou_matrix(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_nms_keeps_best_of_overlapping():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 1, 10, 11]]
    scores = [0.8, 0.9, 0.7, 0.3]
    assert matching.nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert matching.nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]


def test_agreement_and_summary():
    lm = [[0, 0]] * 5
    ref = [_det([0, 0, 10, 10], 0.9, lm), _det([100, 100, 120, 120], 0.8, lm),
           _det([200, 200, 210, 210], 0.6, lm)]
    quant = [_det([1, 0, 11, 10], 0.85, [[3, 4]] * 5), _det([300, 300, 310, 310], 0.7, lm)]
    per = matching.agreement(ref, quant)
    assert per["matched"] == 1 and per["recall"] == pytest.approx(1 / 3)
    assert per["precision"] == 0.5
    assert per["box_err"] == [0.5] and per["landmark_err"] == [5.0]
    assert per["score_diff"] == pytest.approx([0.05])
    other = matching.agreement([_det([0, 0, 4, 4], 0.5, lm)], [_det([0, 0, 4, 4], 0.5, lm)])
    s = matching.summarize([per, other])
    assert s["recall_vs_float"] == pytest.approx(2 / 4) and s["precision_vs_float"] == 2 / 3
    assert s["mean_box_px"] == pytest.approx(0.25) and s["mean_landmark_px"] == 2.5
    assert s["max_landmark_px"] == 5.0 and s["float_detections"] == 4
    empty = matching.summarize([matching.agreement([], [])])
    assert empty["recall_vs_float"] == 1.0 and "mean_landmark_px" not in empty


def test_match_is_one_to_one_by_score():
    ref = [_det([0, 0, 10, 10], 0.5), _det([0, 0, 10, 11], 0.9)]
    pairs = matching.match(ref, [_det([0, 0, 10, 11])])
    assert pairs == [(1, 0)]
    assert matching.recall_vs_truth([[0, 0, 10, 10], [50, 50, 60, 60]], ref) == (1, 2)


def test_registry_lookup_and_contract():
    assert set(registry.TASKS) >= set() and registry.get("raw").GATES == ()
    for name in ("embedding", "ultraface", "ssd"):
        assert registry.get(name)
    with pytest.raises(RecipeError, match=r"check.task: unknown task 'yolo'.*Expected one of"):
        registry.get("yolo")
    with pytest.raises(ValueError, match="registered twice"):
        registry.task_metric("raw")(type("X", (), {"per_image": len, "summarize": len,
                                                   "GATES": ()}))
    with pytest.raises(TypeError, match="has no summarize"):
        registry.task_metric("new1")(type("Y", (), {"per_image": len, "GATES": ()}))
    with pytest.raises(TypeError, match="bad GATES row"):
        registry.task_metric("new2")(type("Z", (), {"per_image": len, "summarize": len,
                                                    "GATES": (("k", "m", "between", 1),)}))
    assert "new1" not in registry.TASKS and "new2" not in registry.TASKS


def test_raw_task_output_cosine():
    raw = registry.get("raw")
    f = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0])}
    q = {"a": np.array([1.0, 1.0]), "b": np.array([2.0, 2.0])}
    per = raw.per_image(f, q, {})
    assert per["per_output"]["a"] == pytest.approx(1 / math.sqrt(2))
    assert per["output_cosine"] == pytest.approx((1 / math.sqrt(2) + 1) / 2)
    summary = raw.summarize([per, {"output_cosine": 1.0}], {})
    assert summary["output_cosine_min"] == pytest.approx(per["output_cosine"])


def test_embedding_cosine_and_pair_separation():
    emb = registry.get("embedding")
    rng = np.random.default_rng(1)
    vecs = {n: rng.normal(size=128) for n in ("a1", "a2", "b1")}
    vecs["a2"] = vecs["a1"] + 0.3 * rng.normal(size=128)
    per = [emb.per_image({"fc1": v}, {"fc1": v + 0.05 * rng.normal(size=128)},
                         {"image_name": n}) for n, v in vecs.items()]
    cos = lambda x, y: float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y))  # noqa: E731
    assert per[0]["embedding_cosine"] == pytest.approx(cos(per[0]["float_embedding"],
                                                           per[0]["quant_embedding"]))
    pairs = [["a1", "a2", True], ["a1", "b1", False], ["a2", "b1", False]]
    s = emb.summarize(per, {"pairs": pairs})
    want_same = cos(vecs["a1"], vecs["a2"])
    want_diff = (cos(vecs["a1"], vecs["b1"]) + cos(vecs["a2"], vecs["b1"])) / 2
    assert s["same_mean_float"] == pytest.approx(want_same)
    assert s["separation_float"] == pytest.approx(want_same - want_diff)
    assert s["separation_quant"] == pytest.approx(want_same - want_diff, abs=0.05)
    assert s["embedding_cosine_min"] == min(p["embedding_cosine"] for p in per)
    with pytest.raises(RecipeError, match="names an image not in the check set"):
        emb.summarize(per, {"pairs": [["a1", "zz", True]]})
    with pytest.raises(RecipeError, match="needs one output"):
        emb.per_image({"x": np.ones(2), "y": np.ones(2)}, {}, {})


def test_ultraface_priors_match_fd_config():
    pri = ultraface.priors((240, 320))
    # fd_config.py at 320x240: feature maps 40x30, 20x15, 10x8, 5x4 with 3, 2, 2, 3 anchors.
    assert pri.shape == (40 * 30 * 3 + 20 * 15 * 2 + 10 * 8 * 2 + 5 * 4 * 3, 4)
    assert pri[0] == pytest.approx([4 / 320, 4 / 240, 10 / 320, 10 / 240])
    assert pri[2] == pytest.approx([4 / 320, 4 / 240, 24 / 320, 24 / 240])
    assert pri[3] == pytest.approx([12 / 320, 4 / 240, 10 / 320, 10 / 240])  # next column
    assert pri[-1] == pytest.approx([min(1.0, 288 / 320), min(1.0, 224 / 240), 256 / 320, 1.0])


def test_ultraface_decode_by_formula():
    pri = ultraface.priors((240, 320))
    n = len(pri)
    scores = np.zeros((1, n, 2))
    scores[0, :, 0] = 1.0
    loc = np.zeros((1, n, 4))
    scores[0, 5] = [0.1, 0.9]
    loc[0, 5] = [1.0, -2.0, 0.5, 0.0]
    dets = ultraface.decode(scores, loc, (240, 320))
    cx, cy, w, h = pri[5]
    cx, cy = cx + 1.0 * 0.1 * w, cy - 2.0 * 0.1 * h
    w = w * math.exp(0.5 * 0.2)
    want = [(cx - w / 2) * 320, (cy - h / 2) * 240, (cx + w / 2) * 320, (cy + h / 2) * 240]
    assert len(dets) == 1 and dets[0]["box"] == pytest.approx(want)
    assert dets[0]["score"] == pytest.approx(0.9)
    with pytest.raises(ModelError, match="number of boxes differs"):
        ultraface.decode(scores[:, :10], loc[:, :10], (240, 320))


def test_ssd_detection_rows_to_pixels():
    ssd = registry.get("ssd")
    rows = np.array([[0, 1, 0.9, 0.1, 0.2, 0.3, 0.4], [0, 1, 0.2, 0, 0, 1, 1],
                     [-1, 0, 0, 0, 0, 0, 0]], dtype=np.float32).reshape(1, 1, 3, 7)
    per = ssd.per_image({"detection_out": rows}, {"detection_out": rows[:, :, :1]},
                        {"input_hw": (240, 320)})
    assert per["float"][0]["box"] == pytest.approx([32, 48, 96, 96])
    assert per["matched"] == 1 and len(per["float"]) == 1
    with pytest.raises(RecipeError, match="no output 'detection_out'"):
        ssd.per_image({}, {}, {"input_hw": (1, 1)})


def test_embedding_without_output_says_nothing_was_set():
    from nnbuild.check.tasks import embedding

    outputs = {"fc1": np.ones(4), "fc2": np.ones(4)}
    with pytest.raises(RecipeError) as info:
        embedding._pick(outputs, {})
    assert str(info.value) == (
        "check.task_args.output: the embedding task needs one output. Expected one of fc1, fc2, "
        "got nothing (not set). Hint: set check.task_args.output.")
