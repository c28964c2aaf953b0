"""suggest-hp under a latency budget: 16-bit layers chosen by accuracy gained per millisecond.

``nnbuild.check.suggest.search`` picks the layers that recover most accuracy for a layer *count*; a
16-bit layer, however, costs what its operation costs (``nnbuild.nnie.cost``: a 640x640 first
convolution and a 20x20 head differ by 10x). Here the budget is estimated milliseconds:

1. Every candidate's extra cost is its operation's 16-bit minus 8-bit estimate (the cost model
   is additive per operation, so a set's latency is the all-8-bit time plus its layers' extras).
2. Rank the candidates that fit by (score with that layer alone in 16-bit - base score) / extra.
3. Greedy: at each step try the ``width`` best-ranked remaining layers that still fit, keep the
   one with the best gain per millisecond over the current set; while none of them helps, try
   the next ``width`` (at most ``patience`` batches); stop when none fits or helps.

The score is the **worst output's** mean cosine (``min`` over outputs): what the check gate and
the README's "worst output cosine" read. Every set evaluated is kept with its estimated ms, so the
caller can show the front of output cosine against estimated latency.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping, Sequence

from nnbuild.errors import RecipeError


@dataclasses.dataclass
class BudgetSuggestion:
    """Result of ``search``.

    Attributes:
        layers: chosen layers, in the order chosen.
        base_ms, ms: estimated latency all 8-bit, and with ``layers`` in 16-bit.
        base, score: worst output cosine all 8-bit, and with ``layers``.
        tried: every evaluated set: ``{layers, ms, score}``.
    """

    layers: list[str]
    base_ms: float
    ms: float
    base: float
    score: float
    tried: list[dict]

    def front(self) -> list[dict]:
        """The tried sets no other tried set beats in both score and ms, by ms."""
        best, out = -1.0, []
        for item in sorted(self.tried, key=lambda t: (t["ms"], -t["score"])):
            if item["score"] > best:
                out.append(item)
                best = item["score"]
        return out


def parse_budget_ms(text: str | float, base_ms: float) -> float:
    """``--budget-ms``: milliseconds (``20``) or an increase over all-8-bit (``+2``).

    Raises:
        RecipeError: not a number, or below the all-8-bit estimate.
    """
    raw = str(text).strip()
    try:
        value = float(raw)
    except ValueError:
        raise RecipeError("--budget-ms", "not a number of milliseconds",
                          expected="e.g. 20 or +2", got=raw,
                          hint="+N adds N ms to the all-8-bit estimate") from None
    budget = base_ms + value if raw.startswith("+") else value
    if budget < base_ms:
        raise RecipeError("--budget-ms", "below the all-8-bit estimate",
                          expected=f">= {base_ms:.2f} ms", got=f"{budget:.2f} ms",
                          hint="raise the budget or use +N for N ms over all-8-bit")
    return budget


def _ranked(single: Mapping[str, float], extra: Mapping[str, float], base: float) -> list[str]:
    def ratio(name: str) -> float:
        gain = single[name] - base
        return gain / extra[name] if extra[name] > 0 else (float("inf") if gain > 0 else 0.0)
    return sorted(single, key=lambda n: (-ratio(n), n))


def search(score: Callable[[frozenset], float], candidates: Sequence[str],
           extra_ms: Mapping[str, float], base_ms: float, budget_ms: float, *,
           width: int = 4, patience: int = 3,
           progress: Callable[[Iterable], Iterable] = iter) -> BudgetSuggestion:
    """Greedy gain-per-millisecond search (see module docstring).

    Args:
        score: hp layer set -> worst output cosine (higher is better).
        candidates: layers that may go to 16-bit.
        extra_ms: layer -> estimated ms added when it runs in 16-bit.
        base_ms: estimated ms with every layer 8-bit.
        budget_ms: the most estimated ms the result may take.
        width: candidates tried per greedy step.
        patience: when none of them helps, how many batches of ``width`` further down the
            ranking a step may try before the search stops.
        progress: wraps iterables for a progress display.
    """
    room = budget_ms - base_ms
    base = score(frozenset())
    tried = [{"layers": [], "ms": base_ms, "score": base}]
    fits = [n for n in candidates if extra_ms[n] <= room]
    single = {}
    for name in progress(fits):
        single[name] = score(frozenset([name]))
        tried.append({"layers": [name], "ms": base_ms + extra_ms[name], "score": single[name]})
    order = _ranked(single, extra_ms, base)
    chosen, current, spent = [], base, 0.0
    while True:
        step = _step(score, order, chosen, current, extra_ms, room - spent, width, patience,
                     single)
        for name, value in step["results"].items():
            if chosen:
                tried.append({"layers": chosen + [name], "ms": base_ms + spent + extra_ms[name],
                              "score": value})
        if step["best"] is None:
            break
        chosen.append(step["best"])
        current, spent = step["results"][step["best"]], spent + extra_ms[step["best"]]
    return BudgetSuggestion(chosen, base_ms, base_ms + spent, base, current, tried)


def _step(score, order, chosen, current, extra_ms, room, width, patience, single) -> dict:
    """One greedy step: ``{results: layer -> score, best: layer with the best gain/ms or None}``.

    Tries the best-ranked remaining layers that fit, ``width`` at a time, and moves on to the
    next batch (up to ``patience`` batches) only while no layer tried so far improves the score.
    """
    fitting = [n for n in order if n not in chosen and extra_ms[n] <= room]
    results: dict[str, float] = {}
    for batch in range(patience):
        trial = fitting[batch * width:(batch + 1) * width]
        if not trial:
            break
        for name in trial:
            results[name] = single[name] if not chosen else score(frozenset(chosen + [name]))
        gains = {n: (results[n] - current) / max(extra_ms[n], 1e-9) for n in results}
        best = max(gains, key=lambda n: gains[n])
        if gains[best] > 0:
            return {"results": results, "best": best}
    return {"results": results, "best": None}


def extra_ms(graph, candidates: Sequence[str], chip) -> tuple[float, dict[str, float]]:
    """(all-8-bit estimated ms, layer -> ms added by running it in 16-bit) for ``graph``."""
    from nnbuild.nnie import cost

    rows8 = {r["name"]: r["ms"] for r in cost.layer_costs(graph, {}, chip)}
    names = [layer.name for layer in graph.layers]
    all16 = {r["name"]: r["ms"] for r in cost.layer_costs(graph, dict.fromkeys(names, 16), chip)}
    return sum(rows8.values()), {n: all16[n] - rows8[n] for n in candidates}
