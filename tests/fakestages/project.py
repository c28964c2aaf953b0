"""Test helper: a throw-away nnbuild project (pyproject [tool.doit] + fixture recipes) and a
``doit`` runner, so doit tests run in tmp directories with real and test stage modules."""

import os
import pathlib
import shutil
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
SHARED = ROOT.parent / "shared"
MIRROR = os.pathsep.join([str(SHARED / "models"), str(SHARED / "images")])
TEST_STAGES = "nnbuild.stages.fetch,fakestages.digest,fakestages.slow,fakestages.package"


def make_project(tmp: pathlib.Path, recipes=("mnet-small", "pnet-small")) -> pathlib.Path:
    """Create ``tmp/proj`` with the repo's [tool.doit] config and the named fixture recipes."""
    proj = tmp / "proj"
    (proj / "recipes").mkdir(parents=True)
    text = (ROOT / "pyproject.toml").read_text()
    (proj / "pyproject.toml").write_text(text[text.index("[tool.doit]"):])
    for name in recipes:
        shutil.copy(TESTS / "recipes" / f"{name}.yaml", proj / "recipes" / f"{name}.yaml")
    return proj


def env(tmp: pathlib.Path, stages: str = TEST_STAGES, **extra) -> dict:
    """Environment for subprocess builds: mirrors, offline, test stage modules, a run log."""
    out = dict(os.environ, NNBUILD_MIRROR=MIRROR, NNBUILD_OFFLINE="1", NNBUILD_STAGES=stages,
               FAKE_RUN_LOG=str(tmp / "runs.log"),
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]))
    out.pop("NNBUILD_ROOT", None)
    out.pop("NNBUILD_CACHE", None)
    out.update({k: str(v) for k, v in extra.items()})
    return out


def doit(proj: pathlib.Path, *args: str, env: dict, timeout: float = 120, **kw):
    """Run ``python -m doit ARGS`` in ``proj``."""
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def runs(tmp: pathlib.Path) -> list[str]:
    """Stage runs recorded by the test stages, then cleared."""
    log = tmp / "runs.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines
