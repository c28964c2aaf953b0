"""Reading and writing Caffe models: prototxt + caffemodel <-> ``nnbuild.ir.Graph``.

Weights are matched to the deploy prototxt BY LAYER NAME, as Caffe's ``CopyTrainedLayersFrom``
does, so a caffemodel saved from a training net (with data and loss layers, and the ``*_split``
layers Caffe inserts) loads against its deploy prototxt. Writing an unchanged graph reproduces
both files' messages; writing is deterministic (same graph -> same bytes).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.caffe.blobs import array_from_blob, blob_from_array, check_blob, header_from_blob
from nnbuild.caffe.inputs import graph_inputs, write_inputs
from nnbuild.caffe.weights import NEEDS_WEIGHTS, check_weights
from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Layer

PathLike = str | os.PathLike


@dataclasses.dataclass
class Loaded:
    """What ``load`` returns.

    Attributes:
        graph: the deploy network in SSA form, weights attached.
        unused_weights: caffemodel layers the deploy graph does not have (training-only layers
            such as data and loss layers), in caffemodel order; Caffe's automatic ``*_split``
            layers are left out.
        missing_weights: deploy layers that need learned blobs (``weights.NEEDS_WEIGHTS``) but
            got none, in layer order.
    """

    graph: Graph
    unused_weights: list[str]
    missing_weights: list[str]


def _read_bytes(path: PathLike, kind: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as err:
        raise ModelError(str(path), f"cannot read the {kind}", got=err.strerror or str(err),
                         hint="check the path (relative paths are relative to the recipe)"
                         ) from err


def parse_prototxt(path: PathLike) -> Any:
    """Parse a text prototxt into a ``caffe_pb2.NetParameter``.

    Raises:
        ModelError: the file is missing, or not valid prototxt for nnbuild's Caffe schema; the
            message starts with ``<file>:<line>:<col>``.
    """
    raw = _read_bytes(path, "prototxt")
    net = caffe_pb2.NetParameter()
    try:
        text_format.Parse(raw.decode("utf-8"), net)
    except UnicodeDecodeError as err:
        raise ModelError(str(path), "prototxt is not UTF-8 text", got=f"byte {err.start}",
                         hint="pass the .prototxt, not the .caffemodel") from err
    except text_format.ParseError as err:
        line, col = err.GetLine(), err.GetColumn()
        where = f"{path}:{line}:{col}" if line is not None else str(path)
        what = re.sub(r"^\d+:\d+ : ", "", str(err))
        raise ModelError(where, f"prototxt syntax error: {what}",
                         hint="fix the prototxt there; the field names nnbuild knows are in "
                              "nnbuild/caffe/caffe.proto (BVLC Caffe plus the SSD fork)") from err
    _reject_v1(net, path)
    return net


def read_caffemodel(path: PathLike) -> Any:
    """Parse a binary caffemodel into a ``caffe_pb2.NetParameter`` and check every blob.

    Raises:
        ModelError: the file is missing, does not decode, has no layers, or holds a blob whose
            value count disagrees with its shape (truncated or corrupt file).
    """
    raw = _read_bytes(path, "caffemodel")
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(raw)
    except pb_message.DecodeError as err:
        raise ModelError(str(path), "caffemodel does not decode as a Caffe NetParameter",
                         expected="a binary Caffe model (NetParameter)",
                         got=f"{len(raw)} bytes that do not decode ({err})",
                         hint="the file is truncated or not a caffemodel; re-download it and "
                              "check its sha256") from err
    _reject_v1(net, path)
    if not net.layer:
        raise ModelError(str(path), "caffemodel contains no layers", got=f"{len(raw)} bytes",
                         hint="the file is empty, truncated or not a caffemodel")
    for layer in net.layer:
        for i, blob in enumerate(layer.blobs):
            check_blob(blob, f"{path}: layer {layer.name!r} blob {i}")
    return net


def _reject_v1(net: Any, path: PathLike) -> None:
    if len(net.layers) and not len(net.layer):
        raise ModelError(str(path), "model uses the V1 'layers' format",
                         expected="'layer' (Caffe 2015+)", got=f"{len(net.layers)} V1 layers",
                         hint="upgrade it with Caffe's upgrade_net_proto_text / "
                              "upgrade_net_proto_binary tools")


def load(prototxt: PathLike, caffemodel: PathLike | None = None) -> Loaded:
    """Load a deploy prototxt (and its weights) as a validated SSA ``Graph``.

    Layers that Caffe would drop in the net's state (TEST phase unless ``state`` says otherwise,
    via ``include``/``exclude`` rules) are dropped here too.

    Raises:
        ModelError: unreadable files, bad inputs, or weights that cannot belong to a layer.
        GraphError: the prototxt's graph is invalid (duplicate names, missing bottoms, cycles).
    """
    net = parse_prototxt(prototxt)
    layers = [_layer_from_param(lp) for lp in net.layer if _included(lp, net.state)]
    inputs, style, meta = graph_inputs(net, layers, str(prototxt))
    net_param = caffe_pb2.NetParameter()
    net_param.CopyFrom(net)
    for field in ("layer", "layers", "input", "input_shape", "input_dim"):
        net_param.ClearField(field)
    unused: list[str] = []
    if caffemodel is not None:
        weights_net = read_caffemodel(caffemodel)
        unused = _attach_weights(layers, weights_net, str(caffemodel))
        header = caffe_pb2.NetParameter()
        header.CopyFrom(weights_net)
        header.ClearField("layer")
        meta["weights_header"] = header
    for layer in layers:  # Caffe names are still in place here: errors quote the prototxt
        check_weights(layer)
    graph = Graph.from_caffe(net.name, inputs, layers, input_style=style, net_param=net_param)
    graph.caffe_meta = meta
    graph.validate(str(prototxt))
    missing = [layer.name for layer in graph.layers if not layer.blobs and _needs_weights(layer)]
    return Loaded(graph, unused, missing)


def _layer_from_param(lp: Any) -> Layer:
    param = caffe_pb2.LayerParameter()
    param.CopyFrom(lp)
    param.ClearField("blobs")
    # Weights embedded in a prototxt (rare) are used unless the caffemodel has the layer.
    blobs = [array_from_blob(b, f"layer {lp.name!r} blob {i}") for i, b in enumerate(lp.blobs)]
    return Layer(lp.name, lp.type, list(lp.bottom), list(lp.top), param, blobs)


def _included(lp: Any, state: Any) -> bool:
    """Caffe's NetStateRule semantics: any matching include rule, or no matching exclude rule."""
    if len(lp.include):
        return any(_meets(rule, state) for rule in lp.include)
    return not any(_meets(rule, state) for rule in lp.exclude)


