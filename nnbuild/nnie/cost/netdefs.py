"""Shape-only graphs of the published networks that have no public NNIE weights.

The cost model is validated on board measurements of YOLOv5s-416, the SDK's YOLOv3-416 and its
VGG16-SSD300 (../shared/docs/latency-facts.md). Latency does not depend on weight values, so these
nets are built here by code from their public architectures, as Caffe graphs without weights
(``nnbuild.shapes.stats`` counts their parameters from the shapes):

* **YOLOv5s** (ultralytics v6.0, ``models/yolov5s.yaml``, depth 0.33, width 0.50): the Focus
  layer replaced by the equivalent 6x6 stride-2 convolution (what v6.0 itself did, and what the
  Hi3559AV100 port did by hand), SiLU as ReLU (NNIE has no SiLU; activations fuse into the
  convolution and cost no MACs), nearest 2x upsampling as a grouped 2x2 Deconvolution (the Caffe
  form NNIE runs, as in RetinaFace). Published: 16.5 GFLOPs at 640 (2 FLOPs per MAC).
* **YOLOv3-416** (darknet ``cfg/yolov3.cfg``): Darknet-53 with its three heads; darknet prints
  65.86 BFLOPs at 416.
* **VGG16-SSD300** (weiliu89/caffe ``ssd_pascal.py``, 21 classes as in the SDK sample): VGG16
  with ceil-mode pooling, dilated fc6, the extra layers and the six loc/conf heads; PriorBox and
  DetectionOutput run on the CPU and are left out.

Every builder returns an ``nnbuild.ir.Graph`` whose input is 1x3xHxW.
"""

from __future__ import annotations

from nnbuild.ir import Graph, Layer


