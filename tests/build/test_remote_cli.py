"""The team cache from the command line, in throw-away projects (fake stages, a directory
remote): ``doit build`` through a remote, ``--remote=off``, the no-op path that never touches
it, ``nnbuild cache push / pull / stats --remote`` and what ``nnbuild explain`` says."""

from __future__ import annotations

import re
import subprocess
import sys

from fakestages.project import doit, env, make_project, runs
from fakestages.remote import free_port
from nnbuild.build.remote import configured_url

BUILT = ["digest:mnet-small", "slow:mnet-small", "package:mnet-small"]


def nnbuild(proj, *args, env):
    return subprocess.run([sys.executable, "-m", "nnbuild.cli", *args], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_noop_build_with_a_remote_never_touches_it_nor_imports_fsspec(tmp_path):
    proj = make_project(tmp_path)
    warm = env(tmp_path, NNBUILD_REMOTE=tmp_path / "remote")
    assert doit(proj, "build", env=warm).returncode == 0
    # A remote that fails if touched: nothing listens on that port (one warning if asked).
    dead = env(tmp_path, NNBUILD_REMOTE="s3://team-bucket/cache", AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="y", NNBUILD_REMOTE_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    code = ("import sys; from doit.doit_cmd import DoitMain; rc = DoitMain().run(['build']); "
            "heavy = [m for m in ('numpy', 'fsspec', 's3fs', 'botocore', 'aiohttp') "
            "if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], cwd=proj, env=dead, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and result.stdout.count("-- ") == 8
    assert "remote" not in result.stderr, result.stderr
    # The same remote on a build that misses locally: touched, one warning, build succeeds.
    (proj / "cache").rename(tmp_path / "old-cache")
    runs(tmp_path)
    cold = doit(proj, "build", "mnet-small", env=dead)
    assert cold.returncode == 0 and runs(tmp_path) == BUILT
    assert cold.stderr.count("nnbuild: remote: ") == 1, cold.stderr


def test_remote_off_builds_locally_for_one_build(tmp_path):
    a, b = make_project(tmp_path / "a"), make_project(tmp_path / "b")
    e = env(tmp_path, NNBUILD_REMOTE=tmp_path / "remote")
    pnet = [s.replace("mnet", "pnet") for s in BUILT]
    assert doit(a, "build", env=e).returncode == 0 and sorted(runs(tmp_path)) == sorted(
        BUILT + pnet)  # both recipes are on the remote now
    off = doit(b, "build", "--remote=off", "mnet-small", env=e)
    assert off.returncode == 0 and runs(tmp_path) == BUILT
    assert "restored from remote" not in off.stderr
    off_cli = nnbuild(b, "build", "--remote=off", "pnet-small", env=e)
    assert off_cli.returncode == 0 and "remote" not in off_cli.stderr
    assert runs(tmp_path) == pnet
    c = make_project(tmp_path / "c")  # the option also names a remote for one build
    on = doit(c, "build", f"--remote={tmp_path / 'remote'}", "mnet-small",
              env=dict(e, NNBUILD_REMOTE="off"))
    assert on.returncode == 0 and runs(tmp_path) == [], on.stderr
    assert on.stderr.count("restored from remote") == 4


def test_two_clones_share_the_remote_of_their_pyproject(tmp_path):
    a, b = make_project(tmp_path / "a"), make_project(tmp_path / "b")
    for proj in (a, b):
        text = (proj / "pyproject.toml").read_text()
        (proj / "pyproject.toml").write_text(
            f'[tool.nnbuild]\nremote = "{tmp_path / "remote"}"\n\n' + text)
    e = env(tmp_path)
    e.pop("NNBUILD_REMOTE", None)
    first = doit(a, "build", "mnet-small", env=e)
    assert first.returncode == 0 and runs(tmp_path) == BUILT, first.stderr
    second = doit(b, "build", "mnet-small", env=e)
    assert second.returncode == 0 and runs(tmp_path) == [], second.stderr
    assert second.stderr.count("restored from remote") == 4
    assert (b / "dist/mnet-small.tar.gz").read_bytes() == (a / "dist/mnet-small.tar.gz").read_bytes()


def test_push_pull_stats_and_explain(tmp_path):
    a, b = make_project(tmp_path / "a"), make_project(tmp_path / "b")
    local = env(tmp_path, NNBUILD_REMOTE="off")
    assert doit(a, "build", "mnet-small", env=local).returncode == 0 and runs(tmp_path) == BUILT
    e = env(tmp_path, NNBUILD_REMOTE=tmp_path / "remote")
    pushed = nnbuild(a, "cache", "push", "mnet-small", env=e)
    assert pushed.returncode == 0 and pushed.stdout.strip() == "pushed 4 entries", pushed
    before = nnbuild(b, "explain", "mnet-small", env=e).stdout.splitlines()
    assert "fetch:mnet-small: on remote (would be restored from remote)" in before
    assert "slow:mnet-small: would run" in before  # its key needs digest's outputs first
    pulled = nnbuild(b, "cache", "pull", "mnet-small", env=e)
    assert pulled.returncode == 0, pulled
    assert pulled.stdout.splitlines() == [f"{s}:mnet-small: restored from remote"
                                          for s in ("fetch", "digest", "slow", "package")]
    assert runs(tmp_path) == [] and (b / "dist/mnet-small.tar.gz").is_file()
    after = nnbuild(b, "explain", "mnet-small", env=e).stdout.splitlines()
    assert after == [f"{s}:mnet-small: up to date (restored from remote)"
                     for s in ("fetch", "digest", "slow", "package")]
    assert doit(b, "build", "mnet-small", env=e).stdout.count("-- ") == 4
    stats = nnbuild(b, "cache", "stats", "--remote", env=e).stdout.splitlines()
    assert stats[0] == f"remote: {tmp_path / 'remote'}"
    assert stats[1].startswith("hits: 4, misses: 0,") and stats[2].startswith("downloaded: 3.1 MB")
    missing = nnbuild(b, "cache", "pull", "pnet-small", env=e)
    assert missing.returncode == 1
    line = missing.stdout.splitlines()[0]
    assert line.startswith("fetch:pnet-small: not on the remote (digest, slow, package not pulled)")
    assert "doit build pnet-small" in line and len(missing.stdout.splitlines()) == 1


def test_push_without_a_remote_is_one_line(tmp_path):
    proj = make_project(tmp_path)
    result = nnbuild(proj, "cache", "push", env=env(tmp_path, NNBUILD_REMOTE="off"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "nnbuild: error: nnbuild cache push: no remote cache configured. Expected NNBUILD_REMOTE "
        "or [tool.nnbuild] remote, got neither. Hint: set NNBUILD_REMOTE=s3://bucket/prefix (or a "
        "directory), or remote = \"...\" under [tool.nnbuild] in pyproject.toml.")
    unknown = nnbuild(proj, "cache", "pull", "nope", env=env(tmp_path, NNBUILD_REMOTE="x"))
    assert unknown.returncode == 2 and "nope: unknown recipe" in unknown.stderr


def test_the_remote_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("NNBUILD_REMOTE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.nnbuild]\nremote = "../team-cache"\n')
    assert configured_url(tmp_path) == str((tmp_path.parent / "team-cache").resolve())
    (tmp_path / "pyproject.toml").write_text('[tool.nnbuild]\nremote = "s3://b/p"\n')
    assert configured_url(tmp_path) == "s3://b/p"
    monkeypatch.setenv("NNBUILD_REMOTE", "off")
    assert configured_url(tmp_path) is None
    monkeypatch.setenv("NNBUILD_REMOTE", "file:///srv/cache")
    assert configured_url(tmp_path) == "file:///srv/cache"
    (tmp_path / "pyproject.toml").write_text("[tool.nnbuild]\nmirror = []\n")
    monkeypatch.delenv("NNBUILD_REMOTE")
    assert configured_url(tmp_path) is None


def test_a_failing_remote_warns_once_per_build_across_processes(tmp_path):
    proj = make_project(tmp_path)
    dead = env(tmp_path, NNBUILD_REMOTE="s3://team-bucket/cache", AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="y", NNBUILD_REMOTE_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    both = doit(proj, "-n", "2", "build", "mnet-small", "pnet-small", env=dead)
    assert both.returncode == 0, both.stderr
    assert len(runs(tmp_path)) == 6
    assert both.stderr.count("nnbuild: remote: ") == 1, both.stderr
    recipe = proj / "recipes" / "mnet-small.yaml"  # a local miss: the next build asks again
    recipe.write_text(re.sub(r"count: \d+", "count: 5", recipe.read_text()))
    again = doit(proj, "build", "mnet-small", env=dead)
    assert again.returncode == 0 and again.stderr.count("nnbuild: remote: ") == 1, again.stderr
