"""Camera-frame inputs: the recipe's ``input.format`` and the picture the board's NNIE sees.

Formats (recipe ``input.format``, default ``bgr``) and the mapper's ``image_type`` (nnie-facts.md
§2) they need:

| format | image_type | frame bytes (H x W picture) | calibration file |
|---|---|---|---|
| ``bgr`` | 1 | planar B, G, R uint8 (§3) | ``images/<n>.bgr`` |
| ``rgb`` | 1 | planar R, G, B uint8 | ``images/<n>.rgb`` |
| ``gray`` | 1 | one uint8 plane (1-channel network) | ``images/<n>.gray`` |
| ``yuv420sp`` | 3 | NV12: Y plane, then interleaved U, V at half resolution | ``images/<n>.nv12`` |
| ``yvu420sp`` | 3 | NV21: Y plane, then interleaved V, U (HiSilicon VI/VPSS default) | ``images/<n>.nv21`` |

Colour conversion, an assumption (HiSilicon does not publish NNIE's YUV->RGB conversion):
ITU-R BT.601 "video range" (Y 16..235, Cb/Cr 16..240), what HiSilicon's VI/VPSS emit by
default; 4:2:0 chroma is the rounded mean of each 2x2 block when a frame is written and is
replicated over the block when NNIE converts it back (nearest upsampling); the converted picture
is rounded and clipped to U8 before the network's mean and scale (norm_type, §2/§3) apply.
``gray`` frames are full-range BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, as OpenCV's
BGR2GRAY). The simulator feeds the network ``board_view(picture)``: the picture after this round
trip, so the check compares exactly what the board computes on such frames.

``rgb`` frames, an inference from §3 ("with image_type 1 the input must be BGR planar whatever
RGB_order says"): NNIE treats plane 0 as B, so the cfg's ``RGB_order`` is the opposite of the
network's order, which makes NNIE's swap put the planes the way the network was trained.

``input.mean_file``: a per-pixel mean image (Caffe ``.binaryproto``, the mapper's norm_type 1/4
format), subtracted before ``input.scale``; it replaces ``input.mean``.
"""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

from nnbuild.errors import RecipeError

IMAGE_TYPES = {"bgr": 1, "rgb": 1, "gray": 1, "yuv420sp": 3, "yvu420sp": 3}
SUFFIXES = {"bgr": ".bgr", "rgb": ".rgb", "gray": ".gray", "yuv420sp": ".nv12",
            "yvu420sp": ".nv21"}
MEAN_FILE_NAME = "mean.binaryproto"
# BT.601 video range: [Y, Cb, Cr] = OFFSET + FORWARD @ [R, G, B] / 255 (ITU-R BT.601-7, item 2.5.3).
OFFSET = (16.0, 128.0, 128.0)
FORWARD = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
LUMA = (0.299, 0.587, 0.114)


def frame_format(spec, where: str = "") -> str:
    """``input.format`` of an ``InputSpec`` (default ``bgr``), checked against its shape.

    Raises:
        RecipeError: an unknown format, a channel count that does not fit it, or odd sizes for
            4:2:0 frames.
    """
    key = f"{where}: input.format" if where else "input.format"
    fmt = getattr(spec, "format", "bgr")
    if fmt not in IMAGE_TYPES:
        raise RecipeError(key, "unknown camera frame format",
                          expected=" | ".join(IMAGE_TYPES), got=fmt)
    shape = spec.shape
    if shape:
        channels, h, w = (int(d) for d in shape[1:])
        want = 1 if fmt == "gray" else 3
        if channels != want:
            raise RecipeError(key, f"{fmt} frames need a {want}-channel input",
                              expected=f"input.shape [1, {want}, H, W]", got=list(shape),
                              hint="gray is for 1-channel networks, the others for 3")
        if IMAGE_TYPES[fmt] == 3 and (h % 2 or w % 2):
            raise RecipeError(key, "4:2:0 frames need an even width and height",
                              expected="even H and W", got=f"{h} x {w}")
    return fmt


