"""The zoo's ONNX models: engine vs onnxruntime on 8 real photos, SCRFD's WIDER recall, and the
UltraFace ONNX exports against the Caffe UltraFace models of the same networks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.engine import run
from nnbuild.onnx import convert
from nnbuild.preprocess import load_tensor
from nnbuild.check.tasks import retinaface as rf
from nnbuild.check.tasks import scrfd, ultraface
from onnxgen import max_rel, ort_run

PHOTOS = sorted((IMAGES / "photos").glob("*.jpg"))[-8:]
SCRFD = MODELS / "scrfd-500m" / "scrfd_500m_kps.onnx"
SCRFD_HEADS = ["437", "438", "439", "480", "481", "482", "523", "524", "525"]
UF = MODELS / "ultraface-onnx"
# (onnx file, outputs to cut at, Caffe model folder/stem) per UltraFace export
ULTRAFACE = {
    "rfb": ("version-RFB-320.onnx", ["scores", {"460": "boxes"}], "ultraface-rfb-320/RFB-320"),
    "rfb-heads": ("version-RFB-320_without_postprocessing.onnx", None,
                  "ultraface-rfb-320/RFB-320"),
    "slim": ("version-slim-320.onnx", ["scores", {"375": "boxes"}],
             "ultraface-slim-320/slim-320"),
    "slim-heads": ("version-slim-320_without_postprocessing.onnx", None,
                   "ultraface-slim-320/slim-320"),
}


def scrfd_feed(path, hw=(640, 640), resize="letterbox"):
    return {"images": load_tensor(path, hw, color="RGB", mean=(127.5,) * 3, scale=1 / 128,
                                  resize=resize)}


def ultraface_feed(path, hw=(240, 320)):
    return {"input": load_tensor(path, hw, color="RGB", mean=(127,) * 3, scale=1 / 128)}


def assert_equal_to_onnxruntime(result, feeds):
    """Engine vs onnxruntime on every photo, independently of the conversion's own proof."""
    cut = result.model
    from nnbuild.onnx.proof import with_outputs
    from nnbuild.onnx.fold import infer

    shapes = infer(cut, list(cut.graph.node), {}, dict(result.graph.inputs))
    cut = with_outputs(cut, shapes, list(result.outputs))
    worst = 0.0
    for feed in feeds:
        ref = ort_run(cut, feed, list(result.outputs))
        got = run(result.graph, feed)
        for tensor, blob in result.outputs.items():
            worst = max(worst, max_rel(ref[tensor], got[blob]))
    assert worst <= 1e-4, worst
    return worst


@pytest.fixture(scope="module")
def scrfd_cut():
    return convert(SCRFD, outputs=SCRFD_HEADS, prove=False)


def test_scrfd_equals_onnxruntime_on_8_photos(scrfd_cut):
    worst = assert_equal_to_onnxruntime(scrfd_cut, [scrfd_feed(p) for p in PHOTOS])
    print(f"SCRFD-500M cut at the heads, 8 photos: max rel err {worst:.2e}")
    assert [layer.type for layer in scrfd_cut.graph.layers].count("Deconvolution") == 2


def test_scrfd_complete_export_converts_and_matches(tmp_path):
    result = convert(SCRFD, feeds=[scrfd_feed(PHOTOS[0])])
    assert result.proof["passed"], result.proof
    assert list(result.outputs) == [f"out{i}" for i in range(9)]


def test_scrfd_decoder_on_head_maps_equals_the_exports_own_outputs(scrfd_cut):
    """Decoding the cut head maps (logits, NCHW) gives the faces decoding the complete export's
    (1, N, k) outputs gives: same anchors order, sigmoid and distances."""
    import onnx

    model = onnx.load(str(SCRFD))
    for photo in PHOTOS[:3]:
        feed = scrfd_feed(photo)
        full = ort_run(model, feed)
        maps = run(scrfd_cut.graph, feed)
        a = scrfd.decode(full, (640, 640))
        b = scrfd.decode(maps, (640, 640))
        assert len(a) == len(b) > 0
        np.testing.assert_allclose([f["box"] for f in a], [f["box"] for f in b], atol=1e-3)
        np.testing.assert_allclose([f["landmarks"] for f in a], [f["landmarks"] for f in b],
                                   atol=1e-3)


