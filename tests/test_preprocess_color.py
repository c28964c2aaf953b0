"""The RGB/BGR trap (nnie-facts.md §3): RetinaFace, trained on RGB, loses its faces when fed BGR.

nnbuild derives both the simulator's channel order and the cfg's RGB_order from one recipe key,
``input.color``; these tests show what the wrong order costs on real WIDER FACE pictures, and that
the planar .bgr file (always BGR, §3) round-trips to the right network input.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild import engine
from nnbuild import preprocess as pp
from nnbuild.caffe import io
from nnbuild.nnie import cfg as nc
from nnbuild.check.tasks import retinaface as rf

WIDER = IMAGES / "widerface-val416"
SIZE = 640
COUNT = 20


@pytest.fixture(scope="module")
def graph():
    model = MODELS / "retinaface-mnet25"
    return io.load(model / "mnet.prototxt", model / "mnet.caffemodel").graph


def faces_found(graph, color: str) -> tuple[int, int]:
    """(ground-truth faces found, faces) over the first COUNT WIDER pictures fed in ``color``."""
    gt = rf.read_wider_gt(WIDER / "gt.txt")
    found = total = 0
    for name in sorted(gt)[:COUNT]:
        x = pp.load_tensor(WIDER / "images" / name, (SIZE, SIZE), color=color)
        dets = rf.decode(engine.run(graph, {"data": x}), (SIZE, SIZE))
        for det in dets:  # network pixels -> the 416x416 pictures the ground truth refers to
            det["box"] = [v * 416 / SIZE for v in det["box"]]
        truth = rf.gt_boxes(gt[name], min_size=16)
        found, total = found + rf.found_faces(truth, dets), total + len(truth)
    return found, total


def test_bgr_input_loses_retinaface_detections(graph):
    rgb_found, total = faces_found(graph, "RGB")
    bgr_found, _ = faces_found(graph, "BGR")
    print(f"\nRetinaFace on {COUNT} WIDER val pictures ({total} faces >= 16 px): "
          f"RGB input finds {rgb_found}, BGR input {bgr_found}")
    assert rgb_found >= 0.3 * total
    assert bgr_found < 0.5 * rgb_found


def test_planar_file_and_cfg_agree_on_rgb(graph, tmp_path):
    recipe_input = {"color": "RGB", "mean": [0, 0, 0], "scale": 1.0}
    photo = IMAGES / "photos" / "ultraface-1.jpg"
    rgb = pp.load_uint8(photo, (SIZE, SIZE), resize="letterbox")
    planar = pp.write_planar_bgr(rgb, tmp_path / "x.bgr")
    # The board file is B, G, R planes (§3); read back, it yields the network input again.
    np.testing.assert_array_equal(planar.read_bytes()[:SIZE * SIZE], rgb[:, :, 2].tobytes())
    back = pp.to_tensor(pp.read_planar_bgr(planar, (SIZE, SIZE)), color=recipe_input["color"])
    direct = pp.load_tensor(photo, (SIZE, SIZE), resize="letterbox", **recipe_input)
    np.testing.assert_array_equal(back, direct)
    from nnbuild.recipe.spec import InputSpec

    # the mapper swaps the BGR file for the network
    assert nc.rgb_order(InputSpec(**recipe_input)) == "RGB"
    dets = rf.decode(engine.run(graph, {"data": back}), (SIZE, SIZE))
    assert len(dets) >= 20  # a crowd picture: RGB finds many faces
