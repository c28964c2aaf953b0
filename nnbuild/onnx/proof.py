"""Numeric proof of a conversion: nnbuild's engine on the Caffe graph vs an ONNX runtime.

The reference is onnxruntime when it is installed (a test extra, never a runtime dependency),
otherwise ``onnx.reference.ReferenceEvaluator``, the executable spec shipped with the ``onnx``
package (slower, but it implements every op the converters accept). Per output, over every feed:
``max|a-b|`` and ``max|a-b| / max|a|`` with ``a`` the reference, as the patch proofs record.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def with_outputs(model: Any, shapes: dict[str, tuple[int, ...]], names: list[str]) -> Any:
    """A copy of ``model`` whose graph outputs are ``names`` (float tensors of known shape)."""
    from onnx import ModelProto, TensorProto, helper

    cut = ModelProto()
    cut.CopyFrom(model)
    del cut.graph.output[:]
    weights = {t.name for t in cut.graph.initializer}
    inputs = [vi for vi in cut.graph.input if vi.name not in weights]
    del cut.graph.input[:]
    cut.graph.input.extend(inputs)  # old exports list weights as inputs too
    cut.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes.get(n))
                            for n in names)
    return cut


def reference_outputs(model: Any, feeds: dict, names: list[str]) -> tuple[list, str]:
    """Run ``model`` (outputs ``names``) on ``feeds``; returns (arrays, reference label)."""
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: failures are raised below
        try:
            session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                   providers=["CPUExecutionProvider"])
            return session.run(names, feeds), f"onnxruntime {onnxruntime.__version__}"
        except _ort_errors(onnxruntime) as err:
            raise _reference_failed("onnxruntime", err) from err
    import onnx
    from onnx.reference import ReferenceEvaluator

    try:
        return ReferenceEvaluator(model).run(names, feeds), f"onnx.reference {onnx.__version__}"
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise _reference_failed("onnx.reference", err) from err


def _ort_errors(onnxruntime) -> tuple:
    """onnxruntime's exception classes (they derive from Exception directly)."""
    state = onnxruntime.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "RuntimeException",
             "NotImplemented", "EPFail")
    return (RuntimeError, ValueError) + tuple(getattr(state, n) for n in names
                                              if hasattr(state, n))


def _reference_failed(backend: str, err: Exception):
    from nnbuild.errors import ModelError

    text = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return ModelError(f"onnx proof ({backend})", "the ONNX model does not run on the proof input",
                      got=text, hint="check input.shape: the export may only work at its own "
                                     "input size")


def default_feeds(graph) -> list[dict]:
    """One seeded standard-normal input per network input (deterministic proofs)."""
    rng = np.random.default_rng(0)
    return [{name: rng.standard_normal(shape).astype(np.float32)
             for name, shape in graph.inputs.items()}]


def prove(conversion, feeds: list[dict] | None, tolerance: float) -> dict:
    """Compare engine and reference on ``feeds``; the report says ``passed`` or not."""
    from nnbuild.engine import run
    from nnbuild.onnx.fold import infer

    feeds = feeds or default_feeds(conversion.graph)
    tensors = list(conversion.outputs)
    model = conversion.model
    shapes = infer(model, list(model.graph.node), {}, dict(conversion.graph.inputs))
    cut = with_outputs(model, shapes, tensors)
    per_output: dict[str, dict[str, float]] = {}
    images, label = [], ""
    for i, feed in enumerate(feeds):
        ref, label = reference_outputs(cut, feed, tensors)
        got = run(conversion.graph, feed)
        diffs = {conversion.outputs[t]: _diff(r, got.get(conversion.outputs[t]))
                 for t, r in zip(tensors, ref)}
        images.append({"feed": i, "outputs": diffs})
        for name, d in diffs.items():
            agg = per_output.setdefault(name, {"max_abs": 0.0, "max_rel": 0.0})
            agg["max_abs"] = max(agg["max_abs"], d["max_abs"])
            agg["max_rel"] = max(agg["max_rel"], d["max_rel"])
    worst = max((d["max_rel"] for d in per_output.values()), default=0.0)
    return {"reference": label, "tolerance": tolerance, "images": images,
            "outputs": per_output, "max_rel": worst, "passed": worst <= tolerance}


def _diff(a: np.ndarray, b: np.ndarray | None) -> dict[str, float]:
    """``max|a-b|`` and ``max|a-b| / max|a|`` (inf when ``b`` is missing or misshapen)."""
    a = np.asarray(a)
    if b is None or tuple(b.shape) != tuple(a.shape):
        return {"max_abs": float("inf"), "max_rel": float("inf")}
    if not a.size:
        return {"max_abs": 0.0, "max_rel": 0.0}
    diff = float(np.abs(a.astype(np.float64) - b).max())
    scale = float(np.abs(a).max())
    return {"max_abs": diff, "max_rel": diff / scale if scale else diff}
