"""Small Caffe nets generated from prototxt text, for the shapes/stats/lint tests."""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from nnbuild.caffe import caffe_pb2
from nnbuild.ir import Graph, Layer


def net(text: str, inputs: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """A Graph from ``layer { ... }`` blocks; ``inputs`` declares legacy-style inputs."""
    msg = caffe_pb2.NetParameter()
    text_format.Parse(text, msg)
    inputs = dict(inputs or {})
    layers = []
    for lp in msg.layer:
        if lp.type == "Input":
            inputs.update((t, tuple(s.dim)) for t, s in zip(lp.top, lp.input_param.shape))
        layers.append(Layer(lp.name, lp.type, list(lp.bottom), list(lp.top), lp))
    return Graph.from_caffe("test", inputs, layers,
                            input_style="layer" if not inputs or any(
                                lp.type == "Input" for lp in msg.layer) else "legacy")


def one(layer_text: str, *shapes: tuple[int, ...], tops: int = 1) -> Graph:
    """A net with inputs ``in0, in1, ...`` of ``shapes`` and one layer reading them all."""
    bottoms = "".join(f' bottom: "in{i}"' for i in range(len(shapes)))
    top = "".join(f' top: "out{i}"' for i in range(tops))
    return net(f'layer {{ name: "L" {layer_text} {bottoms} {top} }}',
               {f"in{i}": s for i, s in enumerate(shapes)})


def with_blobs(graph: Graph, name: str, *shapes: tuple[int, ...]) -> Graph:
    """A copy of ``graph`` whose layer ``name`` holds zero weight blobs of ``shapes``."""
    g = graph.copy()
    g.layer(name).blobs = [np.zeros(s, np.float32) for s in shapes]
    return g