BOARD_FORMATS = {"bgr": "planar uint8 B,G,R (image_type 1)",
                 "rgb": "planar uint8 R,G,B (image_type 1, RGB_order inverted)",
                 "gray": "one uint8 plane (image_type 1)",
                 "yuv420sp": "NV12: Y plane, interleaved U,V at half size (image_type 3)",
                 "yvu420sp": "NV21: Y plane, interleaved V,U at half size (image_type 3)"}


def board_format(spec) -> str:
    """What board code must feed NNIE, in words (the package manifest's ``board_format``)."""
    return BOARD_FORMATS[frame_format(spec)]


def image_type(spec) -> int:
    """The mapper's ``image_type`` for an ``InputSpec`` (1 U8 picture, 3 YUV420SP)."""
    return IMAGE_TYPES[frame_format(spec)]


def mapper_rgb_order(spec, network_order) -> str:
    """``RGB_order`` for the cfg: ``network_order(spec)`` (the order the network was trained on),
    inverted for ``rgb`` frames (see above); ``BGR``, the mapper's default, for gray frames."""
    fmt = frame_format(spec)
    if fmt == "gray":
        return "BGR"
    order = network_order(spec)
    return {"RGB": "BGR", "BGR": "RGB"}[order] if fmt == "rgb" else order


def mapper_norm(spec, norm_type: int) -> tuple[int, str | None]:
    """(norm_type, mean file name) with a per-pixel ``mean_file``: 1, or 4 when scaled (§2);
    ``(norm_type, None)`` unchanged without one."""
    if not spec.mean_file:
        return norm_type, None
    return (4 if norm_type in (3, 5) else 1), MEAN_FILE_NAME


def _yuv(rgb):
    import numpy as np

    m = np.asarray(FORWARD, dtype=np.float64) / 255.0
    return np.asarray(rgb, dtype=np.float64) @ m.T + np.asarray(OFFSET)


def _u8(values):
    import numpy as np

    return np.clip(np.floor(np.asarray(values) + 0.5), 0, 255).astype(np.uint8)


