"""Tests for nnbuild.nnie.calibrate: abs-max ranges, per-picture spread, ranges.json, warnings."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Layer
from nnbuild.nnie.calibrate import CalibrationWarning, Ranges, calibrate, size_warning, weight_ranges


def _net() -> Graph:
    """data -> Convolution c (1x1, 2 outputs) -> Sigmoid -> s; c is stored (read by Sigmoid)."""
    from nnbuild.caffe import caffe_pb2

    conv = caffe_pb2.LayerParameter(name="c", type="Convolution")
    conv.convolution_param.num_output = 2
    conv.convolution_param.kernel_size.append(1)
    conv.convolution_param.bias_term = False
    weight = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32).reshape(2, 2, 1, 1)
    weight.setflags(write=False)
    layers = [Layer("c", "Convolution", ["data"], ["c"], conv, [weight]),
              Layer("sig", "Sigmoid", ["c"], ["s"], caffe_pb2.LayerParameter(name="sig"))]
    return Graph.from_caffe("t", {"data": (1, 2, 2, 2)}, layers)


def _feeds(values):
    return [{"data": np.full((1, 2, 2, 2), v, np.float32)} for v in values]


def test_size_warning_cites_the_guide_below_20():
    assert size_warning(20) is None and size_warning(50) is None
    message = size_warning(19)
    assert "20-50" in message and "nnie-facts.md §2" in message and "got 19" in message


def test_ranges_are_abs_max_over_pictures_with_per_picture_values():
    # c = (x - 2x, 0.5x + 3x) = (-x, 3.5x) for a constant input x: abs-max 3.5|x|
    with pytest.warns(CalibrationWarning, match="only 3 picture"):
        ranges = calibrate(_net(), _feeds([1.0, -2.0, 0.5]), names=["a", "b", "c"])
    assert ranges.per_image == {"c": pytest.approx([3.5, 7.0, 1.75])}
    assert ranges.blobs == {"c": pytest.approx(7.0)}
    assert ranges.weights == {"c": 3.0}
    assert ranges.images == ["a", "b", "c"]


def test_no_warning_with_enough_pictures():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        ranges = calibrate(_net(), _feeds(np.linspace(-1, 1, 20)))
    assert len(ranges.per_image["c"]) == 20 and ranges.images[-1] == "19"


def test_weight_ranges_cover_weighted_layers_only():
    assert weight_ranges(_net()) == {"c": 3.0}


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_calibrate_errors():
    with pytest.raises(ModelError, match=r"calibration: no calibration pictures.*got 0"):
        calibrate(_net(), [])
    with pytest.raises(ModelError, match=r"picture names do not match.*Expected 1, got 2"):
        calibrate(_net(), _feeds([1.0]), names=["a", "b"])
    with pytest.raises(ModelError, match=r"blob 'c': non-finite activation"):
        calibrate(_net(), _feeds([np.inf]))


def test_ranges_json_round_trip_is_byte_stable(tmp_path):
    ranges = Ranges({"x@1": 2.5}, {"x@1": [1.0, 2.5]}, {"conv": 0.75}, ["p.jpg", "q.jpg"])
    ranges.save(tmp_path / "a.json")
    again = Ranges.load(tmp_path / "a.json")
    assert again == ranges
    again.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text())["blobs"]["x@1"]["max"] == 2.5


def test_ranges_json_rejects_other_versions(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"version": 99, "blobs": {}, "weights": {}}))
    with pytest.raises(ModelError, match=r"r.json: unsupported ranges file.*got 99.*calibrate"):
        Ranges.load(tmp_path / "r.json")
