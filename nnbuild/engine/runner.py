"""Graph executor of the float engine: topological order, float32, blobs freed when dead."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from nnbuild.engine import blas, channelwise, conv, fpenv, fusion, heap
from nnbuild.engine.activation import leaky_inplace, prelu_slope
from nnbuild.engine.denormal import flushed
from nnbuild.engine.plan import Plan, plan_for, unsupported
from nnbuild.engine.registry import ADAPTERS, SOURCE_TYPES
from nnbuild.errors import ModelError

OnBlob = Callable[[Any, str, np.ndarray], "np.ndarray | None"]


def _default_param():
    from nnbuild.caffe import caffe_pb2  # generated module; imported late to keep imports cheap

    return caffe_pb2.LayerParameter()


def placed(err: ModelError, layer) -> ModelError:
    """``err`` again, with ``layer`` as the place (kernels know no layer names)."""
    return type(err)(f"layer {layer.name!r} ({layer.type})", err.what, expected=err.expected,
                     got=err.got, hint=err.hint)


def run_layer(layer, inputs: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None = None
              ) -> list[np.ndarray]:
    """Run one layer on ``inputs`` (bottom arrays, in order) and return its tops as float32.

    Args:
        layer: an ``nnbuild.ir.Layer``.
        inputs: the bottom arrays.
        weights: arrays replacing ``layer.blobs`` (e.g. quantized weights), or None.

    Raises:
        UnsupportedLayerError: the engine has no kernel for ``layer.type``.
        ModelError: the kernel rejected the inputs/parameters (message names the layer).
    """
    adapter = ADAPTERS.get(layer.type)
    if adapter is None:
        raise unsupported(layer)
    param = layer.param if layer.param is not None else _default_param()
    blobs = [flushed(b) for b in (layer.blobs if weights is None else weights)]
    where = f"layer {layer.name!r} ({layer.type})"
    try:
        outs = adapter(param, list(inputs), blobs, len(layer.tops))
    except ModelError as err:  # re-raised with the layer's name as the place
        raise placed(err, layer) from None
    except (ValueError, IndexError) as err:  # numpy shape mismatches inside a kernel
        raise ModelError(where, f"cannot compute the layer ({err})",
                         expected="input shapes that fit the layer's parameters", got=[tuple(x.shape) for x in inputs],
                         hint="check the input shape and the layer's parameters") from None
    if len(outs) != len(layer.tops):
        raise ModelError(where, "the kernel returned the wrong number of tops",
                         expected=len(layer.tops), got=len(outs),
                         hint="this is an engine bug; please report it")
    return [np.asarray(out, dtype=np.float32) for out in outs]


def _check_feeds(graph, feeds: Mapping[str, np.ndarray]) -> None:
    missing = [b for b in graph.inputs if b not in feeds]
    unknown = [b for b in feeds if b not in graph.inputs]
    if missing or unknown:
        raise ModelError("feeds", "the fed blobs do not match the network inputs",
                         expected=sorted(graph.inputs), got=sorted(feeds),
                         hint="feed exactly the network's input blobs by name")


def _as_input(name: str, array: np.ndarray, on_blob: OnBlob | None) -> np.ndarray:
    arr = np.ascontiguousarray(array, dtype=np.float32)
    if on_blob is not None:
        replaced = on_blob(None, name, arr)
        arr = arr if replaced is None else np.asarray(replaced, dtype=np.float32)
    return arr


def run(graph, feeds: Mapping[str, np.ndarray], keep: Iterable[str] | str | None = None, *,
        weights: Mapping[str, Sequence[np.ndarray]] | None = None,
        on_blob: OnBlob | None = None) -> dict[str, np.ndarray]:
    """Execute ``graph`` in float32 and return its outputs plus the blobs in ``keep``.

    Args:
        graph: an ``nnbuild.ir.Graph`` (with weights in ``layer.blobs``).
        feeds: network input blob -> NCHW array (converted to float32).
        keep: extra SSA blob names to return, or ``"all"`` for every blob.
        weights: layer name -> arrays replacing that layer's ``blobs``.
        on_blob: ``on_blob(layer, blob, array)`` called for every produced blob in execution
            order (``layer=None`` for network inputs); a non-None result replaces the blob.

    Returns:
        SSA blob name -> float32 array; dead blobs are freed during execution.

    Raises:
        UnsupportedLayerError: before anything runs, naming the first unsupported layer.
        ModelError / GraphError: wrong feeds, unknown ``keep`` blobs, or a failing layer.
    """
    plan = plan_for(graph, keep, hooked=on_blob is not None)
    _check_feeds(graph, feeds)
    heap.keep_freed_memory()  # see nnbuild/engine/heap.py: page faults cost ~20% otherwise
    # see blas.py, channelwise.py and fpenv.py in nnbuild/engine for the measurements behind these
    with blas.limited(1), channelwise.small_ufunc_buffer(), fpenv.flush_denormals():
        return _execute(graph, plan, feeds, weights or {}, on_blob)


def _execute(graph, plan: Plan, feeds, weights, on_blob) -> dict[str, np.ndarray]:
    """The execution loop of ``run`` (arguments already checked)."""
    blobs = {name: _as_input(name, feeds[name], on_blob) for name in graph.inputs}
    for step in plan.steps:
        layer = step.layers[0]
        if len(step.layers) > 1:
            _run_group(step, blobs, weights, plan.geometry)
        elif layer.type not in SOURCE_TYPES:
            outs = run_layer(layer, [blobs[b] for b in layer.bottoms], weights.get(layer.name))
            for top, arr in zip(layer.tops, outs):
                if on_blob is not None:
                    replaced = on_blob(layer, top, arr)
                    arr = arr if replaced is None else np.asarray(replaced, dtype=np.float32)
                blobs[top] = arr
        for blob in step.free:  # what no later layer reads and nobody asked for
            blobs.pop(blob, None)
    kept = plan.kept
    return blobs if kept is None else {b: a for b, a in blobs.items() if b in kept}


def _run_group(step, blobs, weights, geometry) -> None:
    """A fused group (see nnbuild/engine/fusion.py) as one step.

    Only the group's last top is stored: ``fusion.plan`` made sure nobody reads the others.
    """
    core, act = step.core, step.act
    if len(core) == 1:
        out = run_layer(core[0], [blobs[core[0].bottoms[0]]], weights.get(core[0].name))[0]
    else:
        out = _affine_core(core, blobs, weights, geometry)
    if act is not None:
        out = _activate_inplace(act, out, weights)
    blobs[step.layers[-1].tops[0]] = out


def _activate_inplace(act, x: np.ndarray, weights) -> np.ndarray:
    """ReLU/PReLU written into ``x``, the group's own fresh array."""
    act_blobs = [flushed(b) for b in weights.get(act.name, act.blobs)]
    if act.type == "ReLU":
        slope = np.float32(act.param.relu_param.negative_slope) if act.param is not None else 0
        return np.maximum(x, np.float32(0), out=x) if slope == 0 else leaky_inplace(x, slope)
    if not act_blobs:
        return run_layer(act, [x], act_blobs)[0]  # reports the missing slope blob
    shared = act.param is not None and act.param.prelu_param.channel_shared
    try:
        slope = prelu_slope(x, act_blobs[0], shared)
    except ModelError as err:
        raise placed(err, act) from None
    return leaky_inplace(x, slope)


