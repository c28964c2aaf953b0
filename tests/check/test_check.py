"""Tests for nnbuild.check.metrics: metric formulas against independent computations, gate, explanation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnbuild.check import metrics as check
from nnbuild.errors import CheckFailed, NNBuildError


def _independent(a, b):
    """The docs/report-json.md definitions written out element by element (pure Python)."""
    a, b = [float(x) for x in a.ravel()], [float(x) for x in b.ravel()]
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    err = [x - y for x, y in zip(a, b)]
    noise = sum(e * e for e in err)
    return {"cosine": dot / (na * nb), "snr_db": 10 * math.log10(na * na / noise),
            "max_abs": max(abs(e) for e in err), "rel_err": math.sqrt(noise) / na}


def test_compare_matches_independent_formulas():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 4, 5, 6)).astype(np.float32)
    b = a + rng.normal(scale=0.1, size=a.shape).astype(np.float32)
    got, want = check.compare(a, b), _independent(a, b)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_compare_known_values():
    a = np.array([1.0, 0.0])
    b = np.array([0.0, 1.0])
    m = check.compare(a, b)
    assert m["cosine"] == 0.0 and m["max_abs"] == 1.0
    assert m["rel_err"] == pytest.approx(math.sqrt(2))
    assert m["snr_db"] == pytest.approx(10 * math.log10(1 / 2))
    # b = 2a: direction identical, error energy equals signal energy -> 0 dB
    m = check.compare(np.array([3.0, 4.0]), np.array([6.0, 8.0]))
    assert m["cosine"] == pytest.approx(1.0) and m["snr_db"] == pytest.approx(0.0)
    assert m["rel_err"] == pytest.approx(1.0) and m["max_abs"] == 4.0


def test_compare_edge_cases_are_json_safe():
    z = np.zeros(3)
    assert check.compare(z, z) == {"cosine": 1.0, "snr_db": None, "max_abs": 0.0, "rel_err": 0.0}
    m = check.compare(z, np.ones(3))
    assert m["cosine"] == 0.0 and m["snr_db"] is None and m["rel_err"] is None
    same = check.compare(np.arange(4.0), np.arange(4.0))
    assert same["snr_db"] is None and same["rel_err"] == 0.0 and same["cosine"] == 1.0
    with pytest.raises(NNBuildError, match=r"^det: float and quantized results differ in size\. "
                                           r"Expected 3 elements, got 4\."):
        check.compare(np.ones(3), np.ones(4), where="det")


def test_aggregate_mean_min_max():
    per = [{"cosine": 0.9, "snr_db": 10.0, "max_abs": 1.0, "rel_err": 0.1},
           {"cosine": 0.7, "snr_db": 20.0, "max_abs": 3.0, "rel_err": 0.3}]
    agg = check.aggregate(per)
    assert agg["cosine"] == pytest.approx(0.8) and agg["cosine_min"] == 0.7
    assert agg["snr_db"] == pytest.approx(15.0) and agg["max_abs"] == 3.0
    assert agg["rel_err"] == pytest.approx(0.2) and agg["per_image_cosine"] == [0.9, 0.7]
    per[1]["snr_db"] = None
    assert check.aggregate(per)["snr_db"] is None
    with pytest.raises(ValueError, match="no images"):
        check.aggregate([])


def test_first_divergent_and_ranking():
    layers = [{"layer": "a", "accumulated": {"cosine": 0.99}},
              {"layer": "r", "accumulated": None},
              {"layer": "b", "accumulated": {"cosine": 0.79}},
              {"layer": "c", "accumulated": {"cosine": 0.5}}]
    assert check.first_divergent(layers, 0.8) == "b"
    assert check.first_divergent(layers, 0.4) is None
    ranked = check.rank_sensitivity(0.9, {"x": 0.91, "y": 0.95, "z": 0.89})
    assert [r["layer"] for r in ranked] == ["y", "x", "z"]
    assert ranked[0]["gain"] == pytest.approx(0.05) and ranked[2]["gain"] == pytest.approx(-0.01)


def test_gate_and_explanation():
    rules = [check.Threshold("min_output_cosine", "bbox8", 0.85, 0.9, "min"),
             check.Threshold("min_output_cosine", "cls8", 0.999, 0.9, "min"),
             check.Threshold("max_landmark_px", "retinaface", 5.0, 3.0, "max"),
             check.Threshold("max_box_px", "retinaface", None, 3.0, "max")]
    failures = check.gate(rules)
    assert [f["where"] for f in failures] == ["bbox8", "retinaface", "retinaface"]
    text = check.explain(failures, "conv_5", ["l1", "l2", "l3", "l4"])
    assert "0.85" in text and "off by 0.05" in text and "'conv_5'" in text
    assert "l1, l2, l3 " in text and "l4" not in text and "is nothing" in text
    assert check.explain([], "conv_5", ["l1"]) == ""
    err = check.check_failed("retinaface-640", failures, text)
    assert isinstance(err, CheckFailed) and err.exit_code == 1
    with pytest.raises(CheckFailed, match=r"check retinaface-640: min_output_cosine: 3 gate "
                                          r"threshold\(s\) missed. Expected >= 0.9 on bbox8"):
        raise err


def test_dynamic_blobs_are_detection_outputs_and_what_follows():
    from conftest import MODELS
    from nnbuild.caffe import io

    yu = MODELS / "yufacedetect-v1" / "yufacedetectnet-open-v1.prototxt"
    graph = io.load(yu).graph
    assert check.dynamic_blobs(graph) == {"detection_out"}
    tail = graph.layer("detection_out").copy()
    tail.name, tail.type = "after", "Flatten"
    tail.bottoms, tail.tops = ["detection_out"], ["after"]
    graph.layers.append(tail)
    assert check.dynamic_blobs(graph) == {"detection_out", "after"}
