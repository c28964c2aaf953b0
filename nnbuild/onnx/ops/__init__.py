"""ONNX op converters, one module per op family (see ``nnbuild.onnx.registry``)."""
