"""The team cache with the real stages: two clones of a project holding the zoo's mtcnn-pnet
(real models and photos from ../shared), separate local caches, one S3 remote (moto)."""

from __future__ import annotations

import json

from e2e.e2e_project import doit, env, executed, make_project, nnbuild, sha256

STAGES = ("fetch", "patch", "calibrate", "map", "check", "package")


def test_a_fresh_clone_restores_mtcnn_pnet_from_s3_without_recomputing(tmp_path, s3_remote):
    e = env(NNBUILD_REMOTE=s3_remote)  # with the fixture's endpoint and dummy credentials
    first, second = (make_project(tmp_path / n, ["mtcnn-pnet"]) for n in ("a", "b"))
    built = doit(first, "build", "mtcnn-pnet", environ=e)
    assert built.returncode == 0, built
    assert "restored from" not in built.stderr and "nnbuild: remote" not in built.stderr, built
    restored = doit(second, "build", "mtcnn-pnet", environ=e)
    assert restored.returncode == 0, restored
    assert executed(restored.stdout) == sorted(f"{s}:mtcnn-pnet" for s in STAGES)
    for stage in STAGES:  # every stage came from the remote: none was computed here
        assert f"{stage}:mtcnn-pnet: restored from remote" in restored.stderr, restored
    entries = [json.loads(p.read_text()) for p in (second / "cache/v1/ac").glob("*/*/*.json")]
    assert sorted(e["stage"] for e in entries) == sorted(STAGES)
    assert all(e["origin"] == "remote" for e in entries)
    assert sha256(second / "dist/mtcnn-pnet.tar.gz") == sha256(first / "dist/mtcnn-pnet.tar.gz")
    verified = nnbuild(second, "verify", "dist/mtcnn-pnet.tar.gz", environ=e)
    assert verified.returncode == 0, verified
    explained = nnbuild(second, "explain", "mtcnn-pnet", environ=e)
    assert explained.stdout.splitlines() == [
        f"{s}:mtcnn-pnet: up to date (restored from remote)" for s in STAGES], explained
