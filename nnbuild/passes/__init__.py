"""Patch-pass registry: named, pure ``Graph -> Graph`` rewrites run in the order a recipe lists.

A pass is ``fn(graph, ctx, **args) -> (Graph, Changes)``: it copies ``graph`` (never mutates it),
edits the copy and returns it with a record of what it changed (layers removed, rewired, renamed,
parameters edited with before/after values). ``run_passes`` validates the graph after each pass
and collects the records into the list written to ``patch-report.json``.

Passes register with ``@register_pass("name")`` under the exact name recipes use. A pass may also
register a ``size_check(graph, shapes, **args) -> list[str]``: the problems that make the pass
invalid at the input size ``shapes`` was inferred for (``nnbuild.passes.sizes`` uses these).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes.changes import Changes

PassFn = Callable[..., "tuple[Graph, Changes]"]
SizeCheck = Callable[..., "list[str]"]

PASS_MODULES = ("set_input_shape", "remove_crop", "reshape_batch_zero", "fold_batchnorm",
                "nnie_order", "inplace_activations", "mark_high_precision", "drop_layers",
                "rename_outputs", "cpu_split", "align_channel_levels")


@dataclasses.dataclass
class PassContext:
    """What passes may read besides their own arguments, and what they leave for later ones.

    Attributes:
        input_shape: the recipe's ``input.shape`` (N, C, H, W), or None.
        input_name: the recipe's ``input.name``, or None (the graph's only input).
        high_precision: layer names from the recipe's ``quant.high_precision``.
        chip: the recipe's ``target.chip``.
        quant_mode: the recipe's ``quant.mode`` (``int8``, ``int16`` or ``mixed``).
        renames: Caffe blob name before -> after, filled by passes that rename blobs, so that a
            later pass given an old name (e.g. ``nnie_order`` outputs) still finds the blob.
        cpu_graph: the CPU part of the network, set by ``cpu_split``.
        cpu_split: how ``cpu_split`` cut the graph (which blobs cross, which are shape-only).
    """

    input_shape: tuple[int, ...] | None = None
    input_name: str | None = None
    high_precision: list[str] = dataclasses.field(default_factory=list)
    chip: str | None = None
    quant_mode: str = "int8"
    renames: dict[str, str] = dataclasses.field(default_factory=dict)
    cpu_graph: Graph | None = None
    cpu_split: dict[str, Any] = dataclasses.field(default_factory=dict)

    def resolve(self, blob: str) -> str:
        """The current Caffe name of ``blob`` after the renames recorded so far."""
        seen = set()
        while blob in self.renames and blob not in seen:
            seen.add(blob)
            blob = self.renames[blob]
        return blob


@dataclasses.dataclass(frozen=True)
class PassInfo:
    """A registered pass: its function, accepted keyword arguments and optional size check."""

    name: str
    fn: PassFn
    args: tuple[str, ...]
    size_check: SizeCheck | None = None


PASSES: dict[str, PassInfo] = {}


def register_pass(name: str, *, size_check: SizeCheck | None = None):
    """Register ``fn(graph, ctx, *, arg=default, ...)`` as the pass ``name``.

    The contract is checked once here: two positional parameters (graph, context), everything
    else keyword-only with a default, and no duplicate names.
    """
    def decorate(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        params = list(inspect.signature(fn).parameters.values())
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        keywords = [p for p in params if p.kind is p.KEYWORD_ONLY]
        if len(positional) != 2 or len(positional) + len(keywords) != len(params) or any(
                p.default is p.empty for p in keywords):
            raise ValueError(f"pass {name!r}: signature must be (graph, ctx, *, arg=default...)")
        PASSES[name] = PassInfo(name, fn, tuple(p.name for p in keywords), size_check)
        return fn
    return decorate


def parse_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """Split a recipe pass spec (``"name"`` or ``{name: {args}}``) into name and arguments."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and len(spec) == 1:
        (name, args), = spec.items()
        if args is None:
            args = {}
        if isinstance(name, str) and isinstance(args, dict):
            return name, dict(args)
    raise PassError("patches", "malformed pass spec", expected="a pass name or {name: {args}}",
                    got=repr(spec), hint="write e.g. `- remove_crop` or `- nnie_order: {outputs: "
                                         "[...]}`")


def get_pass(name: str, args: dict[str, Any] | None = None) -> PassInfo:
    """The registered pass ``name``; PassError for unknown names or arguments."""
    _load_all()
    info = PASSES.get(name)
    if info is None:
        raise PassError(f"patches: {name}", "unknown pass", expected="one of " +
                        ", ".join(sorted(PASSES)), got=name, hint="check the spelling")
    unknown = sorted(set(args or {}) - set(info.args))
    if unknown:
        raise PassError(f"patches: {name}", f"unknown argument {unknown[0]!r}",
                        expected=", ".join(info.args) or "no arguments", got=", ".join(unknown),
                        hint="remove the argument or fix its spelling")
    return info


def run_pass(graph: Graph, spec: Any, ctx: PassContext) -> tuple[Graph, dict[str, Any]]:
    """Run one pass spec and validate its result; returns the new graph and its report entry."""
    name, args = parse_spec(spec)
    info = get_pass(name, args)
    new, changes = info.fn(graph, ctx, **args)
    new.validate(where=f"after pass {name}")
    return new, {"pass": name, "args": args, "changes": changes.as_dict()}


def run_passes(graph: Graph, specs: list[Any], *, context: PassContext | None = None
               ) -> tuple[Graph, list[dict[str, Any]]]:
    """Run the passes ``specs`` in order on ``graph`` (which is not modified).

    Args:
        graph: the network to patch.
        specs: recipe ``patches`` entries, each ``"name"`` or ``{name: {args}}``.
        context: recipe values passes may read (input shape, high-precision layers, chip); also
            receives what passes leave for the caller (``cpu_graph``). A fresh one if None.

    Returns:
        The patched graph and one report entry per pass: ``{"pass", "args", "changes"}``.
    """
    ctx = context if context is not None else PassContext()
    report = []
    for spec in specs:
        graph, entry = run_pass(graph, spec, ctx)
        report.append(entry)
    return graph, report


def _load_all() -> None:
    # Importing a pass module runs its @register_pass; modules are listed (not discovered) so the
    # registry is the same whatever else lies in the directory.
    for module in PASS_MODULES:
        importlib.import_module(f"{__name__}.{module}")
