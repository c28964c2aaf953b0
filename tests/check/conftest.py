"""Shared fixtures of the check tests: RetinaFace 640 int8 and one memoised suggest-hp scorer."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def retinaface_int8():
    """Patched RetinaFace 640 and its calibration on 16 photos (the recipe's split)."""
    import warnings

    from conftest import IMAGES, MODELS
    from nnbuild import preprocess
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import calibrate
    from nnbuild.passes import PassContext, run_passes

    folder = MODELS / "retinaface-mnet25"
    graph = io.load(folder / "mnet.prototxt", folder / "mnet.caffemodel").graph
    graph, _ = run_passes(graph, ["set_input_shape", "remove_crop", "reshape_batch_zero",
                                  "fold_batchnorm"],
                          context=PassContext(input_shape=(1, 3, 640, 640)))
    photos = sorted((IMAGES / "photos").glob("*.jpg"))

    def load(path):
        return {"data": preprocess.load_tensor(path, (640, 640), color="RGB", resize="letterbox")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranges = calibrate(graph, (load(p) for p in photos[:16]))
    return graph, ranges, [load(p) for p in photos[16:]]


@pytest.fixture(scope="session")
def retinaface_scorer(retinaface_int8):
    """A ``SimScorer`` on the first 2 check photos whose ``cosines`` are memoised.

    The count search (``--budget 15%``) and the latency-budget search evaluate many of the same
    layer sets; sharing one memo runs each simulation once for both tests.
    """
    from nnbuild.check import suggest

    graph, ranges, check_feeds = retinaface_int8
    scorer = suggest.SimScorer(graph, ranges, check_feeds[:2])
    compute, memo = scorer.cosines, {}

    def cosines(hp, mode="mixed"):
        key = (frozenset(hp), mode)
        if key not in memo:
            memo[key] = compute(key[0], mode)
        return dict(memo[key])
    scorer.cosines = cosines
    return scorer
