"""The engine on the real models of ../shared: RetinaFace, MobileFaceNet, MTCNN, UltraFace, SSD."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.caffe.io import load
from nnbuild.engine import run
from nnbuild.preprocess import load_tensor, load_uint8, to_tensor
from nnbuild.check.tasks import retinaface as rf
from nnbuild.check.tasks.ultraface import decode as ultraface_decode

MNET = MODELS / "retinaface-mnet25"
MFN = MODELS / "mobilefacenet"


@pytest.fixture(scope="module")
def mnet():
    return load(MNET / "mnet.prototxt", MNET / "mnet.caffemodel").graph


@pytest.fixture(scope="module")
def mobilefacenet():
    return load(MFN / "mobilefacenet.prototxt", MFN / "mobilefacenet.caffemodel").graph


def test_det39_has_exactly_one_confident_face(mnet):
    x = load_tensor(IMAGES / "nnie-planar" / "det39.jpg", (640, 640), color="RGB")
    faces = rf.decode(run(mnet, {"data": x}), (640, 640))
    confident = [f for f in faces if f["score"] > 0.9]
    print("det39 faces:", [(round(f["score"], 3), [round(v) for v in f["box"]]) for f in faces])
    assert len(confident) == 1
    x1, y1, x2, y2 = confident[0]["box"]
    # The landmarks (eyes, nose, mouth corners) lie inside the face box.
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in confident[0]["landmarks"])


def crops(graph, size):
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, size, size)).astype(np.float32)
    layers = [layer for layer in graph.layers if layer.type == "Crop"]
    keep = [b for layer in layers for b in (layer.bottoms[0], layer.tops[0])]
    out = run(graph, {"data": x}, keep=keep)
    return [(out[layer.bottoms[0]], out[layer.tops[0]]) for layer in layers]


def test_crop_layers_are_identities_at_640(mnet):
    pairs = crops(mnet, 640)
    assert len(pairs) == 2
    for before, after in pairs:
        assert before.shape == after.shape
        np.testing.assert_array_equal(before, after)


def test_crop_layers_really_crop_at_600(mnet):
    # 600 -> 300, 150, 75, 38, 19: the 38 -> 76 upsampling must be cut back to 75 (stride 8).
    cut = [(b, a) for b, a in crops(mnet, 600) if b.shape != a.shape]
    assert len(cut) == 1
    before, after = cut[0]
    assert before.shape[2:] == (76, 76) and after.shape[2:] == (75, 75)
    np.testing.assert_array_equal(after, before[:, :, :75, :75])


def embed(graph, rgb):
    # insightface convention: RGB, (x - 127.5) * 0.0078125.
    x = to_tensor(rgb, color="RGB", mean=127.5, scale=0.0078125)
    [emb] = run(graph, {"data": x}).values()
    return emb.reshape(-1)


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_mobilefacenet_embeddings(mobilefacenet):
    faces = {n: load_uint8(IMAGES / "faces112" / f"{n}.jpg", (112, 112))
             for n in ("id10", "id11", "Aaron_Eckhart_0001")}
    emb = {n: embed(mobilefacenet, rgb) for n, rgb in faces.items()}
    assert all(e.shape == (128,) and np.isfinite(e).all() for e in emb.values())
    aaron = emb["Aaron_Eckhart_0001"]
    print(f"cos(id10, Aaron) = {cosine(emb['id10'], aaron):.3f}, "
          f"cos(id11, Aaron) = {cosine(emb['id11'], aaron):.3f}, "
          f"cos(id10, id11) = {cosine(emb['id10'], emb['id11']):.3f}")
    rgb = faces["id10"]
    shifted = np.concatenate([rgb[:, :1], rgb[:, :-1]], axis=1)   # one pixel to the right
    same = cosine(emb["id10"], embed(mobilefacenet, shifted))
    print(f"cos(id10, id10 shifted 1 px) = {same:.4f}")
    assert same > 0.95
    assert same > max(cosine(emb["id10"], aaron), cosine(emb["id11"], aaron))


@pytest.mark.parametrize("folder,stem", [("mtcnn", "det1"), ("mtcnn", "det2"), ("mtcnn", "det3"),
                                         ("ultraface-slim-320", "slim-320"),
                                         ("ultraface-rfb-320", "RFB-320")])
def test_other_models_run_and_produce_probabilities(folder, stem):
    graph = load(MODELS / folder / f"{stem}.prototxt", MODELS / folder / f"{stem}.caffemodel").graph
    feeds = {name: np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
             for name, shape in graph.inputs.items()}
    out = run(graph, feeds)
    assert out and all(np.isfinite(a).all() for a in out.values())
    prob = out["prob1" if folder == "mtcnn" else "scores"]
    np.testing.assert_allclose(prob.sum(axis=1 if folder == "mtcnn" else -1), 1, rtol=1e-5)


def test_ssd_detector_agrees_with_ultraface_on_a_real_photo():
    """yufacedetect (PriorBox/Normalize/DetectionOutput on our side) vs UltraFace's faces."""
    photo = IMAGES / "photos" / "ultraface-1.jpg"
    yu = MODELS / "yufacedetect-v1"
    graph = load(yu / "yufacedetectnet-open-v1.prototxt",
                 yu / "yufacedetectnet-open-v1.caffemodel").graph
    det = run(graph, {"data": load_tensor(photo, (240, 320), color="BGR")})["detection_out"]
    rows = det[0, 0][det[0, 0, :, 2] > 0.7]
    assert len(rows) >= 3 and (rows[:, 1] == 1).all()
    assert np.all(np.diff(rows[:, 2]) <= 0)  # one label, scores descending as Caffe orders them
    slim = MODELS / "ultraface-slim-320"
    ug = load(slim / "slim-320.prototxt", slim / "slim-320.caffemodel").graph
    x = load_tensor(photo, (240, 320), color="RGB", mean=127, scale=1 / 128)
    out = run(ug, {"input": x})
    ultra = np.array([f["box"] for f in ultraface_decode(out["scores"], out["boxes"],
                                                         (240, 320))])
    boxes = rows[:, 3:] * np.array([320, 240, 320, 240])
    lt = np.maximum(boxes[:, None, :2], ultra[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], ultra[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda b: np.prod(b[:, 2:] - b[:, :2], axis=1)  # noqa: E731
    iou = inter / (area(boxes)[:, None] + area(ultra)[None, :] - inter)
    agree = float((iou.max(axis=1) >= 0.4).mean())
    print(f"yufacedetect faces: {len(rows)}, UltraFace faces: {len(ultra)}, agree: {agree:.2f}")
    assert agree >= 0.7


def test_fused_run_matches_layer_by_layer_run(mnet, mobilefacenet):
    """Outputs of the fast path (BatchNorm+Scale fused) vs keep="all" (every layer on its own)."""
    for graph in (mnet, mobilefacenet):
        [(name, shape)] = graph.inputs.items()
        x = np.random.default_rng(3).uniform(0, 255, shape).astype(np.float32)
        fast, every = run(graph, {name: x}), run(graph, {name: x}, keep="all")
        for blob, arr in fast.items():
            scale = float(np.abs(every[blob]).max())
            assert float(np.abs(arr - every[blob]).max()) <= 1e-4 * scale, blob


@pytest.mark.parametrize("which", ["mnet", "mobilefacenet"])
def test_kernels_compute_in_float32(which, request):
    """No kernel of the hot path returns float64 (run_layer would hide it by converting)."""
    from nnbuild.engine import ADAPTERS

    graph = request.getfixturevalue(which)
    [(name, shape)] = graph.inputs.items()
    blobs = {name: np.random.default_rng(4).uniform(0, 255, shape).astype(np.float32)}
    for layer in graph.layers:
        if layer.type == "Input":
            continue
        outs = ADAPTERS[layer.type](layer.param, [blobs[b] for b in layer.bottoms],
                                    layer.blobs, len(layer.tops))
        assert all(o.dtype == np.float32 for o in outs), (layer.name, [o.dtype for o in outs])
        blobs.update(zip(layer.tops, outs))