class _Net:
    """Accumulates Caffe layers; each method adds one and returns its top blob name."""

    def __init__(self, name: str, shape: tuple[int, int, int, int]):
        self.name, self.shape, self.layers = name, shape, []

    def _add(self, name: str, type_: str, bottoms: list[str], field: str | None = None,
             **values) -> str:
        from nnbuild.caffe import caffe_pb2

        param = caffe_pb2.LayerParameter(name=name, type=type_, bottom=bottoms, top=[name])
        if field:
            message = getattr(param, field)
            for key, value in values.items():
                if isinstance(value, (list, tuple)):
                    getattr(message, key).extend(value)
                else:
                    setattr(message, key, value)
        self.layers.append(Layer(name, type_, list(bottoms), [name], param))
        return name

    def conv(self, name: str, bottom: str, out: int, k: int, s: int = 1, p: int | None = None,
             *, group: int = 1, dilation: int = 1, relu: bool = True) -> str:
        """Convolution (+ ReLU in place); ``p`` defaults to 'same' padding for odd ``k``."""
        pad = (k // 2) * dilation if p is None else p
        top = self._add(name, "Convolution", [bottom], "convolution_param", num_output=out,
                        kernel_size=[k], stride=[s], pad=[pad], group=group,
                        dilation=[dilation] if dilation > 1 else [])
        if relu:
            self.layers.append(Layer(name + "_relu", "ReLU", [top], [top],
                                     _plain(name + "_relu", "ReLU", top)))
        return top

    def up2(self, name: str, bottom: str, channels: int) -> str:
        """Nearest 2x upsampling as NNIE runs it: a grouped 2x2 stride-2 Deconvolution."""
        return self._add(name, "Deconvolution", [bottom], "convolution_param",
                         num_output=channels, kernel_size=[2], stride=[2], group=channels,
                         bias_term=False)

    def pool(self, name: str, bottom: str, k: int, s: int, p: int = 0) -> str:
        """Max pooling (Caffe rounds the output size up)."""
        from nnbuild.caffe import caffe_pb2

        return self._add(name, "Pooling", [bottom], "pooling_param",
                         pool=caffe_pb2.PoolingParameter.MAX, kernel_size=k, stride=s, pad=p)

    def concat(self, name: str, bottoms: list[str]) -> str:
        return self._add(name, "Concat", bottoms)

    def add(self, name: str, a: str, b: str) -> str:
        return self._add(name, "Eltwise", [a, b])

    def normalize(self, name: str, bottom: str) -> str:
        return self._add(name, "Normalize", [bottom])

    def graph(self) -> Graph:
        return Graph.from_caffe(self.name, {"data": self.shape}, self.layers,
                                input_style="legacy")


def _plain(name: str, type_: str, blob: str):
    from nnbuild.caffe import caffe_pb2

    return caffe_pb2.LayerParameter(name=name, type=type_, bottom=[blob], top=[blob])


# -- YOLOv5s (v6.0) -------------------------------------------------------------------------------

def _c3(net: _Net, name: str, x: str, cin: int, out: int, n: int, shortcut: bool) -> str:
    """ultralytics C3: two 1x1 branches of out/2, n bottlenecks on one, concat, 1x1 to out."""
    hidden = out // 2
    a = net.conv(f"{name}_cv1", x, hidden, 1)
    for i in range(n):
        b = net.conv(f"{name}_m{i}_cv1", a, hidden, 1)
        b = net.conv(f"{name}_m{i}_cv2", b, hidden, 3)
        a = net.add(f"{name}_m{i}_add", a, b) if shortcut else b
    side = net.conv(f"{name}_cv2", x, hidden, 1)
    return net.conv(f"{name}_cv3", net.concat(f"{name}_cat", [a, side]), out, 1)


def _sppf(net: _Net, name: str, x: str, cin: int, out: int) -> str:
    hidden = cin // 2
    a = net.conv(f"{name}_cv1", x, hidden, 1)
    p1 = net.pool(f"{name}_p1", a, 5, 1, 2)
    p2 = net.pool(f"{name}_p2", p1, 5, 1, 2)
    p3 = net.pool(f"{name}_p3", p2, 5, 1, 2)
    return net.conv(f"{name}_cv2", net.concat(f"{name}_cat", [a, p1, p2, p3]), out, 1)


def yolov5s(size: int = 416, classes: int = 80) -> Graph:
    """YOLOv5s v6.0 at ``size`` x ``size`` (Focus as a 6x6 stride-2 conv; see module docstring)."""
    net = _Net(f"yolov5s-{size}", (1, 3, size, size))
    x = net.conv("b0", "data", 32, 6, 2, 2)
    x = net.conv("b1", x, 64, 3, 2)
    x = _c3(net, "b2", x, 64, 64, 1, True)
    x = net.conv("b3", x, 128, 3, 2)
    p3 = _c3(net, "b4", x, 128, 128, 2, True)
    x = net.conv("b5", p3, 256, 3, 2)
    p4 = _c3(net, "b6", x, 256, 256, 3, True)
    x = net.conv("b7", p4, 512, 3, 2)
    x = _c3(net, "b8", x, 512, 512, 1, True)
    x = _sppf(net, "b9", x, 512, 512)
    h10 = net.conv("h10", x, 256, 1)
    x = net.concat("h12", [net.up2("h11", h10, 256), p4])
    x = _c3(net, "h13", x, 512, 256, 1, False)
    h14 = net.conv("h14", x, 128, 1)
    x = net.concat("h16", [net.up2("h15", h14, 128), p3])
    out3 = _c3(net, "h17", x, 256, 128, 1, False)
    x = net.concat("h19", [net.conv("h18", out3, 128, 3, 2), h14])
    out4 = _c3(net, "h20", x, 256, 256, 1, False)
    x = net.concat("h22", [net.conv("h21", out4, 256, 3, 2), h10])
    out5 = _c3(net, "h23", x, 512, 512, 1, False)
    for i, blob in enumerate((out3, out4, out5)):
        net.conv(f"detect{i}", blob, 3 * (classes + 5), 1, relu=False)
    return net.graph()


# -- YOLOv3 (darknet) -----------------------------------------------------------------------------

def _darknet_stage(net: _Net, name: str, x: str, out: int, blocks: int) -> str:
    x = net.conv(f"{name}_down", x, out, 3, 2)
    for i in range(blocks):
        y = net.conv(f"{name}_r{i}_a", x, out // 2, 1)
        y = net.conv(f"{name}_r{i}_b", y, out, 3)
        x = net.add(f"{name}_r{i}_add", x, y)
    return x


def _yolo3_head(net: _Net, name: str, x: str, width: int, outs: int) -> tuple[str, str]:
    """Five alternating 1x1/3x3 convs (the route), then 3x3 and the 1x1 detection conv."""
    for i in range(5):
        x = net.conv(f"{name}_c{i}", x, width if i % 2 == 0 else 2 * width, 1 if i % 2 == 0 else 3)
    y = net.conv(f"{name}_c5", x, 2 * width, 3)
    return x, net.conv(f"{name}_out", y, outs, 1, relu=False)


def yolov3(size: int = 416, classes: int = 80) -> Graph:
    """YOLOv3 (darknet yolov3.cfg) at ``size`` x ``size``."""
    net = _Net(f"yolov3-{size}", (1, 3, size, size))
    x = net.conv("conv0", "data", 32, 3)
    x = _darknet_stage(net, "s1", x, 64, 1)
    x = _darknet_stage(net, "s2", x, 128, 2)
    c36 = _darknet_stage(net, "s3", x, 256, 8)
    c61 = _darknet_stage(net, "s4", c36, 512, 8)
    x = _darknet_stage(net, "s5", c61, 1024, 4)
    outs = 3 * (classes + 5)
    route, _ = _yolo3_head(net, "y1", x, 512, outs)
    x = net.conv("r1", route, 256, 1)
    x = net.concat("cat1", [net.up2("up1", x, 256), c61])
    route, _ = _yolo3_head(net, "y2", x, 256, outs)
    x = net.conv("r2", route, 128, 1)
    x = net.concat("cat2", [net.up2("up2", x, 128), c36])
    _yolo3_head(net, "y3", x, 128, outs)
    return net.graph()


# -- VGG16-SSD300 ---------------------------------------------------------------------------------

VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
SSD_EXTRAS = ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0))
SSD_ANCHORS = (4, 6, 6, 6, 4, 4)