def _meets(rule: Any, state: Any) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def _attach_weights(layers: list[Layer], weights_net: Any, where: str) -> list[str]:
    """Give each layer its caffemodel blobs (matched by name); return the unused layer names."""
    by_name: dict[str, Any] = {}
    for lp in weights_net.layer:
        by_name.setdefault(lp.name, lp)  # Caffe copies from every duplicate; the first wins here
    names = {layer.name for layer in layers}
    for layer in layers:
        lp = by_name.get(layer.name)
        if lp is None:
            continue
        layer.blobs = [array_from_blob(b, f"{where}: layer {lp.name!r} blob {i}")
                       for i, b in enumerate(lp.blobs)]
        kept = caffe_pb2.LayerParameter()
        kept.CopyFrom(lp)
        kept.ClearField("blobs")
        # Value-less blob headers remember each blob's shape style for writing back.
        kept.blobs.extend(header_from_blob(b) for b in lp.blobs)
        layer.weights_param = kept
    return [lp.name for lp in weights_net.layer
            if lp.name not in names and not _is_auto_split(lp)]


def _is_auto_split(lp: Any) -> bool:
    """Split layers Caffe inserts itself when a blob has several readers (named ``*_split``)."""
    return lp.type == "Split" and lp.name.endswith("_split")


def _needs_weights(layer: Layer) -> bool:
    if layer.type not in NEEDS_WEIGHTS:
        return False
    if layer.type == "Scale":  # with two bottoms the scale is an input, only a bias is learned
        return len(layer.bottoms) == 1 or layer.param.scale_param.bias_term
    if layer.type == "Bias":
        return len(layer.bottoms) == 1
    return True


def net_from_graph(graph: Graph, with_weights: bool) -> Any:
    """The NetParameter to write for ``graph``.

    Args:
        graph: the network; in-place Caffe names are restored with ``graph.caffe_names()``.
        with_weights: False gives the prototxt message (no blobs). True gives the caffemodel
            message: one layer per graph layer that has weights or came from the caffemodel,
            built from the caffemodel's own layer message (so its unknown fields survive).
    """
    names = graph.caffe_names()
    if with_weights:
        return _weights_net(graph, names)
    net = caffe_pb2.NetParameter()
    if graph.net_param is not None:
        net.CopyFrom(graph.net_param)
    if graph.name != net.name:
        net.name = graph.name
    write_inputs(graph, net)
    for layer in graph.layers:
        lp = net.layer.add()
        if layer.param is not None:
            lp.CopyFrom(layer.param)
        _set_topology(lp, layer, names)
        lp.ClearField("blobs")
        if layer.type == "Input":
            write_inputs(graph, net, lp)
    return net


def _weights_net(graph: Graph, names: dict[str, str]) -> Any:
    net = caffe_pb2.NetParameter()
    header = graph.caffe_meta.get("weights_header")
    if header is not None:
        net.CopyFrom(header)
    elif graph.name:
        net.name = graph.name
    for layer in graph.layers:
        if layer.weights_param is None and not layer.blobs:
            continue
        lp = net.layer.add()
        original = layer.weights_param
        if original is not None and original.type == layer.type:
            # Keep the caffemodel's own message (its bottoms name Caffe's split blobs); Caffe
            # reads only names and blobs from a caffemodel, the prototxt carries the topology.
            lp.CopyFrom(original)
            lp.name = layer.name
        else:
            if layer.param is not None:
                lp.CopyFrom(layer.param)
            _set_topology(lp, layer, names)
        headers = list(original.blobs) if original is not None else []
        lp.ClearField("blobs")
        for i, array in enumerate(layer.blobs):
            lp.blobs.append(blob_from_array(array, headers[i] if i < len(headers) else None))
    return net


def _set_topology(lp: Any, layer: Layer, names: dict[str, str]) -> None:
    lp.name, lp.type = layer.name, layer.type
    lp.ClearField("bottom")
    lp.ClearField("top")
    lp.bottom.extend(names.get(b, b) for b in layer.bottoms)
    lp.top.extend(names.get(t, t) for t in layer.tops)


def save(graph: Graph, prototxt_path: PathLike, caffemodel_path: PathLike | None = None) -> None:
    """Write ``graph`` as a prototxt (and caffemodel); byte-identical for identical graphs.

    Each file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    text = text_format.MessageToString(net_from_graph(graph, with_weights=False))
    _write_atomic(pathlib.Path(prototxt_path), text.encode("utf-8"))
    if caffemodel_path is not None:
        net = net_from_graph(graph, with_weights=True)
        _write_atomic(pathlib.Path(caffemodel_path), net.SerializeToString(deterministic=True))


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
