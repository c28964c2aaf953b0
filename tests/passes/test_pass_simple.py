"""set_input_shape, reshape_batch_zero, drop_layers, mark_high_precision, inplace_activations."""

from __future__ import annotations

import pytest

from nnbuild.errors import PassError
from nnbuild.passes import PassContext, run_pass
from pass_netgen import conv, feeds, layer, max_rel_diff, net, outputs_by_name

INPUT = 'layer { name: "in" type: "Input" top: "data" ' \
        'input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def convnet(extra: str = "", shape=(1, 3, 8, 8), inputs=True):
    text = conv("c1", "data", "c1", 4) + layer("r1", "ReLU", "c1", "r1") + extra
    return net((INPUT if not inputs else "") + text, {"data": shape} if inputs else None)


# -- set_input_shape ---------------------------------------------------------------------------

def test_set_input_shape_converts_input_layer_to_legacy():
    g = convnet(inputs=False)
    assert g.input_style == "layer"
    out, entry = run_pass(g, "set_input_shape", PassContext(input_shape=(1, 3, 12, 10)))
    assert out.input_style == "legacy"
    assert [la.type for la in out.layers] == ["Convolution", "ReLU"]
    assert out.inputs == {"data": (1, 3, 12, 10)}
    assert entry["changes"]["removed"] == ["in"]
    assert entry["changes"]["params"][-1]["after"] == [1, 3, 12, 10]
    # the network is the same function at its original size
    same, _ = run_pass(g, "set_input_shape", PassContext(input_shape=(1, 3, 8, 8)))
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(same, f), outputs_by_name(g, f)) == 0


def test_set_input_shape_writes_nnie_form(tmp_path):
    from nnbuild.caffe import io

    out, _ = run_pass(convnet(inputs=False), "set_input_shape",
                      PassContext(input_shape=(1, 3, 16, 16)))
    io.save(out, tmp_path / "m.prototxt")
    text = (tmp_path / "m.prototxt").read_text()
    assert 'input: "data"' in text and "input_shape" in text and '"Input"' not in text


@pytest.mark.parametrize("shape, match", [
    ((2, 3, 8, 8), r"pass set_input_shape: unsupported input shape\. Expected \[1, C, H, W\]"),
    ((1, 3, 8), r"unsupported input shape\. .*got \[1, 3, 8\]"),
    ((1, 4, 8, 8), r"input 'data' takes 3 channels, input\.shape gives 4\. Expected "
                   r"input\.shape \[1, 3, H, W\], got \[1, 4, 8, 8\]\. Hint: set "
                   r"input\.shape\[1\] to 3; the first layer's weights fix the channel count"),
])
def test_set_input_shape_rejects(shape, match):
    with pytest.raises(PassError, match=match):
        run_pass(convnet(), "set_input_shape", PassContext(input_shape=shape))


def test_set_input_shape_needs_a_shape():
    with pytest.raises(PassError, match="no input shape given"):
        run_pass(convnet(), "set_input_shape", PassContext())


# -- reshape_batch_zero ------------------------------------------------------------------------

def reshape_net(dims: str, axis: int = 0):
    rs = layer("rs", "Reshape", "r1", "out",
               f"reshape_param {{ shape {{ {dims} }} axis: {axis} }}")
    return convnet(rs)


def test_reshape_batch_zero_changes_first_dim_only():
    g = reshape_net("dim: 1 dim: 2 dim: -1 dim: 0")
    out, entry = run_pass(g, "reshape_batch_zero", PassContext())
    assert list(out.layer("rs").param.reshape_param.shape.dim) == [0, 2, -1, 0]
    assert list(g.layer("rs").param.reshape_param.shape.dim) == [1, 2, -1, 0]
    assert entry["changes"]["params"] == [{"layer": "rs", "field": "reshape_param.shape.dim",
                                           "before": [1, 2, -1, 0], "after": [0, 2, -1, 0]}]
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0


def test_reshape_batch_zero_leaves_axis_reshapes():
    out, entry = run_pass(reshape_net("dim: 1 dim: -1", axis=1), "reshape_batch_zero",
                          PassContext())
    assert list(out.layer("rs").param.reshape_param.shape.dim) == [1, -1]
    assert "params" not in entry["changes"]


@pytest.mark.parametrize("dims", ["dim: -1 dim: 4", "dim: 2 dim: -1 dim: 8 dim: 4"])
def test_reshape_touching_batch_is_rejected(dims):
    with pytest.raises(PassError, match=r"pass reshape_batch_zero: layer 'rs': Reshape touches "
                                        r"the batch dimension\. Expected first dim 0 or 1.*Hint"):
        run_pass(reshape_net(dims), "reshape_batch_zero", PassContext())


