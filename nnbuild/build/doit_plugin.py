"""doit integration: a task loader (recipes -> ``<stage>:<recipe>`` tasks) and the ``build`` command.

Registered in pyproject.toml::

    [tool.doit]
    loader = "nnbuild"
    [tool.doit.plugins.loader]
    nnbuild = "nnbuild.build.doit_plugin:RecipeLoader"
    [tool.doit.plugins.command]
    build = "nnbuild.build.doit_plugin:Build"

Each stage is a doit group task whose sub-tasks are the recipes (``patch:retinaface-640``), wired
with ``task_dep`` on the stages it needs and an ``uptodate`` that compares stage keys (so an
edited recipe field re-runs exactly the stages that read it). ``doit build A B`` runs the final
stages of A and B; ``doit build`` all recipes. doit's own state is ``cache/doit.sqlite3``.
Nothing here imports numpy, protobuf or jsonschema on the no-op path.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from pathlib import Path

from doit.cmd_base import TaskLoader2
from doit.cmd_run import Run, opt_num_process
from doit.exceptions import TaskError, TaskFailed
from doit.loader import generate_tasks

from nnbuild.recipe import load as recipes
from nnbuild.recipe.scan import scan
from nnbuild.build import interrupt, writable
from nnbuild.build.cache import Cache
from nnbuild.errors import CacheError, CheckFailed, NNBuildError, RecipeError
from nnbuild.build.registry import final_stages, stages
from nnbuild.build.runner import Pipeline

# The doit wiring (what pyproject.toml's [tool.doit] sections say), for `nnbuild build` in a
# project without them and for the pyproject.toml `nnbuild init` writes.
DOIT_CONFIG = {
    "GLOBAL": {"loader": "nnbuild", "backend": "sqlite3", "dep_file": "cache/doit.sqlite3"},
    "LOADER": {"nnbuild": "nnbuild.build.doit_plugin:RecipeLoader"},
    "COMMAND": {"build": "nnbuild.build.doit_plugin:Build",
                "run": "nnbuild.build.doit_plugin:RunTasks",
                "forget": "nnbuild.build.doit_commands:Forget",
                "info": "nnbuild.build.doit_commands:Info",
                "dumpdb": "nnbuild.build.doit_commands:DumpDB"},
}
# `doit build --remote=off` (or =URL): the team cache for this one build (NNBUILD_REMOTE).
OPT_REMOTE = {"name": "remote", "long": "remote", "type": str, "default": "",
              "help": "remote cache for this build: off, or a URL (default: NNBUILD_REMOTE or "
                      "[tool.nnbuild] remote)"}
_PIPELINES: dict[str, Pipeline] = {}
_RECIPES: dict[tuple[str, str], recipes.Recipe] = {}


def cache_root(root: Path) -> Path:
    """``$NNBUILD_CACHE`` or ``<root>/cache``.

    Raises:
        CacheError: it names a file (a folder is created when first needed).
    """
    path = Path(os.environ.get("NNBUILD_CACHE") or root / "cache").resolve()
    writable.require_folder(path, "NNBUILD_CACHE" if os.environ.get("NNBUILD_CACHE") else "cache/")
    return path


def pipeline(root: str | Path) -> Pipeline:
    """The per-process pipeline of the project at ``root``."""
    root = str(root)
    if root not in _PIPELINES:
        _PIPELINES[root] = Pipeline(Cache(cache_root(Path(root))), Path(root) / "dist")
    return _PIPELINES[root]


def get_recipe(root: str | Path, name: str) -> recipes.Recipe:
    """Load (once per process) and validate recipe ``name`` of the project at ``root``."""
    memo = (str(root), name)
    if memo not in _RECIPES:
        cache = pipeline(root).cache
        _RECIPES[memo] = recipes.load(name, Path(root) / "recipes", cache)
    return _RECIPES[memo]


def stage_uptodate(task, values, root: str, name: str, stage: str) -> bool:
    """doit ``uptodate`` hook: the stage key is unchanged and the outputs are in place."""
    del task, values
    pipe = pipeline(root)
    try:
        rec = get_recipe(root, name)
        pipe.forget(rec)
        return pipe.is_current(rec, stage)
    except Exception:  # noqa: BLE001 - not swallowed: the action hits it again and reports it
        return False  # let the action run and report the problem as the task's failure


def stage_action(root: str, name: str, stage: str):
    """doit action: build one stage through the cache; user errors fail with one line."""
    pipe = pipeline(root)
    try:
        rec = get_recipe(root, name)
        pipe.forget(rec)
        how = pipe.build(rec, stage)
    except CheckFailed as err:
        return TaskFailed(str(err))
    except NNBuildError as err:
        return TaskError(str(err))
    except OSError as err:  # read-only or full cache/dist: one line, not a traceback
        if err.errno not in writable.WRITE_ERRNOS:
            raise
        return TaskError(str(writable.from_os_error(err, context=f"{stage}:{name}")))
    if how == "restored":
        print(f"{stage}:{name}: restored from cache", file=sys.stderr)
    elif how == "remote":
        print(f"{stage}:{name}: restored from remote", file=sys.stderr)
    return None


def _stage_tasks(root: Path, stage: str, module, names: list[str]):
    doc = (module.__doc__ or stage).strip().splitlines()[0]
    yield {"name": None, "doc": doc}
    for name in names:
        yield {"name": name, "actions": [(stage_action, [str(root), name, stage])],
               "task_dep": [f"{need}:{name}" for need in module.NEEDS],
               "uptodate": [(stage_uptodate, [str(root), name, stage])],
               "doc": f"{stage} {name}"}


def recipe_names_from(pos_args: list[str], known: list[str]) -> list[str]:
    """Recipe names mentioned by task names (``stage:recipe``) or plain recipe names."""
    names = []
    for arg in pos_args:
        candidate = arg.split(":", 1)[1] if ":" in arg else arg
        if candidate in known and candidate not in names:
            names.append(candidate)
    return names if pos_args and names else known


def _fail(err: NNBuildError):
    print(f"doit: error: {err}", file=sys.stderr)
    raise SystemExit(err.exit_code)


class RecipeLoader(TaskLoader2):
    """Task loader: one task per (stage, recipe); only the named recipes when names are given."""

    # doit parses loader options before the command name: this makes `doit -n 2 build a b`
    # mean the same as `doit build -n 2 a b` (same option name, so the parsers merge it).
    cmd_options = (opt_num_process,)

    def setup(self, opt_values):
        self.root = recipes.project_root()

    def load_doit_config(self):
        try:
            cache = cache_root(self.root)
            cache.mkdir(parents=True, exist_ok=True)
        except NNBuildError as err:
            _fail(err)
        except OSError as err:
            _fail(writable.from_os_error(err, "the cache"))
        return {"dep_file": str(cache / "doit.sqlite3"), "backend": "sqlite3"}

    def load_tasks(self, cmd, pos_args):
        known, self.problems = scan(self.root / "recipes")  # a bad file is reported, skipped
        names = []
        wanted = recipe_names_from(list(pos_args or []), known)
        # recipes the user named fail the command; the others are reported and skipped
        named = getattr(self, "named", None)
        named = set(wanted if pos_args else ()) if named is None else named
        try:
            for name in wanted:
                try:
                    get_recipe(self.root, name)
                    names.append(name)
                except RecipeError as err:
                    if name in named:
                        raise
                    self.problems.append(err)
            modules = stages()
        except NNBuildError as err:
            _fail(err)
        except OSError as err:  # e.g. a read-only cache/ where the validation marker goes
            _fail(writable.from_os_error(err, "the cache"))
        for err in self.problems:
            print(f"doit: error: {err} (skipped; the other recipes go on)", file=sys.stderr)
        tasks = []
        for stage, module in modules.items():
            tasks.extend(generate_tasks(stage, _stage_tasks(self.root, stage, module, names)))
        try:
            pipeline(self.root).cache.stats.save()
        except OSError as err:
            _fail(writable.from_os_error(err, "the cache"))
        return tasks


def build_targets(root: Path, args: list[str]) -> tuple[list[str], set[str]]:
    """The doit tasks of ``doit build ARGS`` and the recipe names it names.

    An argument is a recipe (its final stages) or ``stage:recipe`` (that stage and what it
    needs, as ``doit stage:recipe`` runs it).

    Raises:
        NNBuildError: an unknown recipe or stage, or a named recipe whose file is bad.
    """
    known, problems = scan(root / "recipes")
    modules, final = stages(), final_stages()
    targets, named = [], set()
    for arg in args:
        stage, _, name = arg.rpartition(":")
        if stage and stage not in modules:
            raise NNBuildError(arg, f"unknown stage {stage!r} before ':'", expected="RECIPE or "
                               "STAGE:RECIPE with a stage of " + ", ".join(modules), got=repr(arg),
                               hint=f"run doit build {name} (every stage) or fix the stage")
        for err in problems:  # a named recipe whose file is bad: that file's error
            if err.where.split(":")[0] == recipes.display(root / "recipes" / f"{name}.yaml"):
                raise err
        if name not in known:
            recipes.check_name(name, typed=True)
            raise recipes.unknown_recipe(name, known, root / "recipes")
        targets += [arg] if stage else [f"{s}:{name}" for s in final]
        named.add(name)
    return targets or [f"{s}:{n}" for n in known for s in final], named


class RunTasks(Run):
    """``doit`` / ``doit run [TASK ...]``: doit's run, with ``cache/`` and ``dist/`` checked
    first, and write failures, Ctrl-C and SIGTERM reported as one line (no traceback)."""

    name = "run"

    def execute(self, params, args):
        try:
            cache = self.preflight(recipes.project_root())
        except NNBuildError as err:
            print(f"doit {self.name}: error: {err}", file=sys.stderr)
            return err.exit_code
        return self.run_tasks(params, list(args), cache)

    @staticmethod
    def preflight(root: Path) -> Path:
        """The cache folder, after proving it and ``dist/`` writable (``CacheError`` if not)."""
        cache = cache_root(root)
        writable.require_writable(cache, "NNBUILD_CACHE" if os.environ.get("NNBUILD_CACHE")
                                  else "cache/")
        writable.require_writable(root / "dist", "dist/")
        return cache

    def run_tasks(self, params, targets: list[str], cache: Path):
        """doit's run of ``targets``; interrupts and write failures become one line."""
        prog = f"doit {self.name}"
        with interrupt.sigterm_raises():
            try:
                return super().execute(params, targets)
            except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM as interrupt.Terminated
                return interrupt.exit_status(err, prog)
            except (OSError, sqlite3.Error) as err:  # doit's own state file, e.g. a full disk
                if isinstance(err, OSError) and err.errno not in writable.WRITE_ERRNOS:
                    raise
                line = CacheError(
                    str(cache / "doit.sqlite3"), f"doit cannot update its state ({err})",
                    hint="make it writable, or remove it: doit starts a new one and nnbuild's "
                    "stage keys still decide what runs")
                if isinstance(err, OSError):
                    line = writable.from_os_error(err, "the cache")
                print(f"{prog}: error: {line}", file=sys.stderr)
                return 2


