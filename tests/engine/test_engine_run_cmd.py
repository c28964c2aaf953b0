"""``nnbuild run``: picture in, .npz out, same numbers as the library call."""

from __future__ import annotations

import numpy as np

from conftest import IMAGES, MODELS
from nnbuild.caffe.io import load
from nnbuild.cli import main
from nnbuild.engine import run
from nnbuild.preprocess import load_tensor

MFN = MODELS / "mobilefacenet"
ARGS = [str(MFN / "mobilefacenet.prototxt"), "--weights", str(MFN / "mobilefacenet.caffemodel")]


def test_run_image_saves_outputs_and_times(tmp_path, capsys):
    out = tmp_path / "o.npz"
    code = main(["run", *ARGS, "--image", str(IMAGES / "faces112" / "id10.jpg"), "--mean",
                 "127.5", "--scale", "0.0078125", "-o", str(out), "--repeat", "3"])
    assert code == 0
    text = capsys.readouterr().out
    assert "fc1: shape (1, 128)" in text and "median" in text and "ms per forward pass" in text
    saved = np.load(out)
    assert saved.files == ["fc1"]  # the Caffe name of the in-place blob's last version
    graph = load(MFN / "mobilefacenet.prototxt", MFN / "mobilefacenet.caffemodel").graph
    x = load_tensor(IMAGES / "faces112" / "id10.jpg", (112, 112), mean=127.5, scale=0.0078125)
    np.testing.assert_array_equal(saved["fc1"], run(graph, {"data": x})["fc1@1"])


def test_run_npy_input_keep_all_and_bgr(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "all.npz"
    assert main(["run", *ARGS, "--input", str(tmp_path / "x.npy"), "-o", str(out),
                 "--keep", "all"]) == 0
    saved = np.load(out)
    assert {"data", "fc1", "fc1@0", "conv_1_conv2d"} <= set(saved.files)
    np.testing.assert_array_equal(saved["data"], x)


def test_run_user_errors_exit_2_with_one_line(tmp_path, capsys):
    code = main(["run", *ARGS, "--image", str(IMAGES / "faces112" / "id10.jpg"), "--mean",
                 "1,x", "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--mean: not a number list" in err
    code = main(["run", ARGS[0], "--image", str(IMAGES / "faces112" / "id10.jpg"), "-o",
                 str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "layers without weights cannot run" in err
    code = main(["run", *ARGS, "--image", str(IMAGES / "faces112" / "id10.jpg"), "--keep",
                 "nope", "-o", str(tmp_path / "o.npz")])
    assert code == 2 and "keep: asked to keep blobs" in capsys.readouterr().err