def _affine_core(core, blobs, weights, geometry) -> np.ndarray:
    """[Convolution,] BatchNorm, Scale: the convolution with folded weights, or ``x * a + b``."""
    first = core[0]
    x = blobs[first.bottoms[0]]
    folded = _folded(core, weights, x.shape[1])
    if folded is None:
        for layer in core:  # missing weights: let the layers report the problem one by one
            x = run_layer(layer, [x], weights.get(layer.name))[0]
        return x
    a, b, conv_weights = folded
    if conv_weights is not None:
        try:
            geo = geometry.get(first.name)
            if geo is None:
                return conv.run_folded(first.param, x, conv_weights)
            return conv.convolution(x, *conv_weights, **geo)
        except ModelError as err:
            raise placed(err, first) from None
    out = channelwise.mul(x, a)
    return channelwise.add(out, b, out=out)


# id(core) -> (core, its raw weight arrays, (a, b, folded conv weights)): one identity check per
# group instead of seven denormal-cache look-ups and two keyed caches (~8 us a group).
_FOLDS: dict[int, tuple] = {}


def _folded(core, weights, in_channels: int):
    """(a, b, conv weights with (a, b) folded in, or None without a conv) of a fused group.

    None when a layer of the group lacks weights.
    """
    sources = [arr for layer in core for arr in weights.get(layer.name, layer.blobs)]
    hit = _FOLDS.get(id(core))
    if hit is not None and hit[0] is core and len(hit[1]) == len(sources) \
            and all(s is t for s, t in zip(hit[1], sources)):
        return hit[2]
    *head, bn, scale = core
    bn_blobs = [flushed(b) for b in weights.get(bn.name, bn.blobs)]
    sc_blobs = [flushed(b) for b in weights.get(scale.name, scale.blobs)]
    conv_blobs = [flushed(b) for b in weights.get(head[0].name, head[0].blobs)] if head else []
    if len(bn_blobs) < 2 or not sc_blobs or (head and not conv_blobs):
        return None
    channels = conv_blobs[0].shape[0] if head else in_channels
    a, b = fusion.cached_affine(bn, scale, bn_blobs, sc_blobs, channels)
    result = (a, b, fusion.cached_fold(head[0], conv_blobs, a, b) if head else None)
    if len(_FOLDS) > 4096:  # groups of many graphs: start over rather than grow forever
        _FOLDS.clear()
    _FOLDS[id(core)] = (core, sources, result)  # holds core and arrays: their ids stay unique
    return result
