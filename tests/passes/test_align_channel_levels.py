"""align_channel_levels on generated nets and on the real RetinaFace mnet25: every per-channel
maximum on a quantizer level (checked with an independent log2 formula), the float function
unchanged, and the producer left alone wherever the scale cannot be absorbed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, MODELS, ROOT
from nnbuild.passes import PassContext, run_pass
from pass_netgen import conv, feeds, layer, max_rel_diff, net, outputs_by_name

PASS_NAME = "align_channel_levels"
DW = dict(n=8, g=8)  # depthwise over the 8 input channels of SHAPE
SHAPE = (1, 8, 6, 6)


def levels_per_octave(bits: int) -> int:
    return {8: 16, 16: 128}[bits]  # nnie-facts.md §4, written out again on purpose


def channel_max(w: np.ndarray, groups: int) -> np.ndarray:
    return np.abs(np.asarray(w, np.float64)).reshape(groups, -1).max(axis=1)


# One float32 ulp (at most 2**-23 relative) in units of S*log2: 2.8e-6 for S = 16, 2.2e-5 for
# S = 128. A float32 maximum cannot sit closer to an irrational level 2**(k/S) than its ulp, and
# it must not sit below (the quantizer's top would be a whole level lower): hence [0, 1 ulp].
def ulp_in_steps(bits: int) -> float:
    return levels_per_octave(bits) * float(np.log2(1 + 2.0 ** -23))


def on_levels(m: np.ndarray, bits: int) -> bool:
    """log2(m) * S is an integer, or at most one float32 ulp above one, for every maximum."""
    e = np.log2(m) * levels_per_octave(bits)
    d = e - np.round(e)
    return bool(np.all((d >= 0) & (d <= ulp_in_steps(bits) + 1e-9)))


def expected_scale(m: np.ndarray, bits: int) -> np.ndarray:
    """The issue's formula: s = 2**(ceil(S log2 m) / S) / m."""
    s = levels_per_octave(bits)
    return 2.0 ** (np.ceil(s * np.log2(m) - 1e-9) / s) / m


def align(g, ctx=None):
    out, entry = run_pass(g, "align_channel_levels", ctx or PassContext())
    return out, entry["changes"]


def assert_same_function(g, out, tol=1e-5):
    for seed in (1, 2):
        f = feeds(g, seed)
        assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) <= tol


def dw_then(tail: str, relu: str = layer("r", "ReLU", "dw", "dw")) -> str:
    return conv("dw", "data", "dw", **DW) + relu + tail


PW = conv("pw", "dw", "out", 4, k=1, p=0)


