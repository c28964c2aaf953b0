"""Input-size solver: per-side scan, pair verification, nearest sizes, non-square nets."""

from __future__ import annotations

import pytest

from conftest import MODELS
from nnbuild.passes import sizes
from nnbuild.caffe import io
from nnbuild.passes import PassContext, run_passes
from pass_netgen import conv, layer, net


def mnet_side_valid(s: int) -> bool:
    # independent derivation: every stride-2 stage gives ceil(x/2); the Crops are identities
    # iff 2*ceil(s/32) == ceil(s/16) and 2*ceil(s/16) == ceil(s/8)
    c = lambda d: -(-s // d)  # noqa: E731
    return 2 * c(32) == c(16) and 2 * c(16) == c(8)


@pytest.fixture(scope="module")
def mnet():
    g = io.load(MODELS / "retinaface-mnet25" / "mnet.prototxt").graph
    return run_passes(g, ["set_input_shape"],
                      context=PassContext(input_shape=(1, 3, 640, 640)))[0]


def test_retinaface_sides_match_derivation(mnet):
    sol = sizes.solve(mnet, ["remove_crop"], range(256, 700), range(300, 400))
    assert sol.heights == [s for s in range(256, 700) if mnet_side_valid(s)]
    assert sol.widths == [s for s in range(300, 400) if mnet_side_valid(s)]
    assert 601 in sol.heights and 600 not in sol.heights  # not only multiples of 32
    assert sol.verified == sol.pairs and not sol.failures


def test_nearest_and_problems(mnet):
    assert sizes.nearest_valid(mnet, ["remove_crop"], (600, 600)) == ((576, 576), (601, 601))
    assert sizes.nearest_valid(mnet, ["remove_crop"], (600, 480)) == ((576, 480), (601, 480))
    problems = sizes.Solver(mnet, ["remove_crop"]).problems((600, 640))
    assert problems == ["remove_crop: crop1 crops (1, 64, 76, 80) to (1, 64, 75, 80)"]


def test_non_square_kernels_are_solved_per_side():
    # stride 2 in H, stride 4 in W, undone by a (2, 4) deconvolution: the Crop is an identity
    # iff 2*ceil(h/2) == h and 4*ceil(w/4) == w (independent formula)
    text = ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param '
            '{ num_output: 2 kernel_size: 3 stride_h: 2 stride_w: 4 pad: 1 } }\n'
            'layer { name: "u" type: "Deconvolution" bottom: "c" top: "u" convolution_param '
            '{ num_output: 2 group: 2 bias_term: false kernel_h: 2 kernel_w: 4 stride_h: 2 '
            'stride_w: 4 } }\n' +
            layer("crop", "Crop", ["u", "data"], "out", "crop_param { axis: 2 }"))
    g = net(text, {"data": (1, 2, 8, 8)})
    sol = sizes.solve(g, ["remove_crop"], range(4, 20), range(4, 20))
    assert sol.heights == [h for h in range(4, 20) if h % 2 == 0]
    assert sol.widths == [w for w in range(4, 20) if w % 4 == 0]
    assert sol.verified == sol.pairs == 8 * 4 and not sol.failures
    assert sizes.Solver(g, ["remove_crop"]).problems((8, 10)) == [
        "remove_crop: crop crops (1, 2, 8, 12) to (1, 2, 8, 10)"]
    assert sizes.nearest_valid(g, ["remove_crop"], (9, 10)) == ((8, 8), (10, 12))


def test_shape_errors_make_a_size_invalid():
    g = net(conv("c", "data", "c", 2, k=5, p=0), {"data": (1, 3, 8, 8)})
    problems = sizes.Solver(g, []).problems((3, 8))
    assert len(problems) == 1 and "'c'" in problems[0]


def test_format_sides():
    assert sizes.format_sides([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
