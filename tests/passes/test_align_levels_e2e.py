"""Issue 18 "Done when": retinaface-640 int8 built with align_channel_levels beats the same build
without it, vs float, on the recipe's own check set (16 calibration + 8 check photos).

Both builds go through the real pipeline (fetch, patch with its proof, calibrate, map, check) in
a throw-away project whose two recipes extend the zoo's retinaface-640 and differ only in the
pass. The issue's independent simulation expected a mean box/landmark output cosine of about
0.955 without and 0.966 with the pass (recall of the float detections 0.945 -> 0.969).

Measured with nnbuild's simulator (benchmarks/zoo.py --add-pass, benchmarks/align_levels.py):
recall 0.941 -> 0.960 holds, but the worst output cosine falls 0.9434 -> 0.9277 (mean box and
landmark cosine 0.9523 -> 0.9402) and the lowest layer cosine 0.88 -> 0.816 fails the recipe's
0.83 gate (the build's verdict is "fail", hence return code 1 is accepted). Random per-channel
re-parametrisations with the same scale distribution spread the worst output cosine over
0.909-0.946: the gain the pass gives the weights (weights-only worst cosine 0.964 -> 0.985)
drowns in how the changed rounding pattern of the activations falls on this check set. The
cosine half of the Done-when point therefore does not hold here and is an expected failure.
"""

from __future__ import annotations

import json

import pytest

from e2e.e2e_project import ZOO, doit, pyproject_text, write_recipe

pytestmark = pytest.mark.slow
PASS = "align_channel_levels"
NAMES = {"plain": "rf640-plain", "aligned": "rf640-aligned"}


def _patches(with_pass: bool) -> list:
    from nnbuild.recipe.load import load_merged

    patches = [p for p in load_merged(ZOO / "retinaface-640.yaml")["patches"] if p != PASS]
    return patches + ([PASS] if with_pass else [])


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    proj = tmp_path_factory.mktemp("align") / "proj"
    (proj / "recipes").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(pyproject_text())
    for kind, name in NAMES.items():
        write_recipe(proj, name, f"extends: {ZOO / 'retinaface-640.yaml'}\n"
                                 f"patches: {json.dumps(_patches(kind == 'aligned'))}\n")
    result = doit(proj, "-n", "2", *(f"check:{n}" for n in NAMES.values()), timeout=3000)
    assert result.returncode in (0, 1), result  # 1: a check gate failed, the report exists
    out = {}
    for kind, name in NAMES.items():
        stage = proj / "cache" / "v1" / "out" / name
        out[kind] = (json.loads((stage / "check" / "report.json").read_text()),
                     json.loads((stage / "patch" / "patch-report.json").read_text()))
    return out


def _metrics(report: dict) -> dict:
    cosines = {o["blob"]: o["metrics"]["cosine"] for o in report["outputs"]}
    regressions = [v for k, v in cosines.items() if "cls" not in k]
    return {"worst": min(cosines.values()), "mean_regression": sum(regressions) / len(regressions),
            "recall": report["task"]["metrics"]["recall_vs_float"]}


def test_pass_beats_the_plain_build_on_recall(reports):
    plain, aligned = _metrics(reports["plain"][0]), _metrics(reports["aligned"][0])
    print(f"plain {plain}\naligned {aligned}")
    assert reports["plain"][0]["quant"]["mode"] == "int8"
    assert reports["plain"][0]["verdict"] == "pass"
    assert aligned["recall"] > plain["recall"]


@pytest.mark.xfail(strict=True, reason="measured 0.9434 -> 0.9277 worst output cosine (see the "
                   "module docstring): the issue's expectation does not hold in this simulator")
def test_pass_beats_the_plain_build_on_worst_and_mean_output_cosine(reports):
    plain, aligned = _metrics(reports["plain"][0]), _metrics(reports["aligned"][0])
    assert aligned["worst"] > plain["worst"]
    assert aligned["mean_regression"] > plain["mean_regression"]


def test_patch_proof_holds_with_the_pass(reports):
    proof = reports["aligned"][1]["check"]
    assert proof["passed"] and proof["max_rel"] <= proof["tolerance"]
    entry = next(p for p in reports["aligned"][1]["passes"] if p["pass"] == PASS)
    assert len(entry["changes"]["notes"]["aligned"]) == 13
    assert not [p for p in reports["plain"][1]["passes"] if p["pass"] == PASS]
