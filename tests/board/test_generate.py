"""Generators and the NNIE blob layout without a build: strides as the SDK computes them, the
20.12 round trip, template rendering, and one-line errors for models a generator cannot decode."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.board import layout
from nnbuild.board.generate import generate, has_decoder
from nnbuild.board.render import render
from nnbuild.board.spec import BoardSpec, Output
from nnbuild.errors import ModelError


@pytest.mark.parametrize("width, align, stride", [(20, 16, 80), (20, 32, 96), (2, 16, 16),
                                                  (1, 16, 16), (17680, 16, 70720), (5, 32, 32)])
def test_row_stride_is_the_row_rounded_up_to_the_alignment(width, align, stride):
    # SAMPLE_SVP_NNIE_ALIGN16/32(u32Width * sizeof(HI_S32)) in the SDK samples
    assert layout.stride_bytes(width, align) == (4 * width + align - 1) // align * align == stride


def test_nnie_bytes_round_trip_and_poisoned_padding():
    values = np.arange(-12, 12, dtype=np.float64).reshape(1, 2, 3, 4) / 4096 * 977
    data = layout.to_nnie(values, 32, pad_fill=-1)
    rows = np.frombuffer(data, dtype="<i4").reshape(6, 8)
    assert len(data) == layout.blob_bytes(values.shape, 32) == 6 * 32
    assert np.array_equal(rows[:, :4], np.rint(values * 4096).reshape(6, 4))
    assert (rows[:, 4:] == -1).all()
    assert np.array_equal(layout.from_nnie(data, values.shape, 32), values)
    assert layout.nchw((1, 4420, 2)) == (1, 1, 4420, 2) and layout.nchw((1, 128)) == (1, 1, 1, 128)
    with pytest.raises(ValueError, match="not on the 20.12 grid"):
        layout.to_nnie(np.array([[0.1]]), 16)


def test_render_refuses_missing_and_unused_values():
    assert render("a @X@ b", {"X": 1}) == "a 1 b"
    with pytest.raises(KeyError, match=r"missing \['Y'\], unused \['Z'\]"):
        render("@X@ @Y@", {"X": 1, "Z": 2})


def _spec(task, outputs, **kw):
    return BoardSpec(recipe="t", task=task, input_hw=kw.pop("hw", (240, 320)), resize="stretch",
                     align=16, outputs=tuple(Output(n, n[:31], s) for n, s in outputs),
                     task_args=kw.pop("args", {}))


def test_raw_tasks_get_no_code():
    assert not has_decoder("raw") and generate(_spec("raw", [("x", (1, 4))])) == {}


def test_retinaface_heads_are_found_by_shape_whatever_their_order():
    heads = [(f"{k}{s}", (1, c, 640 // s, 640 // s)) for s in (8, 16, 32)
             for k, c in (("cls", 4), ("bbox", 8), ("lmk", 20))]
    text = generate(_spec("retinaface", heads, hw=(640, 640)))["postprocess/retinaface.c"]
    # stride 32 first: cls at index 6, bbox 7, landmark 8 of this order
    assert "{32, 20, 20, 6, 7, 8, {512.0, 256.0}}" in text
    with pytest.raises(ModelError, match=r"board: retinaface outputs: cannot find every "
                                         r"RetinaFace head.*Hint: missing landmark@stride32"):
        generate(_spec("retinaface", heads[:-1] + [("x", (1, 3, 80, 80))], hw=(640, 640)))


def test_ultraface_needs_boxes_and_scores_for_every_prior():
    with pytest.raises(ModelError, match=r"board: ultraface outputs: cannot find the boxes and "
                                         r"scores outputs. Expected \(1, 4420, 4\) and "
                                         r"\(1, 4420, 2\)"):
        generate(_spec("ultraface", [("boxes", (1, 4000, 4)), ("scores", (1, 4000, 2))]))
    text = generate(_spec("ultraface", [("scores", (1, 4420, 2)), ("boxes", (1, 4420, 4))],
                          args={"score_threshold": 0.6}))["postprocess/ultraface.c"]
    assert "#define BOXES 1" in text and "#define SCORES 0" in text
    assert "#define SCORE_THRESHOLD 0.6" in text


def test_ssd_without_a_cpu_part_is_refused():
    with pytest.raises(ModelError, match=r"board: ssd cpu.prototxt: generated SSD decoder: no "
                                         r"CPU part. Expected a cpu_split patch"):
        generate(_spec("ssd", [("mbox_loc", (1, 16)), ("mbox_conf", (1, 8))]))


def test_the_c_templates_and_frames_are_in_the_stage_fingerprints():
    from nnbuild.build import fingerprint as fp
    from nnbuild.hashing import StatCache

    prints = fp.Fingerprints(StatCache(None), None)
    package = prints.of("nnbuild.stages.package")["files"]
    assert {"board/templates/retinaface_c.py", "board/templates/ssd_h.py", "board/spec.py",
            "board/frames.py"} <= set(package)
    for stage in ("patch", "calibrate", "map", "check"):
        files = set(prints.of(f"nnbuild.stages.{stage}")["files"])
        assert "board/frames.py" in files, stage  # the typed recipe checks input.format
        # ... but the generators are no input of the stages before package
        assert not {"board/generate.py", "board/templates/retinaface_c.py"} & files, stage


def test_scrfd_head_maps_are_found_by_shape_whatever_their_order():
    heads = [(f"{k}{s}", (1, c, 640 // s, 640 // s)) for s in (32, 16, 8)
             for k, c in (("kps", 20), ("score", 2), ("bbox", 8))]
    text = generate(_spec("scrfd", heads, hw=(640, 640)))["postprocess/scrfd.c"]
    # stride 8 last in this order: kps at index 6, score 7, bbox 8
    assert "{8, 80, 80, 7, 8, 6}" in text and "{32, 20, 20, 1, 2, 0}" in text
    assert "#define SCRFD_NUM_ANCHORS 16800" in generate(
        _spec("scrfd", heads, hw=(640, 640)))["postprocess/scrfd.h"]  # 2 * (80² + 40² + 20²)
    rows = [(f"{k}{s}", (1, 2 * (640 // s) ** 2, w)) for s in (8, 16, 32)
            for k, w in (("score", 1), ("bbox", 4), ("kps", 10))]
    with pytest.raises(ModelError, match=r"board: scrfd outputs: cannot find every SCRFD head "
                                         r"map.*Hint: missing score@stride8, bbox@stride8"):
        generate(_spec("scrfd", rows, hw=(640, 640)))
