"""The passes on the real models of ../shared: RetinaFace, MobileFaceNet, YuFaceDetect."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.caffe import io
from nnbuild.engine import run
from nnbuild.errors import PassError
from nnbuild.nnie.lint import lint
from nnbuild.passes import PassContext, run_passes
from nnbuild.passes.cpu_split import run_split
from nnbuild.preprocess import load_tensor
from nnbuild.shapes import infer_shapes

RF = MODELS / "retinaface-mnet25"
ORDER = [f"face_rpn_{k}_stride{s}" for k in ("bbox_pred", "landmark_pred", "cls_prob_reshape")
         for s in (32, 16, 8)]
SPECS = ["set_input_shape", "remove_crop", "reshape_batch_zero", "fold_batchnorm",
         "rename_outputs", {"nnie_order": {"outputs": ORDER}}]
PHOTOS = sorted((IMAGES / "photos").glob("*.jpg"))


@pytest.fixture(scope="module")
def mnet():
    return io.load(RF / "mnet.prototxt", RF / "mnet.caffemodel").graph


def rel_diffs(g0, out0, g1, out1, renames):
    ref = {g0.caffe_name(b): a for b, a in out0.items()}
    got = {g1.caffe_name(b): a for b, a in out1.items()}
    return {k: float(np.abs(a - got[renames.get(k, k)]).max() / np.abs(a).max())
            for k, a in ref.items()}


def patch_and_compare(graph, hw, specs, photos):
    ctx = PassContext(input_shape=(1, 3, *hw))
    patched, report = run_passes(graph, specs, context=ctx)
    worst = 0.0
    for photo in photos:
        x = {"data": load_tensor(photo, (1, 3, *hw), resize="letterbox")}
        worst = max(worst, max(rel_diffs(graph, run(graph, x), patched, run(patched, x),
                                         ctx.renames).values()))
    return patched, ctx, worst


def assert_nnie_form(patched, ctx):
    types = [la.type for la in patched.layers]
    assert "Crop" not in types and "BatchNorm" not in types and "Scale" not in types
    assert all(la.param.reshape_param.shape.dim[0] == 0 for la in patched.layers
               if la.type == "Reshape")
    assert [patched.caffe_name(b) for b in patched.outputs] == [ctx.resolve(o) for o in ORDER]
    assert not [f for f in lint(patched, "hi3516dv300") if f.severity != "info"]


def test_retinaface_640_full_recipe(mnet):
    patched, ctx, worst = patch_and_compare(mnet, (640, 640), SPECS, PHOTOS[:3])
    assert worst <= 1e-4
    assert_nnie_form(patched, ctx)
    assert patched.input_style == "legacy" and patched.inputs == {"data": (1, 3, 640, 640)}


def test_retinaface_640_without_fold_is_exact_to_1e5(mnet):
    specs = [s for s in SPECS if s != "fold_batchnorm"]
    _, _, worst = patch_and_compare(mnet, (640, 640), specs, PHOTOS[:2])
    assert worst <= 1e-5


@pytest.mark.parametrize("hw", [(512, 512), (768, 768), (1024, 1024), (480, 640)])
def test_retinaface_other_sizes(mnet, hw):
    patched, ctx, worst = patch_and_compare(mnet, hw, SPECS, PHOTOS[:1])
    assert worst <= 1e-4
    assert_nnie_form(patched, ctx)


def test_retinaface_600_refused_and_solver_agrees_with_engine(mnet):
    with pytest.raises(PassError, match=r"pass remove_crop: layer 'crop1': Crop is not an "
                                        r"identity at input 600x600\. .*crop1 crops \(1, 64, 76, "
                                        r"76\) to \(1, 64, 75, 75\)\. Hint: nearest valid input "
                                        r"sizes: 576x576 \(below\), 601x601 \(above\)"):
        run_passes(mnet, SPECS, context=PassContext(input_shape=(1, 3, 600, 600)))
    # the engine's real blob shapes: the Crops are identities at 576 and 601, not at 600
    for side, identity in ((576, True), (601, True), (600, False)):
        x = {"data": np.zeros((1, 3, side, side), np.float32)}
        blobs = run(mnet, x, keep="all")
        crops = [la for la in mnet.layers if la.type == "Crop"]
        same = all(blobs[la.bottoms[0]].shape == blobs[la.tops[0]].shape for la in crops)
        assert same is identity, side
        shapes = infer_shapes(mnet, {"data": (1, 3, side, side)})
        assert all(shapes[b] == blobs[b].shape for b in blobs)


def test_mobilefacenet_every_bn_after_conv_or_fc_folded():
    d = MODELS / "mobilefacenet"
    g = io.load(d / "mobilefacenet.prototxt", d / "mobilefacenet.caffemodel").graph
    producers = g.producers()
    expected = [la.name for la in g.layers if la.type == "BatchNorm" and
                producers[la.bottoms[0]].type in ("Convolution", "InnerProduct")]
    assert len(expected) == 50
    ctx = PassContext(input_shape=(1, 3, 112, 112))
    patched, report = run_passes(g, ["set_input_shape", "fold_batchnorm"], context=ctx)
    folded = report[1]["changes"]["notes"]["folded"]
    assert sorted(f["layers"][0] for f in folded) == sorted(expected)
    assert not [la for la in patched.layers if la.type in ("BatchNorm", "Scale")]
    for face in sorted((IMAGES / "faces112").glob("*.jpg"))[:2]:
        x = {"data": load_tensor(face, (1, 3, 112, 112), mean=127.5, scale=0.0078125)}
        a = next(iter(run(g, x).values())).ravel().astype(np.float64)
        b = next(iter(run(patched, x).values())).ravel().astype(np.float64)
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99999


def test_yufacedetect_split_reproduces_detections():
    d = MODELS / "yufacedetect-v1"
    g = io.load(d / "yufacedetectnet-open-v1.prototxt",
                d / "yufacedetectnet-open-v1.caffemodel").graph
    ctx = PassContext(input_shape=(1, 3, 240, 320))
    nnie, _ = run_passes(g, ["set_input_shape", "drop_layers", "cpu_split"], context=ctx)
    cpu = ctx.cpu_graph
    # The conf head's 3-D Reshape (illegal on NNIE) and the Softmax/Flatten after it only feed
    # DetectionOutput, so they run on the CPU; the box branch stays on NNIE.
    assert [la.name for la in cpu.layers] == [
        *(f"conv{k}_3_norm_mbox_priorbox" for k in (3, 4, 5, 6)), "mbox_priorbox",
        "mbox_conf_reshape", "mbox_conf_softmax", "mbox_conf_flatten", "detection_out"]
    assert ctx.cpu_split["lint_moved"] == ["mbox_conf_reshape"]
    assert [nnie.caffe_name(b) for b in nnie.outputs] == ["mbox_loc", "mbox_conf"]
    assert not [f for f in lint(nnie, "hi3516dv300") if f.severity == "error"]
    assert {f.rule for f in lint(nnie, "hi3516dv300")} == {"normalize"}  # warnings only
    assert sorted(ctx.cpu_split["shape_only"])[0] == "conv3_3_norm"
    x = {"data": load_tensor(PHOTOS[0], (1, 3, 240, 320), color="BGR", mean=(104, 117, 123))}
    ref = run(g, x)["detection_out"]
    got = run_split(nnie, cpu, x)["detection_out"]
    assert ref.shape[2] > 0
    np.testing.assert_array_equal(got, ref)
