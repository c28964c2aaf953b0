"""nnbuild in a repository of one's own: a wheel installed outside the checkout, ``nnbuild
init``, a recipe extending the zoo, ``nnbuild build`` then ``doit build`` (a no-op), verify.

Slow (builds a wheel, makes a virtual environment and installs it: missing dependencies come
from the package index, the rest from the interpreter's own site-packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED

pytestmark = pytest.mark.slow
RECIPE = "extends: zoo:mtcnn-pnet\ncalibration: {count: 2}\ncheck: {count: 2}\n" \
         "patch_check: {count: 1}\n"


def run(cmd: list, cwd: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(bin folder of a fresh venv holding the nnbuild wheel, a clean environment)."""
    top = tmp_path_factory.mktemp("own")
    src = top / "src"
    for name in ("nnbuild", "recipes"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NNBUILD_", "PYTHON", "VIRTUAL_ENV"))}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", top / "wheel", src], top, env)
    (wheel,) = (top / "wheel").glob("nnbuild-*.whl")
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", "--system-site-packages", top / "venv"], top, env)
    bin_dir = top / "venv" / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], top, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["NNBUILD_OFFLINE"] = "1"
    return bin_dir, env


def test_init_build_noop_verify_outside_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    proj = tmp_path / "mine"
    proj.mkdir()
    where = run([bin_dir / "python", "-c", "import nnbuild; print(nnbuild.__file__)"], proj, env)
    assert not where.stdout.startswith(str(ROOT)), where.stdout  # the wheel, not the checkout
    run([bin_dir / "nnbuild", "init"], proj, env)
    assert {p.name for p in proj.iterdir()} == {"recipes", "pyproject.toml", ".gitignore",
                                              "README.md"}
    again = subprocess.run([bin_dir / "nnbuild", "init"], cwd=proj, env=env, text=True,
                           capture_output=True)
    assert again.returncode == 2 and "would overwrite existing files" in again.stderr
    # the project's own mirrors (pyproject.toml), not NNBUILD_MIRROR
    config = proj / "pyproject.toml"
    mirrors = ", ".join(f'"{SHARED / d}"' for d in ("models", "images"))
    config.write_text(config.read_text().replace("mirror = []", f"mirror = [{mirrors}]"))
    (proj / "recipes" / "pnet.yaml").write_text(RECIPE)
    assert "zoo:mtcnn-pnet" in run([bin_dir / "nnbuild", "zoo"], proj, env).stdout
    first = run([bin_dir / "nnbuild", "build", "pnet"], proj, env)
    assert ".  package:pnet" in first.stdout, first.stdout
    second = run([bin_dir / "doit", "build", "pnet"], proj, env)
    assert [ln for ln in second.stdout.splitlines() if ln.startswith(".")] == [], second.stdout
    assert "-- package:pnet" in second.stdout
    verdict = run([bin_dir / "nnbuild", "verify", proj / "dist" / "pnet.tar.gz"], proj, env)
    assert "ok (" in verdict.stdout
    assert not (proj / "build").exists() and sorted(p.name for p in proj.iterdir()) == [
        ".gitignore", "README.md", "cache", "dist", "pyproject.toml", "recipes"]
