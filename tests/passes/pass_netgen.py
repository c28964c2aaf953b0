"""Small random-weight Caffe nets generated from prototxt text, for the patch-pass tests."""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from nnbuild.engine import run
from nnbuild.ir import Graph, Layer
from nnbuild.shapes import expected_weight_shapes, infer_shapes
from netgen import net as structure


def _weights(layer: Layer, bottoms, rng: np.random.Generator, bn_factor: float) -> list:
    shapes = expected_weight_shapes(layer, bottoms)
    if layer.type == "BatchNorm":
        c = shapes[0][0]
        # Caffe stores mean/var multiplied by the factor blob (blobs[2]).
        return [rng.normal(size=c) * bn_factor, (rng.random(c) + 0.5) * bn_factor,
                np.array([bn_factor])]
    if layer.type == "Scale":
        return [rng.random(s) + 0.5 if i == 0 else rng.normal(size=s)
                for i, s in enumerate(shapes)]
    return [rng.normal(size=s) * 0.5 for s in shapes]


def net(text: str, inputs: dict[str, tuple[int, ...]] | None = None, *, seed: int = 0,
        bn_factor: float = 1.0) -> Graph:
    """A Graph from ``layer { ... }`` blocks with random weights of the right shapes.

    ``inputs`` declares legacy ``input:`` blobs; ``Input`` layers declare the layer style.
    """
    g = structure(text, inputs)
    g.validate()
    shapes = infer_shapes(g, check_weights=False, partial=True)
    rng = np.random.default_rng(seed)
    for layer in g.layers:
        if not all(b in shapes for b in layer.bottoms):
            continue  # a layer without shape inference (Silence, losses): no weights
        arrays = _weights(layer, [shapes[b] for b in layer.bottoms], rng, bn_factor)
        layer.blobs = [np.asarray(a, np.float32) for a in arrays]
        for a in layer.blobs:
            a.setflags(write=False)
    return g


def feeds(graph: Graph, seed: int = 1) -> dict[str, np.ndarray]:
    """Random inputs for every network input of ``graph``."""
    rng = np.random.default_rng(seed)
    return {b: rng.normal(size=s).astype(np.float32) for b, s in graph.inputs.items()}


def outputs_by_name(graph: Graph, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Engine outputs keyed by Caffe name (SSA names differ between graphs)."""
    return {graph.caffe_name(b): a for b, a in run(graph, feed).items()}


def max_rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """max over outputs of max|a-b| / max|b| (keys must agree)."""
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-30)) for k in a)


def snapshot(graph: Graph) -> str:
    """A text form of the whole graph, to assert that a pass left its input alone."""
    parts = [repr(graph.inputs), graph.input_style, repr(sorted(graph.origin.items()))]
    for layer in graph.layers:
        parts.append(f"{layer!r} {text_format.MessageToString(layer.param, as_one_line=True)}")
        parts.extend(np.asarray(b).tobytes().hex()[:64] for b in layer.blobs)
    return "\n".join(parts)


CONV = 'convolution_param {{ num_output: {n} kernel_size: {k} pad: {p} stride: {s} group: {g} ' \
       'bias_term: {bias} }}'


def conv(name: str, bottom: str, top: str, n: int, k: int = 3, p: int = 1, s: int = 1,
         g: int = 1, bias: bool = True, kind: str = "Convolution") -> str:
    """A ``layer {}`` block for a convolution."""
    params = CONV.format(n=n, k=k, p=p, s=s, g=g, bias=str(bias).lower())
    return (f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}" '
            f'{params} }}\n')


def layer(name: str, kind: str, bottoms, tops, params: str = "") -> str:
    """A generic ``layer {}`` block."""
    b = "".join(f' bottom: "{x}"' for x in ([bottoms] if isinstance(bottoms, str) else bottoms))
    t = "".join(f' top: "{x}"' for x in ([tops] if isinstance(tops, str) else tops))
    return f'layer {{ name: "{name}" type: "{kind}"{b}{t} {params} }}\n'
