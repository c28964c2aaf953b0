"""Issue 18 "Done when": retinaface-640 int8 built with align_channel_levels beats the same build
without it, vs float, on the recipe's own check set (16 calibration + 8 check photos).

Both builds go through the real pipeline (fetch, patch with its proof, calibrate, map, check) in
a throw-away project whose two recipes extend the zoo's retinaface-640 and differ only in the
pass. The issue's independent simulation expected a mean box/landmark output cosine of about
0.955 without and 0.966 with the pass (recall of the float detections 0.945 -> 0.969).

The zoo's RetinaFace recipes correct their biases for the weight rounding
(``quant.bias_correction``, nnbuild.nnie.biascorrect), so both builds here do. Measured: worst
output cosine 0.9526 -> 0.9553, mean box/landmark cosine 0.9679 -> 0.9706, recall vs float
0.969 -> 0.991, both verdicts "pass". Without bias correction the comparison was a lottery: the
fixed rounding offsets of the weights, amplified downstream, moved the worst cosine over
0.909-0.946 under random re-parametrisations of the same chains (benchmarks/align_levels.py),
and the aligned build happened to fall 0.9434 -> 0.9277 although each of its layers alone is
more exact. With the offsets corrected, three random re-parametrisations give 0.9470-0.9525
(``python benchmarks/align_levels.py retinaface-640 --random 3 --bias-correction``).
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
    assert result.returncode == 0, result
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


def test_both_builds_are_the_zoo_recipe_int8_with_bias_correction(reports):
    from nnbuild.recipe.load import load_merged

    assert load_merged(ZOO / "retinaface-640.yaml")["quant"]["bias_correction"] is True
    for report, _ in reports.values():
        assert report["quant"]["mode"] == "int8" and report["verdict"] == "pass"
        assert "compiled.caffemodel" in report["inputs"]


def test_pass_beats_the_plain_build_on_recall(reports):
    plain, aligned = _metrics(reports["plain"][0]), _metrics(reports["aligned"][0])
    print(f"plain {plain}\naligned {aligned}")
    assert aligned["recall"] > plain["recall"]


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
