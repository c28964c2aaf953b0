"""Denormal flushing around a forward pass (nnbuild/engine/fpenv.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.caffe import caffe_pb2
from nnbuild.engine import fpenv, run
from nnbuild.ir import Graph, Layer

pytestmark = pytest.mark.skipif(not fpenv.supported(), reason="FTZ/DAZ is set on x86-64 glibc only")

TINY = np.float32(1e-38)  # a normal number; half of it is denormal


def half_of_tiny():
    return np.multiply(np.array([TINY]), np.float32(0.5))[0]


def test_denormal_results_are_zero_inside_and_restored_after():
    assert half_of_tiny() != 0
    with fpenv.flush_denormals():
        assert half_of_tiny() == 0
        assert np.array([5e-39], np.float32)[0] * np.float32(1) == 0  # DAZ: inputs too
    assert half_of_tiny() != 0


def test_a_forward_pass_flushes_and_leaves_the_callers_environment_alone():
    half = np.full(2, 0.5, np.float32)
    half.flags.writeable = False
    scale = Layer("half", "Scale", ["data"], ["out"], caffe_pb2.LayerParameter(), [half])
    g = Graph.from_caffe("t", {"data": (1, 2, 1, 1)}, [scale])
    x = np.array([1e-38, 1.0], np.float32).reshape(1, 2, 1, 1)
    out = run(g, {"data": x})["out"].reshape(-1)
    assert out[0] == 0 and out[1] == 0.5  # 5e-39 is denormal: flushed inside the engine
    assert half_of_tiny() != 0  # while the caller keeps gradual underflow


def test_nesting_restores_the_outer_state():
    with fpenv.flush_denormals():
        with fpenv.flush_denormals():
            pass
        assert half_of_tiny() == 0
    assert half_of_tiny() != 0
