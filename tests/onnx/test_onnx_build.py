"""ONNX recipes through `doit build` in throw-away projects: the zoo recipe passes its gate, the
proof reaches patch-report.json, another input size builds from a recipe alone, and bad ONNX
input stops the build with one line, exit 2, nothing cached."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from e2e.e2e_project import ZOO, doit, env, executed, make_project, write_recipe

pytestmark = pytest.mark.slow


def report_of(proj, name: str, member: str) -> dict:
    with tarfile.open(proj / "dist" / f"{name}.tar.gz") as tar:
        return json.loads(tar.extractfile(f"{name}/{member}").read())


def test_scrfd_builds_passes_its_gate_and_carries_the_proof(tmp_path):
    proj = make_project(tmp_path / "proj", ["scrfd-500m-640"])
    built = doit(proj, "build", "scrfd-500m-640")
    assert built.returncode == 0, built
    patch = report_of(proj, "scrfd-500m-640", "patch-report.json")
    proof = patch["source_proof"]
    assert proof["reference"].startswith("onnxruntime") and proof["passed"]
    assert proof["max_rel"] <= 1e-4 and len(proof["images"]) == 1  # patch_check count 1
    assert patch["outputs"][:3] == ["score_stride8", "bbox_stride8", "kps_stride8"]
    assert report_of(proj, "scrfd-500m-640", "lint.json")["clean"]
    assert report_of(proj, "scrfd-500m-640", "report.json")["verdict"] == "pass"
    # the no-op build of an ONNX recipe imports neither numpy nor onnx
    code = ("import sys; from doit.doit_cmd import DoitMain; rc = DoitMain().run(['build']); "
            "heavy = [m for m in ('numpy', 'onnx', 'onnxruntime', 'google.protobuf') "
            "if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], cwd=proj, env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and result.stdout.count("-- ") == 6


def test_another_input_size_builds_from_a_recipe_alone(tmp_path):
    proj = make_project(tmp_path / "proj", [])
    write_recipe(proj, "scrfd-480", f"extends: {ZOO / 'scrfd-500m-640.yaml'}\n"
                 "input: {shape: [1, 3, 480, 640]}\ncalibration: {count: 4}\n"
                 "check: {count: 2}\npatch_check: {count: 1}\n")
    built = doit(proj, "build", "scrfd-480")
    assert built.returncode == 0, built
    patch = report_of(proj, "scrfd-480", "patch-report.json")
    assert patch["input"] == {"images": [1, 3, 480, 640]} and patch["source_proof"]["passed"]


def _bad_recipe(proj, source: str) -> None:
    write_recipe(proj, "bad", f"extends: {ZOO / 'scrfd-500m-640.yaml'}\nsource:\n{source}")


def _assert_one_line_exit_2_nothing_cached(proj, line: str) -> None:
    failed = doit(proj, "build", "bad")
    assert failed.returncode == 2, failed
    text = failed.stdout + failed.stderr  # doit reports a failed task's error on stdout
    assert len([l for l in text.splitlines() if line in l]) == 1, failed
    assert "Traceback" not in text, failed
    assert executed(failed.stdout) == ["fetch:bad"]
    assert not (proj / "cache" / "v1" / "out" / "bad" / "fetch").exists()


def test_unknown_output_is_one_line_exit_2_nothing_cached(tmp_path):
    proj = make_project(tmp_path / "proj", [])
    recipe = (ZOO / "scrfd-500m-640.yaml").read_text()
    onnx_ref = next(l for l in recipe.splitlines() if l.strip().startswith("onnx:")).strip()
    _bad_recipe(proj, f"  {onnx_ref}\n  outputs: [nope]\n")
    _assert_one_line_exit_2_nothing_cached(proj, "source.outputs: tensor 'nope' is not in the "
                                                 "model. Expected the name of a node output")


def test_truncated_onnx_is_one_line_exit_2_nothing_cached(tmp_path):
    import hashlib

    from e2e.e2e_project import SHARED

    proj = make_project(tmp_path / "proj", [])
    data = (SHARED / "models" / "scrfd-500m" / "scrfd_500m_kps.onnx").read_bytes()[:300_000]
    (proj / "cut.onnx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    _bad_recipe(proj, f"  onnx: {{path: ../cut.onnx, sha256: {digest}}}\n")
    _assert_one_line_exit_2_nothing_cached(proj, "not a complete ONNX model. Expected an ONNX "
                                                 "ModelProto")
