"""suggest-hp scores the models a build with ``quant.bias_correction`` compiles: its fast trial
path against a full simulation of the explicitly corrected, explicitly marked model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from nnbuild.check import suggest
from nnbuild.check.metrics import compare
from nnbuild.engine import run
from nnbuild.nnie import biascorrect
from nnbuild.nnie.calibrate import calibrate
from nnbuild.nnie.simulate import simulate


@pytest.fixture(scope="module")
def pnet():
    """MTCNN PNet (real weights) at 48x64 on real photos: graph, ranges, calibration, check."""
    from nnbuild.caffe import io
    from nnbuild.passes import PassContext, run_passes
    from nnbuild.preprocess import load_tensor

    graph = io.load(MODELS / "mtcnn" / "det1.prototxt", MODELS / "mtcnn" / "det1.caffemodel").graph
    graph, _ = run_passes(graph, ["set_input_shape"],
                          context=PassContext(input_shape=(1, 3, 48, 64)))
    photos = sorted((IMAGES / "photos").glob("*.jpg"))
    feeds = [{next(iter(graph.inputs)): load_tensor(p, (48, 64), color="BGR", mean=127.5,
                                                    scale=0.0078125)} for p in photos[:8]]
    cal, chk = feeds[:6], feeds[6:]
    tables = biascorrect.corrections_for(graph, ["int8", "int16"], cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranges = calibrate(biascorrect.apply(graph, tables["int8"]), cal)
    return graph, ranges, cal, chk, tables


def _direct(graph, ranges, chk, deltas, hp, mode):
    """Mean output cosines of the model a build would compile: corrected, ``hp`` renamed."""
    model = biascorrect.apply(graph, deltas)
    for layer in model.layers:
        if layer.name in hp:
            layer.name += "_hp"
    per = {}
    for feed in chk:
        ref, got = run(graph, feed), simulate(model, ranges, mode, feed)
        for name in graph.outputs:
            per.setdefault(name, []).append(compare(ref[name], got[name])["cosine"])
    return {k: float(np.mean(v)) for k, v in per.items()}


def test_one_pass_gives_each_mode_its_own_corrections(pnet):
    graph, _, cal, _, tables = pnet
    for mode in ("int8", "int16"):
        alone = biascorrect.corrections(graph, mode, cal)
        assert set(alone) == set(tables[mode])
        for name, delta in alone.items():
            np.testing.assert_array_equal(delta, tables[mode][name])
    assert any(np.abs(tables["int8"][n]).max() > 10 * np.abs(tables["int16"][n]).max()
               for n in tables["int8"])  # 16-bit rounds finer


@pytest.mark.parametrize("hp", [(), ("conv2",), ("conv1", "conv4-1"), ("conv3",)])
def test_trials_score_the_corrected_mixed_model(pnet, hp):
    graph, ranges, _, chk, tables = pnet
    scorer = suggest.SimScorer(graph, ranges, chk, bias=tables)
    deltas = {n: tables["int16" if n in hp else "int8"][n] for n in tables["int8"]}
    expected = _direct(graph, ranges, chk, deltas, set(hp), "mixed")
    got = scorer.cosines(hp)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


def test_the_all_16_bit_score_is_the_corrected_int16_model(pnet):
    graph, ranges, _, chk, tables = pnet
    scorer = suggest.SimScorer(graph, ranges, chk, bias=tables)
    expected = _direct(graph, ranges, chk, tables["int16"], set(), "int16")
    assert scorer.full() == pytest.approx(sum(expected.values()) / len(expected), abs=1e-6)


def test_without_tables_nothing_is_corrected(pnet):
    graph, ranges, _, chk, tables = pnet
    plain = suggest.SimScorer(graph, ranges, chk)
    corrected = suggest.SimScorer(graph, ranges, chk, bias=tables)
    assert plain.quantized is graph and corrected.quantized is not graph
    zero = {n: np.zeros_like(d) for n, d in tables["int8"].items()}
    assert plain.cosines(("conv2",)) == pytest.approx(
        _direct(graph, ranges, chk, zero, {"conv2"}, "mixed"), abs=1e-6)
    assert plain.cosines(()) != corrected.cosines(())
