"""Run one stage of one recipe through the cache: key, look-up, restore or run, store, publish.

The stage key is the sha256 of the canonical JSON *key document* (``key_doc``): cache version,
stage name, code fingerprint of the stage module's import closure (``build.fingerprint``: every
``nnbuild`` file it can run, with library versions), the recipe fields in ``READS``
(with paths reduced to file names), the sha256s of the external inputs (sorted), the output
hashes of the upstream stages, and external tool versions. No absolute paths, times or hosts.

The last build of a stage for a recipe is materialised in ``cache/v1/out/<recipe>/<stage>/``
with a marker ``<stage>.json`` beside it (key, key document, output hashes, stat data). The
no-op check (``is_current``) only computes the key and stats the outputs: no hashing, no numpy.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import ModuleType

from nnbuild import errors
from nnbuild.build.cache import CACHE_VERSION, Cache, remove_tree, write_json_atomic
from nnbuild.build.fetch import fetch, input_digest, ref_label
from nnbuild.hashing import sha256_json, stat_signature
from nnbuild.recipe.load import Recipe, get_dotted
from nnbuild.build.registry import stages
from nnbuild.build.context import StageContext
from nnbuild.build.teamcache import TeamCache

DIST_SUFFIX = ".tar.gz"  # package outputs with this suffix are also copied to dist/


def keyable(value: object) -> object:
    """Reduce a recipe value to what may enter a key: absolute paths become file names (the
    content of external files enters the key through their hashes, not their location)."""
    if isinstance(value, dict):
        out = {k: keyable(v) for k, v in value.items() if k not in ("path", "manifest")}
        for k in ("path", "manifest"):
            if isinstance(value.get(k), str):
                out[k] = os.path.basename(value[k])
        return out
    if isinstance(value, list):
        return [keyable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value)
    return value


class Pipeline:
    """Stage keys and cached execution for the recipes of one project.

    Args:
        cache: the project cache.
        dist: directory receiving ``<recipe>.tar.gz`` from the package stage.
        modules: ``{stage: module}`` (default: ``nnbuild.stages.stages()``).
    """

    def __init__(self, cache: Cache, dist: Path, modules: dict[str, ModuleType] | None = None):
        self.cache, self.dist = cache, dist
        self.modules = stages() if modules is None else modules
        self.prints = cache.prints
        self.team = TeamCache(cache)  # the remote (build.teamcache); resolved on a local miss
        self._inputs: dict[tuple[str, str], dict] = {}
        self._keys: dict[tuple[str, str], tuple[str, dict, dict] | None] = {}

    # -- keys ----------------------------------------------------------------------------------
    def module(self, stage: str) -> ModuleType:
        """The module of ``stage``; an unknown stage is an ``NNBuildError``."""
        try:
            return self.modules[stage]
        except KeyError:
            raise errors.NNBuildError("stage", f"unknown stage {stage!r}",
                                      expected="one of " + ", ".join(self.modules), got=stage) from None

    def external_refs(self, recipe: Recipe, stage: str) -> dict[str, list[dict]]:
        """``{group: [ref, ...]}`` the stage reads from outside (memoised per process)."""
        memo = (recipe.name, stage)
        if memo not in self._inputs:
            hook = getattr(self.module(stage), "external_inputs", None)
            self._inputs[memo] = hook(recipe.spec) if hook else {}
        return self._inputs[memo]

    def key_doc(self, recipe: Recipe, stage: str, loose: bool = False,
                assumed: dict[str, dict] | None = None):
        """``(key, document, labels)`` of a stage, or None while an upstream is not built.

        With ``loose``, an upstream that is not current contributes ``"pending"``: the result
        is only good for explaining, never for caching. ``assumed`` (with ``loose``) gives the
        output hashes of upstreams that are not current but will be restored from the cache
        (``nnbuild explain``).
        """
        memo = (recipe.name, stage)
        if memo in self._keys and not loose:
            return self._keys[memo]
        module = self.module(stage)
        upstream = {}
        for need in module.NEEDS:
            if loose and assumed and need in assumed:
                upstream[need] = assumed[need]
                continue
            marker = self.current_marker(recipe, need)
            if marker is None and loose:
                upstream[need] = "pending"  # it runs first: its outputs are not known yet
                continue
            if marker is None:
                self._keys[memo] = None
                return None
            upstream[need] = {n: o["sha256"] for n, o in marker["outputs"].items()}
        inputs, labels = {}, {}
        for group, refs in self.external_refs(recipe, stage).items():
            where = f"{stage}.{group}"
            digests = [input_digest(ref, self.cache, where) for ref in refs]
            labels.update({d: ref_label(r) for d, r in zip(digests, refs)})
            inputs[group] = sorted(digests)
        tools = getattr(module, "tool_versions", None)
        # A stage may read more fields for some recipes (fetch: the ONNX conversion's input).
        reads = module.reads(recipe.values) if hasattr(module, "reads") else module.READS
        doc = {"cache": CACHE_VERSION, "stage": stage, "code": self.prints.of(module.__name__),
               "recipe": {path: keyable(get_dotted(recipe.values, path)) for path in reads},
               "inputs": inputs, "upstream": upstream,
               "tools": tools(recipe.spec) if tools else {}}
        if getattr(module, "USES_NAME", False):
            # The recipe name ends up in this stage's outputs (cfg instruction_name, report,
            # archive): two recipes that differ only in name must not share its entry.
            doc["name"] = recipe.name
        if loose:
            return sha256_json(doc), doc, labels
        self._keys[memo] = (sha256_json(doc), doc, labels)
        return self._keys[memo]

    def forget(self, recipe: Recipe) -> None:
        """Drop memoised keys of ``recipe`` (after one of its stages ran)."""
        self._keys = {k: v for k, v in self._keys.items() if k[0] != recipe.name}

    # -- materialised outputs ------------------------------------------------------------------
    def marker_path(self, recipe_name: str, stage: str) -> Path:
        """Marker of the last materialised build of a stage."""
        return self.cache.out_dir(recipe_name, stage).with_suffix(".json")

    def read_marker(self, recipe_name: str, stage: str) -> dict | None:
        """The marker, or None when absent or unreadable."""
        import json

        try:
            marker = json.loads(self.marker_path(recipe_name, stage).read_text())
        except (OSError, ValueError):
            return None
        return marker if isinstance(marker, dict) and "key" in marker else None

    def outputs_intact(self, recipe_name: str, stage: str, marker: dict) -> bool:
        """True when every materialised output still has the stat data recorded at publish
        (size, mtime, inode, ctime: a file rewritten in place with the same size and a restored
        mtime still changes its ctime, so it is restored from the store, never used)."""
        folder = self.cache.out_dir(recipe_name, stage)
        for name, sig in marker.get("stat", {}).items():
            try:
                st = os.stat(folder / name)
            except FileNotFoundError:
                return False
            if stat_signature(st) != sig:
                return False
        for name, sig in marker.get("dist", {}).items():
            try:
                st = os.stat(self.dist / name)
            except FileNotFoundError:
                return False
            if stat_signature(st) != sig:
                return False
        return True

    def current_marker(self, recipe: Recipe, stage: str) -> dict | None:
        """The stage's marker if it matches the current key and its outputs are intact."""
        found = self.key_doc(recipe, stage)
        if found is None:
            return None
        marker = self.read_marker(recipe.name, stage)
        if marker is None or marker["key"] != found[0]:
            return None
        return marker if self.outputs_intact(recipe.name, stage, marker) else None

    def is_current(self, recipe: Recipe, stage: str) -> bool:
        """The no-op check: key unchanged, outputs in place, and no recorded gate failure (a
        failed gate must fail every build until something changes, so it is never "current")."""
        marker = self.current_marker(recipe, stage)
        return marker is not None and not marker.get("failed")

    # -- execution -----------------------------------------------------------------------------
    def build(self, recipe: Recipe, stage: str, run: bool = True) -> str:
        """Bring one stage up to date. Returns ``"current"``, ``"restored"``, ``"remote"``
        (restored from the team cache) or ``"ran"``; with ``run=False``, ``"missing"`` instead
        of running (``nnbuild cache pull``).

        Raises:
            NNBuildError: the stage failed (a recorded ``ctx.fail`` is raised after caching).
        """
        if self.is_current(recipe, stage):
            return "current"
        found = self.key_doc(recipe, stage)
        for _attempt in range(20):
            if found is not None:
                break
            # A concurrent build of the same recipe may be swapping an upstream's outputs into
            # place right now: give it a moment before declaring the upstream missing.
            time.sleep(0.25)
            self.forget(recipe)
            found = self.key_doc(recipe, stage)
        if found is None:
            missing = [n for n in self.module(stage).NEEDS if not self.is_current(recipe, n)]
            raise errors.CacheError(f"{stage}:{recipe.name}", "upstream stages are not built",
                                    got=", ".join(missing), hint=f"run doit build {recipe.name}")
        key, doc, labels = found
        entry = self.cache.read_entry(stage, key)
        how = "restored"
        if entry is None and self.team.pull(stage, key):  # a local miss: ask the remote
            entry, how = self.cache.read_entry(stage, key), "remote"
        if entry is not None:
            staging = self.cache.tmp_path("restore-")
            staging.mkdir()
            if not self.cache.restore(entry, staging):
                remove_tree(staging)
                entry = None
        if entry is None:
            if not run:
                self.team.save()
                return "missing"
            staging, entry = self._run(recipe, stage, key, doc, labels)
            how = "ran"
            self.team.push(stage, key, entry)  # gate failures too, as cached locally
        self.cache.touch_entry(stage, key)
        self._publish(recipe, stage, staging, entry)
        self.forget(recipe)
        self.team.save()
        self.cache.stats.save()
        self.prints.save()
        _raise_recorded(entry, f"{stage}:{recipe.name}")
        return how

    def _run(self, recipe: Recipe, stage: str, key: str, doc: dict, labels: dict):
        module = self.module(stage)
        work = self.cache.tmp_path(f"run-{stage}-")
        out = work / "out"
        out.mkdir(parents=True)
        scratch = self.cache.base / "scratch" / recipe.name / stage
        scratch.mkdir(parents=True, exist_ok=True)
        ctx = StageContext(
            name=recipe.name, stage=stage, spec=recipe.spec, recipe=recipe.data, out=out,
            scratch=scratch,
            upstream_dirs={n: self.cache.out_dir(recipe.name, n) for n in self._ancestors(stage)},
            fetch_group=lambda group: self._fetch_group(recipe, stage, group),
            code_digest=self.prints.digest,
            upstream_keys={n: self.key_doc(recipe, n)[0] for n in self._ancestors(stage)})
        start = time.monotonic()
        try:
            module.run(ctx)
            outputs = self._store_outputs(out)
        except BaseException:
            remove_tree(work)  # nothing of a failed run is kept (the error is not a gate result)
            raise
        failure = None
        if ctx.failure is not None:
            failure = {"class": type(ctx.failure).__name__, "where": ctx.failure.where,
                       "what": ctx.failure.what, "expected": _str(ctx.failure.expected),
                       "got": _str(ctx.failure.got), "hint": ctx.failure.hint}
        entry = {"outputs": outputs, "doc": doc, "labels": labels, "failure": failure,
                 "seconds": round(time.monotonic() - start, 3), "recipe": recipe.name}
        try:
            self.cache.write_entry(stage, key, entry)  # last: the entry only exists when complete
        except BaseException:  # e.g. a full disk: no entry, no work directory left
            remove_tree(work)
            raise
        entry.update(stage=stage, key=key)
        return out, entry

    def _store_outputs(self, out: Path) -> dict:
        """``{relative name: {sha256, size}}`` of the files in ``out``, copied into the store."""
        outputs = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            outputs[path.relative_to(out).as_posix()] = {
                "sha256": self.cache.put_file(path), "size": path.stat().st_size}
        return outputs

    def _ancestors(self, stage: str) -> list[str]:
        seen: list[str] = []
        todo = list(self.module(stage).NEEDS)
        while todo:
            name = todo.pop(0)
            if name not in seen:
                seen.append(name)
                todo.extend(self.module(name).NEEDS)
        return seen

    def _fetch_group(self, recipe: Recipe, stage: str, group: str) -> list[Path]:
        refs = self.external_refs(recipe, stage).get(group)
        if refs is None:
            raise errors.NNBuildError(f"stage {stage}", f"no external input group {group!r}",
                                      expected=", ".join(self.external_refs(recipe, stage)),
                                      got=group, hint="declare it in external_inputs()")
        paths = [fetch(ref, self.cache, f"{stage}.{group}") for ref in refs]
        return sorted(paths, key=lambda p: p.name)  # CAS file names are the sha256s

    def _publish(self, recipe: Recipe, stage: str, staging: Path, entry: dict) -> None:
        """Swap ``staging`` into ``out/<recipe>/<stage>`` and write the marker last.

        Under the cache lock of that directory: two builds of one recipe in separate processes
        (``tests/build/test_reliability.py``) would otherwise both move the old outputs away and the
        second ``os.replace`` of a directory would meet the first one's ("Directory not empty").
        """
        with self.cache.locked(f"{recipe.name}.{stage}"):
            self._swap_in(recipe, stage, staging, entry)

    def _swap_in(self, recipe: Recipe, stage: str, staging: Path, entry: dict) -> None:
        target = self.cache.out_dir(recipe.name, stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        marker = self.read_marker(recipe.name, stage)
        if marker and marker["key"] == entry["key"] and self.outputs_intact(recipe.name, stage,
                                                                            marker):
            remove_tree(staging.parent if staging.name == "out" else staging)
            return  # a concurrent build already published the same result
        if target.exists():
            trash = self.cache.tmp_path("old-")
            os.replace(target, trash)
            remove_tree(trash)
        os.replace(staging, target)
        if staging.name == "out":
            remove_tree(staging.parent)  # the run's work directory, now empty
        stat = {}
        for name in entry["outputs"]:
            stat[name] = stat_signature(os.stat(target / name))
        marker = {"key": entry["key"], "doc": entry["doc"], "labels": entry.get("labels", {}),
                  "outputs": entry["outputs"], "stat": stat, "failed": bool(entry.get("failure")),
                  "dist": self._to_dist(recipe, stage, target, entry)}
        write_json_atomic(self.marker_path(recipe.name, stage), marker, self.cache)

    def _to_dist(self, recipe: Recipe, stage: str, folder: Path, entry: dict) -> dict:
        if stage != "package":
            return {}
        published = {}
        for name in entry["outputs"]:
            if name.endswith(DIST_SUFFIX) and "/" not in name:
                self.dist.mkdir(parents=True, exist_ok=True)
                tmp = self.cache.tmp_path("dist-")
                # dist/ is on another directory, maybe another filesystem: replace within it.
                final_tmp = self.dist / f".{name}.{os.getpid()}.tmp"
                try:
                    shutil.copyfile(folder / name, tmp)
                    shutil.move(tmp, final_tmp)
                    os.replace(final_tmp, self.dist / name)
                except BaseException:  # a full disk: no partial copy in tmp/ or dist/
                    tmp.unlink(missing_ok=True)
                    final_tmp.unlink(missing_ok=True)
                    raise
                published[name] = stat_signature(os.stat(self.dist / name))
        return published


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _raise_recorded(entry: dict, where: str) -> None:
    """Re-raise a gate failure stored with the entry (cached failures fail again)."""
    failure = entry.get("failure")
    if not failure:
        return
    cls = getattr(errors, failure.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.NNBuildError)):
        cls = errors.NNBuildError
    raise cls(failure.get("where") or where, failure.get("what") or "stage failed",
              expected=failure.get("expected"), got=failure.get("got"), hint=failure.get("hint"))


def stage_output_dir(recipe_name: str, stage: str, cache_root: Path | None = None) -> Path:
    """Where the outputs of the last build of ``stage`` for ``recipe_name`` are (for users and
    other commands, e.g. ``nnbuild report`` reads the check stage's ``report.html`` there)."""
    from nnbuild.recipe.load import project_root

    root = cache_root or Path(os.environ.get("NNBUILD_CACHE") or project_root() / "cache")
    return Cache(root).out_dir(recipe_name, stage)
