"""A real 1-channel network for the gray-input tests: MTCNN P-Net with its first convolution
summed over the colour channels.

``../shared/models/mtcnn/det1.*`` (kpzhang93/MTCNN_face_detection_alignment, MIT; pinned in
``../shared/models/SHA256SUMS``) takes 3 x 12 x 12 RGB. Summing ``conv1``'s weights over the input
channels, ``W1[o, 0] = sum_c W[o, c]``, gives the network that computes on a gray picture ``y``
exactly what P-Net computes on the picture ``(y, y, y)``: conv1 is linear in its input and the
recipe's normalisation (x - 127.5) * 0.0078125 is the same for every channel. So the weights are
P-Net's own trained weights, not random ones, and ``tests/board/test_gray_recipe.py`` checks that
identity numerically before trusting the build. The files are written at test time into the
test's project (never into the repo).
"""

from __future__ import annotations

import pathlib

from e2e.e2e_project import SHARED, SMALL, ZOO

PNET = SHARED / "models" / "mtcnn"
NAME = "mtcnn-pnet-gray"


def write_model(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``pnet-gray.prototxt`` / ``.caffemodel`` into ``folder``; returns both paths."""
    import numpy as np

    from nnbuild.caffe import io

    graph = io.load(PNET / "det1.prototxt", PNET / "det1.caffemodel").graph.copy()
    (name,) = graph.inputs
    graph.inputs[name] = (1, 1, 12, 12)
    conv1 = next(layer for layer in graph.layers if layer.name == "conv1")
    weights = np.asarray(conv1.blobs[0], dtype=np.float32)
    assert weights.shape == (10, 3, 3, 3), weights.shape
    conv1.blobs = [weights.sum(axis=1, keepdims=True), *conv1.blobs[1:]]
    paths = folder / "pnet-gray.prototxt", folder / "pnet-gray.caffemodel"
    io.save(graph, *paths)
    return paths


def recipe_text() -> str:
    """The test-only recipe: P-Net's zoo settings for a 1-channel input fed gray frames (no
    ``input.color``: a 1-channel network has no channel order), small image counts."""
    counts = "\n".join(f"{section}: {{{', '.join(f'{k}: {v}' for k, v in values.items())}}}"
                       for section, values in SMALL.items() if section != "check")
    return (f"extends: {ZOO / '_base' / 'common.yaml'}\n"
            "description: MTCNN P-Net, conv1 summed to 1 channel, gray frames (test only)\n"
            "source: {prototxt: pnet-gray.prototxt, caffemodel: pnet-gray.caffemodel}\n"
            "input: {name: data, shape: [1, 1, 12, 12], format: gray, mean: [127.5], "
            "scale: 0.0078125, resize: stretch}\n"
            "patches: [set_input_shape]\n"
            f"{counts}\n"
            f"check: {{count: {SMALL['check']['count']}, task: raw, min_output_cosine: 0.99, "
            "min_layer_cosine: 0.99}\n")