class Build(RunTasks):
    """``doit build [RECIPE ...]``: build every stage of the named recipes (default: all)."""

    name = "build"
    cmd_options = Run.cmd_options + (OPT_REMOTE,)
    doc_purpose = "build recipes (every stage); no name = every recipe"
    doc_usage = "[RECIPE ...]"
    doc_description = ("Runs fetch -> patch -> calibrate -> map -> check -> package for each "
                       "recipe through the content-addressed cache. Stage outputs are in "
                       "cache/v1/out/<recipe>/<stage>/, packages in dist/.")

    def execute(self, params, args):
        root = recipes.project_root()
        if params.get("remote"):
            os.environ["NNBUILD_REMOTE"] = params["remote"]  # worker processes inherit it
        os.environ["NNBUILD_BUILD_ID"] = uuid.uuid4().hex  # build.teamcache: one warning per build
        try:
            targets, named = build_targets(root, list(args))
            cache = self.preflight(root)
        except NNBuildError as err:
            print(f"doit build: error: {err}", file=sys.stderr)
            return err.exit_code
        self.loader.named = named  # `doit build` alone: every recipe, none named
        status = self.run_tasks(params, targets, cache)
        return status or (2 if getattr(self.loader, "problems", None) else 0)


def run_build(names: list[str], processes: int | None = None, remote: str | None = None) -> int:
    """``nnbuild build [RECIPE ...]``: the same build as ``doit build``, from any project folder
    (the project's own [tool.doit] sections, if any, take precedence over ``DOIT_CONFIG``)."""
    from doit.doit_cmd import DoitMain

    args = ["build"] + ([f"-n{processes}"] if processes else []) + (
        [f"--remote={remote}"] if remote else []) + list(names)
    return DoitMain(extra_config=DOIT_CONFIG).run(args)
