"""Materialised outputs and local sources that change behind nnbuild's back are noticed.

A file under ``cache/v1/out/`` rewritten in place (same size, mtime put back) must not feed the
next stages: the build restores the verified copy from the store. A pinned local source whose
file no longer matches its sha256 fails with one line even when the store already holds the
pinned content (it used to build silently from the cached copy).
"""

from __future__ import annotations

import os
import shutil

from fakestages.project import SHARED, doit, env, make_project, runs


def test_output_edited_in_place_is_restored_not_used(tmp_path):
    proj, e = make_project(tmp_path, recipes=("pnet-small",)), env(tmp_path)
    assert doit(proj, "build", "pnet-small", env=e).returncode == 0
    runs(tmp_path)
    target = proj / "cache" / "v1" / "out" / "pnet-small" / "fetch" / "model.prototxt"
    original = target.read_bytes()
    st = os.stat(target)
    poisoned = original.replace(b"PReLU", b"ReLU ")  # same size
    assert poisoned != original and len(poisoned) == len(original)
    target.write_bytes(poisoned)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = doit(proj, "build", "pnet-small", env=e)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == original  # restored from the store, verified
    assert runs(tmp_path) == []  # same content again: nothing downstream recomputed


def test_changed_local_source_fails_even_when_cached(tmp_path):
    proj, e = make_project(tmp_path, recipes=("pnet-small",)), env(tmp_path)
    local = proj / "recipes" / "det1.prototxt"
    shutil.copy(SHARED / "models" / "mtcnn" / "det1.prototxt", local)
    recipe = proj / "recipes" / "pnet-small.yaml"
    text = recipe.read_text()
    start = text.index("  prototxt: {url: ")
    end = text.index("}", start) + 1
    sha = "adc1756d8515d3ca3a6a186c0fadab66fcae04bd8d3c6388e2fe8797a626dde4"
    recipe.write_text(text[:start] + f"  prototxt: {{path: det1.prototxt, sha256: {sha}}}"
                      + text[end:])
    assert doit(proj, "build", "pnet-small", env=e).returncode == 0
    with open(local, "a") as handle:
        handle.write("# edited\n")
    result = doit(proj, "build", "pnet-small", env=e)
    assert result.returncode == 2, result.stdout + result.stderr
    line = [ln for ln in (result.stdout + result.stderr).splitlines() if "sha256 mismatch" in ln]
    assert len(line) == 1 and f"det1.prototxt" in line[0] and f"Expected {sha}" in line[0], line
    assert "Traceback" not in result.stderr