def vgg16_ssd300(classes: int = 21) -> Graph:
    """VGG16-SSD300 (weiliu89 ssd_pascal.py): backbone, extras, loc/conf heads."""
    net = _Net("vgg16-ssd300", (1, 3, 300, 300))
    x, sources = "data", []
    for stage, widths in enumerate(VGG16, start=1):
        for i, width in enumerate(widths, start=1):
            x = net.conv(f"conv{stage}_{i}", x, width, 3)
        if stage == 4:
            sources.append(net.normalize("conv4_3_norm", x))
        x = net.pool(f"pool{stage}", x, 3, 1, 1) if stage == 5 else net.pool(f"pool{stage}", x, 2, 2)
    x = net.conv("fc6", x, 1024, 3, dilation=6)
    x = net.conv("fc7", x, 1024, 1)
    sources.append(x)
    for i, (mid, out, stride, pad) in enumerate(SSD_EXTRAS, start=6):
        x = net.conv(f"conv{i}_1", x, mid, 1)
        x = net.conv(f"conv{i}_2", x, out, 3, stride, pad)
        sources.append(x)
    for source, anchors in zip(sources, SSD_ANCHORS):
        net.conv(f"{source}_mbox_loc", source, 4 * anchors, 3, relu=False)
        net.conv(f"{source}_mbox_conf", source, classes * anchors, 3, relu=False)
    return net.graph()


BUILDERS = {"yolov5s-416": lambda: yolov5s(416), "yolov3-416": lambda: yolov3(416),
            "vgg16-ssd300": vgg16_ssd300}
