"""remove_crop on a generated FPN-style net: identity Crops go, real crops are refused."""

from __future__ import annotations

import pytest

from nnbuild.errors import PassError
from nnbuild.passes import PassContext, run_pass, run_passes
from nnbuild.shapes import infer_shapes
from pass_netgen import conv, feeds, layer, max_rel_diff, net, outputs_by_name


def fpn(side: int):
    """stride-2 conv, stride-2 conv, 2x deconv upsample cropped to the stride-2 map, add."""
    text = (conv("down1", "data", "d1", 4, s=2) + conv("down2", "d1", "d2", 4, s=2) +
            conv("up", "d2", "up", 4, k=2, p=0, s=2, g=4, bias=False, kind="Deconvolution") +
            layer("crop0", "Crop", ["up", "d1"], "crop0") +
            layer("add", "Eltwise", ["crop0", "d1"], "out"))
    return net(text, {"data": (1, 3, side, side)})


def valid_side(side: int) -> bool:
    # independent formula: conv k3 p1 s2 gives ceil(x/2); the crop is an identity iff
    # 2 * ceil(ceil(side/2)/2) == ceil(side/2)
    half = -(-side // 2)
    return 2 * -(-half // 2) == half


def test_identity_crop_is_removed():
    g = fpn(16)
    out, entry = run_pass(g, "remove_crop", PassContext())
    assert "Crop" not in [la.type for la in out.layers]
    assert out.layer("add").bottoms == ["up", "d1"]
    assert entry["changes"]["removed"] == ["crop0"]
    assert entry["changes"]["rewired"] == [{"layer": "add", "before": "crop0", "after": "up"}]
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0


def test_real_crop_is_refused_with_shapes_and_nearest_sizes():
    g = fpn(18)
    assert not valid_side(18)
    below = max(s for s in range(1, 18) if valid_side(s))
    above = min(s for s in range(19, 64) if valid_side(s))
    msg = (rf"pass remove_crop: layer 'crop0': Crop is not an identity at input 18x18\. "
           rf"Expected output shape == first input shape, got crop0 crops \(1, 4, 10, 10\) to "
           rf"\(1, 4, 9, 9\)\. Hint: nearest valid input sizes: {below}x{below} \(below\), "
           rf"{above}x{above} \(above\)")
    with pytest.raises(PassError, match=msg):
        run_passes(g, ["remove_crop"])
    for side in (below, above):  # the solver's sizes really make the crop an identity
        s = infer_shapes(g, {"data": (1, 3, side, side)})
        assert s["up"] == s["crop0"]


def test_crop_output_that_is_a_network_output_keeps_its_name():
    text = (conv("c1", "data", "c1", 4) + conv("c2", "data", "c2", 4) +
            layer("crop", "Crop", ["c1", "c2"], "out"))
    g = net(text, {"data": (1, 3, 8, 8)})
    out, entry = run_pass(g, "remove_crop", PassContext())
    assert [out.caffe_name(b) for b in out.outputs] == ["out"]
    assert entry["changes"]["removed"] == ["crop", "c2"]  # c2 only gave the crop its shape
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0
