"""Team cache speed: a cold build against a fresh clone restoring from a warm remote (a
directory and S3 through a local moto server), a whole-zoo restore, and the no-op build with
and without a remote configured (medians).

Usage: python benchmarks/remote_cache.py [--recipe retinaface-640] [--runs 3]
                                         [--recipes NAME ...] [--no-zoo | --zoo-only]
Run from the project root; sources come from ../shared. The zoo restore first builds the zoo in
this checkout's own cache (a no-op when it is built) and pushes it to the remotes. Targets
(issue 16): restore <= 25% of the cold build and < 3 s; zoo restore < 30 s; the no-op with a
remote as fast as without (no round trip: the remote is not touched when the cache is complete).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PY = sys.executable
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def clone(where: pathlib.Path) -> pathlib.Path:
    """A fresh project: the checkout's recipes and config, mirrors as absolute paths."""
    shutil.copytree(ROOT / "recipes", where / "recipes")
    text = (ROOT / "pyproject.toml").read_text()
    tail = text[text.index("[tool.nnbuild]"):]
    mirrors = ", ".join(f'"{SHARED / d}"' for d in ("models", "images"))
    (where / "pyproject.toml").write_text(re.sub(r"^mirror = \[.*\]$", f"mirror = [{mirrors}]",
                                                 tail, flags=re.M))
    return where


