"""Small ONNX models generated with ``onnx.helper``, and the engine-vs-onnxruntime check."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from nnbuild.engine import run
from nnbuild.onnx import convert

RTOL = 1e-4


def make_model(nodes, inputs: dict, outputs: list, weights: dict | None = None, opset: int = 13,
               shapes: dict | None = None):
    """A checked model: ``inputs`` name -> shape, ``outputs`` names (float; shapes inferred
    unless ``shapes`` gives them)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (weights or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model, data_prop=True).graph.value_info}
    for out in model.graph.output:  # the outputs' types as ONNX shape inference gives them
        if shapes and out.name in shapes:
            out.CopyFrom(helper.make_tensor_value_info(out.name, TensorProto.FLOAT,
                                                       shapes[out.name]))
        else:
            out.CopyFrom(inferred[out.name])
    onnx.checker.check_model(model)
    return model


def save(model, tmp_path, name: str = "m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def ort_run(model, feeds: dict, names=None) -> dict:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # old exports warn about every initializer listed as input
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = names or [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, feeds)))


def feeds_for(inputs: dict, seed: int = 0, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in inputs.items()}


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(a).max(), 1e-30))


def check(model, tmp_path, *, scale: float = 1.0, **kwargs):
    """Convert ``model`` and compare engine and onnxruntime independently of the proof."""
    path = save(model, tmp_path)
    inputs = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
              for vi in model.graph.input}
    feeds = feeds_for(inputs, scale=scale)
    result = convert(path, feeds=[feeds], **kwargs)
    ref = ort_run(model, feeds)
    got = run(result.graph, feeds)
    for tensor, blob in result.outputs.items():
        if tensor in ref:
            err = max_rel(ref[tensor], got[blob])
            assert err <= RTOL, f"{tensor}: engine vs onnxruntime rel err {err:.3g}"
    assert result.proof["passed"] and result.proof["max_rel"] <= RTOL
    return result


def types(result) -> list[str]:
    return [layer.type for layer in result.graph.layers]
