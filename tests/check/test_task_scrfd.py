"""The scrfd task decoder on hand-built head outputs (insightface's formulas worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.errors import ModelError
from nnbuild.check.tasks import registry, scrfd

HW = (64, 64)


def heads(logits: bool = True) -> dict:
    """Head maps with one face: stride 8, row 2, column 3, anchor 1."""
    out = {}
    for s in (8, 16, 32):
        n = 64 // s
        score = np.full((1, 2, n, n), -20.0 if logits else 0.0, np.float32)
        out[f"score{s}"] = score
        out[f"bbox{s}"] = np.zeros((1, 8, n, n), np.float32)
        out[f"kps{s}"] = np.zeros((1, 20, n, n), np.float32)
    out["score8"][0, 1, 2, 3] = 5.0  # sigmoid(5) = 0.9933
    out["bbox8"][0, 4:8, 2, 3] = [1, 2, 3, 4]  # left, top, right, bottom (x stride)
    out["kps8"][0, 10:20, 2, 3] = [0.5, -0.5] * 5
    return out


def test_one_face_by_hand():
    (face,) = scrfd.decode(heads(), HW)
    # centre (x, y) = (3 * 8, 2 * 8) = (24, 16); box = centre -/+ distances * 8
    assert face["box"] == pytest.approx([24 - 8, 16 - 16, 24 + 24, 16 + 32])
    assert face["score"] == pytest.approx(1 / (1 + np.exp(-5.0)))
    np.testing.assert_allclose(face["landmarks"], [[28, 12]] * 5)


def test_rows_of_a_complete_export_decode_the_same():
    """(1, N, k) outputs: rows ordered row, column, anchor; scores already sigmoid."""
    rows = {}
    for name, arr in heads().items():
        k = arr.shape[1] // 2
        flat = arr[0].transpose(1, 2, 0).reshape(1, -1, k)
        rows[name] = 1 / (1 + np.exp(-flat)) if name.startswith("score") else flat
    assert scrfd.decode(rows, HW)[0]["box"] == pytest.approx(scrfd.decode(heads(), HW)[0]["box"])


def test_missing_heads_are_named():
    out = heads()
    del out["kps16"]
    with pytest.raises(ModelError, match=r"scrfd: outputs: cannot find every SCRFD head output.*"
                                         r"Hint: missing kps@stride16"):
        scrfd.decode(out, HW)


def test_registered_with_the_retinaface_gates():
    task = registry.get("scrfd")
    assert task.GATES == registry.get("retinaface").GATES
    same = task.per_image(heads(), heads(), {"input_hw": HW})
    summary = task.summarize([same], {})
    assert summary["recall_vs_float"] == 1.0 and summary["mean_box_px"] == 0.0
