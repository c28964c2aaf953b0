"""nnbuild.check.suggest_budget: 16-bit layers by cosine gained per estimated millisecond."""

from __future__ import annotations


import pytest

from nnbuild.check import suggest

from nnbuild.check import suggest_budget
from nnbuild.errors import RecipeError


def _additive(gains, base=0.5):
    return lambda hp: base + sum(gains[n] for n in hp)


def test_prefers_gain_per_ms_over_raw_gain():
    gains = {"big": 0.2, "cheap1": 0.08, "cheap2": 0.07, "cheap3": 0.06}
    extra = {"big": 5.0, "cheap1": 1.0, "cheap2": 1.0, "cheap3": 1.0}
    result = suggest_budget.search(_additive(gains), list(gains), extra, 10.0, 13.0)
    assert result.layers == ["cheap1", "cheap2", "cheap3"]
    assert result.ms == pytest.approx(13.0) and result.score == pytest.approx(0.71)
    count = suggest.search(_additive(gains), list(gains), 1, full=0.91)
    assert count.layers == ["big"]  # the count budget takes the 5 ms layer first


def test_budget_is_never_exceeded_and_front_is_monotone():
    gains = {f"l{i}": g for i, g in enumerate([0.05, 0.01, 0.2, 0.03, 0.0])}
    extra = {f"l{i}": e for i, e in enumerate([1.5, 0.2, 3.0, 0.5, 0.1])}
    for budget in (10.0, 10.4, 11.0, 12.0, 15.0):
        result = suggest_budget.search(_additive(gains), list(gains), extra, 10.0, budget)
        assert result.ms <= budget + 1e-12
        assert result.ms == pytest.approx(10.0 + sum(extra[n] for n in result.layers))
        front = result.front()
        assert front[0]["layers"] == [] and all(
            a["ms"] <= b["ms"] and a["score"] < b["score"] for a, b in zip(front, front[1:]))
    assert "l4" not in result.layers  # no gain: never bought


@pytest.mark.parametrize("text, base, want", [("20", 17.0, 20.0), ("+2", 16.3, 18.3),
                                              ("16.3", 16.3, 16.3)])
def test_parse_budget_ms(text, base, want):
    assert suggest_budget.parse_budget_ms(text, base) == pytest.approx(want)


@pytest.mark.parametrize("text, match", [
    ("fast", r"--budget-ms: not a number of milliseconds. Expected e.g. 20 or \+2, got fast"),
    ("10", r"--budget-ms: below the all-8-bit estimate. Expected >= 16.30 ms, got 10.00 ms")])
def test_parse_budget_ms_errors(text, match):
    with pytest.raises(RecipeError, match=match):
        suggest_budget.parse_budget_ms(text, 16.3)


@pytest.mark.slow
def test_budget_8bit_plus_2ms_beats_15_percent_set_at_same_latency(retinaface_int8,
                                                                    retinaface_scorer):
    graph, ranges, _check_feeds = retinaface_int8
    scorer = retinaface_scorer  # memoised, shared with test_suggest's 15% search
    cosines = scorer.cosines

    def worst(hp):
        return min(cosines(frozenset(hp)).values())

    def mean(hp):
        values = cosines(frozenset(hp))
        return sum(values.values()) / len(values)
    counted = suggest.search(mean, scorer.candidates, suggest.parse_budget("15%", 58),
                             full=scorer.full())
    base_ms, extra = suggest_budget.extra_ms(graph, scorer.candidates, "hi3516dv300")
    budget = base_ms + 2.0
    result = suggest_budget.search(worst, scorer.candidates, extra, base_ms, budget)
    assert result.ms <= budget
    # The --budget 15% set at the same estimated latency: its longest prefix (in the order the
    # count search chose) that fits in the latency the budget set takes.
    prefix = []
    for name in counted.layers:
        if base_ms + sum(extra[n] for n in prefix + [name]) > result.ms:
            break
        prefix.append(name)
    full_ms = base_ms + sum(extra[n] for n in counted.layers)
    print(f"\nbudget {budget:.2f} ms: {result.layers} -> {result.ms:.2f} ms, worst cosine "
          f"{result.score:.4f} (int8 {result.base:.4f}); 15% set {counted.layers}: "
          f"{full_ms:.2f} ms, worst {worst(counted.layers):.4f}; its prefix at <= "
          f"{result.ms:.2f} ms {prefix}: worst {worst(prefix):.4f}")
    assert result.score >= worst(prefix)
    assert result.score > result.base


def test_cli_budget_ms_needs_a_build(tmp_path, monkeypatch, capsys):
    from nnbuild import cli

    monkeypatch.setenv("NNBUILD_CACHE", str(tmp_path / "cache"))
    assert cli.main(["suggest-hp", "retinaface-640", "--budget-ms", "+2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnbuild: error: retinaface-640: the patch stage has not been built")


def test_patience_looks_past_redundant_layers():
    # a and b repair the same error (only one counts); c repairs another one, at a worse ratio.
    def score(hp):
        return 0.2 + (0.5 if hp & {"a", "b"} else 0.0) + (0.1 if "c" in hp else 0.0)
    extra = {"a": 1.0, "b": 1.0, "c": 1.0}
    stuck = suggest_budget.search(score, ["a", "b", "c"], extra, 5.0, 9.0, width=1, patience=1)
    assert stuck.layers == ["a"]
    result = suggest_budget.search(score, ["a", "b", "c"], extra, 5.0, 9.0, width=1, patience=2)
    assert result.layers == ["a", "c"] and result.score == pytest.approx(0.8)
