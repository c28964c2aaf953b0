"""ONNX front end: read an ONNX model, fold its shape arithmetic, convert it to NNIE-dialect Caffe.

``convert(onnx_path, *, input_shape=None, outputs=None)`` returns the converted ``Graph`` and a
numeric proof (nnbuild's engine against onnxruntime, or ONNX's reference evaluator when
onnxruntime is not installed). Importing this package is cheap; ``onnx`` and numpy are imported
by the modules doing the work.
"""

from __future__ import annotations


def convert(onnx_path, **kwargs):
    """See ``nnbuild.onnx.conversion.convert``."""
    from nnbuild.onnx.conversion import convert as _convert

    return _convert(onnx_path, **kwargs)
