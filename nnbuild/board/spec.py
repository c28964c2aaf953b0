"""What generated board code is baked from: the typed recipe plus the patch stage's model.

``board_spec(name, recipe, patch_dir)`` collects the network input (size, resize mode), the
outputs in the order the ``.wk`` stores them (prototxt order, nnie-facts.md §5) with the names it
stores (first 31 characters) and shapes, the row alignment (``mapper.internal_stride``, §2), the
task's ``check.task_args`` and, for split models, the CPU part's prototxt.
"""

from __future__ import annotations

import dataclasses
import pathlib
from nnbuild.board.layout import blob_bytes, nchw, stride_bytes


@dataclasses.dataclass(frozen=True)
class Output:
    """One NNIE output: prototxt name, name in the .wk, Caffe shape."""

    name: str
    nnie_name: str
    shape: tuple[int, ...]

    def stride(self, align: int) -> int:
        """Row stride in bytes."""
        return stride_bytes(nchw(self.shape)[3], align)

    def size(self, align: int) -> int:
        """Blob size in bytes."""
        return blob_bytes(self.shape, align)


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """Everything a generator needs (see module docstring)."""

    recipe: str
    task: str
    input_hw: tuple[int, int]
    resize: str
    align: int
    outputs: tuple[Output, ...]
    task_args: dict
    cpu_prototxt: pathlib.Path | None = None

    def index(self, name: str) -> int:
        """Position of the output called ``name`` (prototxt name)."""
        return [o.name for o in self.outputs].index(name)


def board_spec(name: str, recipe, patch_dir: pathlib.Path) -> BoardSpec:
    """The spec of recipe ``name`` (a ``RecipeSpec``) whose patch stage wrote ``patch_dir``."""
    from nnbuild.archive import nnie_output_names
    from nnbuild.caffe.io import load
    from nnbuild.shapes import infer_shapes

    graph = load(patch_dir / "model.prototxt").graph
    shapes = infer_shapes(graph, check_weights=False)
    named = nnie_output_names(graph.caffe_name(b) for b in graph.outputs)
    outputs = tuple(Output(n["name"], n["nnie_name"], tuple(shapes[b]))
                    for n, b in zip(named, graph.outputs))
    h, w = (recipe.input.shape or next(iter(graph.inputs.values())))[2:]
    cpu = patch_dir / "cpu.prototxt"
    return BoardSpec(recipe=name, task=recipe.check.task, input_hw=(int(h), int(w)),
                     resize=recipe.input.resize, align=int(recipe.mapper.internal_stride),
                     outputs=outputs, task_args=dict(recipe.check.task_args),
                     cpu_prototxt=cpu if cpu.is_file() else None)
