"""A real build killed during the check stage: no pool worker survives its parent (kill -9),
and SIGTERM / Ctrl-C stop cleanly (exit 143 / 130, one line, no traceback, no cache entry for
the stopped stage, no leftover work directory)."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from e2e.e2e_project import doit, env, make_project, override_text, write_recipe

pytestmark = pytest.mark.slow
RECIPE = "retinaface-1024"  # the slowest check per image: room to kill it mid-check


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("interrupt") / "p", [])
    counts = {"calibration": {"count": 2}, "check": {"count": 8}, "patch_check": {"count": 1}}
    write_recipe(proj, RECIPE, override_text(RECIPE, counts))
    upto = doit(proj, f"map:{RECIPE}")  # everything before check, once
    assert upto.returncode == 0, upto
    return proj


def _children(pid: int) -> list[int]:
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_check(proj):
    """Start `doit build RECIPE` with the check stage's per-image cache emptied; return the
    process and its pool workers once they are computing."""
    shutil.rmtree(proj / "cache" / "v1" / "scratch" / RECIPE / "check", ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "doit", "build", RECIPE], cwd=proj, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(workers := _children(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the check stage's pool never started"
        time.sleep(0.05)
    time.sleep(1.0)  # workers busy with their first image
    assert proc.poll() is None
    return proc, workers


def _gone_within(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _no_check_entry_and_no_work_dir(proj, pid):
    entries = list((proj / "cache" / "v1" / "ac").glob("check/*/*.json"))
    assert entries == [], "the stopped check stage left a cache entry"
    assert not list((proj / "cache" / "v1" / "tmp").glob(f"run-check-{pid}-*")), "work dir left"


def test_kill_9_of_the_build_leaves_no_worker(project):
    proc, workers = _start_check(project)
    proc.kill()
    proc.wait()  # not communicate(): orphaned workers would hold its pipes open forever
    survivors = _gone_within(workers, 5)
    for pid in survivors:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    proc.communicate()
    assert survivors == [], f"workers {survivors} outlived kill -9 of their parent"


@pytest.mark.parametrize("signum, status, word", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_ctrl_c_stop_cleanly(project, signum, status, word):
    proc, workers = _start_check(project)
    proc.send_signal(signum)
    try:
        proc.wait(timeout=60)
    finally:
        survivors = _gone_within(workers, 5)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, (out, err)
    assert "Traceback" not in err + out, err
    assert err.strip().splitlines()[-1].startswith(f"doit build: {word}"), err
    assert survivors == []
    _no_check_entry_and_no_work_dir(project, proc.pid)
