"""The committed caffe_pb2.py is exactly what the pinned generator makes from caffe.proto."""

from __future__ import annotations

import importlib.util

import pytest

from nnbuild.caffe import codegen


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None,
                    reason="grpcio-tools==1.85.1 (the pinned generator, test extra) not installed")
def test_generated_module_has_not_drifted(tmp_path):
    fresh = codegen.generate(tmp_path).read_bytes()
    committed = (codegen.PACKAGE_DIR / "caffe_pb2.py").read_bytes()
    assert fresh == committed, "caffe_pb2.py is stale: run `python -m nnbuild.caffe.codegen`"


def test_schema_has_wire_numbers_of_bvlc_and_ssd():
    from nnbuild.caffe import caffe_pb2
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    numbers = {name: fields[name].number for name in (
        "convolution_param", "batch_norm_param", "input_param", "crop_param", "scale_param",
        "permute_param", "prior_box_param", "detection_output_param", "norm_param", "blobs")}
    assert numbers == {"convolution_param": 106, "batch_norm_param": 139, "input_param": 143,
                       "crop_param": 144, "scale_param": 142, "permute_param": 202,
                       "prior_box_param": 203, "detection_output_param": 204, "norm_param": 206,
                       "blobs": 7}
    net = caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name
    assert (net["layer"].number, net["layers"].number, net["input_dim"].number) == (100, 2, 4)
