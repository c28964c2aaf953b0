"""Each converter against onnxruntime on a small generated graph (rel err <= 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from onnxgen import check, make_model, types

rng = np.random.default_rng(1)
X = {"x": (1, 4, 8, 8)}


def w(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"{op.lower()}_{outs[0]}", **attrs)


@pytest.mark.parametrize("attrs,wshape", [
    ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, (6, 4, 3, 3)),
    ({"group": 2, "dilations": [2, 2], "pads": [2, 2, 2, 2]}, (6, 2, 3, 3)),
    ({"group": 4, "pads": [1, 1, 1, 1]}, (4, 1, 3, 3)),
    ({"auto_pad": "SAME_UPPER"}, (5, 4, 3, 3)),
    ({"kernel_shape": [1, 3], "pads": [0, 1, 0, 1]}, (3, 4, 1, 3)),
])
def test_conv(tmp_path, attrs, wshape):
    model = make_model([node("Conv", ["x", "w", "b"], **attrs)], X, ["y"],
                       {"w": w(*wshape), "b": w(wshape[0])})
    assert types(check(model, tmp_path)) == ["Convolution"]


def test_conv_without_bias(tmp_path):
    model = make_model([node("Conv", ["x", "w"])], X, ["y"], {"w": w(3, 4, 1, 1)})
    layer = check(model, tmp_path).graph.layers[0]
    assert not layer.param.convolution_param.bias_term and len(layer.blobs) == 1


@pytest.mark.parametrize("attrs,wshape", [
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, (4, 3, 4, 4)),
    ({"strides": [2, 2], "group": 2}, (4, 2, 2, 2)),
])
def test_conv_transpose(tmp_path, attrs, wshape):
    model = make_model([node("ConvTranspose", ["x", "w", "b"], **attrs)], X, ["y"],
                       {"w": w(*wshape), "b": w(wshape[1] * attrs.get("group", 1))})
    assert types(check(model, tmp_path)) == ["Deconvolution"]


def test_batch_norm(tmp_path):
    var = np.abs(w(4)) + 0.1
    model = make_model([node("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3)],
                       X, ["y"], {"g": w(4), "b": w(4), "m": w(4), "v": var})
    assert types(check(model, tmp_path)) == ["BatchNorm", "Scale"]


@pytest.mark.parametrize("op,attrs,caffe", [
    ("Relu", {}, "ReLU"), ("LeakyRelu", {"alpha": 0.2}, "ReLU"), ("LeakyRelu", {}, "ReLU"),
    ("Sigmoid", {}, "Sigmoid"), ("Tanh", {}, "TanH")])
def test_activation(tmp_path, op, attrs, caffe):
    result = check(make_model([node(op, ["x"], **attrs)], X, ["y"]), tmp_path)
    assert types(result) == [caffe]
    if op == "LeakyRelu":
        assert result.graph.layers[0].param.relu_param.negative_slope == pytest.approx(
            attrs.get("alpha", 0.01))


@pytest.mark.parametrize("slope", [(4, 1, 1), (1,), (1, 4, 1, 1)])
def test_prelu(tmp_path, slope):
    model = make_model([node("PRelu", ["x", "s"])], X, ["y"], {"s": w(*slope)})
    assert types(check(model, tmp_path)) == ["PReLU"]


def test_prelu_after_flatten_has_a_slope_per_feature(tmp_path):
    """(C,) broadcasts right-aligned: per channel of an (N, C) input, per column of NCHW."""
    model = make_model([node("Flatten", ["x"], ["f"]), node("PRelu", ["f", "s"])], X, ["y"],
                       {"s": w(256)})
    assert types(check(model, tmp_path)) == ["Flatten", "PReLU"]


def test_clip_relu6_opset13(tmp_path):
    model = make_model([node("Clip", ["x", "lo", "hi"])], X, ["y"],
                       {"lo": np.float32(0), "hi": np.float32(6)})
    result = check(model, tmp_path, scale=8.0)
    assert types(result) == ["ReLU", "Power", "ReLU", "Eltwise"]


def test_clip_attributes_opset9(tmp_path):
    model = make_model([node("Clip", ["x"], min=0.0, max=2.5)], X, ["y"], opset=9)
    check(model, tmp_path, scale=4.0)


def test_clip_without_max_is_relu(tmp_path):
    model = make_model([node("Clip", ["x", "lo"])], X, ["y"], {"lo": np.float32(0)})
    assert types(check(model, tmp_path)) == ["ReLU"]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("const", [np.float32(1.7), w(1, 4, 1, 1), w(4, 1, 1)])
def test_binary_with_constant(tmp_path, op, const):
    model = make_model([node(op, ["x", "c"])], X, ["y"], {"c": const})
    assert types(check(model, tmp_path)) == ["Power" if const.size == 1 else "Scale"]


@pytest.mark.parametrize("op", ["Sub", "Add", "Mul"])
def test_binary_constant_first(tmp_path, op):
    model = make_model([node(op, ["c", "x"])], X, ["y"], {"c": w(1, 4, 1, 1)})
    check(model, tmp_path)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_binary_two_feature_maps(tmp_path, op):
    model = make_model([node("Relu", ["x"], ["r"]), node(op, ["x", "r"])], X, ["y"])
    assert types(check(model, tmp_path))[-1] == "Eltwise"


def test_concat(tmp_path):
    model = make_model([node("Relu", ["x"], ["r"]), node("Concat", ["x", "r"], axis=1)],
                       X, ["y"])
    assert types(check(model, tmp_path))[-1] == "Concat"


@pytest.mark.parametrize("op,attrs,size", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 9),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, 8),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 8),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, 8),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1],
                     "count_include_pad": 1}, 8),
])
def test_pool(tmp_path, op, attrs, size):
    model = make_model([node(op, ["x"], **attrs)], {"x": (1, 4, size, size)}, ["y"])
    assert types(check(model, tmp_path)) == ["Pooling"]


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(tmp_path, op):
    assert types(check(make_model([node(op, ["x"])], X, ["y"]), tmp_path)) == ["Pooling"]


def test_flatten_gemm(tmp_path):
    model = make_model([node("Flatten", ["x"], ["f"]),
                        node("Gemm", ["f", "b", "c"], transB=1, alpha=0.5, beta=2.0)],
                       X, ["y"], {"b": w(10, 256), "c": w(10)})
    assert types(check(model, tmp_path)) == ["Flatten", "InnerProduct"]


def test_gemm_not_transposed_and_matmul(tmp_path):
    model = make_model([node("Flatten", ["x"], ["f"]), node("Gemm", ["f", "b"], ["g"]),
                        node("MatMul", ["g", "m"])], X, ["y"], {"b": w(256, 7), "m": w(7, 3)})
    assert types(check(model, tmp_path)) == ["Flatten", "InnerProduct", "InnerProduct"]


def test_reshape_from_folded_shape_arithmetic(tmp_path):
    """Shape -> Gather -> Unsqueeze -> Concat -> Cast -> Reshape, as PyTorch exports x.view."""
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "i0"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax"], ["n1"]), node("Concat", ["n1", "rest"], ["t"], axis=0),
             node("Cast", ["t"], ["t64"], to=7), node("Reshape", ["x", "t64"])]
    model = make_model(nodes, X, ["y"], {"i0": np.int64(0), "ax": np.array([0], np.int64),
                                         "rest": np.array([4, -1], np.int64)},
                       shapes={"y": (1, 4, 64)})
    result = check(model, tmp_path)
    assert types(result) == ["Reshape"]
    assert list(result.graph.layers[0].param.reshape_param.shape.dim) == [0, 4, -1]


def test_transpose_and_head_reshape(tmp_path):
    """YOLO head: Conv -> Reshape (1, 3, 6, H, W) -> Transpose (0, 1, 3, 4, 2)."""
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Reshape", ["c", "s"], ["r"]),
             node("Transpose", ["r"], perm=[0, 1, 3, 4, 2])]
    model = make_model(nodes, X, ["y"], {"w": w(18, 4, 1, 1),
                                         "s": np.array([1, 3, 6, 8, 8], np.int64)})
    assert types(check(model, tmp_path)) == ["Convolution", "Reshape", "Permute"]


def test_transpose_nhwc(tmp_path):
    result = check(make_model([node("Transpose", ["x"], perm=[0, 2, 3, 1])], X, ["y"]), tmp_path)
    assert list(result.graph.layers[0].param.permute_param.order) == [0, 2, 3, 1]


@pytest.mark.parametrize("opset,shape,axis", [(13, (1, 4, 8, 8), 1), (11, (1, 20, 2), 2),
                                              (13, (1, 20, 2), -1)])
def test_softmax(tmp_path, opset, shape, axis):
    model = make_model([node("Softmax", ["x"], axis=axis)], {"x": shape}, ["y"], opset=opset)
    assert types(check(model, tmp_path)) == ["Softmax"]


@pytest.mark.parametrize("opset,attrs", [
    (11, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "floor"}),
    (13, {"mode": "nearest"}),  # half_pixel, round_prefer_floor
    (18, {"mode": "nearest", "coordinate_transformation_mode": "pytorch_half_pixel"}),
])
def test_resize_nearest_2x(tmp_path, opset, attrs):
    scales = np.array([1, 1, 2, 2], np.float32)
    model = make_model([node("Resize", ["x", "roi", "sc"], **attrs)], X, ["y"],
                       {"sc": scales, "roi": np.zeros(0, np.float32)}, opset=opset)
    result = check(model, tmp_path)
    layer = result.graph.layers[0]
    assert layer.type == "Deconvolution" and layer.param.convolution_param.group == 4
    assert np.all(layer.blobs[0] == 1)


def test_resize_by_sizes_and_upsample_opset9(tmp_path):
    sizes = np.array([1, 4, 16, 16], np.int64)
    model = make_model([node("Resize", ["x", "", "", "sz"], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                       X, ["y"], {"sz": sizes}, opset=13)
    check(model, tmp_path)
    up = make_model([node("Upsample", ["x", "sc"], mode="nearest")], X, ["y"],
                    {"sc": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    assert types(check(up, tmp_path)) == ["Deconvolution"]


def test_slice_channels_and_split(tmp_path):
    nodes = [node("Slice", ["x", "st", "en", "ax"], ["s"]),
             node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3])]
    model = make_model(nodes, X, ["s", "a", "b"], {"st": np.array([1], np.int64),
                                                   "en": np.array([3], np.int64),
                                                   "ax": np.array([1], np.int64)}, opset=11)
    assert types(check(model, tmp_path)) == ["Convolution", "Slice"]


def test_identity_and_dropout_are_removed(tmp_path):
    nodes = [node("Identity", ["x"], ["i"]), node("Dropout", ["i"], ["d"]),
             node("Relu", ["d"])]
    assert types(check(make_model(nodes, X, ["y"]), tmp_path)) == ["ReLU"]


def test_silu(tmp_path):
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Sigmoid", ["c"], ["s"]),
             node("Mul", ["c", "s"])]
    result = check(make_model(nodes, X, ["y"], {"w": w(4, 4, 3, 3)}), tmp_path)
    assert types(result) == ["Convolution", "Sigmoid", "Eltwise"]
    assert result.graph.layers[-1].param.eltwise_param.operation == 0  # PROD


def _focus_nodes(opset: int):
    """YOLOv5 Focus: x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]."""
    nodes, weights = [], {"two": np.array([2], np.int64), "big": np.array([10 ** 9], np.int64),
                          "h": np.array([2], np.int64), "w": np.array([3], np.int64),
                          "z": np.array([0], np.int64), "o": np.array([1], np.int64)}
    parts = []
    for k, (dy, dx) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        rows, out = f"r{k}", f"p{k}"
        nodes.append(helper.make_node("Slice", ["x", "z" if dy == 0 else "o", "big", "h", "two"],
                                      [rows], name=f"slice_h{k}"))
        nodes.append(helper.make_node("Slice", [rows, "z" if dx == 0 else "o", "big", "w", "two"],
                                      [out], name=f"slice_w{k}"))
        parts.append(out)
    nodes.append(helper.make_node("Concat", parts, ["f"], axis=1, name="focus_cat"))
    return nodes, weights


def test_focus_becomes_one_convolution(tmp_path):
    nodes, weights = _focus_nodes(13)
    nodes.append(node("Conv", ["f", "cw"], ["y"], pads=[1, 1, 1, 1]))
    weights["cw"] = w(8, 16, 3, 3)
    result = check(make_model(nodes, X, ["y"], weights), tmp_path)
    assert types(result) == ["Convolution", "Convolution"]
    assert result.graph.layers[0].param.convolution_param.stride_h == 2


def test_sppf(tmp_path):
    pool = {"kernel_shape": [5, 5], "strides": [1, 1], "pads": [2, 2, 2, 2]}
    nodes = [node("Conv", ["x", "w1"], ["c"]), node("MaxPool", ["c"], ["p1"], **pool),
             node("MaxPool", ["p1"], ["p2"], **pool), node("MaxPool", ["p2"], ["p3"], **pool),
             node("Concat", ["c", "p1", "p2", "p3"], ["cat"], axis=1),
             node("Conv", ["cat", "w2"])]
    model = make_model(nodes, X, ["y"], {"w1": w(2, 4, 1, 1), "w2": w(4, 8, 1, 1)})
    assert types(check(model, tmp_path)).count("Pooling") == 3


def test_cut_at_named_outputs_with_rename(tmp_path):
    nodes = [node("Conv", ["x", "w"], ["head"]), node("Exp", ["head"], ["y"])]
    model = make_model(nodes, X, ["y"], {"w": w(2, 4, 1, 1)})
    result = check(model, tmp_path, outputs=[{"head": "score"}])
    assert result.outputs == {"head": "score"}
    assert [result.graph.caffe_name(b) for b in result.graph.outputs] == ["score"]


def test_proof_falls_back_to_the_onnx_reference(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    model = make_model([node("Conv", ["x", "w"], pads=[1, 1, 1, 1])], X, ["y"],
                       {"w": w(3, 4, 3, 3)})
    from onnxgen import save

    from nnbuild.onnx import convert
    result = convert(save(model, tmp_path))
    assert result.proof["reference"].startswith("onnx.reference")
    assert result.proof["passed"] and result.proof["max_rel"] <= 1e-4


def test_resize_opset10(tmp_path):
    model = make_model([node("Resize", ["x", "sc"], mode="nearest")], X, ["y"],
                       {"sc": np.array([1, 1, 2, 2], np.float32)}, opset=10)
    assert types(check(model, tmp_path)) == ["Deconvolution"]


@pytest.mark.parametrize("transform,nearest,ok", [
    ("asymmetric", "floor", True), ("asymmetric", "round_prefer_floor", True),
    ("asymmetric", "round_prefer_ceil", False), ("half_pixel", "floor", False),
    ("half_pixel", "round_prefer_ceil", True), ("align_corners", "floor", False),
    ("align_corners", "round_prefer_floor", True),  # at 8 -> 16 it happens to double pixels
    ("tf_half_pixel_for_nn", "floor", True)])
def test_resize_modes_against_onnxruntime(tmp_path, transform, nearest, ok):
    """Which coordinate modes are pixel doubling is decided by the spec formulas; onnxruntime
    agrees whenever they convert, and a refused mode really differs from doubling."""
    from nnbuild.errors import UnsupportedLayerError
    from onnxgen import feeds_for, ort_run

    model = make_model([node("Resize", ["x", "roi", "sc"], mode="nearest",
                             coordinate_transformation_mode=transform, nearest_mode=nearest)],
                       X, ["y"], {"sc": np.array([1, 1, 2, 2], np.float32),
                                  "roi": np.zeros(0, np.float32)}, opset=13)
    if ok:
        check(model, tmp_path)
        return
    with pytest.raises(UnsupportedLayerError, match="is not nearest-neighbour pixel doubling"):
        check(model, tmp_path)
    x = feeds_for(X)["x"]
    doubled = x.repeat(2, axis=2).repeat(2, axis=3)
    assert not np.array_equal(ort_run(model, {"x": x})["y"], doubled)
