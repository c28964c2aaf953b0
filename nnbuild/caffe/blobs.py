"""Conversion between Caffe ``BlobProto`` messages and read-only float32 numpy arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnbuild.caffe import caffe_pb2
from nnbuild.errors import ModelError

_LEGACY = ("num", "channels", "height", "width")
_DATA_FIELDS = ("data", "diff", "double_data", "double_diff")


def blob_shape(blob: Any) -> tuple[int, ...]:
    """The shape a blob declares: its ``BlobShape``, else the legacy 4-D num/channels/h/w.

    A blob that declares neither is taken as flat (its value count).
    """
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if any(blob.HasField(f) for f in _LEGACY):
        return tuple(int(getattr(blob, f)) for f in _LEGACY)
    return (blob_count(blob),)


def blob_count(blob: Any) -> int:
    """Number of values stored (``data``, or ``double_data`` when only that is present)."""
    return len(blob.data) if len(blob.data) or not len(blob.double_data) else len(blob.double_data)


def check_blob(blob: Any, where: str) -> None:
    """Raise ModelError unless the stored value count matches the declared shape.

    Caffe itself refuses such a blob; here it is the usual sign of a truncated or corrupt file.
    """
    shape = blob_shape(blob)
    if any(d < 0 for d in shape):
        raise ModelError(where, "blob shape has a negative dimension", expected="dims >= 0",
                         got=list(shape), hint="the caffemodel is corrupt; re-download it")
    if blob_count(blob) != math.prod(shape):
        raise ModelError(where, "blob value count does not match its shape",
                         expected=f"{math.prod(shape)} values for shape {list(shape)}",
                         got=blob_count(blob),
                         hint="the caffemodel is truncated or corrupt; re-download it and "
                              "check its sha256")


def array_from_blob(blob: Any, where: str) -> np.ndarray:
    """A read-only float32 array of the blob's values in its declared shape.

    Legacy 4-D blobs keep their 4-D shape (a bias of N values is 1 x 1 x 1 x N), as in Caffe.
    ``double_data`` is used when ``data`` is empty (and converted to float32, as Caffe does).
    """
    check_blob(blob, where)
    values = blob.data if len(blob.data) or not len(blob.double_data) else blob.double_data
    array = np.array(values, dtype=np.float32).reshape(blob_shape(blob))
    array.setflags(write=False)
    return array


def header_from_blob(blob: Any) -> Any:
    """A copy of the blob without its values: what ``blob_from_array`` needs to restore its form."""
    header = caffe_pb2.BlobProto()
    header.CopyFrom(blob)
    for field in _DATA_FIELDS:
        header.ClearField(field)
    return header


def blob_from_array(array: np.ndarray, header: Any = None) -> Any:
    """A BlobProto holding ``array`` as float ``data``.

    Args:
        array: the values; any float dtype, written as float32.
        header: the original blob's header (``header_from_blob``); reused, including its shape
            style (legacy 4-D or BlobShape) and unknown fields, when its shape equals
            ``array.shape``. Otherwise the blob gets a fresh ``BlobShape``.
    """
    blob = caffe_pb2.BlobProto()
    shape = tuple(int(d) for d in np.shape(array))
    if header is not None and blob_shape_declared(header) == shape:
        blob.CopyFrom(header)
    else:
        blob.shape.dim.extend(shape)
    blob.data.extend(np.asarray(array, dtype=np.float32).ravel().tolist())
    return blob


def blob_shape_declared(header: Any) -> tuple[int, ...] | None:
    """The shape a header declares, or None when it declares none (flat blob)."""
    if header.HasField("shape") or any(header.HasField(f) for f in _LEGACY):
        return blob_shape(header)
    return None
