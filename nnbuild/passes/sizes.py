"""Input-size solver: the (H, W) at which a recipe's passes are valid, found by shape inference.

A size is valid when shape inference succeeds at it (every layer's inputs agree, weights fit)
and every pass with a size check (``register_pass(..., size_check=...)``, e.g. ``remove_crop``:
each Crop is an identity) reports no problem. The checks run on the graph given (usually after
``set_input_shape``): the passes before a size-checked one only rename, reorder or fold layers,
which never changes a blob shape.

Speed: per-side, not per-pair. Convolution, pooling, deconvolution and crop compute an output
height only from the input height and the ``*_h`` parameters (and widths from widths); Eltwise,
Concat and Crop compare heights with heights and widths with widths. So for such a net the set
of valid (H, W) is a product ``valid_heights x valid_widths``: a height is valid iff (H, W_ok) is
valid for one valid width W_ok. The solver therefore scans heights with the width fixed at a
valid reference width and vice versa (one inference per value, ~1 ms for RetinaFace). Layers that
flatten axes together (Reshape with -1, Flatten, InnerProduct) can couple H and W, so the final
pairs are still verified with full inference: all of them up to ``max_verify``, else the diagonal
sample and both corners, and the result says how many were checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from nnbuild.errors import ModelError, PassError
from nnbuild.ir import Graph

HW = tuple[int, int]


def format_hw(hw: HW) -> str:
    """``HxW`` text for a size."""
    return f"{hw[0]}x{hw[1]}"


def _checks(graph: Graph, specs: Iterable[Any]) -> list[tuple[str, Any, dict]]:
    from nnbuild.passes import get_pass, parse_spec

    out = []
    for spec in specs:
        name, args = parse_spec(spec)
        info = get_pass(name, args)
        if info.size_check is not None:
            out.append((name, info.size_check, args))
    return out


def _input(graph: Graph) -> tuple[str, tuple[int, ...]]:
    four = [(n, s) for n, s in graph.inputs.items() if s and len(s) == 4]
    if len(four) != 1:
        raise PassError("sizes", "the solver needs exactly one 4-D image input",
                        expected="1", got=f"{len(four)} ({', '.join(graph.inputs) or 'none'})",
                        hint="run set_input_shape first, or use a single-input network")
    return four[0]


class Solver:
    """Size problems of one graph under a list of pass specs (checks built once)."""

    def __init__(self, graph: Graph, specs: Iterable[Any]):
        self.graph = graph
        self.checks = _checks(graph, specs)
        self.name, self.shape = _input(graph)
        self._memo: dict[HW, list[str]] = {}

    @property
    def declared(self) -> HW:
        return int(self.shape[2]), int(self.shape[3])

    def problems(self, hw: HW) -> list[str]:
        """Why ``hw`` is invalid (``[]`` when valid): the shape error, or the passes' problems."""
        from nnbuild.shapes import infer_shapes

        if hw in self._memo:
            return self._memo[hw]
        if min(hw) < 1:
            return [f"size {format_hw(hw)} is empty"]
        shape = (1, self.shape[1], hw[0], hw[1])
        try:
            shapes = infer_shapes(self.graph, {self.name: shape})
        except ModelError as err:  # ShapeError and weight mismatches: the size itself is bad
            found = [str(err)]
        else:
            found = [f"{name}: {p}" for name, fn, args in self.checks
                     for p in fn(self.graph, shapes, **args)]
        self._memo[hw] = found
        return found

    def valid(self, hw: HW) -> bool:
        return not self.problems(hw)

    def reference(self, near: HW, span: int = 512) -> HW | None:
        """A valid size to pair scanned sides with: ``near`` itself, else the closest square."""
        if self.valid(near):
            return near
        centre = max(near)
        for d in range(1, span + 1):
            for s in (centre - d, centre + d):
                if s >= 1 and self.valid((s, s)):
                    return s, s
        return None

    def side_ok(self, axis: int, value: int, ref: HW) -> bool:
        """Whether ``value`` is a valid height (axis 0) or width (axis 1), other side ``ref``."""
        hw = (value, ref[1]) if axis == 0 else (ref[0], value)
        return self.valid(hw)


@dataclasses.dataclass
class Solution:
    """The valid sides in the scanned ranges, and how the pairs were verified."""

    heights: list[int]
    widths: list[int]
    reference: HW | None
    verified: int = 0
    pairs: int = 0
    failures: list[tuple[HW, list[str]]] = dataclasses.field(default_factory=list)


def solve(graph: Graph, specs: Iterable[Any], heights: Iterable[int], widths: Iterable[int],
          *, max_verify: int = 4096) -> Solution:
    """Valid heights and widths in the given ranges, with pair verification (module docstring).

    Args:
        graph: the network (its declared input is the starting reference size).
        specs: the recipe's pass specs (only those with a size check matter).
        heights, widths: candidate sides.
        max_verify: verify every pair when there are at most this many, else a sample.
    """
    solver = Solver(graph, specs)
    heights, widths = list(heights), list(widths)
    ref = solver.reference(solver.declared)
    if ref is None:
        return Solution([], [], None)
    hs = [h for h in heights if solver.side_ok(0, h, ref)]
    ws = [w for w in widths if solver.side_ok(1, w, ref)]
    sol = Solution(hs, ws, ref, pairs=len(hs) * len(ws))
    if sol.pairs <= max_verify:
        sample = [(h, w) for h in hs for w in ws]
    else:
        n = max(len(hs), len(ws))
        sample = [(hs[i * len(hs) // n], ws[i * len(ws) // n]) for i in range(n)]
        sample += [(hs[0], ws[-1]), (hs[-1], ws[0])]
    for hw in sample:
        sol.verified += 1
        if not solver.valid(hw):
            sol.failures.append((hw, solver.problems(hw)))
    return sol


def _nearest_side(solver: Solver, axis: int, start: int, step: int, ref: HW,
                  limit: int) -> int | None:
    value = start
    while 1 <= value <= limit:
        if solver.side_ok(axis, value, ref):
            return value
        value += step
    return None


def nearest_valid(graph: Graph, specs: Iterable[Any], hw: HW, *, span: int = 1024
                  ) -> tuple[HW | None, HW | None]:
    """The nearest valid sizes strictly below and above ``hw``, per side, verified as pairs.

    "Below" takes for each side the largest valid value <= that side (and not ``hw`` itself);
    "above" the smallest >= it. A side that has no valid value within ``span`` gives None.
    """
    solver = Solver(graph, specs)
    ref = solver.reference(hw)
    if ref is None:
        return None, None
    found = []
    for step in (-1, 1):
        sides = [_nearest_side(solver, axis, hw[axis], step, ref, hw[axis] + span)
                 for axis in (0, 1)]
        if None in sides or tuple(sides) == tuple(hw):
            sides = [_nearest_side(solver, axis, hw[axis] + step, step, ref, hw[axis] + span)
                     for axis in (0, 1)]
        pair = tuple(sides) if None not in sides else None
        found.append(pair if pair is not None and solver.valid(pair) else None)
    return found[0], found[1]


def format_sides(values: list[int]) -> str:
    """Compact text for sorted sides: ``569-576, 601-608``."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