@pytest.mark.parametrize("mode, bits", [("int8", 8), ("int16", 16)])
def test_depthwise_maxima_on_levels_and_consumer_divided(mode, bits):
    g = net(dw_then(PW), {"data": SHAPE})
    out, changes = align(g, PassContext(quant_mode=mode))
    w0, w1 = g.layer("dw").blobs[0], out.layer("dw").blobs[0]
    m0, m1 = channel_max(w0, 8), channel_max(w1, 8)
    assert on_levels(m1, bits) and not on_levels(m0, bits)
    s = expected_scale(m0, bits)
    assert np.all(s >= 1) and np.all(s < 2 ** (1 / levels_per_octave(bits)))
    np.testing.assert_allclose(w1, w0 * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(out.layer("dw").blobs[1], g.layer("dw").blobs[1] * s, rtol=1e-6)
    np.testing.assert_allclose(out.layer("pw").blobs[0], g.layer("pw").blobs[0] /
                               s[None, :, None, None], rtol=1e-6)
    np.testing.assert_array_equal(out.layer("pw").blobs[1], g.layer("pw").blobs[1])
    assert_same_function(g, out)
    (note,) = changes["notes"]["aligned"]
    assert note["layer"] == "dw" and note["bits"] == bits and note["consumers"] == ["pw"]
    assert note["scale_min"] == pytest.approx(s.min()) and note["scale_max"] == pytest.approx(
        s.max())
    assert {"layer": "dw", "field": "channel_scale", "before": 1.0,
            "after": {"min": note["scale_min"], "max": note["scale_max"]}} in changes["params"]
    assert g.layer("dw").blobs[0] is w0  # input graph untouched


def test_grouped_convolution_scales_per_group():
    text = conv("gc", "data", "gc", 12, g=4) + layer("r", "ReLU", "gc", "gc") + \
        conv("pw", "gc", "out", 4, k=1, p=0, g=2)
    g = net(text, {"data": SHAPE})
    out, _ = align(g)
    w0, w1 = g.layer("gc").blobs[0], out.layer("gc").blobs[0]
    assert on_levels(channel_max(w1, 4), 8)
    s = np.repeat(expected_scale(channel_max(w0, 4), 8), 3)  # 3 output channels per group
    np.testing.assert_allclose(w1, w0 * s[:, None, None, None], rtol=1e-6)
    # pw has 2 groups of 6 input channels: output rows 0-1 read gc 0-5, rows 2-3 read gc 6-11
    expect = np.asarray(g.layer("pw").blobs[0]).copy()
    expect[:2] /= s[None, :6, None, None]
    expect[2:] /= s[None, 6:, None, None]
    np.testing.assert_allclose(out.layer("pw").blobs[0], expect, rtol=1e-6)
    assert_same_function(g, out)


@pytest.mark.parametrize("relu", [
    layer("r", "ReLU", "dw", "dw"),                                     # in place
    layer("r", "ReLU", "dw", "dw_r", "relu_param { negative_slope: 0.1 }"),
    layer("p", "PReLU", "dw", "dw"),
    layer("p", "PReLU", "dw", "dw_p") + layer("d", "Dropout", "dw_p", "dw_p"),
    layer("sc", "Scale", "dw", "dw", "scale_param { bias_term: true }") +
    layer("r", "ReLU", "dw", "dw"),
    layer("pool", "Pooling", "dw", "dw", "pooling_param { pool: MAX kernel_size: 2 stride: 2 }"),
    layer("pool", "Pooling", "dw", "dw", "pooling_param { pool: AVE kernel_size: 3 stride: 2 "
                                         "pad: 1 }"),
], ids=["relu-inplace", "leaky", "prelu-inplace", "prelu-dropout", "scale-relu", "max-pool",
        "ave-pool"])
def test_homogeneous_chains_are_crossed(relu):
    last = relu.rsplit('top: "', 1)[1].split('"')[0]
    g = net(dw_then(conv("pw", last, "out", 4, k=1, p=0), relu), {"data": SHAPE})
    out, changes = align(g)
    assert on_levels(channel_max(out.layer("dw").blobs[0], 8), 8)
    assert changes["notes"]["aligned"][0]["consumers"] == ["pw"]
    assert_same_function(g, out)


def test_inner_product_consumer_after_global_pooling():
    tail = layer("pool", "Pooling", "dw", "pooled", "pooling_param { pool: AVE global_pooling: "
                 "true }") + layer("fc", "InnerProduct", "pooled", "out",
                                   "inner_product_param { num_output: 5 }")
    g = net(dw_then(tail), {"data": SHAPE})
    out, _ = align(g)
    assert on_levels(channel_max(out.layer("dw").blobs[0], 8), 8)
    assert_same_function(g, out)


def test_inner_product_on_a_spatial_blob_divides_channel_major():
    g = net(conv("dw", "data", "dw", 8, k=3, p=0, g=8) + layer(
        "fc", "InnerProduct", "dw", "out", "inner_product_param { num_output: 3 }"),
        {"data": (1, 8, 4, 4)})
    out, _ = align(g)
    s = expected_scale(channel_max(g.layer("dw").blobs[0], 8), 8)
    expect = np.asarray(g.layer("fc").blobs[0]).reshape(3, 8, 4) / s[None, :, None]
    np.testing.assert_allclose(out.layer("fc").blobs[0], expect.reshape(3, 32), rtol=1e-6)
    assert_same_function(g, out)


def test_eltwise_of_equal_scales_and_concat_with_an_unscaled_input():
    text = (conv("dw", "data", "dw", **DW) + layer("ra", "ReLU", "dw", "a") +
            layer("rb", "ReLU", "dw", "b") + layer("sum", "Eltwise", ["a", "b"], "ab") +
            conv("other", "data", "other", 4, k=1, p=0) +
            layer("cat", "Concat", ["other", "ab"], "cat") +
            conv("pw", "cat", "out", 4, k=1, p=0))
    g = net(text, {"data": SHAPE})
    out, changes = align(g)
    assert changes["notes"]["aligned"][0]["through"] == ["ra", "rb", "sum", "cat"]
    s = expected_scale(channel_max(g.layer("dw").blobs[0], 8), 8)
    w0 = np.asarray(g.layer("pw").blobs[0])
    np.testing.assert_array_equal(out.layer("pw").blobs[0][:, :4], w0[:, :4])  # `other` part
    np.testing.assert_allclose(out.layer("pw").blobs[0][:, 4:], w0[:, 4:] /
                               s[None, :, None, None], rtol=1e-6)
    assert_same_function(g, out)


STOPS = {
    "sigmoid": (layer("s", "Sigmoid", "dw", "dw") + PW, "Sigmoid"),
    "relu6": (layer("s", "ReLU6", "dw", "dw") + PW, "ReLU6"),
    "unfolded-bn": (layer("bn", "BatchNorm", "dw", "dw") + PW, "BatchNorm"),
    "eltwise-unequal": (conv("other", "data", "other", 8, k=1, p=0) +
                        layer("sum", "Eltwise", ["dw", "other"], "sum") +
                        conv("pw", "sum", "out", 4, k=1, p=0), "different scales"),
    "eltwise-prod": (layer("ra", "ReLU", "dw", "a") + layer(
        "prod", "Eltwise", ["dw", "a"], "prod", "eltwise_param { operation: PROD }") +
        conv("pw", "prod", "out", 4, k=1, p=0), "different scales (or a product)"),
    "branch-to-output": (layer("r2", "ReLU", "dw", "side") + PW, "network output 'side'"),
    "own-output": (layer("r2", "ReLU", "data", "x"), "network output 'dw'"),
}


@pytest.mark.parametrize("case", sorted(STOPS))
def test_chain_stops_and_producer_is_left_alone(case):
    tail, reason = STOPS[case]
    g = net(conv("dw", "data", "dw", **DW) + tail, {"data": SHAPE})
    out, changes = align(g)
    assert out.layer("dw").blobs[0] is g.layer("dw").blobs[0]
    for la in g.layers:
        for b0, b1 in zip(la.blobs, out.layer(la.name).blobs):
            np.testing.assert_array_equal(b0, b1)
    (skip,) = changes["skipped"]
    assert skip["layer"] == "dw" and reason in skip["reason"]
    assert changes["notes"]["aligned"] == [] and "params" not in changes


def test_dense_layers_untouched_and_zero_or_aligned_channels_keep_scale_1():
    g = net(conv("dense", "data", "x", 8, k=1, p=0) + conv("dw", "x", "dw", **DW) + PW,
            {"data": SHAPE})
    w = np.asarray(g.layer("dw").blobs[0]).copy()
    w[0] = 0.0
    w[1] = np.linspace(-0.5, 0.25, 9).reshape(3, 3)  # maximum 0.5: a level of both grids
    w[2] = np.float32(1.5e-44) * np.sign(w[2])  # denormal (a dead channel of MobileFaceNet)
    w.setflags(write=False)
    g.layer("dw").blobs[0] = w
    out, changes = align(g)
    assert out.layer("dense").blobs[0] is g.layer("dense").blobs[0]
    w1 = out.layer("dw").blobs[0]
    np.testing.assert_array_equal(w1[:3], w[:3])
    assert on_levels(channel_max(w1, 8)[np.r_[1, 3:8]], 8)
    assert changes["notes"]["aligned"][0]["scale_min"] == 1.0


def test_mixed_mode_aligns_high_precision_layers_to_the_16_bit_grid():
    text = (conv("dw1", "data", "dw1", **DW) + layer("r1", "ReLU", "dw1", "dw1") +
            conv("pw1", "dw1", "p1", 8, k=1, p=0) + conv("dw2", "p1", "dw2", **DW) +
            conv("pw2", "dw2", "out", 4, k=1, p=0))
    g = net(text, {"data": SHAPE})
    out, changes = align(g, PassContext(quant_mode="mixed", high_precision=["dw2"]))
    bits = {n["layer"]: n["bits"] for n in changes["notes"]["aligned"]}
    assert bits == {"dw1": 8, "dw2": 16}
    m2 = channel_max(out.layer("dw2").blobs[0], 8)
    assert on_levels(m2, 16) and not on_levels(m2, 8)
    assert_same_function(g, out)
    marked = g.copy()
    marked.layer("dw2").name = "dw2_hp"  # after mark_high_precision: the suffix decides
    _, changes = align(marked, PassContext(quant_mode="mixed"))
    assert {n["layer"]: n["bits"] for n in changes["notes"]["aligned"]} == {"dw1": 8,
                                                                           "dw2_hp": 16}


# -- the real RetinaFace mnet25 (../shared), patched by its recipe with the pass -------------------

def _recipe_spec(name: str, with_pass: bool):
    from nnbuild.recipe.load import load
    from nnbuild.recipe.spec import RecipeSpec

    data = dict(load(name, ROOT / "recipes").data)
    patches = [p for p in data["patches"] if p != "align_channel_levels"]
    data["patches"] = patches + (["align_channel_levels"] if with_pass else [])
    return RecipeSpec.from_data(data, name)


@pytest.fixture(scope="module")
def retinaface_patched():
    """(original, patched without the pass, patched with it, report of the pass, 2 feeds)."""
    from nnbuild.caffe import io
    from nnbuild.passes.patching import patch_model
    from nnbuild.preprocess import NetworkInput

    folder = MODELS / "retinaface-mnet25"
    original = io.load(folder / "mnet.prototxt", folder / "mnet.caffemodel").graph
    photos = sorted((IMAGES / "photos").glob("*.jpg"))[:2]
    spec = _recipe_spec("retinaface-640", True)
    aligned = patch_model(original, spec, photos)
    plain = patch_model(original, _recipe_spec("retinaface-640", False), [])
    net = NetworkInput.of(spec.input, original)
    return original, plain["graph"], aligned, [net.feed(p) for p in photos]


def _perturbed(graph, layers, seed=0):
    """``graph`` with the weights of ``layers`` moved by one float32 rounding (+-2**-24)."""
    rng = np.random.default_rng(seed)
    g = graph.copy()
    for la in g.layers:
        if la.name in layers:
            w = np.asarray(la.blobs[0], np.float64)
            la.blobs = [(w * (1 + rng.choice([-1.0, 1.0], w.shape) * 2.0 ** -24)).astype(
                np.float32)] + list(la.blobs[1:])
    return g


def test_retinaface_every_depthwise_layer_aligned_and_float_outputs_equal(retinaface_patched):
    from nnbuild.nnie.quantpoints import weight_groups

    _, plain, aligned, feeds_ = retinaface_patched
    graph = aligned["graph"]
    entry = next(p for p in aligned["report"]["passes"] if p["pass"] == "align_channel_levels")
    notes = entry["changes"]["notes"]["aligned"]
    dw = [la.name for la in graph.layers if la.type == "Convolution" and weight_groups(la) > 1]
    assert [n["layer"] for n in notes] == dw and len(dw) == 13  # the 13 MobileNet dw layers
    for name in dw:
        assert on_levels(channel_max(graph.layer(name).blobs[0], weight_groups(
            graph.layer(name))), 8), name
    assert all(1.0 <= n["scale_min"] <= n["scale_max"] < 2 ** (1 / 16) for n in notes)
    # the two group-64 upsampling Deconvolutions feed an Eltwise with an unscaled branch
    assert sorted(s["layer"] for s in entry["changes"]["skipped"]) == [
        "rf_c2_upsampling_", "rf_c3_upsampling_"]
    assert aligned["failure"] is None and aligned["report"]["check"]["passed"]
    # Float32 noise floor of this network: the same edited weights moved by one rounding each.
    # The pass's drift is float32 rounding of the edited weights, so it sits at that floor
    # (measured: align 2e-6..9.6e-6, floor 2e-6..1.3e-5, fold_batchnorm itself up to 1.2e-5).
    edited = set(dw) | {c for n in notes for c in n["consumers"]}
    noisy = _perturbed(plain, edited)
    drift = max(max_rel_diff(outputs_by_name(graph, f), outputs_by_name(plain, f))
                for f in feeds_)
    floor = max(max_rel_diff(outputs_by_name(noisy, f), outputs_by_name(plain, f))
                for f in feeds_)
    print(f"align drift {drift:.3g}, float32 floor {floor:.3g}")
    assert drift <= max(1e-5, 1.5 * floor)


def test_recipe_mode_reaches_the_pass_and_keys_the_patch_stage_only_with_it():
    from nnbuild.passes.patching import pass_context
    from nnbuild.stages import patch

    assert pass_context(_recipe_spec("retinaface-640-int16", True)).quant_mode == "int16"
    assert pass_context(_recipe_spec("retinaface-640-mixed", True)).quant_mode == "mixed"
    assert "quant.mode" not in patch.reads({"patches": ["set_input_shape", "fold_batchnorm"]})
    for patches in (["fold_batchnorm", PASS_NAME], [{PASS_NAME: {}}]):
        assert "quant.mode" in patch.reads({"patches": patches})


def test_mixed_recipe_aligns_its_high_precision_depthwise_layers_to_16_bit():
    from nnbuild.caffe import io
    from nnbuild.passes import run_passes
    from nnbuild.passes.patching import pass_context, pass_specs
    from nnbuild.recipe.load import load

    spec = load("retinaface-640-mixed", ROOT / "recipes").spec
    folder = MODELS / "retinaface-mnet25"
    original = io.load(folder / "mnet.prototxt", folder / "mnet.caffemodel").graph
    patched, report = run_passes(original, pass_specs(spec), context=pass_context(spec))
    entry = next(p for p in report if p["pass"] == PASS_NAME)
    bits = {n["layer"]: n["bits"] for n in entry["changes"]["notes"]["aligned"]}
    hp = {"mobilenet0_conv1", "mobilenet0_conv3", "mobilenet0_conv5"}  # its depthwise _hp layers
    assert {n for n, b in bits.items() if b == 16} == hp and len(bits) == 13
    from nnbuild.nnie.quantpoints import weight_groups

    for name in hp:  # renamed by mark_high_precision after the pass; 16-bit levels, not 8-bit
        layer = patched.layer(name + "_hp")
        m = channel_max(layer.blobs[0], weight_groups(layer))
        assert on_levels(m, 16) and not on_levels(m, 8)
