"""verify-wk on a model patched with align_channel_levels (issue 18, "verify-wk logic must keep
working"): the verifier compares the weights it is given and assumes nothing else about them.

The real 8-bit RetinaFace .wk was compiled without the pass, so against the aligned model exactly
the layers the pass edited (the 13 depthwise layers and the 13 pointwise layers reading them)
must be reported as differing, with the first differing weight named, and every other layer must
get the same row as against the unaligned model (same blocks, codes, exponents, verdicts).
"""

from __future__ import annotations

import pytest
from conftest import MODELS, SHARED

from nnbuild.caffe.io import load
from nnbuild.nnie.wk.reader import read_wk
from nnbuild.nnie.wk.verify import verify_wk
from nnbuild.passes import PassContext, run_passes

WK = SHARED / "wk"


@pytest.fixture(scope="module")
def reports():
    graph = load(WK / "nniefacelib-mnet.prototxt",
                 MODELS / "retinaface-mnet25" / "mnet.caffemodel").graph
    fold = [{"fold_batchnorm": {"arithmetic": "nniefacelib"}}]
    folded, _ = run_passes(graph, fold, context=PassContext())
    aligned, passes = run_passes(folded, ["align_channel_levels"], context=PassContext())
    notes = passes[0]["changes"]["notes"]["aligned"]
    edited = {n["layer"] for n in notes} | {c for n in notes for c in n["consumers"]}
    wk = read_wk(WK / "nniefacelib-mnet-640-8bit.wk")
    return verify_wk(wk, folded), verify_wk(wk, aligned), edited


def by_name(report):
    return {row["name"]: row for row in report["layers"]}


def test_untouched_layers_verify_exactly_as_before(reports):
    plain, aligned, edited = reports
    assert plain["summary"]["raw_blocks"] == {"identical": 531, "total": 531}
    before, after = by_name(plain), by_name(aligned)
    assert sorted(before) == sorted(after)  # same block map: the pass changes no structure
    assert len(edited) == 26 and edited <= set(before)
    for name in set(before) - edited:
        assert after[name] == before[name], name


def test_edited_layers_are_reported_as_differing(reports):
    plain, aligned, edited = reports
    before, after = by_name(plain), by_name(aligned)
    for name in edited:
        assert before[name]["verdict"] == "verified", name
        assert after[name]["verdict"] == "differs" and after[name]["first_difference"], name
    layers = plain["summary"]["layers"]
    assert aligned["summary"]["layers"] == {"verified": layers["verified"] - 26, "differs": 26,
                                            "not verifiable": layers["not verifiable"]}
    # raw blocks of the pointwise consumers: the weight and its two codes are named
    reasons = [u["reason"] for u in aligned["unexplained"]]
    assert reasons and all(r.startswith("differs: weight [") for r in reasons), reasons[:3]
    assert {u["layer"] for u in aligned["unexplained"]} <= edited
