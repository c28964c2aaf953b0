"""Execution plan of a graph (order, fused groups, blob lifetimes, conv geometry), cached per graph.

Building a plan walks the whole graph several times (toposort, fusion, last readers): ~1 ms for
MobileFaceNet's 196 layers, 5-10% of its forward pass, so ``plan_for`` keeps the plans of each
graph. A plan is served again only while the graph's *fingerprint* is unchanged: inputs, and
for every layer its name, type, bottoms, tops and (for the layer types whose parameters the
plan uses) serialized parameters, ~0.1 ms; so a graph edited in place (a changed
``convolution_param`` or BatchNorm ``eps``, rewired bottoms) gets a new plan. Weights are not part of the plan: kernels read them at run time (``weights=`` or
``layer.blobs``), so replacing them needs no new plan.
"""

from __future__ import annotations

import collections
import dataclasses
import weakref
from typing import Any

from nnbuild.engine import fusion
from nnbuild.engine.conv import conv_geometry
from nnbuild.engine.registry import ADAPTERS, SOURCE_TYPES
from nnbuild.errors import GraphError, ModelError, UnsupportedLayerError


@dataclasses.dataclass(frozen=True)
class Step:
    """Layers run as one step (one layer, or a fused group) and the blobs dead after it.

    For a fused group, ``act`` is its final ReLU/PReLU (or None) and ``core`` the layers before.
    """

    layers: tuple
    free: tuple[str, ...]
    core: tuple = ()
    act: Any = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``run`` needs besides feeds and weights; ``kept`` is None when every blob is kept."""

    steps: tuple[Step, ...]
    kept: frozenset | None
    geometry: dict[str, dict]  # Convolution layer name -> conv_geometry(...)


def unsupported(layer) -> UnsupportedLayerError:
    """The error for a layer type the engine has no kernel for."""
    return UnsupportedLayerError(
        f"layer {layer.name!r}", f"layer type {layer.type!r} is not supported by the float engine",
        expected="one of " + ", ".join(sorted(ADAPTERS)), got=layer.type,
        hint="remove or replace the layer (or split it off to the CPU side)")


# Layer types whose parameters a plan (or a memo keyed on its steps) depends on: convolution
# geometry, the fusion conditions and the folded BatchNorm/Scale constants. Other layers read
# their parameters at run time.
_PLANNED_PARAMS = frozenset({"Convolution", "BatchNorm", "Scale"})


def fingerprint(graph) -> tuple:
    """Everything a plan depends on (see the module docstring)."""
    return (tuple(graph.inputs),) + tuple(
        (layer.name, layer.type, tuple(layer.bottoms), tuple(layer.tops),
         layer.param.SerializeToString()
         if layer.param is not None and layer.type in _PLANNED_PARAMS else b"")
        for layer in graph.layers)


# id(graph) -> (weakref to graph, fingerprint, {(keep key, hooked): Plan})
_PLANS: dict[int, tuple[Any, tuple, dict]] = {}
_MAX_PLANS_PER_GRAPH = 16


def plan_for(graph, keep, hooked: bool) -> Plan:
    """The (cached) plan for running ``graph`` with ``keep``; ``hooked``: an on_blob is given.

    Raises:
        UnsupportedLayerError / GraphError / ModelError: as ``build`` does.
    """
    keep_key = "all" if keep == "all" else frozenset(keep or ())
    fp = fingerprint(graph)
    entry = _PLANS.get(id(graph))
    if entry is None or entry[0]() is not graph or entry[1] != fp:
        key = id(graph)
        ref = weakref.ref(graph, lambda _, k=key: _PLANS.pop(k, None))
        entry = _PLANS[key] = (ref, fp, {})
    plans = entry[2]
    plan = plans.get((keep_key, hooked))
    if plan is None:
        plan = build(graph, keep, hooked)
        if len(plans) >= _MAX_PLANS_PER_GRAPH:  # e.g. keep lists that change every call
            plans.clear()
        plans[(keep_key, hooked)] = plan
    return plan


def build(graph, keep, hooked: bool) -> Plan:
    """Check the graph and ``keep``, then order, fuse (only when unobserved) and free blobs.

    Raises:
        UnsupportedLayerError: naming the first layer without a kernel.
        GraphError: a bottom no layer produces (or a cycle).
        ModelError: ``keep`` names blobs the graph does not have.
    """
    by_name = {layer.name: layer for layer in graph.layers}
    layers = [by_name[n] for n in graph.toposort_names()]
    for layer in layers:
        if layer.type not in ADAPTERS and layer.type not in SOURCE_TYPES:
            raise unsupported(layer)
    produced = set(graph.inputs) | {t for layer in layers for t in layer.tops}
    for layer in layers:
        for bottom in layer.bottoms:
            if bottom not in produced:
                raise GraphError(f"layer {layer.name!r}",
                                 f"bottom {graph.caffe_name(bottom)!r} is produced by no layer",
                                 hint="check the spelling, or add the producing layer")
    kept = None if keep == "all" else _kept(graph, keep, produced)
    readers = collections.Counter(b for layer in layers for b in layer.bottoms)
    groups = fusion.plan(layers, kept, readers) if not hooked else {}
    geometry = {layer.name: conv_geometry(layer.param.convolution_param) for layer in layers
                if layer.type == "Convolution" and layer.param is not None}
    return Plan(_steps(layers, groups, kept), kept, geometry)


def _kept(graph, keep, produced: set[str]) -> frozenset:
    kept = set(keep or ())
    absent = sorted(kept - produced)
    if absent:
        raise ModelError("keep", "asked to keep blobs the network does not have",
                         expected="blob names of the graph (SSA names)", got=absent[:5],
                         hint="list blobs with `nnbuild inspect`; in-place versions are blob@k")
    return frozenset(kept | set(graph.outputs))


def _steps(layers: list, groups: dict[int, int], kept) -> tuple[Step, ...]:
    """Cut ``layers`` into steps; after each, free what no later layer reads and nobody kept."""
    last_read = {b: i for i, layer in enumerate(layers) for b in layer.bottoms}
    steps, i = [], 0
    while i < len(layers):
        size = groups.get(i, 1)
        done = layers[i:i + size]
        i += size
        free = () if kept is None else tuple(sorted(
            {b for d in done for b in (*d.bottoms, *d.tops)
             if last_read.get(b, -1) < i and b not in kept}))
        act = done[-1] if size > 1 and done[-1].type in fusion.ACTIVATIONS else None
        steps.append(Step(tuple(done), free, tuple(done[:-1]) if act else tuple(done), act))
    return tuple(steps)
