"""Image preprocessing: decode, resize, colour order, mean/scale -> NCHW float32; planar .bgr.

Two consumers share this module and must see the same pixels:

* the float engine / quantized simulator, which take ``load_tensor`` output (the network's own
  channel order, mean subtracted, then scaled — exactly what the mapper does with norm_type 4/5,
  nnie-facts.md §3);
* the NNIE board and nnie_mapper, which take uint8 *planar BGR* files (``write_planar_bgr``) and
  apply mean/scale and the channel swap themselves from the cfg (nnie-facts.md §2, §3).

Colour convention inside nnbuild: decoded pixels are always RGB uint8 (Pillow's order). The recipe's
``input.color`` names the order the *network was trained on*; only ``load_tensor`` reorders, and the
planar file is BGR whatever the network expects (§3: "with image_type 1 the board input must be BGR
planar whatever RGB_order says"). Keeping one internal order is what makes the RGB/BGR trap of the
SDK scripts impossible here.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np

from nnbuild.errors import FetchError, RecipeError

COLORS = ("RGB", "BGR")
RESIZE_MODES = ("stretch", "letterbox")
# Decoding is refused above this (8000x8000, 192 MB as RGB): network inputs are at most 4096^2,
# and a PNG of 75 bytes can claim 30000x30000 (a decompression bomb).
MAX_PIXELS = 64_000_000


def _hw(shape: Sequence[int]) -> tuple[int, int]:
    """(H, W) from an (H, W) or (N, C, H, W) shape."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 4:
        dims = dims[2:]
    if len(dims) != 2 or min(dims) <= 0:
        raise RecipeError("input.shape", "cannot take an image size from this shape",
                          expected="(H, W) or (1, 3, H, W) with positive sizes", got=tuple(shape))
    return dims


def _pad_rgb(pad_value: int | Sequence[int]) -> tuple[int, int, int]:
    """Padding colour as an RGB triple of ints in 0..255."""
    values = [pad_value] * 3 if np.isscalar(pad_value) else list(pad_value)
    if len(values) != 3 or any(not 0 <= int(v) <= 255 for v in values):
        raise RecipeError("input.pad_value", "padding must be one grey level or an RGB triple",
                          expected="0..255 or [r, g, b]", got=pad_value)
    return tuple(int(v) for v in values)


def letterbox_geometry(src_wh: tuple[int, int], shape: Sequence[int]) -> tuple[float, int, int]:
    """Where ``letterbox`` puts a picture of size ``src_wh`` inside the network input.

    Task decoders use this to map boxes back to the original picture:
    ``x_orig = (x_net - pad_x) / scale``.

    Args:
        src_wh: (width, height) of the decoded picture.
        shape: network input size, (H, W) or (N, C, H, W).

    Returns:
        (scale, pad_x, pad_y): resize factor and the left/top padding in pixels. The picture is
        centred; odd leftover pixels go to the right/bottom.
    """
    height, width = _hw(shape)
    new_w, new_h = _letterbox_size(src_wh, height, width)
    return min(width / src_wh[0], height / src_wh[1]), (width - new_w) // 2, (height - new_h) // 2


def _letterbox_size(src_wh: tuple[int, int], height: int, width: int) -> tuple[int, int]:
    """Size (w, h) of the resized picture inside a letterboxed H x W input."""
    scale = min(width / src_wh[0], height / src_wh[1])
    return (max(1, min(width, round(src_wh[0] * scale))),
            max(1, min(height, round(src_wh[1] * scale))))


def _too_large(path: str | os.PathLike, got: str) -> FetchError:
    return FetchError(str(path), "picture too large to decode", expected=f"at most {MAX_PIXELS} "
                      "pixels", got=got, hint="a decompression bomb or a huge photo: shrink it "
                      "or remove it from the recipe's images")


