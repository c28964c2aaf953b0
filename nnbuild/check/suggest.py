"""suggest-hp: choose the few layers whose 16-bit execution (``_hp``) recovers most accuracy.

NNIE compile_mode 2 runs layers whose name ends in ``_hp`` in 16-bit: their weights and the blob
they store (nnie-facts.md §2, §5). 16-bit costs latency (RetinaFace: 17 ms 8-bit vs 34 ms 16-bit,
§1), so the goal is the smallest set of layers that brings the outputs to the all-16-bit quality.

The search only needs a score function ``score(hp_layers) -> float`` (mean output cosine against
the float model, higher is better); ``SimScorer`` provides it with ``nnbuild.nnie.simulate``.

1. Rank every candidate by the score with that layer alone in 16-bit (``check.rank_sensitivity``).
2. Greedy forward selection: at each step try adding each of the ``width`` best-ranked remaining
   layers, keep the one giving the best score; stop at the budget or when the score reaches the
   target (the all-16-bit score minus ``tolerance`` of the int8-to-int16 gap).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterable, Sequence

from nnbuild.check.metrics import rank_sensitivity
from nnbuild.errors import RecipeError


@dataclasses.dataclass
class Suggestion:
    """Result of ``search``.

    Attributes:
        layers: the proposed ``_hp`` layers, in the order they were chosen.
        base: score with no extra 16-bit layer; full: score with every layer 16-bit.
        score: score with ``layers`` in 16-bit.
        steps: score after each greedy step.
        ranking: ``check.rank_sensitivity`` of the single-layer trials.
        evaluations: how many score() calls the search made.
    """

    layers: list[str]
    base: float
    full: float
    score: float
    steps: list[float]
    ranking: list[dict]
    evaluations: int

    @property
    def fraction(self) -> float:
        """How far the set goes from the int8 score to the int16 score (1.0 = all the way)."""
        gap = self.full - self.base
        return 1.0 if gap <= 0 else (self.score - self.base) / gap


def parse_budget(text: str | int, n_candidates: int) -> int:
    """``--budget``: a layer count (``8``) or a percentage of the candidate layers (``15%``).

    A percentage rounds down (15% of 56 convolutions -> 8) but gives at least one layer.

    Raises:
        RecipeError: for anything else, or a value outside 1..n_candidates / 0..100 %.
    """
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            pct = float(raw[:-1])
            if not 0 < pct <= 100:
                raise ValueError(raw)
            return max(1, math.floor(n_candidates * pct / 100 + 1e-9))
        count = int(raw)
    except ValueError:
        raise RecipeError("--budget", "not a layer count or percentage",
                          expected="e.g. 8 or 15%", got=raw,
                          hint="a percentage counts the weighted layers") from None
    if not 1 <= count <= n_candidates:
        raise RecipeError("--budget", "layer count out of range",
                          expected=f"1..{n_candidates}", got=count)
    return count


def search(score: Callable[[frozenset], float], candidates: Sequence[str], budget: int, *,
           full: float, width: int = 4, tolerance: float = 0.01,
           progress: Callable[[Iterable], Iterable] = iter) -> Suggestion:
    """Greedy search for the smallest ``_hp`` set (see module docstring).

    Args:
        score: hp layer set -> mean output cosine (higher is better).
        candidates: layers that may go to 16-bit, in execution order.
        budget: at most this many layers.
        full: the score with every layer 16-bit (the target quality).
        width: how many of the best-ranked remaining layers each greedy step tries.
        tolerance: stop once the remaining gap to ``full`` is below this fraction of the
            int8-to-int16 gap.
        progress: wraps iterables for a progress display.
    """
    base = score(frozenset())
    single = {name: score(frozenset([name])) for name in progress(list(candidates))}
    ranking = rank_sensitivity(base, single)
    order = [r["layer"] for r in ranking]
    target = full - tolerance * max(full - base, 0.0)
    chosen: list[str] = []
    current, steps, evaluations = base, [], 1 + len(single)
    while len(chosen) < budget and current < target:
        trial = [name for name in order if name not in chosen][:width]
        if not trial:
            break
        results = {}
        for name in trial:
            results[name] = single[name] if not chosen else score(frozenset(chosen + [name]))
            evaluations += 0 if not chosen else 1
        best = max(trial, key=lambda n: results[n])
        if results[best] <= current and chosen:
            break  # nothing left that helps: a smaller set is as good
        chosen.append(best)
        current = results[best]
        steps.append(current)
    return Suggestion(chosen, base, full, current, steps, ranking, evaluations)


def recipe_diff(recipe_path: str, text: str, layers: Sequence[str]) -> str:
    """A unified diff setting ``quant: {mode: mixed, high_precision: [...]}`` in the recipe.

    An existing top-level ``quant:`` block is replaced; otherwise one is appended. The layer names
    are the model's own (the mark_high_precision pass appends ``_hp`` at build time).
    """
    import difflib

    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    block = ["quant:\n", "  mode: mixed\n", "  high_precision:\n"]
    block += [f"    - {name}\n" for name in layers]
    start = next((i for i, line in enumerate(lines) if line.startswith("quant:")), None)
    if start is None:
        new = lines + block
    else:
        end = start + 1
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
            end += 1
        new = lines[:start] + block + lines[end:]
    return "".join(difflib.unified_diff(lines, new, f"a/{recipe_path}", f"b/{recipe_path}"))


class SimScorer:
    """``score(hp_layers)`` by simulation: mean cosine of the chosen outputs against float.

    The ``_hp`` layers are marked the way the build does it (name suffix, compile_mode 2,
    nnie-facts.md §2) on a copy of the graph and simulated with ``nnbuild.nnie.simulate``. Float
    outputs are computed once. Layers already named ``*_hp`` stay 16-bit in every trial.

    Speed: every blob produced before the first ``_hp`` layer of a trial is exactly what the base
    (8-bit) run stored, so a trial only simulates the layers from that one on, fed with the base
    run's stored blobs (kept per image: memory grows with the image count, use 2-4 images).

    Args:
        graph: the patched graph; ranges: its calibration (``Ranges``).
        feeds: one feed dict per image (2-4 images are plenty for a ranking).
        outputs: SSA output blobs to score (default: every network output).
        bias: ``{"int8": deltas, "int16": deltas}`` (``nnbuild.nnie.biascorrect.corrections_for``)
            to score the bias-corrected models a build with ``quant.bias_correction`` compiles:
            each layer takes the delta of its precision in the trial. None: no correction.
    """

    def __init__(self, graph, ranges, feeds: Sequence[dict], outputs: Sequence[str] | None = None,
                 bias: dict | None = None):
        from nnbuild.engine import run
        from nnbuild.nnie.quantpoints import HP_SUFFIX, WEIGHTED_TYPES
        from nnbuild.nnie.simulate import simulate

        self.graph, self.ranges, self.feeds, self.bias = graph, ranges, list(feeds), bias
        self.suffix = HP_SUFFIX
        self.outputs = list(outputs or graph.outputs)
        self.reference = [run(graph, f) for f in self.feeds]  # the float model, uncorrected
        self.quantized = self._compiled(set())
        self.stored = [simulate(self.quantized, ranges, "mixed", f, "all") for f in self.feeds]
        self.position = {layer.name: i for i, layer in enumerate(graph.layers)}
        self.candidates = [layer.name for layer in graph.layers
                           if layer.type in WEIGHTED_TYPES and not layer.name.endswith(HP_SUFFIX)]

    def _compiled(self, hp: set[str], everything: bool = False):
        """The model a build compiles with ``hp`` (or ``everything``) in 16-bit: the graph
        itself, or with ``bias`` its layers' biases corrected at their precision."""
        if not self.bias:
            return self.graph
        from nnbuild.nnie.biascorrect import apply

        def wide(name: str) -> bool:
            return everything or name in hp or name.endswith(self.suffix)
        return apply(self.graph, {name: self.bias["int16" if wide(name) else "int8"][name]
                                  for name in self.bias["int8"]})

    def _trial_graph(self, hp: set[str]):
        """The graph from the first ``hp`` layer on, ``hp`` layers renamed ``*_hp``."""
        from nnbuild.ir import Graph

        start = min(self.position[name] for name in hp)
        layers = [layer.copy() for layer in self._compiled(hp).layers[start:]]
        for layer in layers:
            if layer.name in hp:
                layer.name += self.suffix
        produced = {t for layer in layers for t in layer.tops}
        needed = [b for layer in layers for b in layer.bottoms if b not in produced]
        inputs = {b: tuple(self.stored[0][b].shape) for b in dict.fromkeys(needed)}
        return Graph(self.graph.name, inputs, layers, "legacy", dict(self.graph.origin))

    def cosines(self, hp: Iterable[str], mode: str = "mixed") -> dict[str, float]:
        """Output blob -> mean cosine over the images with ``hp`` in 16-bit."""
        import numpy as np

        from nnbuild.check.metrics import compare
        from nnbuild.nnie.simulate import prepare, simulate

        hp = set(hp)
        trial = bool(hp) and mode == "mixed"
        if trial:
            graph = self._trial_graph(hp)
        else:
            graph = self._compiled(set(), everything=True) if mode == "int16" else self.quantized
        plan = prepare(graph, self.ranges, mode)
        per = {name: [] for name in self.outputs}
        for feeds, ref, stored in zip(self.feeds, self.reference, self.stored):
            if trial:
                out = simulate(graph, self.ranges, mode, {b: stored[b] for b in graph.inputs},
                               plan=plan)
            else:
                out = simulate(graph, self.ranges, mode, feeds, plan=plan)
            for name in self.outputs:
                got = out[name] if name in out else stored[name]
                per[name].append(compare(ref[name], got)["cosine"])
        return {name: float(np.mean(v)) for name, v in per.items()}

    def score(self, hp: frozenset) -> float:
        """Mean output cosine with ``hp`` in 16-bit (the search's objective)."""
        values = self.cosines(hp)
        return sum(values.values()) / len(values)

    def full(self) -> float:
        """The all-16-bit score (compile_mode 1): the quality the search aims for."""
        values = self.cosines((), mode="int16")
        return sum(values.values()) / len(values)