def test_scrfd_float_recall_on_wider_val416():
    wider = IMAGES / "widerface-val416"
    result = convert(SCRFD, input_shape=(1, 3, 416, 416), outputs=SCRFD_HEADS, prove=False)
    truth = rf.read_wider_gt(wider / "gt.txt")
    names = (wider / "list.txt").read_text().split()
    found = total = 0
    for name in names:
        faces = scrfd.decode(run(result.graph, scrfd_feed(wider / "images" / name, (416, 416),
                                                          "stretch")), (416, 416))
        big = rf.gt_boxes(truth[name], min_size=32)
        found += rf.found_faces(big, faces)
        total += len(big)
    recall = found / total
    print(f"SCRFD-500M float, WIDER val416, faces >= 32 px: recall {recall:.3f} "
          f"({found}/{total}); RetinaFace mnet0.25: 0.597")
    assert recall >= 0.597


@pytest.mark.parametrize("hw", [(480, 640), (320, 320)])
def test_scrfd_at_other_input_sizes(hw):
    result = convert(SCRFD, input_shape=(1, 3) + hw, outputs=SCRFD_HEADS,
                     feeds=[scrfd_feed(PHOTOS[0], hw)])
    assert result.proof["passed"] and result.graph.inputs == {"images": (1, 3) + hw}


@pytest.mark.parametrize("kind", sorted(ULTRAFACE))
def test_ultraface_equals_onnxruntime_on_8_photos(kind):
    file, outputs, _ = ULTRAFACE[kind]
    result = convert(UF / file, outputs=outputs, prove=False)
    assert sorted(result.outputs.values()) == ["boxes", "scores"]
    worst = assert_equal_to_onnxruntime(result, [ultraface_feed(p) for p in PHOTOS])
    print(f"UltraFace {kind}: max rel err {worst:.2e}")


def test_ultraface_at_another_input_size():
    result = convert(UF / ULTRAFACE["rfb-heads"][0], input_shape=(1, 3, 480, 640),
                     feeds=[ultraface_feed(PHOTOS[0], (480, 640))])
    assert result.proof["passed"]
    out = run(result.graph, ultraface_feed(PHOTOS[0], (480, 640)))
    assert out["boxes"].shape[1] == len(ultraface.priors((480, 640)))


@pytest.mark.parametrize("kind", ["rfb", "slim"])
def test_ultraface_onnx_against_the_caffe_model(kind):
    """Same network, two exports: the outputs differ only by float rounding of the exports."""
    from nnbuild.caffe.io import load

    file, outputs, caffe = ULTRAFACE[kind]
    onnx_graph = convert(UF / file, outputs=outputs, prove=False).graph
    caffe_graph = load(MODELS / f"{caffe}.prototxt", MODELS / f"{caffe}.caffemodel").graph
    worst, faces = {}, [0, 0]
    for photo in PHOTOS:
        feed = ultraface_feed(photo)
        a, b = run(caffe_graph, feed), run(onnx_graph, feed)
        for name in ("scores", "boxes"):
            worst[name] = max(worst.get(name, 0.0), max_rel(a[name], b[name]))
        da = ultraface.decode(a["scores"], a["boxes"], (240, 320))
        db = ultraface.decode(b["scores"], b["boxes"], (240, 320))
        faces[0] += len(da)
        faces[1] += len(db)
        np.testing.assert_allclose([f["box"] for f in da], [f["box"] for f in db], atol=0.01)
    print(f"UltraFace {kind}: Caffe vs ONNX max rel diff scores {worst['scores']:.2e}, boxes "
          f"{worst['boxes']:.2e}; faces {faces[0]} vs {faces[1]}")
    assert faces[0] == faces[1] > 0
    assert max(worst.values()) <= 1e-4
