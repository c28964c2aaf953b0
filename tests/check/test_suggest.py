"""Tests for nnbuild.check.suggest: the search on scorers with a known optimum, budgets, recipe diffs."""

from __future__ import annotations

import pytest

from nnbuild.check import suggest
from nnbuild.errors import RecipeError


def _additive(gains: dict[str, float], base: float = 0.5):
    calls = []

    def score(hp: frozenset) -> float:
        calls.append(hp)
        return base + sum(gains[n] for n in hp)
    return score, calls


def test_search_picks_largest_gains_and_respects_budget():
    gains = {f"l{i}": g for i, g in enumerate([0.01, 0.2, 0.0, 0.1, 0.05, 0.03])}
    score, _ = _additive(gains)
    full = 0.5 + sum(gains.values())
    result = suggest.search(score, list(gains), 2, full=full)
    assert result.layers == ["l1", "l3"]
    assert result.score == pytest.approx(0.8) and result.base == 0.5
    assert result.fraction == pytest.approx(0.3 / 0.39)
    assert [r["layer"] for r in result.ranking][:3] == ["l1", "l3", "l4"]
    assert result.steps == pytest.approx([0.7, 0.8])


def test_search_stops_when_int16_quality_is_reached():
    gains = {"a": 0.3, "b": 0.001, "c": 0.0005}
    score, _ = _additive(gains)
    result = suggest.search(score, list(gains), 3, full=0.5 + 0.3015, tolerance=0.01)
    assert result.layers == ["a"]  # within 1% of the gap: b and c are not worth 16-bit


def test_search_greedy_beats_single_ranking_on_redundant_layers():
    # a and b repair the same error (only one counts); c repairs another, smaller one.
    def score(hp):
        return 0.2 + (0.5 if hp & {"a", "b"} else 0.0) + (0.3 if "c" in hp else 0.0)
    result = suggest.search(score, ["a", "b", "c"], 2, full=1.0)
    assert sorted(result.layers) == ["a", "c"] and result.score == pytest.approx(1.0)
    assert result.fraction == pytest.approx(1.0)


def test_search_stops_when_nothing_helps():
    score, calls = _additive({"a": 0.1, "b": 0.0, "c": -0.1})
    result = suggest.search(score, ["a", "b", "c"], 3, full=0.9)
    assert result.layers == ["a"] and result.evaluations == len(calls)


@pytest.mark.parametrize("text,n,want", [("8", 56, 8), ("15%", 56, 8), ("15%", 58, 8),
                                         ("100%", 10, 10), ("1%", 10, 1)])
def test_parse_budget(text, n, want):
    assert suggest.parse_budget(text, n) == want


@pytest.mark.parametrize("text,match", [("abc", "not a layer count"), ("0", "out of range"),
                                        ("99", "Expected 1..56"), ("150%", "not a layer count")])
def test_parse_budget_errors(text, match):
    with pytest.raises(RecipeError, match=match):
        suggest.parse_budget(text, 56)


def test_recipe_diff_appends_or_replaces_quant_block():
    text = "extends: base.yaml\ninput: {shape: [1, 3, 640, 640]}\n"
    diff = suggest.recipe_diff("recipes/r.yaml", text, ["conv_a", "conv_b"])
    assert diff.startswith("--- a/recipes/r.yaml\n+++ b/recipes/r.yaml\n")
    assert "+quant:\n+  mode: mixed\n+  high_precision:\n+    - conv_a\n+    - conv_b\n" in diff
    text2 = "extends: b.yaml\nquant:\n  mode: int8\n\ncheck: {task: raw}\n"
    diff2 = suggest.recipe_diff("r.yaml", text2, ["x"])
    assert "-  mode: int8\n" in diff2 and "+  mode: mixed\n" in diff2 and "+    - x\n" in diff2
    assert "-check" not in diff2


# -- done-when: RetinaFace int8, budget 15% of the weighted layers --------------------------------

def _way(scorer, layers, outputs):
    """Fraction of the int8 -> int16 gap of the mean bbox/landmark cosine that ``layers`` close."""
    def mean(c):
        return sum(c[o] for o in outputs) / len(outputs)
    c8, c16, got = scorer.cosines(()), scorer.cosines((), "int16"), scorer.cosines(layers)
    return mean(c8), mean(got), mean(c16), (mean(got) - mean(c8)) / (mean(c16) - mean(c8))


@pytest.mark.slow
def test_suggest_hp_retinaface_int8_budget_15_percent(retinaface_int8, retinaface_scorer):
    graph, ranges, check_feeds = retinaface_int8
    scorer = retinaface_scorer
    budget = suggest.parse_budget("15%", len(scorer.candidates))
    assert (len(scorer.candidates), budget) == (58, 8)  # 56 conv + 2 upsampling deconv
    result = suggest.search(scorer.score, scorer.candidates, budget, full=scorer.full())
    assert 1 <= len(result.layers) <= 8
    heads = [o for o in scorer.outputs if "bbox" in o or "landmark" in o]
    assert len(heads) == 6
    c8, got, c16, way = _way(scorer, result.layers, heads)
    print(f"\nsuggest-hp retinaface int8, {len(result.layers)} layers {result.layers}: "
          f"bbox/landmark cosine int8 {c8:.4f} -> {got:.4f} (int16 {c16:.4f}), {way:.3f} of the "
          f"way; {result.evaluations} simulations")
    assert way >= 0.75
    held = suggest.SimScorer(graph, ranges, check_feeds[2:])
    h8, hgot, h16, hway = _way(held, result.layers, heads)
    print(f"held-out {len(check_feeds) - 2} images: {h8:.4f} -> {hgot:.4f} (int16 {h16:.4f}), "
          f"{hway:.3f} of the way")
    assert hway >= 0.75


def test_cli_suggest_hp_needs_a_build(tmp_path, monkeypatch, capsys):
    from nnbuild import cli

    monkeypatch.setenv("NNBUILD_CACHE", str(tmp_path / "cache"))
    assert cli.main(["suggest-hp", "retinaface-640", "--budget", "15%"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnbuild: error: retinaface-640: the patch stage has not been built")
    assert "doit build retinaface-640" in err and "\n" not in err
