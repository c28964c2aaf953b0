"""MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> Caffe Pooling.

ONNX rounds the pooled size down unless ``ceil_mode=1``; Caffe always rounds up (and the .wk
assumes it, nnie-facts.md §5). A pool converts only when Caffe's ceil size equals ONNX's size at
the converted input shape: then both read the same windows. Averages must also count the same
cells: Caffe counts padding (within ``[-pad, size + pad)``), so a padded AveragePool needs
``count_include_pad=1``.
"""

from __future__ import annotations

from nnbuild.engine.pooling import pool_out_size
from nnbuild.onnx.ops.common import four_d, pair, symmetric_pads
from nnbuild.onnx.registry import converter

MAX, AVE = 0, 1  # PoolingParameter.PoolMethod


def _pool(ctx, node, attrs, method: int) -> None:
    _, _, h, w = four_d(ctx, node.input[0])
    if len([o for o in node.output if o]) > 1:
        raise ctx.refuse("it returns argmax indices", "NNIE pooling returns values only")
    kernel = pair(attrs.get("kernel_shape"), 1)
    strides = pair(attrs.get("strides"), 1)
    if pair(attrs.get("dilations"), 1) != (1, 1):
        raise ctx.refuse(f"dilations {list(attrs['dilations'])}", "Caffe pooling is undilated")
    pad = symmetric_pads(ctx, attrs, (h, w), kernel, strides)
    onnx_hw = tuple(ctx.shape(node.output[0])[2:])
    caffe_hw = tuple(pool_out_size(n, k, s, p, True) for n, k, s, p in zip((h, w), kernel,
                                                                           strides, pad))
    if onnx_hw != caffe_hw:
        mode = "ceil" if attrs.get("ceil_mode", 0) else "floor"
        raise ctx.refuse(f"ONNX's {mode}-rounded output {list(onnx_hw)} differs from Caffe's "
                         f"ceil-rounded {list(caffe_hw)} at input {h}x{w}",
                         "NNIE pooling rounds up: choose an input size where both agree, or "
                         "export the pool with ceil_mode=True")
    if method == AVE and any(pad) and not attrs.get("count_include_pad", 0):
        raise ctx.refuse("a padded average that excludes the padding (count_include_pad=0)",
                         "Caffe averages count the padding: export with count_include_pad=True "
                         "or without padding")
    pp = ctx.add_layer("Pooling", [ctx.blob(node.input[0])], [ctx.output()]).pooling_param
    pp.pool = method
    pp.kernel_h, pp.kernel_w = kernel
    pp.stride_h, pp.stride_w = strides
    pp.pad_h, pp.pad_w = pad


@converter("MaxPool")
def max_pool(ctx, node, attrs) -> None:
    _pool(ctx, node, attrs, MAX)


@converter("AveragePool")
def average_pool(ctx, node, attrs) -> None:
    _pool(ctx, node, attrs, AVE)


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx, node, attrs) -> None:
    four_d(ctx, node.input[0])
    pp = ctx.add_layer("Pooling", [ctx.blob(node.input[0])], [ctx.output()]).pooling_param
    pp.pool = AVE if node.op_type == "GlobalAveragePool" else MAX
    pp.global_pooling = True
