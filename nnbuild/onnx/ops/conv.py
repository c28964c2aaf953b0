"""Conv and ConvTranspose -> Caffe Convolution / Deconvolution (groups, dilation, pads)."""

from __future__ import annotations

from nnbuild.onnx.ops.common import four_d, pair, set_geometry, symmetric_pads, weight
from nnbuild.onnx.registry import converter


@converter("Conv")
def conv(ctx, node, attrs) -> None:
    """Caffe Convolution; weights (O, C/group, kh, kw) are the same layout in both formats."""
    _, c, h, w = four_d(ctx, node.input[0])
    wt = weight(ctx, node.input[1], "weight")
    if wt.ndim != 4:
        raise ctx.refuse(f"weight shape {list(wt.shape)} is not 2-D", "only 2-D Conv converts")
    group = int(attrs.get("group", 1))
    kernel = tuple(wt.shape[2:])
    strides, dilations = pair(attrs.get("strides"), 1), pair(attrs.get("dilations"), 1)
    pad = symmetric_pads(ctx, attrs, (h, w), kernel, strides, dilations)
    blobs = [wt]
    if len(node.input) > 2 and node.input[2]:
        blobs.append(weight(ctx, node.input[2], "bias"))
    param = ctx.add_layer("Convolution", [ctx.blob(node.input[0])], [ctx.output()], blobs)
    cp = param.convolution_param
    cp.num_output, cp.bias_term, cp.group = wt.shape[0], len(blobs) == 2, group
    set_geometry(cp, kernel, strides, pad, dilations)


@converter("ConvTranspose")
def conv_transpose(ctx, node, attrs) -> None:
    """Caffe Deconvolution; weights (C, O/group, kh, kw) in both formats.

    Caffe's output size is ``s * (H - 1) + d * (k - 1) + 1 - 2 * pad``: ONNX's with symmetric
    pads and no ``output_padding``. An ``output_shape`` is accepted when it means exactly that.
    """
    _, c, h, w = four_d(ctx, node.input[0])
    wt = weight(ctx, node.input[1], "weight")
    group = int(attrs.get("group", 1))
    kernel = tuple(wt.shape[2:])
    strides, dilations = pair(attrs.get("strides"), 1), pair(attrs.get("dilations"), 1)
    if any(int(p) for p in attrs.get("output_padding", [])):
        raise ctx.refuse(f"output_padding {list(attrs['output_padding'])}",
                         "Caffe Deconvolution has no output padding: re-export with "
                         "output_padding=0 (kernel = 2 * stride for exact 2x upsampling)")
    pad = symmetric_pads(ctx, {k: v for k, v in attrs.items() if k != "auto_pad"},
                         (h, w), kernel, strides, dilations)
    want = attrs.get("output_shape")
    out_hw = [s * (n - 1) + d * (k - 1) + 1 - 2 * p
              for n, k, s, d, p in zip((h, w), kernel, strides, dilations, pad)]
    if want is not None and list(want)[-2:] != out_hw:
        raise ctx.refuse(f"output_shape {list(want)} differs from Caffe's {out_hw}",
                         "re-export without output_shape, with explicit symmetric pads")
    blobs = [wt]
    if len(node.input) > 2 and node.input[2]:
        blobs.append(weight(ctx, node.input[2], "bias"))
    param = ctx.add_layer("Deconvolution", [ctx.blob(node.input[0])], [ctx.output()], blobs)
    cp = param.convolution_param
    cp.num_output, cp.bias_term, cp.group = wt.shape[1] * group, len(blobs) == 2, group
    set_geometry(cp, kernel, strides, pad, dilations)
