"""Every way an ONNX model can fail to convert gives one NNBuildError line (node, op, reason, hint)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import MODELS
from nnbuild.errors import ModelError, NNBuildError, UnsupportedLayerError
from nnbuild.onnx import convert
from onnxgen import make_model, save

X = {"x": (1, 4, 8, 8)}


def node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"n_{op}", **attrs)


def one_line(err: NNBuildError) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match=r"m\.onnx: cannot read the ONNX model; got No such file "
                                         r"or directory\. Hint: check the path"):
        convert(tmp_path / "m.onnx")


def test_truncated_file(tmp_path):
    data = (MODELS / "scrfd-500m" / "scrfd_500m_kps.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelError) as info:
        convert(path)
    assert one_line(info.value).startswith(f"{path}: not a complete ONNX model. Expected an "
                                           "ONNX ModelProto, got ")
    assert "Hint: the file is truncated or not ONNX" in str(info.value)


def test_not_onnx(tmp_path):
    path = tmp_path / "model.prototxt"
    path.write_text('name: "caffe"\nlayer { name: "a" type: "ReLU" }\n')
    with pytest.raises(ModelError, match=r"not a complete ONNX model\. Expected an ONNX "
                                         r"ModelProto, got \d+ bytes"):
        convert(path)


@pytest.mark.parametrize("opset", [8, 19])
def test_opset_out_of_range(tmp_path, opset):
    model = make_model([node("Relu", ["x"])], X, ["y"], opset=opset)
    with pytest.raises(ModelError, match=rf"unsupported ONNX opset\. Expected opset 9\.\.18, "
                                         rf"got {opset}\. Hint: re-export with torch\.onnx"):
        convert(save(model, tmp_path))


def test_missing_external_data(tmp_path):
    model = make_model([node("Conv", ["x", "w"])], X, ["y"],
                       {"w": np.ones((2, 4, 3, 3), np.float32)})
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="ext.onnx.data",
              size_threshold=0)
    convert(path)  # present: converts
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(ModelError) as info:
        convert(path)
    assert one_line(info.value) == (
        f"{path}: external data of tensor 'w' is missing. Expected the file 'ext.onnx.data' "
        "next to the model, got no such file. Hint: copy the .data file(s) saved with the "
        "model next to it, or re-save it with onnx.save(model, path, "
        "save_as_external_data=False).")


def test_dynamic_dimension_needs_input_shape(tmp_path):
    graph = helper.make_graph(
        [node("Relu", ["x"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "h", "w"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = save(model, tmp_path)
    with pytest.raises(ModelError) as info:
        convert(path)
    assert one_line(info.value) == (
        f"{path}: input 'x': the input has a dynamic dimension. Expected static dimensions, "
        "got ['batch', 4, 'h', 'w']. Hint: set input.shape in the recipe (e.g. [1, 3, 640, "
        "640]).")
    assert convert(path, input_shape=(1, 4, 6, 6)).graph.inputs == {"x": (1, 4, 6, 6)}


def test_unsupported_op_names_node_op_and_cut(tmp_path):
    model = make_model([node("Relu", ["x"], ["r"]), node("Exp", ["r"])], X, ["y"])
    with pytest.raises(UnsupportedLayerError) as info:
        convert(save(model, tmp_path))
    assert one_line(info.value) == (
        "node 'n_Exp' (Exp): cannot be converted: NNIE has no layer for this op. Hint: cut the "
        "graph before it: list 'r' in source.outputs and decode the rest on the CPU.")
    assert info.value.exit_code == 2


def test_reshape_touching_batch(tmp_path):
    model = make_model([node("Reshape", ["x", "s"])], X, ["y"],
                       {"s": np.array([4, 64], np.int64)})
    with pytest.raises(UnsupportedLayerError) as info:
        convert(save(model, tmp_path))
    assert one_line(info.value) == (
        "node 'n_Reshape' (Reshape): cannot be converted: it reshapes [1, 4, 8, 8] to [4, 64], "
        "touching the batch dimension. Hint: NNIE Reshape keeps the batch dim (dim: 0 first); "
        "reshape per image, or cut before it.")


@pytest.mark.parametrize("nodes,weights,message", [
    ([node("Conv", ["x", "w"], pads=[0, 0, 1, 1])], {"w": np.ones((2, 4, 2, 2), np.float32)},
     r"node 'n_Conv' \(Conv\): cannot be converted: asymmetric pads \[0, 0, 1, 1\] .*Hint: "
     r"Caffe pads both sides equally"),
    ([node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2])], {},
     r"\(MaxPool\): cannot be converted: ONNX's floor-rounded output \[3, 3\] differs from "
     r"Caffe's ceil-rounded \[4, 4\] at input 8x8\. Hint: NNIE pooling rounds up"),
    ([node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], {},
     r"count_include_pad=0.*Hint: Caffe averages count the padding"),
    ([node("Clip", ["x", "lo", "hi"])], {"lo": np.float32(-1), "hi": np.float32(1)},
     r"\(Clip\): cannot be converted: clip range \[-1, 1\] has no NNIE form\. Hint: only "
     r"Clip\(0, b\)"),
    ([node("Resize", ["x", "", "sc"], mode="nearest")],
     {"sc": np.array([1, 1, 3, 3], np.float32)},
     r"\(Resize\): cannot be converted: it resizes \[1, 4, 8, 8\] to \[1, 4, 24, 24\], not "
     r"exactly 2x"),
    ([node("Resize", ["x", "", "sc"], mode="linear")],
     {"sc": np.array([1, 1, 2, 2], np.float32)},
     r"mode 'linear' \(half_pixel, round_prefer_floor\) is not nearest-neighbour"),
    ([node("Add", ["x", "c"])], {"c": np.ones((8,), np.float32)},
     r"\(Add\): cannot be converted: constant of shape \[8\] does not broadcast per channel"),
    ([node("Transpose", ["x"], perm=[1, 0, 2, 3])], {},
     r"perm \[1, 0, 2, 3\] moves the batch axis"),
    ([node("Slice", ["x", "s", "e", "a"])], {"s": np.array([1], np.int64),
                                             "e": np.array([5], np.int64),
                                             "a": np.array([2], np.int64)},
     r"\(Slice\): cannot be converted: it slices axes \[2\] of \[1, 4, 8, 8\]"),
])
def test_refusals(tmp_path, nodes, weights, message):
    model = make_model(nodes, X, ["y"], weights)
    with pytest.raises(UnsupportedLayerError, match=message) as info:
        convert(save(model, tmp_path))
    one_line(info.value)


def test_broadcasting_two_feature_maps(tmp_path):
    nodes = [node("GlobalAveragePool", ["x"], ["g"]), node("Mul", ["x", "g"])]
    with pytest.raises(UnsupportedLayerError, match=r"it broadcasts \[1, 4, 8, 8\] with "
                                                     r"\[1, 4, 1, 1\]"):
        convert(save(make_model(nodes, X, ["y"]), tmp_path))


def test_unknown_output_name(tmp_path):
    path = save(make_model([node("Relu", ["x"])], X, ["y"]), tmp_path)
    with pytest.raises(ModelError, match=r"m\.onnx: source\.outputs: tensor 'nope' is not in "
                                         r"the model\. Expected the name of a node output"):
        convert(path, outputs=["nope"])


def test_output_feeding_other_layers(tmp_path):
    nodes = [node("Relu", ["x"], ["r"]), node("Sigmoid", ["r"])]
    path = save(make_model(nodes, X, ["y"]), tmp_path)
    with pytest.raises(ModelError, match=r"source\.outputs: output 'r' also feeds other "
                                         r"converted layers\. Expected tensors that end"):
        convert(path, outputs=["r", "y"])


def test_fpn_at_an_input_size_it_cannot_upsample():
    with pytest.raises(UnsupportedLayerError) as info:
        convert(MODELS / "scrfd-500m" / "scrfd_500m_kps.onnx", input_shape=(1, 3, 600, 600),
                outputs=["437"], prove=False)
    assert one_line(info.value) == (
        "node 'Resize_99' (Resize): cannot be converted: it resizes [1, 16, 38, 38] to [1, 16, "
        "75, 75], not exactly 2x. Hint: NNIE upsamples by 2x nearest only: for an FPN, choose "
        "an input size divisible by its largest stride; otherwise resize on the CPU.")


def test_shape_inference_disagreement(tmp_path):
    """A Reshape whose constant target only fits the export's own input size."""
    model = make_model([node("Reshape", ["x", "s"])], X, ["y"],
                       {"s": np.array([1, 4, 64], np.int64)})
    with pytest.raises(NNBuildError) as info:
        convert(save(model, tmp_path), input_shape=(1, 4, 6, 6))
    assert "Hint: the export may only work at its own input size" in one_line(info.value)


def test_sizes_command_refuses_an_onnx_recipe():
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "nnbuild.cli", "sizes", "scrfd-500m-640"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "nnbuild: error: nnbuild sizes scrfd-500m-640: the recipe's source is an ONNX model. "
        "Expected a Caffe source, got source.onnx. Hint: build it, then run nnbuild sizes "
        "--model on cache/v1/out/scrfd-500m-640/fetch/model.prototxt.")


def test_fetch_keys_the_conversion_fields_only_for_onnx_sources():
    from nnbuild.stages import fetch

    onnx_recipe = {"source": {"onnx": {"path": "m.onnx", "sha256": "0" * 64}}}
    assert fetch.reads(onnx_recipe) == ("source.outputs", "input", "patch_check.tolerance")
    assert fetch.reads({"source": {"prototxt": "a", "caffemodel": "b"}}) == ()
