"""Graph IR: the one in-memory form of a Caffe network that passes, shapes, lint and engines share.

A ``Graph`` is an ordered list of ``Layer`` s plus the network inputs. Blob names inside the IR are
SSA: every blob is produced exactly once. Caffe's in-place layers (``top == bottom``, e.g. a ReLU
after a BatchNorm) produce a new *version* of a blob; the IR names version *k* ``"<blob>@k"`` and
remembers the Caffe name in ``Graph.origin``, so export restores the in-place form and the original
blob names (``Graph.caffe_names``).

Contract shared by all code that touches a Graph:

* ``Layer.param`` is the Caffe ``LayerParameter`` message holding the layer's ``*_param``
  sub-messages (and any fields nnbuild does not know). Its ``name``/``type``/``bottom``/``top``/
  ``blobs`` fields are *not* authoritative: ``Layer.name``, ``type``, ``bottoms``, ``tops`` and
  ``blobs`` are. Read parameters from it with the protobuf API (defaults are Caffe's).
* ``Layer.blobs`` are float32 numpy arrays and are read-only (``writeable=False``): a pass that
  changes weights makes new arrays. That is what lets ``Graph.copy`` share them cheaply.
* Passes never mutate their input graph: they call ``graph.copy()`` and edit the copy.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
from typing import Any, Iterable, Iterator

from nnbuild.errors import GraphError

SSA_SEP = "@"


@dataclasses.dataclass
class Layer:
    """One Caffe layer. ``bottoms``/``tops`` are SSA blob names (see module docstring)."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    param: Any = None
    blobs: list[Any] = dataclasses.field(default_factory=list)
    # The caffemodel's own message for this layer with its blobs removed; kept so that fields
    # nnbuild does not know survive a read/write round trip.
    weights_param: Any = None

    def copy(self) -> "Layer":
        """A copy whose lists and messages may be edited freely (weight arrays are shared)."""
        return Layer(self.name, self.type, list(self.bottoms), list(self.tops),
                     copy.deepcopy(self.param), list(self.blobs), copy.deepcopy(self.weights_param))

    def __repr__(self) -> str:
        return f"Layer({self.name!r}, {self.type}, {self.bottoms} -> {self.tops})"


