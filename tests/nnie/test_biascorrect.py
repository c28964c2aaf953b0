"""nnbuild.nnie.biascorrect: the offsets against the engine's own convolution of the rounding
error, the corrected layers' mean error, and the quantizer's rounding as the simulator does it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS
from netgen import net as structure
from nnbuild.engine import run, run_layer
from nnbuild.engine.conv import convolution, deconvolution
from nnbuild.nnie import biascorrect
from nnbuild.nnie.calibrate import calibrate
from nnbuild.nnie.simulate import prepare
from nnbuild.shapes import expected_weight_shapes, infer_shapes

pytestmark = pytest.mark.filterwarnings("ignore::nnbuild.nnie.calibrate.CalibrationWarning")
CONV = ("layer {{ name: 'c' type: '{kind}' bottom: 'x' top: 'y' convolution_param {{ "
        "num_output: {n} kernel_size: {k} pad: {p} stride: {s} group: {g} dilation: {d} "
        "bias_term: {bias} }} }}")


def weighted(text: str, inputs: dict, seed: int = 0):
    """``netgen`` structure with random weights of the right shapes."""
    g = structure(text, inputs)
    shapes = infer_shapes(g, check_weights=False, partial=True)
    rng = np.random.default_rng(seed)
    for layer in g.layers:
        if layer.type in biascorrect.BIAS_PARAM:
            wanted = expected_weight_shapes(layer, [shapes[b] for b in layer.bottoms])
            layer.blobs = [rng.normal(size=s).astype(np.float32) * 0.5 for s in wanted]
    return g


@pytest.mark.parametrize("kind,n,k,p,s,g,d", [
    ("Convolution", 6, 3, 1, 1, 1, 1),    # dense, same padding
    ("Convolution", 6, 3, 1, 2, 1, 1),    # stride 2: the last row/column is not read by every tap
    ("Convolution", 8, 3, 2, 1, 2, 2),    # grouped and dilated
    ("Convolution", 8, 3, 1, 2, 8, 1),    # depthwise, stride 2
    ("Convolution", 4, 5, 0, 3, 1, 1),    # no padding, stride 3
    ("Deconvolution", 8, 4, 1, 2, 8, 1),  # the RetinaFace upsampling shape
])
def test_offsets_are_the_mean_of_the_error_layer_over_pictures_and_positions(kind, n, k, p, s,
                                                                               g, d):
    graph = weighted(CONV.format(kind=kind, n=n, k=k, p=p, s=s, g=g, d=d, bias="true"),
                     {"x": (1, 8, 11, 13)})
    layer = graph.layers[0]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 8, 11, 13)).astype(np.float32) + 0.7  # a mean, as after a ReLU
    error = rng.normal(size=np.shape(layer.blobs[0])) * 1e-2
    total, positions = biascorrect._offset(layer, x, error)
    geometry = dict(stride=(s, s), pad=(p, p), dilation=(d, d), group=g)
    op = convolution if kind == "Convolution" else deconvolution
    reference = op(x.astype(np.float64), error, None, **geometry)  # the engine, in float64
    np.testing.assert_allclose(total / positions, reference.mean(axis=(0, 2, 3)), rtol=1e-6,
                               atol=1e-9)
    assert positions == reference.shape[0] * reference.shape[2] * reference.shape[3]


def test_inner_product_offset_is_the_error_times_the_input_mean():
    graph = weighted("layer { name: 'fc' type: 'InnerProduct' bottom: 'x' top: 'y' "
                     "inner_product_param { num_output: 5 } }", {"x": (1, 4, 3, 3)})
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4, 3, 3)).astype(np.float32)
    error = rng.normal(size=(5, 36))
    total, count = biascorrect._offset(graph.layers[0], x, error)
    mean_input = x.reshape(6, -1).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(total / count, error @ mean_input, rtol=1e-9)


def test_rounding_errors_are_what_the_simulator_rounds_to():
    graph = weighted(CONV.format(kind="Convolution", n=8, k=3, p=1, s=1, g=8, d=1, bias="true")
                     + CONV.format(kind="Convolution", n=4, k=1, p=0, s=1, g=1, d=1, bias="false")
                     .replace("'c'", "'pw'").replace("bottom: 'x' top: 'y'",
                                                     "bottom: 'y' top: 'z'"),
                     {"x": (1, 8, 6, 6)})
    feed = {"x": np.random.default_rng(0).normal(size=(1, 8, 6, 6)).astype(np.float32)}
    plan = prepare(graph, calibrate(graph, [feed]), "int8")
    errors = biascorrect.rounding_errors(graph, "int8")
    for layer in graph.layers:
        np.testing.assert_array_equal(
            errors[layer.name] + np.asarray(layer.blobs[0], np.float64),
            np.asarray(plan.weights[layer.name][0], np.float64))
    assert np.abs(errors["c"]).max() > 0  # the 8-bit grid does not hold random weights


@pytest.fixture(scope="module")
def pnet():
    """MTCNN PNet (real weights) on real photos: float graph, feeds, corrected graph."""
    from nnbuild.caffe import io
    from nnbuild.passes import PassContext, run_passes
    from nnbuild.preprocess import load_tensor

    graph = io.load(MODELS / "mtcnn" / "det1.prototxt", MODELS / "mtcnn" / "det1.caffemodel").graph
    graph, _ = run_passes(graph, ["set_input_shape"],
                          context=PassContext(input_shape=(1, 3, 120, 160)))
    photos = sorted((IMAGES / "photos").glob("*.jpg"))[:4]
    feeds = [{next(iter(graph.inputs)): load_tensor(p, (120, 160), color="BGR", mean=127.5,
                                                    scale=0.0078125)} for p in photos]
    deltas = biascorrect.corrections(graph, "int8", feeds)
    return graph, feeds, deltas, biascorrect.apply(graph, deltas)


def _mean_errors(float_graph, quantized_graph, feeds, mode="int8"):
    """Layer -> per-channel mean error of the layer run alone with NNIE's rounded weights on
    the float network's own inputs, relative to the mean |output|."""
    plan = prepare(quantized_graph, calibrate(quantized_graph, feeds), mode)
    out = {}
    for layer_f, layer_q in zip(float_graph.layers, quantized_graph.layers):
        if layer_f.name not in plan.weights:
            continue
        err, size = 0.0, 0.0
        for feed in feeds:
            x = run(float_graph, dict(feed), [layer_f.bottoms[0]])[layer_f.bottoms[0]]
            ref = run_layer(layer_f, [x])[0]
            got = run_layer(layer_q, [x], weights=plan.weights[layer_f.name])[0]
            err = err + (got - ref).astype(np.float64).mean(axis=(0, 2, 3))
            size += float(np.abs(ref).mean())
        out[layer_f.name] = float(np.abs(err).max() / size)
    return out


