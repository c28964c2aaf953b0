"""Whole recipes between the local cache and the team remote: ``nnbuild cache push / pull``.

``push`` uploads the built entries of recipes (blobs first, record last, ``build.teamcache``);
``pull`` brings every stage of recipes into the local cache and ``cache/v1/out/`` without
running anything, stage by stage (a stage's key needs its upstream's outputs), and says in one
line which stage is not on the remote.
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import NNBuildError

_SAID = {"current": "up to date", "restored": "restored from cache",
         "remote": "restored from remote"}


def _pipeline(root: Path, command: str):
    from nnbuild.build.doit_plugin import pipeline

    pipe = pipeline(root)
    if pipe.team.url is None:
        raise NNBuildError(f"nnbuild cache {command}", "no remote cache configured",
                           expected="NNBUILD_REMOTE or [tool.nnbuild] remote", got="neither",
                           hint="set NNBUILD_REMOTE=s3://bucket/prefix (or a directory), or "
                                "remote = \"...\" under [tool.nnbuild] in pyproject.toml")
    return pipe


def _check_names(root: Path, names: list[str]) -> None:
    from nnbuild.recipe.scan import scan

    known, _problems = scan(root / "recipes")
    for name in names:
        if name not in known:
            raise NNBuildError(name, "unknown recipe", expected="one of " + ", ".join(known),
                               got=repr(name), hint=f"add recipes/{name}.yaml or fix the name")


def _entries_of(pipe, names: list[str]) -> list[tuple[str, str]]:
    """``(stage, key)`` of the built entries of ``names`` (all local entries when empty)."""
    wanted, found = set(names), set()
    for name in names:
        for stage in pipe.modules:
            marker = pipe.read_marker(name, stage)
            if marker:
                found.add((stage, marker["key"]))
    for _path, entry in pipe.cache.iter_entries():
        if isinstance(entry, dict) and (not names or entry.get("recipe") in wanted):
            if isinstance(entry.get("stage"), str) and isinstance(entry.get("key"), str):
                found.add((entry["stage"], entry["key"]))
    return sorted(found)


def push(root: Path, names: list[str]) -> tuple[int, int, bool]:
    """Upload the built entries of ``names`` (every local entry when empty).

    Returns:
        ``(pushed, skipped, ok)``: entries now on the remote, entries unreadable here, and
        False when the remote failed (it printed why).
    """
    _check_names(root, names)
    pipe = _pipeline(root, "push")
    pushed = skipped = 0
    for stage, key in _entries_of(pipe, names):
        entry = pipe.cache.read_entry(stage, key)
        if entry is None:
            skipped += 1
            continue
        if not pipe.team.push(stage, key, entry):
            pipe.team.save()
            return pushed, skipped, False
        pushed += 1
    pipe.team.save()
    return pushed, skipped, True


def pull(root: Path, names: list[str], say=print) -> int:
    """Restore every stage of ``names`` from the local cache or the remote; run nothing.

    Returns:
        0 when every stage is in place, 1 when some stage is not on the remote (one line each
        recipe) or the remote failed.
    """
    from nnbuild.build.doit_plugin import get_recipe

    _check_names(root, names)
    pipe = _pipeline(root, "pull")
    status = 0
    for name in names:
        rec = get_recipe(root, name)
        order = list(pipe.modules)
        for index, stage in enumerate(order):
            pipe.forget(rec)
            try:
                how = pipe.build(rec, stage, run=False)
            except NNBuildError as err:  # a recorded gate failure: restored, and it fails again
                say(f"{stage}:{name}: restored a recorded failure ({err})")
                status = 1
                break
            if how == "missing":
                later = order[index + 1:]
                why = "the remote failed (see above)" if pipe.team.store is None else \
                    "not on the remote"
                say(f"{stage}:{name}: {why}" + (f" ({', '.join(later)} not pulled)" if later else "")
                    + f". Hint: build it with `doit build {name}` (or push it from a machine "
                      f"that has it: nnbuild cache push {name})")
                status = 1
                break
            say(f"{stage}:{name}: {_SAID[how]}")
    return status
