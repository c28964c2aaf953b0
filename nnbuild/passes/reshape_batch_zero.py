"""Pass ``reshape_batch_zero``: Reshape's first dim 1 -> 0 (copy the batch), as NNIE requires.

nnie-facts.md §5: a Reshape must be 4-D with first dim 0, and nothing may touch the batch
dimension. With batch 1 (``set_input_shape`` guarantees it) a literal 1 and "copy" (0) agree, so
the edit cannot change the numbers; any other first dim really reshapes the batch and is refused.
"""

from __future__ import annotations

from nnbuild.errors import PassError
from nnbuild.ir import Graph
from nnbuild.passes import PassContext, register_pass
from nnbuild.passes.changes import Changes


def _check(layer, dims: list[int]) -> None:
    p = layer.param.reshape_param
    if p.axis != 0:
        # axis > 0 leaves the batch alone; a negative axis counts from the end and could
        # reach it only for 1-D blobs, which NNIE does not have.
        return
    if not dims or dims[0] not in (0, 1):
        raise PassError(f"pass reshape_batch_zero: layer {layer.name!r}",
                        "Reshape touches the batch dimension",
                        expected="first dim 0 or 1", got=f"shape {dims}",
                        hint="NNIE keeps the batch dim (nnie-facts.md §5); reshape only C/H/W, "
                             "e.g. shape {dim: 0 dim: ...}, or move this layer to the CPU part")


@register_pass("reshape_batch_zero")
def reshape_batch_zero(graph: Graph, ctx: PassContext) -> tuple[Graph, Changes]:
    """Rewrite every Reshape whose shape starts with 1 to start with 0.

    Raises:
        PassError: a Reshape whose first dim is neither 0 nor 1 (it reshapes the batch).
    """
    g = graph.copy()
    changes = Changes()
    for layer in g.layers:
        if layer.type != "Reshape":
            continue
        dims = [int(d) for d in layer.param.reshape_param.shape.dim]
        _check(layer, dims)
        if layer.param.reshape_param.axis == 0 and dims[0] == 1:
            layer.param.reshape_param.shape.dim[0] = 0
            changes.param(layer.name, "reshape_param.shape.dim", dims, [0] + dims[1:])
    return g, changes
