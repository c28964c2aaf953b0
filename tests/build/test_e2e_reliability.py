"""Reliability with the real stages: concurrent builds sharing one cache, and kill -9 at random
moments of a real build (patch proof, calibration, simulation, check), then the same build again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from e2e.e2e_project import doit, env, make_project
from nnbuild.build.cache import Cache
from nnbuild.hashing import sha256_file

pytestmark = pytest.mark.slow


def assert_cache_sound(proj):
    """Every action-cache entry is complete and each stored file hashes to its record."""
    cache = Cache(proj / "cache", warn=lambda m: (_ for _ in ()).throw(AssertionError(m)))
    entries = 0
    for path, entry in cache.iter_entries():
        assert entry is not None, f"torn entry {path}"
        for name, info in entry["outputs"].items():
            assert sha256_file(cache.cas_path(info["sha256"])) == info["sha256"], name
        entries += 1
    return entries


def test_concurrent_real_builds_share_one_cache(tmp_path):
    proj = make_project(tmp_path / "p", ["mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"])
    commands = [["build", "mtcnn-pnet"], ["build", "mtcnn-rnet"],
                ["-n", "2", "build", "mtcnn-onet", "mtcnn-pnet"]]
    procs = [subprocess.Popen([sys.executable, "-m", "doit", *c], cwd=proj, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0], results
    assert assert_cache_sound(proj) >= 3 * 6 - 2  # fetch/calibrate may be shared
    again = doit(proj, "build")
    assert again.returncode == 0 and again.stdout.count("-- ") == 18, again.stdout


def test_kill_9_during_real_stages_then_rebuild(tmp_path):
    proj = make_project(tmp_path / "p", ["ultraface-slim-320"])
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "doit", "build", "ultraface-slim-320"],
                                cwd=proj, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert_cache_sound(proj)
    final = doit(proj, "build", "ultraface-slim-320")
    assert final.returncode == 0, final.stdout + final.stderr
    assert assert_cache_sound(proj) == 6
    assert (proj / "dist" / "ultraface-slim-320.tar.gz").is_file()
    again = doit(proj, "build", "ultraface-slim-320")
    assert again.stdout.count("-- ") == 6, again.stdout
