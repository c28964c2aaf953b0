"""nnbuild.caffe.io on bad input: every problem is one ModelError naming the file or layer."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import MODELS

from nnbuild.caffe import caffe_pb2, io
from nnbuild.errors import GraphError, ModelError

DET1 = MODELS / "mtcnn" / "det1"
DET2 = MODELS / "mtcnn" / "det2"


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("cut", [0.5, 0.999, 1000])
def test_truncated_caffemodel(tmp_path, cut):
    raw = DET1.with_suffix(".caffemodel").read_bytes()
    end = int(len(raw) * cut) if cut < 1 else cut
    path = write(tmp_path, "t.caffemodel", raw[:end])
    with pytest.raises(ModelError, match=re.escape(str(path)) + r".*(does not decode|value count "
                       r"does not match|contains no layers).*Hint: .*(truncated|corrupt)"):
        io.load(DET1.with_suffix(".prototxt"), path)


def test_garbage_bytes(tmp_path):
    path = write(tmp_path, "g.caffemodel", np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match=r"g\.caffemodel: caffemodel (does not decode|contains no)"):
        io.read_caffemodel(path)


def test_empty_caffemodel(tmp_path):
    with pytest.raises(ModelError, match=r"contains no layers.*got 0 bytes"):
        io.read_caffemodel(write(tmp_path, "e.caffemodel", b""))


def test_blob_count_disagreeing_with_shape(tmp_path):
    net = caffe_pb2.NetParameter.FromString(DET1.with_suffix(".caffemodel").read_bytes())
    conv1 = next(lp for lp in net.layer if lp.name == "conv1")
    conv1.blobs[0].shape.dim[0] += 1  # 10 -> 11 filters, values for 10 only
    path = write(tmp_path, "s.caffemodel", net.SerializeToString())
    with pytest.raises(ModelError, match=r"layer 'conv1' blob 0: blob value count does not match "
                                         r"its shape. Expected 297 values for shape \[11, 3, 3, 3\]"
                                         r", got 270"):
        io.read_caffemodel(path)


def test_prototxt_syntax_error_has_file_line_col(tmp_path):
    lines = DET1.with_suffix(".prototxt").read_text().splitlines()
    lineno = next(i for i, line in enumerate(lines) if 'type: "Convolution"' in line)
    lines[lineno] = lines[lineno].replace("type:", "tpye:")
    col = lines[lineno].index("tpye") + 1
    path = write(tmp_path, "bad.prototxt", "\n".join(lines))
    with pytest.raises(ModelError, match=rf"^{re.escape(str(path))}:{lineno + 1}:{col}: prototxt "
                                         r"syntax error: .*tpye.*Hint: "):
        io.load(path)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(ModelError, match=rf"{re.escape(str(tmp_path))}/nope.prototxt: cannot read "
                                         r"the prototxt"):
        io.load(tmp_path / "nope.prototxt")
    with pytest.raises(ModelError, match=r"nope.caffemodel: cannot read the caffemodel"):
        io.load(DET1.with_suffix(".prototxt"), tmp_path / "nope.caffemodel")


def test_caffemodel_given_as_prototxt():
    with pytest.raises(ModelError, match=r"(not UTF-8|syntax error)"):
        io.parse_prototxt(DET1.with_suffix(".caffemodel"))


def test_weights_of_another_model_are_refused():
    # MTCNN R-Net layer names with P-Net weights: conv1 has 10 filters, R-Net wants 28.
    with pytest.raises(ModelError, match=r"layer 'conv1' \(Convolution\): weight blob does not "
                                         r"match num_output. Expected num_output 28, got weight "
                                         r"shape \[10, 3, 3, 3\]"):
        io.load(DET2.with_suffix(".prototxt"), DET1.with_suffix(".caffemodel"))


def test_bias_term_disagreeing_with_blob_count(tmp_path):
    text = DET1.with_suffix(".prototxt").read_text().replace(
        "num_output: 10", "num_output: 10\n    bias_term: false", 1)
    path = write(tmp_path, "nobias.prototxt", text)
    with pytest.raises(ModelError, match=r"layer 'conv1' \(Convolution\): wrong number of weight "
                                         r"blobs \(bias_term: false\). Expected 1 blobs, got 2"):
        io.load(path, DET1.with_suffix(".caffemodel"))


def test_v1_layers_are_refused(tmp_path):
    path = write(tmp_path, "v1.prototxt", 'input: "data" input_dim: 1 input_dim: 1 input_dim: 2 '
                 'input_dim: 2 layers { name: "r" type: 18 bottom: "data" top: "r" }')
    with pytest.raises(ModelError, match=r"V1 'layers' format.*upgrade_net_proto_text"):
        io.load(path)


@pytest.mark.parametrize("text, message", [
    ('layer { name: "r" type: "ReLU" bottom: "x" top: "y" }', r"declares no input"),
    ('input: "data" layer { name: "r" type: "ReLU" bottom: "data" top: "y" }',
     r"input 'data' has no shape"),
    ('input: "data" input_dim: 1 input_dim: 3 layer { name: "r" type: "ReLU" bottom: "data" '
     'top: "y" }', r"input_dim count does not match the inputs. Expected 4 input_dim"),
    ('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 } '
     'shape { dim: 1 } shape { dim: 1 } } }', r"layer 'in'.*Expected 1 or 2 shapes, got 3"),
])
def test_bad_input_declarations(tmp_path, text, message):
    with pytest.raises(ModelError, match=message):
        io.load(write(tmp_path, "in.prototxt", text))


def test_graph_errors_name_the_prototxt(tmp_path):
    path = write(tmp_path, "dup.prototxt", 'input: "data" input_shape { dim: 1 } '
                 'layer { name: "r" type: "ReLU" bottom: "data" top: "a" } '
                 'layer { name: "r" type: "ReLU" bottom: "zzz" top: "b" }')
    with pytest.raises(GraphError, match=rf"{re.escape(str(path))}: layer 'r'.*duplicate"):
        io.load(path)