def run(args: list[str], cwd: pathlib.Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([PY, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} in {cwd} failed:\n{proc.stdout[-2000:]}"
                         f"\n{proc.stderr[-3000:]}")
    return seconds, proc


def restored_all(proc: subprocess.CompletedProcess, names: list[str], stages: int) -> int:
    """Fail unless every stage of every recipe was restored (nothing ran): from the remote, or
    from the local entry an earlier recipe of this build pulled (recipes share fetch keys).
    Returns the number restored from the remote."""
    remote = proc.stderr.count(": restored from remote")
    count = remote + proc.stderr.count(": restored from cache")
    ran = len([line for line in proc.stdout.splitlines() if line.startswith(".  ")])
    if count != stages * len(names) or ran != count:
        raise SystemExit(f"expected {stages * len(names)} stages restored, got {count} of {ran} "
                         f"executed:\n{proc.stderr[-3000:]}")
    return remote


@contextlib.contextmanager
def moto_bucket():
    """``s3://<bucket>/team`` on a moto server on 127.0.0.1 (credentials are dummies)."""
    from moto.server import ThreadedMotoServer
    import s3fs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(CREDENTIALS, NNBUILD_REMOTE_ENDPOINT=f"http://127.0.0.1:{port}")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(endpoint_url=f"http://127.0.0.1:{port}", skip_instance_cache=True).mkdir(bucket)
    try:
        yield f"s3://{bucket}/team"
    finally:
        server.stop()


def base_env() -> dict:
    env = dict(os.environ, NNBUILD_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode (noop_build.py)
    for key in ("NNBUILD_ROOT", "NNBUILD_CACHE", "NNBUILD_MIRROR", "NNBUILD_STAGES", "NNIE_MAPPER"):
        env.pop(key, None)
    return env


def single_recipe(tmp: pathlib.Path, remotes: dict, recipe: str, runs: int) -> pathlib.Path:
    """Cold builds vs restores from each warm remote; returns a restored clone."""
    env = base_env()
    cold = []
    for index in range(runs):
        seconds, _ = run(["doit", "build", recipe], clone(tmp / f"cold-{index}"),
                         dict(env, NNBUILD_REMOTE="off"))
        cold.append(seconds)
    cold_median = statistics.median(cold)
    print(f"cold build {recipe}: {cold_median:.2f} s (median of {runs}: "
          f"{', '.join(f'{s:.1f}' for s in cold)})")
    stages = len(list((tmp / "cold-0" / "cache/v1/out" / recipe).glob("*.json")))
    last = tmp
    for label, url in remotes.items():
        run(["nnbuild.cli", "cache", "push", recipe], tmp / "cold-0", dict(env, NNBUILD_REMOTE=url))
        times = []
        for index in range(runs):
            last = clone(tmp / f"restore-{label}-{index}")
            seconds, proc = run(["doit", "build", recipe], last, dict(env, NNBUILD_REMOTE=url))
            restored_all(proc, [recipe], stages)
            times.append(seconds)
        median = statistics.median(times)
        ok = median <= 0.25 * cold_median and median < 3.0
        print(f"fresh clone restoring {recipe} from the {label} remote: {median:.2f} s (median "
              f"of {runs}) = {100 * median / cold_median:.1f}% of cold, {stages} stages, none "
              f"recomputed (target <= 25% and < 3 s: {'met' if ok else 'NOT met'})")
    return last


def noop(project: pathlib.Path, remotes: dict, recipe: str, runs: int) -> None:
    """No-op builds in a complete clone: no remote, each remote, and a dead remote."""
    env = base_env()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cases = {"no remote": dict(env, NNBUILD_REMOTE="off")}
    cases.update({f"{label} remote": dict(env, NNBUILD_REMOTE=url) for label, url in remotes.items()})
    cases["unreachable S3 remote"] = dict(env, NNBUILD_REMOTE="s3://nowhere/x",
                                          NNBUILD_REMOTE_ENDPOINT=dead)
    run(["doit", "build", recipe], project, cases["no remote"])  # warm bytecode
    floor = None
    for label, case in cases.items():
        times = []
        for _ in range(runs):
            seconds, proc = run(["doit", "build", recipe], project, case)
            if "nnbuild: remote" in proc.stderr or proc.stdout.count("-- ") != 6:
                raise SystemExit(f"the no-op build touched the remote or ran:\n{proc.stderr}")
            times.append(seconds)
        median = statistics.median(times)
        floor = floor or median
        print(f"no-op doit build {recipe}, {label}: {median * 1000:.0f} ms (median of {runs}) "
              f"= {median / floor:.2f}x the no-remote no-op")


def zoo(tmp: pathlib.Path, remotes: dict, names: list[str]) -> None:
    """Build ``names`` in this checkout (its own cache), push, restore them in fresh clones."""
    env = base_env()
    seconds, _ = run(["doit", "build", *names], ROOT, dict(env, NNBUILD_REMOTE="off"))
    print(f"zoo ({len(names)} recipes) built in this checkout's cache: {seconds:.1f} s "
          f"(a no-op when built before)")
    stages = 6
    for label, url in remotes.items():
        pushed, proc = run(["nnbuild.cli", "cache", "push", *names], ROOT, dict(env, NNBUILD_REMOTE=url))
        print(f"  push to the {label} remote: {pushed:.1f} s ({proc.stdout.strip()})")
        project = clone(tmp / f"zoo-{label}")
        seconds, proc = run(["doit", "build", *names], project, dict(env, NNBUILD_REMOTE=url))
        remote = restored_all(proc, names, stages)
        print(f"fresh clone restoring the zoo ({len(names)} recipes, {stages * len(names)} "
              f"stages, {remote} downloaded, the rest shared keys) from the {label} remote: "
              f"{seconds:.1f} s, none recomputed (target < 30 s: "
              f"{'met' if seconds < 30 else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="retinaface-640")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipes", nargs="*", default=None,
                        help="recipes of the zoo restore (default: every recipe in recipes/)")
    parser.add_argument("--no-zoo", action="store_true", help="skip the zoo restore")
    parser.add_argument("--zoo-only", action="store_true", help="only the zoo restore")
    args = parser.parse_args()
    names = args.recipes or sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp, moto_bucket() as s3_url:
        tmp = pathlib.Path(tmp)
        remotes = {"directory": str(tmp / "remote-dir"), "S3 (moto)": s3_url}
        if not args.zoo_only:
            restored = single_recipe(tmp, remotes, args.recipe, args.runs)
            noop(restored, remotes, args.recipe, max(args.runs, 5))
        if not args.no_zoo:
            zoo(tmp, {k: v + "-zoo" for k, v in remotes.items()}, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