def _decode(path: str | os.PathLike) -> "Image.Image":
    """Decode a picture to an RGB Pillow image, applying its EXIF orientation.

    The mapper reads calibration pictures with OpenCV, whose ``imread`` honours EXIF orientation
    too, so both see the picture upright.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise _too_large(path, f"{img.width}x{img.height} pixels")
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except Image.DecompressionBombError as err:  # Pillow's own limit, hit while opening
        raise _too_large(path, str(err).split(",")[0]) from None
    except FileNotFoundError:
        raise FetchError(str(path), "image file not found",
                         hint="check the recipe's image list") from None
    except (UnidentifiedImageError, OSError) as err:
        # Name no path in the text: ``path`` is often the store copy, which the caller renames
        # to the recipe's file (build/origins.py); Pillow's message would repeat the copy.
        size = os.path.getsize(path)
        got = ("an empty file" if size == 0 else f"{size} bytes in no format Pillow reads"
               if isinstance(err, UnidentifiedImageError) else f"{size} bytes ({err})")
        raise FetchError(str(path), "cannot decode the picture", expected="a JPEG/PNG/BMP "
                         "picture", got=got, hint="replace the file with a readable picture "
                         "or remove it from the recipe's images") from None


def load_uint8(path: str | os.PathLike, shape: Sequence[int], *, resize: str = "stretch",
               pad_value: int | Sequence[int] = 0) -> np.ndarray:
    """Decode and resize a picture to the network's input size.

    Resizing uses Pillow's bilinear filter (which anti-aliases when shrinking, unlike OpenCV's
    INTER_LINEAR); a picture that already has the right size is not resampled at all.

    Args:
        path: picture file.
        shape: network input size, (H, W) or (N, C, H, W).
        resize: ``"stretch"`` (ignore aspect ratio) or ``"letterbox"`` (keep it, pad with
            ``pad_value``, picture centred — see ``letterbox_geometry``).
        pad_value: letterbox padding, a grey level or an RGB triple.

    Returns:
        H x W x 3 uint8 array in RGB order.
    """
    from PIL import Image

    if resize not in RESIZE_MODES:
        raise RecipeError("input.resize", "unknown resize mode", expected=" | ".join(RESIZE_MODES),
                          got=resize)
    height, width = _hw(shape)
    img = _decode(path)
    if img.size == (width, height):
        return np.asarray(img, dtype=np.uint8).copy()
    if resize == "stretch":
        return np.asarray(img.resize((width, height), Image.BILINEAR), dtype=np.uint8).copy()
    fill = _pad_rgb(pad_value)
    new_w, new_h = _letterbox_size(img.size, height, width)
    canvas = Image.new("RGB", (width, height), fill)
    offset = ((width - new_w) // 2, (height - new_h) // 2)  # centred, as letterbox_geometry says
    canvas.paste(img.resize((new_w, new_h), Image.BILINEAR), offset)
    return np.asarray(canvas, dtype=np.uint8).copy()


def _channel_mean(mean: float | Sequence[float]) -> np.ndarray:
    """Mean as a (3, 1, 1) float32 array in the network's channel order."""
    values = np.asarray([mean] if np.isscalar(mean) else list(mean), dtype=np.float32)
    if values.shape == (1,):
        values = np.repeat(values, 3)
    if values.shape != (3,):
        raise RecipeError("input.mean", "mean must be one value or one per channel",
                          expected="a number or 3 numbers", got=mean)
    return values.reshape(3, 1, 1)


def to_tensor(rgb: np.ndarray, *, color: str = "RGB", mean: float | Sequence[float] = 0.0,
              scale: float = 1.0) -> np.ndarray:
    """Turn an H x W x 3 RGB uint8 picture into the network's (1, 3, H, W) float32 input.

    Order of operations is the mapper's for norm_type 4/5: subtract the mean, *then* multiply by
    data_scale (nnie-facts.md §3; the SDK's conversion script does it the other way round).

    Args:
        rgb: H x W x 3 uint8, RGB order (as returned by ``load_uint8``).
        color: channel order the network was trained on, ``"RGB"`` or ``"BGR"``.
        mean: per-channel mean in the *network's* channel order, or one value (or a one-item
            list) for all channels.
        scale: one multiplier for all channels (NNIE's data_scale is a scalar).

    Returns:
        float32 array of shape (1, 3, H, W).
    """
    if color not in COLORS:
        raise RecipeError("input.color", "unknown channel order", expected=" | ".join(COLORS),
                          got=color, hint="state the order the network was trained on")
    if not np.isscalar(scale) or not np.isfinite(scale) or scale <= 0:
        raise RecipeError("input.scale", "scale must be one positive number (NNIE data_scale)",
                          expected="a number > 0", got=scale)
    chw = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
    if color == "BGR":
        chw = chw[::-1]
    out = (chw - _channel_mean(mean)) * np.float32(scale)
    return np.ascontiguousarray(out[None], dtype=np.float32)


def load_tensor(path: str | os.PathLike, shape: Sequence[int], *, color: str = "RGB",
                mean: float | Sequence[float] = (0, 0, 0), scale: float = 1.0,
                resize: str = "stretch", pad_value: int | Sequence[int] = 0) -> np.ndarray:
    """Decode, resize and normalise one picture: ``load_uint8`` followed by ``to_tensor``.

    Args:
        path: picture file.
        shape: network input size, (H, W) or (N, C, H, W).
        color: channel order the network expects (the recipe's ``input.color``).
        mean: per-channel mean in the network's channel order (recipe ``input.mean``).
        scale: multiplier applied after the mean (recipe ``input.scale``).
        resize: ``"stretch"`` or ``"letterbox"``.
        pad_value: letterbox padding.

    Returns:
        float32 array of shape (1, 3, H, W).
    """
    rgb = load_uint8(path, shape, resize=resize, pad_value=pad_value)
    return to_tensor(rgb, color=color, mean=mean, scale=scale)


