"""verify-wk on the real files: the targets of issue 15 and the reasons for what is not verified."""

from __future__ import annotations

import pytest
from conftest import MODELS, SHARED

from nnbuild.caffe.io import load
from nnbuild.cli import main
from nnbuild.nnie.wk.reader import WkError, read_wk
from nnbuild.nnie.wk.verify import verify_wk

WK = SHARED / "wk"
MNET_PROTO = WK / "nniefacelib-mnet.prototxt"
MNET_WEIGHTS = MODELS / "retinaface-mnet25" / "mnet.caffemodel"


@pytest.fixture(scope="module")
def mnet():
    return load(MNET_PROTO, MNET_WEIGHTS).graph


@pytest.fixture(scope="module")
def report8(mnet):
    return verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), mnet, fold="nniefacelib")


def rows(report):
    return {row["name"]: row for row in report["layers"]}


def test_8bit_retinaface_all_raw_blocks_identical(report8):
    s = report8["summary"]
    assert s["raw_blocks"] == {"identical": 531, "total": 531}
    # every dense 0x11 block whose layout is established has a consistent table; the 129 not
    # verifiable are the first conv's (layout unknown) and the two upsampling Deconvolutions'
    assert s["table_blocks"] == {"consistent": 6, "not verifiable": 129, "total": 135}
    assert s["layers"] == {"verified": 55, "not verifiable": 3}
    bad = {n: r["notes"] for n, r in rows(report8).items() if r["verdict"] != "verified"}
    assert sorted(bad) == ["mobilenet0_conv0", "rf_c2_upsampling_", "rf_c3_upsampling_"]
    assert "payload of 448 bytes, the established layout gives 640" in bad["mobilenet0_conv0"][0]


def test_8bit_live_depthwise_channels_fit_per_channel_codes(report8):
    # wk-format.md §4.2: no live channel fits only per-layer codes; 13 dead (code ±0x10) apart
    channels = report8["summary"]["depthwise_channels"]
    assert channels == {"consistent": 1210, "consistent (both fit)": 17, "dead": 13,
                        "total": 1240}


def test_8bit_without_the_float32_fold_a_weight_differs(mnet):
    """The float64 fold (nnbuild's own fold_batchnorm arithmetic) flips rf_c1_red_conv (§4.1)."""
    import numpy as np

    from nnbuild.nnie.wk import fold as fold_module

    original = fold_module.fold_one

    def fold64(layer, batchnorm, scale):     # weights folded in float64, bias as the tool
        w = np.asarray(layer.blobs[0], dtype=np.float64)
        _, var, factor = (np.asarray(b, dtype=np.float64) for b in batchnorm.blobs[:3])
        factor = 1.0 / factor[0] if factor[0] else 0.0
        a = np.asarray(scale.blobs[0], np.float64) / np.sqrt(
            var * factor + batchnorm.param.batch_norm_param.eps)
        return (w * a[:, None, None, None]).astype(np.float32), original(layer, batchnorm,
                                                                           scale)[1]

    fold_module.fold_one = fold64
    try:
        report = verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), mnet, fold="nniefacelib")
    finally:
        fold_module.fold_one = original
    row = rows(report)["rf_c1_red_conv"]
    assert row["verdict"] == "differs"
    assert row["first_difference"].startswith("weight [")
    assert report["summary"]["raw_blocks"]["differs"] >= 1


def test_16bit_retinaface(mnet):
    report = verify_wk(read_wk(WK / "nniefacelib-mnet-640-16bit.wk"), mnet)
    s = report["summary"]
    assert s["raw_blocks"] == {"identical": 267, "not verifiable": 4, "total": 271}
    assert "differs" not in s["layers"]
    # the 4 others are explained: K = 144 is not a multiple of 32
    assert len(report["unexplained"]) == 4
    assert {u["layer"] for u in report["unexplained"]} == {"rf_c2_det_context_conv3_1",
                                                           "rf_c2_det_context_conv3_2"}
    assert all("K not a multiple of 32" in u["reason"] for u in report["unexplained"])
    assert s["depthwise_channels"]["consistent"] == 1213
    assert not any(k.startswith("differs") for k in s["depthwise_channels"])


def test_16bit_enet():
    graph = load(WK / "enet.prototxt", WK / "enet.caffemodel").graph
    report = verify_wk(read_wk(WK / "enet-cityscapes-16bit.wk"), graph)
    s = report["summary"]
    assert s["raw_blocks"] == {"identical": 262, "not verifiable": 2, "total": 264}
    reasons = sorted(u["reason"] for u in report["unexplained"])
    assert "K not a multiple of 32" in reasons[0] and "Deconvolution" in reasons[1]
    # the two layers that differ have all-zero weights in the caffemodel, the file does not
    differ = {n: r for n, r in rows(report).items() if r["verdict"] == "differs"}
    assert sorted(differ) == ["conv4_0_0", "conv5_0_0"]
    assert all("all zero" in " ".join(r["notes"]) for r in differ.values())


def test_input_exponent_against_ranges(report8, mnet):
    row = rows(report8)["rf_c1_red_conv"]
    k_x = row["input_exponent"]["k_x"]
    report = verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), mnet, fold="nniefacelib",
                       ranges={row["input_exponent"]["blob"]: 2.0 ** ((k_x - 3) / 16)})
    assert rows(report)["rf_c1_red_conv"]["input_exponent"]["difference_sixteenths"] == 3


def test_model_mismatch_is_one_line(mnet):
    graph = load(WK / "enet.prototxt", WK / "enet.caffemodel").graph
    with pytest.raises(WkError) as info:
        verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), graph)
    assert str(info.value).endswith("the model does not match the file's weight blocks. Expected "
                                    "1153 blocks for the 93 weighted layers of the model (8-bit), "
                                    "got 1918 blocks. Hint: pass the prototxt and caffemodel "
                                    "this .wk was compiled from.")


def test_cli(capsys):
    status = main(["verify-wk", str(WK / "nniefacelib-mnet-640-8bit.wk"), "--model",
                   str(MNET_PROTO), "--weights", str(MNET_WEIGHTS), "--fold-bn", "nniefacelib"])
    out = capsys.readouterr().out
    assert status == 0
    assert "raw blocks: 531 (531 identical)" in out
    assert "layers: 3 not verifiable, 55 verified" in out
    status = main(["verify-wk", str(WK / "enet-cityscapes-16bit.wk"), "--model",
                   str(WK / "enet.prototxt"), "--weights", str(WK / "enet.caffemodel")])
    assert status == 1 and "conv4_0_0" in capsys.readouterr().out


def test_fold_pass_with_nniefacelib_arithmetic_gives_the_compiled_weights():
    """fold_batchnorm(arithmetic=nniefacelib) is the model the 8-bit file was compiled from."""
    from nnbuild.passes import PassContext, run_passes

    graph = load(MNET_PROTO, MNET_WEIGHTS).graph
    folded, _ = run_passes(graph, [{"fold_batchnorm": {"arithmetic": "nniefacelib"}}],
                           context=PassContext())
    assert not [layer for layer in folded.layers if layer.type == "BatchNorm"]
    report = verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), folded)
    assert report["summary"]["raw_blocks"] == {"identical": 531, "total": 531}
    default, _ = run_passes(graph, ["fold_batchnorm"], context=PassContext())
    report = verify_wk(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"), default)
    assert rows(report)["rf_c1_red_conv"]["verdict"] == "differs"    # the float64 fold (§4.1)
