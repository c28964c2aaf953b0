"""doit's ``forget``, ``info`` and ``dumpdb`` commands, made to work with nnbuild's tasks.

doit 0.36 raised tracebacks for all three here: ``doit forget`` with no name iterated ``None``,
``doit info <unknown>`` was a ``KeyError``, and ``dumpdb`` only reads dbm files while nnbuild
keeps doit's state in sqlite (``cache/doit.sqlite3``). These subclasses replace them (registered
beside ``build`` in pyproject.toml and ``doit_plugin.DOIT_CONFIG``); a recipe name stands for
its stage tasks (``mtcnn-pnet`` -> ``fetch:mtcnn-pnet`` ... ``package:mtcnn-pnet``).

doit's record does not decide what nnbuild runs (the stage keys do, ``nnbuild explain``), so
forgetting is harmless: the next build finds the same stages up to date.
"""

from __future__ import annotations

import json
import pprint
import sys

from doit.cmd_base import Command
from doit.cmd_forget import Forget as DoitForget
from doit.cmd_info import Info as DoitInfo

from nnbuild.errors import NNBuildError


def _expand(names: list[str], tasks: dict) -> list[str]:
    """Task names for ``names`` (a recipe name stands for its stage tasks).

    Raises:
        NNBuildError: a name that is neither a task nor a recipe.
    """
    out = []
    for name in names:
        if name in tasks:
            out.append(name)
            continue
        stages = [t for t in tasks if t.endswith(f":{name}")]
        if not stages:
            examples = sorted(t for t in tasks if ":" in t)[:2]
            raise NNBuildError(name, "not a task or recipe", expected="a task of `doit list "
                               f"--all` ({', '.join(examples) or 'none'}) or a recipe name",
                               got=repr(name), hint="check the spelling (`doit list --all`)")
        out.extend(sorted(stages))
    return out


def _fail(prog: str, err: NNBuildError) -> int:
    print(f"doit {prog}: error: {err}", file=sys.stderr)
    return err.exit_code


class Forget(DoitForget):
    """``doit forget [TASK|RECIPE ...]``: no name forgets every task (as ``--all``)."""

    name = "forget"

    def _execute(self, forget_sub, forget_disable_default, forget_all):
        tasks = {t.name: t for t in self.task_list}
        if not self.sel_tasks and not forget_disable_default:
            forget_all = True  # doit 0.36 iterated None here
        try:
            self.sel_tasks = _expand(list(self.sel_tasks or []), tasks)
        except NNBuildError as err:
            self.dep_manager.close()
            return _fail("forget", err)
        return super()._execute(forget_sub, forget_disable_default, forget_all)


class Info(DoitInfo):
    """``doit info TASK``: an unknown task, or a recipe, is one line (the recipe's tasks)."""

    name = "info"

    def _execute(self, pos_args, hide_status=False):
        tasks = {t.name: t for t in self.task_list}
        if len(pos_args) == 1 and pos_args[0] not in tasks:
            try:
                found = _expand(pos_args, tasks)
            except NNBuildError as err:
                return _fail("info", err)
            return _fail("info", NNBuildError(
                pos_args[0], "a recipe, not one task", expected="one task",
                got=", ".join(found), hint=f"run doit info {found[-1]}"))
        return super()._execute(pos_args, hide_status=hide_status)


class DumpDB(Command):
    """``doit dumpdb``: print doit's state (the sqlite3 file nnbuild keeps in the cache)."""

    name = "dumpdb"
    doc_purpose = "dump doit's state file (cache/doit.sqlite3)"
    doc_usage = ""
    doc_description = None

    def execute(self, opt_values, pos_args):
        import sqlite3

        from nnbuild.build.doit_plugin import cache_root
        from nnbuild.recipe.load import project_root

        try:
            path = cache_root(project_root()) / "doit.sqlite3"
        except NNBuildError as err:
            return _fail("dumpdb", err)
        if not path.is_file():
            return _fail("dumpdb", NNBuildError(str(path), "no doit state yet",
                                                hint="run doit build first"))
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                rows = conn.execute("select task_id, task_data from doit order by task_id")
                rows = rows.fetchall()
        except sqlite3.Error as err:
            return _fail("dumpdb", NNBuildError(str(path), f"unreadable doit state ({err})",
                                                hint="remove the file; doit writes a new one"))
        print(f"doit state: {path} (sqlite3)")
        if not rows:
            print("no task records (doit keeps none for tasks its uptodate check skipped)")
        for task_id, data in rows:
            print(f"{task_id} -> {pprint.pformat(json.loads(data), indent=4, width=100)}")
        return 0