def test_corrected_layers_have_no_mean_error_on_the_calibration_pictures(pnet):
    graph, feeds, deltas, corrected = pnet
    before, after = _mean_errors(graph, graph, feeds), _mean_errors(graph, corrected, feeds)
    assert set(before) == set(deltas) == {"conv1", "conv2", "conv3", "conv4-1", "conv4-2"}
    for name in before:
        assert after[name] < 1e-5 < before[name], (name, before[name], after[name])


def test_apply_moves_only_biases_and_leaves_the_input_graph_alone(pnet):
    graph, _, deltas, corrected = pnet
    for old, new in zip(graph.layers, corrected.layers):
        assert all(a is b for a, b in zip(old.blobs, new.blobs[:1] if old.name in deltas
                                          else new.blobs))
        if old.name in deltas:
            np.testing.assert_allclose(np.asarray(new.blobs[1], np.float64),
                                       np.asarray(old.blobs[1], np.float64) + deltas[old.name],
                                       rtol=0, atol=1e-6)
    assert not any(np.array_equal(o.blobs[1], n.blobs[1]) for o, n in
                   zip(graph.layers, corrected.layers) if o.name in deltas)


def test_a_layer_without_bias_gets_one():
    graph = weighted(CONV.format(kind="Convolution", n=4, k=3, p=1, s=1, g=1, d=1,
                                 bias="false"), {"x": (1, 3, 5, 5)})
    corrected = biascorrect.apply(graph, {"c": np.array([1.0, -2.0, 0.5, 0.0])})
    layer = corrected.layers[0]
    assert layer.param.convolution_param.bias_term and len(layer.blobs) == 2
    np.testing.assert_array_equal(layer.blobs[1], np.float32([1.0, -2.0, 0.5, 0.0]))
    assert not graph.layers[0].param.convolution_param.bias_term  # the copy, not the input


def test_summary_names_every_layer_and_its_relative_change(pnet):
    graph, _, deltas, _ = pnet
    report = biascorrect.summary(graph, deltas)
    assert set(report["layers"]) == set(deltas)
    conv1 = report["layers"]["conv1"]
    assert conv1["max_abs_delta"] == pytest.approx(float(np.abs(deltas["conv1"]).max()))
    assert conv1["relative_to_bias"] == pytest.approx(
        conv1["max_abs_delta"] / float(np.abs(graph.layer("conv1").blobs[1]).max()))
