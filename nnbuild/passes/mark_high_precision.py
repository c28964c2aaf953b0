"""Pass ``mark_high_precision``: the ``_hp`` name suffix that makes a layer 16-bit.

Under ``compile_mode 2`` nnie_mapper computes layers whose name ends in ``_hp`` in high precision
(nnie-facts.md §5). Node names are at most 31 characters (``SVP_NNIE_NODE_NAME_LEN 32``), so a
long name is shortened before the suffix, and numbered if that collides with another name.
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.nnie.quantpoints import HP_SUFFIX as SUFFIX  # the mapper's rule, defined once
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes
from nnbuild.passes.surgery import taken_names, unique_name

MAX_NAME = 31


@register_pass("mark_high_precision")
def mark_high_precision(graph: Graph, ctx: PassContext, *, layers=None
                        ) -> tuple[Graph, Changes]:
    """Rename each listed layer to ``<name>_hp`` (<= 31 characters, unique).

    Args:
        graph: the network.
        ctx: supplies ``high_precision`` (the recipe's ``quant.high_precision``) by default.
        layers: layer names to mark; default ``ctx.high_precision``.

    Raises:
        PassError: a listed layer does not exist.
    """
    names = list(layers if layers is not None else ctx.high_precision)
    g = graph.copy()
    changes = Changes()
    by_name = {la.name: la for la in g.layers}
    taken = taken_names(g)
    for name in names:
        layer = by_name.get(name)
        if layer is None:
            raise PassError(f"pass mark_high_precision: layer {name!r}", "no such layer",
                            hint="quant.high_precision must name layers of the patched graph "
                                 "(see `nnbuild inspect`)")
        if name.endswith(SUFFIX) and len(name) <= MAX_NAME:
            continue
        new = unique_name(name, taken, MAX_NAME, SUFFIX)
        taken.add(new)
        layer.name = new
        changes.rename("layer", name, new)
    return g, changes