def write_planar_bgr(rgb_uint8: np.ndarray, path: str | os.PathLike) -> pathlib.Path:
    """Write the NNIE board/simulator input file: all B, then all G, then all R, uint8, no padding.

    The file is BGR planar whatever order the network was trained on (nnie-facts.md §3); the
    mapper's ``RGB_order`` key tells it whether to swap.

    Args:
        rgb_uint8: H x W x 3 uint8 array in RGB order.
        path: destination file (conventionally ``.bgr``).

    Returns:
        The path written.
    """
    arr = np.asarray(rgb_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"write_planar_bgr: expected H x W x 3 uint8, got {arr.shape} {arr.dtype}")
    path = pathlib.Path(path)
    path.write_bytes(np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1)).tobytes())
    return path


def read_planar_bgr(path: str | os.PathLike, shape: Sequence[int]) -> np.ndarray:
    """Read a planar BGR file back as an H x W x 3 RGB uint8 array (``write_planar_bgr`` inverse)."""
    height, width = _hw(shape)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size != 3 * height * width:
        raise FetchError(str(path), "planar .bgr file has the wrong size",
                         expected=f"{3 * height * width} bytes (3 x {height} x {width})",
                         got=f"{data.size} bytes", hint="check input.shape")
    return np.ascontiguousarray(data.reshape(3, height, width)[::-1].transpose(1, 2, 0))


def write_image_list(paths: Iterable[str | os.PathLike], list_path: str | os.PathLike, *,
                     relative_to: str | os.PathLike | None = None) -> pathlib.Path:
    """Write the mapper's ``image_list``: one picture path per line, in the given order.

    Args:
        paths: picture files.
        list_path: the list file to write.
        relative_to: if given, write each path relative to this directory with ``/`` separators
            (so a package can be unpacked anywhere; the mapper resolves them from its cwd).

    Returns:
        The list file path.
    """
    lines = []
    for item in paths:
        text = os.path.relpath(item, relative_to) if relative_to is not None else os.fspath(item)
        text = pathlib.Path(text).as_posix()
        if "\n" in text or "\r" in text or not text.strip():
            raise ValueError(f"write_image_list: unusable path {text!r}")
        lines.append(text)
    if not lines:
        raise RecipeError("calibration.images", "no calibration pictures", expected="at least 1",
                          got=0, hint="the guide recommends 20-50 typical pictures")
    list_path = pathlib.Path(list_path)
    list_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list_path


@dataclasses.dataclass(frozen=True)
class NetworkInput:
    """The recipe's ``input`` resolved against a model: which blob, what size, which pixels.

    Built from ``recipe.spec.InputSpec`` and the graph by ``of``; every stage and command that
    turns pictures into network inputs goes through it, so they all see the same pixels.
    """

    name: str
    shape: tuple[int, ...]
    color: str
    mean: tuple[float, ...]
    scale: float
    resize: str
    pad_value: float
    format: str = "bgr"              # camera frames (nnbuild.board.frames)
    mean_file: str | None = None     # per-pixel mean image (.binaryproto path)

    @classmethod
    def of(cls, spec, graph) -> "NetworkInput":
        """``spec`` is an ``InputSpec``; ``graph`` supplies the input name and shape by default.

        Raises:
            RecipeError: ``input.name`` does not name the model's single input.
        """
        name = spec.name or next(iter(graph.inputs))
        if name not in graph.inputs or len(graph.inputs) != 1:
            raise RecipeError("input.name", "does not name the model's single input",
                              expected=list(graph.inputs), got=name,
                              hint="nnbuild supports one image input per network")
        mean_file = spec.mean_file["path"] if isinstance(spec.mean_file, dict) else spec.mean_file
        return cls(name, tuple(spec.shape or graph.inputs[name]), spec.color, tuple(spec.mean),
                   float(spec.scale), spec.resize, spec.pad_value, spec.format, mean_file)

    def uint8(self, path: str | os.PathLike) -> np.ndarray:
        """The picture decoded and resized (H x W x 3 RGB uint8)."""
        return load_uint8(path, self.shape, resize=self.resize, pad_value=self.pad_value)

    def tensor(self, rgb: np.ndarray) -> np.ndarray:
        """A ``uint8`` picture normalised into the network's (1, 3, H, W) float32 input; with
        camera frames or a mean image, as the board sees it (``nnbuild.board.frames``)."""
        if self.format != "bgr" or self.mean_file is not None:
            from nnbuild.board.frames import network_input

            return network_input(rgb, to_tensor, color=self.color, mean=self.mean,
                                 scale=self.scale, format=self.format, mean_file=self.mean_file)
        return to_tensor(rgb, color=self.color, mean=self.mean, scale=self.scale)

    def feed(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """``{input blob: tensor}`` for one picture."""
        return {self.name: self.tensor(self.uint8(path))}
