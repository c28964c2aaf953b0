"""Pass ``rename_outputs``: output names that stay distinct after NNIE's 31-character truncation.

The .wk keeps node names to 31 characters (``SVP_NNIE_NODE_NAME_LEN 32``); RetinaFace's three
``face_rpn_cls_prob_reshape_stride{32,16,8}`` outputs all become ``face_rpn_cls_prob_reshape_strid``
and can then only be told apart by order (nnie-facts.md §5). This pass renames each colliding
output (and its producing layer when that bears the same name) to a short name that keeps the
distinguishing tail: ``face_rpn_cls_prob_reshape_str32`` (and ``..._str8``).
"""

from __future__ import annotations

import os

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import taken_names, unique_name

MAX_NAME = 31


def _collisions(names: list[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name[:MAX_NAME], []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def short_names(group: list[str], taken: set[str]) -> dict[str, str]:
    """New names (<= 31 chars) for names colliding after truncation: the common prefix is cut
    so that each name's distinguishing tail survives."""
    prefix = os.path.commonprefix(group)
    tails = [name[len(prefix):][-(MAX_NAME - 1):] for name in group]
    head = prefix[:MAX_NAME - max(len(t) for t in tails)]  # one head: names stay parallel
    out = {}
    for name, tail in zip(group, tails):
        new = unique_name(head + tail, taken, MAX_NAME)
        taken.add(new)
        out[name] = new
    return out


def _check_explicit(names: dict, outputs: dict) -> None:
    for old, new in names.items():
        if old not in outputs:
            raise PassError(f"pass rename_outputs: {old!r}", "not a network output",
                            expected="one of " + ", ".join(sorted(outputs)), got=old,
                            hint="rename only outputs")
        if len(new) > MAX_NAME:
            raise PassError(f"pass rename_outputs: {old!r}", "new name too long",
                            expected=f"<= {MAX_NAME} characters", got=f"{new!r} ({len(new)})",
                            hint="NNIE node names are at most 31 characters")


@register_pass("rename_outputs")
def rename_outputs(graph: Graph, ctx: PassContext, *, names=None) -> tuple[Graph, Changes]:
    """Rename outputs that collide after truncation to 31 characters.

    Args:
        graph: the network.
        ctx: receives the renames (``ctx.renames``) so later passes accept the old names.
        names: explicit {old: new}; default: automatic for every colliding group.
    """
    g = graph.copy()
    changes = Changes()
    outputs = {g.caffe_name(b): b for b in g.outputs}
    taken = taken_names(g)
    if names is None:
        names = {}
        for group in _collisions(list(outputs)):
            names.update(short_names(group, taken))
    _check_explicit(names, outputs)
    producers = g.producers()
    for old, new in names.items():
        blob = outputs[old]
        layer = producers[blob]
        layer.tops = [new if t == blob else t for t in layer.tops]
        g.origin.pop(blob, None)
        changes.rename("blob", old, new)
        ctx.renames[old] = new
        if layer.name == old:
            layer.name = new
            changes.rename("layer", old, new)
    return g, changes
