"""Reading an ONNX file into a checked ``ModelProto`` with static input shapes.

Everything that makes a file unusable is one ``ModelError`` line here, before any conversion:
unreadable, truncated or non-ONNX bytes, an opset outside ``OPSETS``, external-data tensors
whose files are missing, and input dimensions that are dynamic when no input shape is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnbuild.errors import ModelError

OPSETS = range(9, 19)  # default-domain opsets the converters are written and tested for


def read_model(path: str | os.PathLike) -> Any:
    """The model in ``path``, checked by ``onnx.checker``, external data loaded.

    Raises:
        ModelError: unreadable, truncated or non-ONNX file, opset out of range, or missing
            external data.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ModelError(str(path), "cannot read the ONNX model", got=err.strerror or str(err),
                         hint="check the path (source.onnx in the recipe)") from err
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise _not_onnx(path, f"{len(raw)} bytes that do not decode ({err})") from err
    if not model.graph.node or not model.opset_import:
        raise _not_onnx(path, f"{len(raw)} bytes without graph nodes or opset")
    _check_opset(model, path)
    _load_external(model, path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _not_onnx(path, f"a model the ONNX checker rejects ({first})") from err
    return model


def _not_onnx(path: Path, got: str) -> ModelError:
    return ModelError(str(path), "not a complete ONNX model", expected="an ONNX ModelProto",
                      got=got, hint="the file is truncated or not ONNX; re-download it and "
                                    "check its sha256, or re-export it with torch.onnx.export")


def opset_of(model: Any) -> int:
    """The default-domain ("" or "ai.onnx") opset version of ``model``."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def _check_opset(model: Any, path: Path) -> None:
    version = opset_of(model)
    if version not in OPSETS:
        raise ModelError(str(path), "unsupported ONNX opset",
                         expected=f"opset {OPSETS.start}..{OPSETS.stop - 1}", got=version,
                         hint="re-export with torch.onnx.export(..., opset_version=12), or "
                              "convert it with onnx.version_converter.convert_version")


def _load_external(model: Any, path: Path) -> None:
    from onnx import external_data_helper

    base = path.parent
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = base / info.get("location", "")
        if not location.is_file():
            raise ModelError(str(path), f"external data of tensor {tensor.name!r} is missing",
                             expected=f"the file {location.name!r} next to the model",
                             got="no such file", hint="copy the .data file(s) saved with the "
                             "model next to it, or re-save it with onnx.save(model, path, "
                             "save_as_external_data=False)")
    external_data_helper.load_external_data_for_model(model, str(base))


def graph_inputs(model: Any) -> list[Any]:
    """The real inputs (ValueInfoProto) of the graph: initializers listed as inputs left out."""
    weights = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in weights]


def fix_input_shape(model: Any, input_shape: tuple[int, ...] | None, where: str) -> dict:
    """Give the inputs static shapes (``input_shape`` for a single input) and return them.

    Raises:
        ModelError: a dimension is dynamic and no ``input_shape`` says what it is, or the rank
            of ``input_shape`` differs from the model's input.
    """
    inputs = graph_inputs(model)
    shapes = {}
    for vi in inputs:
        dims = vi.type.tensor_type.shape.dim
        if input_shape is not None and len(inputs) == 1:
            if len(dims) != len(input_shape):
                raise ModelError(f"{where}: input {vi.name!r}", "input.shape has the wrong rank",
                                 expected=f"{len(dims)} dims", got=list(input_shape),
                                 hint="give one value per model input dimension (N, C, H, W)")
            for dim, value in zip(dims, input_shape):
                dim.Clear()
                dim.dim_value = int(value)
        static = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                  for d in dims]
        if None in static:
            shown = [d.dim_param or "?" if s is None else s for d, s in zip(dims, static)]
            raise ModelError(f"{where}: input {vi.name!r}", "the input has a dynamic dimension",
                             expected="static dimensions", got=shown,
                             hint="set input.shape in the recipe (e.g. [1, 3, 640, 640])")
        shapes[vi.name] = tuple(static)
    return shapes
