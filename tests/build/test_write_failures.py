"""Places nnbuild cannot write: read-only ``cache/`` or ``dist/``, a full disk while a stage
writes, ``NNBUILD_CACHE`` naming a file. Each gives one line and a non-zero exit, no traceback,
and a full disk leaves no partial cache entry (issue 13, "One clear line instead of a traceback").

Read-only is real, not mocked: as root (which ignores file modes) the commands run under
``setpriv`` without CAP_DAC_OVERRIDE, so the kernel refuses writes to ``chmod a-w`` folders as it
does for any user. A full disk is injected in the subprocess: ``open()`` of the matching files
returns a file whose ``write`` stores half the data and raises ``OSError(ENOSPC)``, as a real
full disk does part-way through a write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from e2e.e2e_project import doit, env, make_project

NAME = "mtcnn-pnet"
DROP_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
             "--inh-caps=-all", "--"]

FULL_DISK = r'''
import builtins, errno, io, os, re, sys
pattern = re.compile(os.environ.pop("FULL_DISK_AT"))
real_open = io.open

class Full:
    def __init__(self, handle):
        self._handle = handle
    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __getattr__(self, name):
        return getattr(self._handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._handle.close()

def full_open(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    if set(mode) & set("wax") and not isinstance(file, int) and pattern.search(os.fspath(file)):
        return Full(handle)
    return handle

builtins.open = io.open = full_open
import shutil
shutil._USE_CP_SENDFILE = False  # copyfile's sendfile() would bypass write(): use write()
from doit.doit_cmd import DoitMain
sys.exit(DoitMain().run(sys.argv[1:]))
'''


def _run(proj, argv, environ=None, read_only=False):
    prefix = DROP_CAPS if read_only and os.geteuid() == 0 else []
    proc = subprocess.run(prefix + [sys.executable, *argv], cwd=proj, env=environ or env(),
                          capture_output=True, text=True, timeout=600)
    return proc


def _one_line(proc, *needles):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("wf") / "p", [NAME])
    run = doit(proj, "build")
    assert run.returncode == 0, run
    return proj


@pytest.fixture()
def read_only(built, tmp_path):
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root without setpriv cannot make a folder read-only for itself")
    proj = tmp_path / "p"
    shutil.copytree(built, proj, symlinks=True)
    stale = proj / "cache" / "v1" / "tmp" / "run-check-1-stale"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))  # a killed build's leftover, for gc to try to remove
    yield proj
    subprocess.run(["chmod", "-R", "u+w", str(proj)], check=True)


def _freeze(*folders):
    for folder in folders:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)


def test_read_only_cache_build_and_gc_say_one_line(read_only):
    _freeze(read_only / "cache")
    build = _run(read_only, ["-m", "doit", "build"], read_only=True)
    line = _one_line(build, "cannot write to", str(read_only / "cache"))
    assert line == (f"doit build: error: cache/: cannot write to {read_only / 'cache'} "
                    "(Permission denied). Hint: make cache/ writable (chmod -R u+w) or point "
                    "NNBUILD_CACHE at a writable folder."), build.stderr
    assert build.returncode == 2
    for argv, prog in ((["-m", "doit"], "doit run"), (["-m", "doit", f"check:{NAME}"], "doit run")):
        run = _run(read_only, argv, read_only=True)  # doit's own run command, default or named
        assert run.returncode == 2
        assert _one_line(run, "cannot write to") == line.replace("doit build", prog)
    gc = _run(read_only, ["-m", "nnbuild.cli", "cache", "gc", "--grace", "0"], read_only=True)
    assert gc.returncode == 2
    assert _one_line(gc, "Permission denied") == (
        f"nnbuild: error: {read_only / 'cache'}/v1/tmp/run-check-1-stale: cannot write or "
        "remove files there (Permission denied). Hint: make that folder writable (chmod -R "
        "u+w); for the cache, NNBUILD_CACHE may point at a writable folder instead."), gc.stderr


def test_read_only_cache_list_and_explain_work_or_say_one_line(read_only):
    _freeze(read_only / "cache", read_only / "dist")
    for argv in (["-m", "doit", "list", "--all"], ["-m", "nnbuild.cli", "explain", NAME]):
        proc = _run(read_only, argv, read_only=True)
        assert "Traceback" not in proc.stdout + proc.stderr, proc
        if proc.returncode == 0:  # reading is enough for both
            assert f"check:{NAME}" in proc.stdout, proc
        else:
            assert len(proc.stderr.strip().splitlines()) == 1, proc


def test_a_read_only_doit_state_file_is_one_line(read_only):
    recipe = read_only / "recipes" / f"{NAME}.yaml"
    recipe.write_text(recipe.read_text().replace("check: {count: 2", "check: {count: 1"))
    _freeze(read_only / "cache" / "doit.sqlite3")  # the folder stays writable
    build = _run(read_only, ["-m", "doit", "build"], read_only=True)
    assert build.returncode == 2
    assert _one_line(build, "doit.sqlite3") == (
        f"doit build: error: {read_only / 'cache' / 'doit.sqlite3'}: doit cannot update its "
        "state (attempt to write a readonly database). Hint: make it writable, or remove it: "
        "doit starts a new one and nnbuild's stage keys still decide what runs.")


def test_dist_or_cache_being_a_file_is_one_line(built, tmp_path):
    proj = tmp_path / "p"
    shutil.copytree(built, proj, symlinks=True)
    shutil.rmtree(proj / "dist")
    (proj / "dist").write_text("a file")
    build = _run(proj, ["-m", "doit", "build"])
    assert build.returncode == 2
    assert _one_line(build, "dist/") == (
        f"doit build: error: dist/: not a folder. Expected a folder (created if missing), got "
        f"the file {proj / 'dist'}. Hint: move the file away (nnbuild creates the folder).")
    shutil.rmtree(proj / "cache")
    (proj / "cache").write_text("a file")
    for argv in (["-m", "doit", "list"], ["-m", "nnbuild.cli", "explain", NAME]):
        assert _one_line(_run(proj, argv), "cache/").endswith(
            f"cache/: not a folder. Expected a folder (created if missing), got the file "
            f"{proj / 'cache'}. Hint: move the file away (nnbuild creates the folder).")


def test_read_only_dist_stops_the_build_before_it_starts(read_only):
    (read_only / "dist" / f"{NAME}.tar.gz").unlink()
    _freeze(read_only / "dist")
    build = _run(read_only, ["-m", "doit", "build"], read_only=True)
    assert build.returncode == 2
    assert _one_line(build, "dist/") == (
        f"doit build: error: dist/: cannot write to {read_only / 'dist'} (Permission denied). "
        "Hint: make dist/ writable (chmod -R u+w dist).")


@pytest.mark.parametrize("argv", [["-m", "doit", "build"], ["-m", "doit", "list"],
                                  ["-m", "doit", "forget", "--all"],
                                  ["-m", "nnbuild.cli", "explain", NAME],
                                  ["-m", "nnbuild.cli", "cache", "gc"],
                                  ["-m", "nnbuild.cli", "cache", "stats"]],
                         ids=lambda a: " ".join(a[1:]))
def test_nnbuild_cache_naming_a_file_is_one_line(built, tmp_path, argv):
    afile = tmp_path / "cache-file"
    afile.write_text("not a folder")
    proc = _run(built, argv, env(NNBUILD_CACHE=afile))
    assert proc.returncode == 2, proc
    assert _one_line(proc, "NNBUILD_CACHE").endswith(
        f"NNBUILD_CACHE: not a folder. Expected a folder (created if missing), got the file "
        f"{afile}. Hint: point it at a folder, or move the file away."), proc.stderr
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("where", [r"/tmp/put-", r"/tmp/entry-", r"/tmp/run-check-.*/out/",
                                   r"/tmp/dist-", r"/scratch/.*\.tmp", r"/tmp/json-"],
                         ids=["store-blob", "entry-record", "stage-output", "dist-copy",
                              "per-image-result", "output-marker"])
def test_full_disk_is_one_line_and_leaves_no_partial_entry(built, tmp_path, where):
    proj = tmp_path / "p"
    shutil.copytree(built, proj, symlinks=True)
    shutil.rmtree(proj / "cache")  # the check stage and package run again, from scratch
    (proj / "dist" / f"{NAME}.tar.gz").unlink()
    doit(proj, "map:" + NAME)
    base = proj / "cache" / "v1"
    before = {p.name for p in (base / "ac" / "check").rglob("*.json")} if (
        base / "ac" / "check").is_dir() else set()
    assert before == set()
    proc = _run(proj, ["-c", FULL_DISK, "build"], env(FULL_DISK_AT=where))
    line = _one_line(proc, "No space left on device")
    assert "Hint: free disk space" in line, line
    if "dist" not in where and "json" not in where:  # these fail after the check entry
        assert not (base / "ac" / "check").is_dir() or not list((base / "ac" / "check").rglob(
            "*.json")), "a check entry was written on a full disk"
    assert list((base / "tmp").iterdir()) == [], "partial files left in cache/v1/tmp"
    assert not list((base / "scratch").rglob("*.tmp*")), "a partial per-image result is left"
    assert not (proj / "dist" / f"{NAME}.tar.gz").exists()
    assert [p.name for p in (proj / "dist").iterdir()] == [], "a partial copy in dist/"
    again = doit(proj, "build")  # the disk has room again: the build completes
    assert again.returncode == 0, again
    assert (proj / "dist" / f"{NAME}.tar.gz").is_file()