@dataclasses.dataclass
class Graph:
    """An ordered Caffe network in SSA form.

    Attributes:
        name: the NetParameter's ``name``.
        inputs: network input blob -> shape (N, C, H, W), in declaration order. Filled for both
            input styles; for ``input_style == "layer"`` the ``Input`` layers are also in ``layers``.
        input_style: ``"layer"`` (an ``Input`` layer) or ``"legacy"`` (``input:`` + shape fields).
        layers: layers in file (execution) order.
        origin: SSA blob name -> Caffe blob name, for the versions created by in-place layers.
        net_param: the NetParameter minus layers/inputs, for fields nnbuild does not touch.
        caffe_meta: file-format details that ``nnbuild.caffe.io.save`` reproduces (the
            caffemodel's own NetParameter header, the legacy input shape style). Passes ignore it.
    """

    name: str
    inputs: dict[str, tuple[int, ...]]
    layers: list[Layer]
    input_style: str = "layer"
    origin: dict[str, str] = dataclasses.field(default_factory=dict)
    net_param: Any = None
    caffe_meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_caffe(cls, name: str, inputs: dict[str, tuple[int, ...]], layers: Iterable[Layer],
                   *, input_style: str = "layer", net_param: Any = None) -> "Graph":
        """Build a graph from layers whose bottoms/tops are Caffe names, renaming to SSA.

        A top that is already live (in place, or simply produced twice) gets a new version
        ``blob@k``; bottoms refer to the latest version produced so far. A bottom that no earlier
        layer produced keeps its name, so that ``validate`` can report it precisely.
        """
        layers = list(layers)
        # An Input layer's tops are network inputs *and* that layer's tops: not a second version.
        current = {blob: blob for blob in _free_inputs(inputs, layers)}
        seen_count: dict[str, int] = {}
        origin: dict[str, str] = {}
        out = []
        for layer in layers:
            bottoms = [current.get(b, b) for b in layer.bottoms]
            tops = []
            for top in layer.tops:
                if top in current or top in seen_count:
                    k = seen_count.get(top, 0) + 1
                    seen_count[top] = k
                    ssa = f"{top}{SSA_SEP}{k}"
                    origin[ssa] = top
                else:
                    seen_count.setdefault(top, 0)
                    ssa = top
                current[top] = ssa
                tops.append(ssa)
            new = layer.copy()
            new.bottoms, new.tops = bottoms, tops
            out.append(new)
        return cls(name, dict(inputs), out, input_style, origin, net_param)

    def copy(self) -> "Graph":
        """A deep copy of the structure; weight arrays are shared (they are read-only)."""
        return Graph(self.name, dict(self.inputs), [layer.copy() for layer in self.layers],
                     self.input_style, dict(self.origin), copy.deepcopy(self.net_param),
                     copy.deepcopy(self.caffe_meta))

    # -- lookups ------------------------------------------------------------------------------

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise GraphError(f"layer {name!r}", "no such layer",
                         hint="check the layer name in the prototxt")

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def producers(self) -> dict[str, Layer]:
        """Blob -> the layer producing it (network inputs are absent)."""
        return {top: layer for layer in self.layers for top in layer.tops}

    def consumers(self) -> dict[str, list[Layer]]:
        """Blob -> layers reading it, in layer order (blobs nobody reads map to [])."""
        result: dict[str, list[Layer]] = {blob: [] for blob in self.inputs}
        for layer in self.layers:
            for top in layer.tops:
                result.setdefault(top, [])
            for bottom in layer.bottoms:
                result.setdefault(bottom, []).append(layer)
        return result

    @property
    def outputs(self) -> list[str]:
        """Network outputs: blobs produced by a layer and read by none, in production order."""
        read = {b for layer in self.layers for b in layer.bottoms}
        return [t for layer in self.layers for t in layer.tops if t not in read]

    def caffe_name(self, blob: str) -> str:
        """The Caffe blob name of an SSA blob (its name in the prototxt)."""
        return self.origin.get(blob, blob)

    # -- order and validity -------------------------------------------------------------------

    def validate(self, where: str = "graph") -> None:
        """Raise GraphError unless names are unique and every bottom is produced earlier.

        Checks, in this order: duplicate layer names, blobs produced twice (SSA), bottoms that
        nothing produces, cycles, and bottoms used before the layer producing them.
        """
        seen_names: set[str] = set()
        for layer in self.layers:
            if layer.name in seen_names:
                raise GraphError(f"{where}: layer {layer.name!r}", "duplicate layer name",
                                 hint="layer names must be unique; rename one of them")
            seen_names.add(layer.name)
        produced_by: dict[str, str] = {blob: "<input>"
                                       for blob in _free_inputs(self.inputs, self.layers)}
        for layer in self.layers:
            for top in layer.tops:
                if top in produced_by:
                    raise GraphError(f"{where}: layer {layer.name!r}",
                                     f"blob {top!r} is produced twice",
                                     expected="one producer", got=f"{produced_by[top]!r} and "
                                     f"{layer.name!r}", hint="rename one of the tops")
                produced_by[top] = layer.name
        for layer in self.layers:
            for bottom in layer.bottoms:
                if bottom not in produced_by:
                    raise GraphError(f"{where}: layer {layer.name!r}",
                                     f"bottom {self.caffe_name(bottom)!r} is produced by no layer",
                                     hint="check the spelling, or add the layer or input that "
                                          "produces it")
        order = self.toposort_names()  # raises on cycles
        if order != [layer.name for layer in self.layers]:
            done = set(self.inputs)
            for layer in self.layers:
                late = [b for b in layer.bottoms if b not in done]
                if late:
                    raise GraphError(f"{where}: layer {layer.name!r}",
                                     f"bottom {self.caffe_name(late[0])!r} is used before the "
                                     f"layer {produced_by[late[0]]!r} that produces it",
                                     hint="reorder the layers (the nnie_order pass does this)")
                done.update(layer.tops)

    def toposort_names(self) -> list[str]:
        """Layer names in a topological order that stays as close to file order as possible.

        Kahn's algorithm with the file position as priority, so an already valid order is
        returned unchanged. Raises GraphError naming the layers on a cycle.
        """
        producer = {top: i for i, layer in enumerate(self.layers) for top in layer.tops}
        deps = [{producer[b] for b in layer.bottoms if b in producer} for layer in self.layers]
        users: list[list[int]] = [[] for _ in self.layers]
        for i, d in enumerate(deps):
            for j in d:
                users[j].append(i)
        missing = [len(d) for d in deps]
        ready = [i for i, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for u in users[i]:
                missing[u] -= 1
                if missing[u] == 0:
                    heapq.heappush(ready, u)
        if len(order) != len(self.layers):
            stuck = [self.layers[i].name for i, m in enumerate(missing) if m]
            raise GraphError(f"layer {stuck[0]!r}", "the graph has a cycle",
                             got=f"layers on or after the cycle: {', '.join(stuck[:6])}",
                             hint="a layer must not (indirectly) read its own output")
        return [self.layers[i].name for i in order]

    def toposorted(self) -> "Graph":
        """A copy with layers in ``toposort_names`` order."""
        g = self.copy()
        by_name = {layer.name: layer for layer in g.layers}
        g.layers = [by_name[n] for n in self.toposort_names()]
        return g

    # -- export -------------------------------------------------------------------------------

    def caffe_names(self) -> dict[str, str]:
        """SSA blob -> the name to write in the prototxt.

        Versions of one Caffe blob map back to that name (restoring the in-place form) when the
        layer order keeps that faithful: every reader of version *k* comes before the producer of
        version *k+1*, and version *k+1* is produced by a layer reading version *k* or by a
        layer after every reader of version *k*. Otherwise (a pass reordered or split the chain)
        the later versions keep distinct names ``blob_k`` so the exported net means the same.
        """
        position: dict[str, int] = {blob: -1 for blob in self.inputs}
        last_read: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            for top in layer.tops:
                position[top] = i
            for bottom in layer.bottoms:
                last_read[bottom] = i
        groups: dict[str, list[str]] = {}
        for blob in position:
            groups.setdefault(self.caffe_name(blob), []).append(blob)
        names: dict[str, str] = {}
        for base, versions in groups.items():
            versions.sort(key=lambda b: position[b])
            faithful = all(last_read.get(prev, -1) <= position[nxt]
                           for prev, nxt in zip(versions, versions[1:]))
            for blob in versions:
                names[blob] = base if faithful else blob.replace(SSA_SEP, "_")
        return names


def _free_inputs(inputs: Iterable[str], layers: list[Layer]) -> list[str]:
    """The network inputs that no ``Input`` layer produces (legacy ``input:`` declarations)."""
    from_layers = {top for layer in layers if layer.type == "Input" for top in layer.tops}
    return [blob for blob in inputs if blob not in from_layers]
