"""Reliability: kill -9 mid-stage, concurrent builds sharing a cache, tampered cache files."""

import json
import os
import random
import signal
import subprocess
import sys
import time

from nnbuild.build.cache import Cache
from nnbuild.hashing import sha256_file
from fakestages.project import doit, env, make_project, runs


def _assert_cache_sound(proj):
    """Every action-cache entry is complete: readable, and each file hashes to its record."""
    cache = Cache(proj / "cache", warn=lambda m: (_ for _ in ()).throw(AssertionError(m)))
    for path, entry in cache.iter_entries():
        assert entry is not None, f"torn entry {path}"
        assert cache.read_entry(entry["stage"], entry["key"]) is not None
        for name, info in entry["outputs"].items():
            assert sha256_file(cache.cas_path(info["sha256"])) == info["sha256"], name


def test_kill_9_mid_stage_then_rebuild(tmp_path):
    proj = make_project(tmp_path, recipes=("mnet-small",))
    path = proj / "recipes" / "mnet-small.yaml"
    path.write_text(path.read_text().replace("count: 3", "count: 12"))
    e = env(tmp_path, H5_SLOW_SECONDS=0.05)
    rng = random.Random(4)
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "doit", "build", "mnet-small"], cwd=proj,
                                env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.2))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_cache_sound(proj)
        if attempt == 2:  # also change the key so an older entry and a new one coexist
            path.write_text(path.read_text().replace("count: 12", "count: 11"))
    final = doit(proj, "build", "mnet-small", env=e)
    assert final.returncode == 0, final.stderr
    _assert_cache_sound(proj)
    parts = proj / "cache" / "v1" / "out" / "mnet-small" / "slow" / "parts"
    assert len(list(parts.iterdir())) == 11
    assert doit(proj, "build", "mnet-small", env=e).stdout.count("-- ") == 4


def test_concurrent_builds_share_the_cache(tmp_path):
    proj = make_project(tmp_path)
    e = env(tmp_path, H5_SLOW_SECONDS=0.1)
    cmds = [["build", "mnet-small"], ["build", "pnet-small"], ["-n", "2", "build", "mnet-small",
                                                              "pnet-small"]]
    procs = [subprocess.Popen([sys.executable, "-m", "doit", *c], cwd=proj, env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0], results
    _assert_cache_sound(proj)
    again = doit(proj, "build", env=e)
    assert again.returncode == 0 and again.stdout.count("-- ") == 8, again.stdout


def test_tampered_cache_file_is_detected_and_rebuilt(tmp_path):
    proj = make_project(tmp_path, recipes=("pnet-small",))
    e = env(tmp_path)
    assert doit(proj, "build", "pnet-small", env=e).returncode == 0
    runs(tmp_path)
    marker = json.loads((proj / "cache/v1/out/pnet-small/digest.json").read_text())
    blob = Cache(proj / "cache").cas_path(marker["outputs"]["digest.json"]["sha256"])
    os.chmod(blob, 0o644)
    blob.write_bytes(b"X" * blob.stat().st_size)  # same size: only the hash can tell
    (proj / "cache/v1/out/pnet-small/digest.json").unlink()  # force a restore from the store
    result = doit(proj, "build", "pnet-small", env=e)
    assert result.returncode == 0, result.stderr
    assert "changed behind nnbuild's back" in result.stderr
    assert runs(tmp_path) == ["digest:pnet-small"]  # rebuilt; downstream keys unchanged
    restored = proj / "cache/v1/out/pnet-small/digest/digest.json"
    assert sha256_file(restored) == marker["outputs"]["digest.json"]["sha256"]
    _assert_cache_sound(proj)
