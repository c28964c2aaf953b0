"""Every command the README shows is run here, in a throw-away copy of the project.

The copy has the real recipes and pyproject.toml, and a ``shared`` link beside it, so the README's
``../shared/...`` paths and the default mirrors resolve as they do in a checkout. The install
steps (``pip install ...``) and the test command itself are what ``.ci/run`` runs; the test checks
that .ci/run runs exactly the README's test command. Benchmark scripts run with small counts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT, SHARED

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text(encoding="utf-8")
STANDIN = ROOT / "tests" / "fakes" / "nnie_mapper_12_standin.py"


def readme_commands() -> list[str]:
    """``$ command`` lines of console blocks plus inline `nnbuild ...`/`doit ...` commands."""
    shown = [line[2:].split("  #")[0].strip() for line in README.splitlines()
             if line.startswith("$ ")]
    inline = re.findall(r"`((?:nnbuild |doit |python benchmarks/)[^`]+)`", README)
    return list(dict.fromkeys(shown + inline))


def test_the_two_commands_at_the_top():
    first_block = README.split("```console", 1)[1].split("```", 1)[0]
    assert [l for l in first_block.splitlines() if l.strip()] == [
        "$ pip install -e . && doit build retinaface-640",
        "$ pip install -e '.[test]' && python -m pytest -q"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert "\npython -m pytest -q\n" in ci


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project next to a link to ../shared, with its own cache and dist."""
    top = tmp_path_factory.mktemp("readme")
    (top / "shared").symlink_to(SHARED)
    root = top / "project"
    root.mkdir()
    shutil.copytree(ROOT / "recipes", root / "recipes")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def sh(project, command: str, timeout: int = 900, expect: int = 0,
       **env) -> subprocess.CompletedProcess:
    """Run a README command line (``VAR=value`` prefixes and ``&&`` allowed) in the project."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("NNBUILD_MIRROR", "NNBUILD_CACHE", "NNBUILD_ROOT")}
    environ.update(env, BROWSER="true")  # `--open` must not start a real browser in a test
    done = subprocess.run(["bash", "-c", command], cwd=project, env=environ, text=True,
                          capture_output=True, timeout=timeout)
    assert done.returncode == expect, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def runnable(command: str) -> str:
    """The part of a README command a test runs: installs are .ci/run's job; the python used
    is this interpreter; benchmark counts and the suggest-hp search are small (the search's
    quality at 15% is tests/check/test_suggest.py's job)."""
    command = command.split("&& ", 1)[1] if command.startswith("pip install") else command
    command = re.sub(r"^python ", f"{shlex.quote(sys.executable)} ", command)
    if re.search(r"benchmarks/zoo\.py( --\S+ \S+)*$", command):
        command += " mtcnn-pnet"  # one small recipe, not the whole zoo
    command = re.sub(r"--random \d+", "--random 1", command)
    if command.startswith("nnbuild suggest-hp"):
        command = re.sub(r"--budget \S+", "--budget 2 --images 1", command)
    return re.sub(r"--runs \d+", "--runs 1", re.sub(r"--repeat \d+", "--repeat 2", command))


def test_readme_commands_in_order(project):
    commands = readme_commands()
    assert len(commands) >= 20
    ran = []
    for command in commands:
        if "pytest" in command:
            continue  # the test command: .ci/run runs it (test_ci_runs_the_readme_test_command)
        line = runnable(command)
        if line.startswith("NNIE_MAPPER="):
            line = mapper_command(project, line)
        # inspect exits 1 when lint has findings, as the original RetinaFace graph has.
        out = sh(project, line, expect=1 if command.startswith("nnbuild inspect ") else 0)
        check_output(project, command, out.stdout + out.stderr)
        ran.append(command)
    assert any(c.startswith("pip install -e . && doit build") for c in ran)


def mapper_command(project, line: str) -> str:
    """The README's real-mapper line, with the stand-in at the path the README names."""
    fake = project / "nnie_mapper_12"
    fake.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {STANDIN} \"$@\"\n")
    fake.chmod(0o755)
    return re.sub(r"^NNIE_MAPPER=\S+", f"NNIE_MAPPER={fake}", line)


def check_output(project, command: str, output: str) -> None:
    """What each command must have done, beyond exiting 0."""
    if command.endswith("doit build retinaface-640") and command.startswith("pip"):
        assert (project / "dist" / "retinaface-640.tar.gz").is_file()
    elif command.startswith("NNIE_MAPPER="):
        with tarfile.open(project / "dist" / "retinaface-640.tar.gz") as tar:
            assert "retinaface-640/retinaface-640.wk" in tar.getnames()
    elif command.startswith("nnbuild verify"):
        assert "ok (" in output
    elif command.startswith("nnbuild report"):
        assert output.strip().endswith("report.html")
    elif command.startswith("nnbuild init"):
        assert (project.parent / "my-models" / "recipes" / "example.yaml").is_file()
    elif command.startswith("cd ../my-models"):
        assert (project.parent / "my-models" / "dist" / "example.tar.gz").is_file()
    elif command.startswith("nnbuild zoo"):
        assert "zoo:retinaface-640" in output
    elif command.startswith("nnbuild validate recipes/"):
        assert output == "mtcnn-pnet: ok\n"
    elif command.startswith("nnbuild new"):
        assert (project / "recipes" / "my-retinaface.yaml").is_file()
    elif command.startswith("nnbuild inspect "):
        assert "crop0" in output and "total:" in output
    elif command.startswith("nnbuild suggest-hp"):
        assert "+  mode: mixed" in output
    elif command.startswith("nnbuild run"):
        assert (project / "outputs.npz").is_file() and "ms" in output
    elif command.startswith("doit -n 2 build"):
        assert all((project / "dist" / f"mtcnn-{n}.tar.gz").is_file() for n in ("pnet", "rnet"))