def encode(rgb, fmt: str) -> bytes:
    """The frame bytes of an H x W x 3 RGB uint8 picture in ``fmt`` (see the table above)."""
    import numpy as np

    rgb = np.asarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    if fmt in ("bgr", "rgb"):
        planes = rgb.transpose(2, 0, 1)
        return np.ascontiguousarray(planes[::-1] if fmt == "bgr" else planes).tobytes()
    if fmt == "gray":
        return _u8(rgb.astype(np.float64) @ np.asarray(LUMA)).tobytes()
    yuv = _yuv(rgb)
    chroma = yuv[:, :, 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    if fmt == "yvu420sp":
        chroma = chroma[:, :, ::-1]
    return _u8(yuv[:, :, 0]).tobytes() + _u8(chroma).tobytes()


def decode(data: bytes, fmt: str, hw: Sequence[int]):
    """What NNIE's input sees for frame bytes ``data``: H x W x 3 RGB uint8 (H x W for gray)."""
    import numpy as np

    h, w = (int(v) for v in hw)
    size = h * w * (1 if fmt == "gray" else 3) // (2 if IMAGE_TYPES[fmt] == 3 else 1)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != size:
        raise ValueError(f"decode: a {fmt} frame of {h}x{w} has {size} bytes, got {buf.size}")
    if fmt == "gray":
        return buf.reshape(h, w).copy()
    if fmt in ("bgr", "rgb"):
        planes = buf.reshape(3, h, w)
        return np.ascontiguousarray((planes[::-1] if fmt == "bgr" else planes).transpose(1, 2, 0))
    y = buf[:h * w].reshape(h, w).astype(np.float64)
    chroma = buf[h * w:].reshape(h // 2, w // 2, 2).astype(np.float64)
    if fmt == "yvu420sp":
        chroma = chroma[:, :, ::-1]
    chroma = chroma.repeat(2, axis=0).repeat(2, axis=1)
    yuv = np.concatenate([y[:, :, None], chroma], axis=2) - np.asarray(OFFSET)
    inverse = np.linalg.inv(np.asarray(FORWARD, dtype=np.float64) / 255.0)
    return _u8(yuv @ inverse.T)


def board_view(rgb, fmt: str):
    """The picture after the trip through a ``fmt`` frame (identity for bgr/rgb)."""
    return decode(encode(rgb, fmt), fmt, rgb.shape[:2])


def write_frame(rgb, stem: str | os.PathLike, fmt: str) -> pathlib.Path:
    """Write the ``fmt`` frame of ``rgb`` to ``stem`` + the format's suffix; returns the path."""
    path = pathlib.Path(os.fspath(stem) + SUFFIXES[fmt])
    path.write_bytes(encode(rgb, fmt))
    return path


def read_mean_file(path: str | os.PathLike, shape: Sequence[int]):
    """A Caffe ``.binaryproto`` mean image as a (C, H, W) float32 array of the network input's size.

    Raises:
        RecipeError: unreadable, or not the network input's channels and size.
    """
    import numpy as np
    from google.protobuf.message import DecodeError

    from nnbuild.caffe import caffe_pb2

    c, h, w = (int(d) for d in shape[1:])
    blob = caffe_pb2.BlobProto()
    try:
        blob.ParseFromString(pathlib.Path(path).read_bytes())
    except (OSError, DecodeError) as err:
        raise RecipeError("input.mean_file", f"cannot read the mean image ({err})",
                          expected="a Caffe .binaryproto", got=str(path)) from None
    dims = list(blob.shape.dim) if blob.HasField("shape") else [blob.num, blob.channels,
                                                                 blob.height, blob.width]
    values = np.asarray(blob.data, dtype=np.float32)
    if values.size != c * h * w or [d for d in dims if d != 1][-3:] != [d for d in (c, h, w)
                                                                      if d != 1][-3:]:
        raise RecipeError("input.mean_file", "the mean image does not fit the network input",
                          expected=f"{c} x {h} x {w}", got=" x ".join(map(str, dims)),
                          hint="the mean image must have the network input's channels and size")
    return values.reshape(c, h, w)


def write_mean_file(mean, path: str | os.PathLike) -> pathlib.Path:
    """Write a (C, H, W) mean image as a Caffe ``.binaryproto`` (num 1)."""
    import numpy as np

    from nnbuild.caffe import caffe_pb2

    mean = np.asarray(mean, dtype=np.float32)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([1, *mean.shape])
    blob.data.extend(mean.ravel().tolist())
    path = pathlib.Path(path)
    path.write_bytes(blob.SerializeToString())
    return path


def network_input(rgb, to_tensor, *, color: str = "RGB", mean=(0.0, 0.0, 0.0),
                  scale: float = 1.0, format: str = "bgr", mean_file: str | None = None):
    """The (1, C, H, W) float32 network input for a picture fed as ``format`` frames.

    ``to_tensor`` (``preprocess.to_tensor``, passed in: preprocess calls this module) on the
    board's view of the picture; 1-channel for gray frames; with ``mean_file`` the per-pixel mean
    is subtracted instead of ``mean`` (then ``scale``).
    """
    import numpy as np

    seen = board_view(np.asarray(rgb, dtype=np.uint8), format)
    if format != "gray" and mean_file is None:
        return to_tensor(seen, color=color, mean=mean, scale=scale)
    if format == "gray":
        tensor = seen.astype(np.float32)[None, None]
        if mean_file is None:
            tensor = tensor - np.float32(np.ravel([mean])[0])
    else:
        tensor = to_tensor(seen, color=color, mean=0.0 if mean_file else mean, scale=1.0)
    if mean_file is not None:
        tensor = tensor - read_mean_file(mean_file, tensor.shape)[None]
    return np.ascontiguousarray(tensor * np.float32(scale), dtype=np.float32)


def mean_file_refs(spec) -> dict[str, list]:
    """``{"mean_file": [ref]}`` (a ``RecipeSpec``'s mean image) for the stages whose key must
    cover it; {} without one."""
    ref = spec.input.mean_file
    if not ref:
        return {}
    return {"mean_file": [{"path": ref} if isinstance(ref, str) else ref]}