# -- drop_layers -------------------------------------------------------------------------------

def test_drop_layers_removes_dropout_split_silence_and_losses():
    text = (conv("c1", "data", "c1", 4) + layer("drop", "Dropout", "c1", "c1") +
            layer("split", "Split", "c1", ["s1", "s2"]) +
            conv("c2", "s1", "c2", 4) + layer("add", "Eltwise", ["c2", "s2"], "sum") +
            layer("sil", "Silence", "c2", []) +
            layer("loss", "EuclideanLoss", ["sum", "sum"], "loss") +
            layer("acc", "ReLU", "sum", "out", "include { phase: TRAIN }"))
    g = net(text, {"data": (1, 3, 8, 8)})
    out, entry = run_pass(g, "drop_layers", PassContext())
    assert [la.name for la in out.layers] == ["c1", "c2", "add"]
    assert out.layer("add").bottoms == ["c2", "c1"]
    assert sorted(entry["changes"]["removed"]) == ["acc", "drop", "loss", "sil", "split"]
    # reference: the original without the layers the engine cannot run (Dropout/Split stay)
    ref = g.copy()
    ref.layers = [la for la in ref.layers if la.name not in ("sil", "loss", "acc")]
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(ref, f)) == 0


def test_drop_layers_keeps_output_names():
    g = convnet(layer("drop", "Dropout", "r1", "prob"))
    out, _ = run_pass(g, "drop_layers", PassContext())
    assert [out.caffe_name(b) for b in out.outputs] == ["prob"]
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0


def test_drop_layers_refuses_read_training_output():
    g = convnet(layer("loss", "EuclideanLoss", ["r1", "r1"], "loss") +
                layer("r2", "ReLU", "loss", "r2"))
    with pytest.raises(PassError, match=r"layer 'loss': training layer output 'loss' is read "
                                        r"by 'r2'"):
        run_pass(g, "drop_layers", PassContext())


# -- mark_high_precision -----------------------------------------------------------------------

def test_mark_high_precision_renames_within_31_chars():
    long = "a" * 30
    text = (conv(long, "data", "c1", 4) + conv("a" * 28 + "_hp", "c1", "c2", 4) +
            conv("short", "c2", "c3", 4))
    g = net(text, {"data": (1, 3, 8, 8)})
    out, entry = run_pass(g, "mark_high_precision", PassContext(high_precision=[long, "short"]))
    names = [la.name for la in out.layers]
    assert names[2] == "short_hp"
    assert names[0].endswith("_hp") and len(names[0]) <= 31 and names[0] != names[1]
    assert len(set(names)) == 3
    assert {"kind": "layer", "before": "short", "after": "short_hp"} in entry["changes"]["renamed"]
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0


def test_mark_high_precision_unknown_layer():
    with pytest.raises(PassError, match=r"pass mark_high_precision: layer 'nope': no such layer"):
        run_pass(convnet(), {"mark_high_precision": {"layers": ["nope"]}}, PassContext())


# -- inplace_activations -----------------------------------------------------------------------

def test_inplace_activations_where_safe():
    text = (conv("c1", "data", "c1", 4) + layer("r1", "ReLU", "c1", "r1") +
            conv("c2", "r1", "c2", 4) + layer("p2", "PReLU", "c2", "p2") +
            conv("c3", "c2", "c3", 4) + layer("add", "Eltwise", ["p2", "c3"], "out"))
    g = net(text, {"data": (1, 3, 8, 8)})
    out, _ = run_pass(g, "inplace_activations", PassContext())
    names = out.caffe_names()
    r1, p2 = out.layer("r1"), out.layer("p2")
    assert names[r1.tops[0]] == "c1"          # made in place
    assert names[p2.tops[0]] == "p2"          # c2 also feeds c3: must stay out of place
    f = feeds(g)
    assert max_rel_diff(outputs_by_name(out, f), outputs_by_name(g, f)) == 0
    back, entry = run_pass(out, {"inplace_activations": {"mode": "out_of_place"}}, PassContext())
    bn = back.caffe_names()
    assert bn[back.layer("r1").tops[0]] == "r1" and bn[back.layer("r1").bottoms[0]] == "c1"
    assert max_rel_diff(outputs_by_name(back, f), outputs_by_name(g, f)) == 0


def test_inplace_activations_bad_mode():
    with pytest.raises(PassError, match=r"unknown mode\. Expected inplace or out_of_place"):
        run_pass(convnet(), {"inplace_activations": {"mode": "x"}}, PassContext())
