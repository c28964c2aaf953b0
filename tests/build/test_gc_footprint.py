"""``cache gc --max-size`` bounds everything nnbuild keeps (out/, scratch/, tmp/ and the store),
removes the folders of deleted recipes, ``--grace 0`` removes hour-old staging of dead builds
(never a running build's), and ``cache stats`` shows tmp and out sizes."""

from __future__ import annotations

import os
import time

from fakestages.project import env
from nnbuild.build.cache import Cache
from nnbuild.build.gc import gc, stats
from nnbuild.cli import main

MB = 10 ** 6


def _fill(path, size, age=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
        os.utime(path.parent, (then, then))
    return path


def _layout(root):
    cache = Cache(root / "cache")
    _fill(cache.base / "out" / "gone" / "check" / "report.json", 3 * MB, age=7200)
    _fill(cache.base / "out" / "old" / "patch" / "model.caffemodel", 2 * MB, age=3600)
    _fill(cache.base / "out" / "new" / "patch" / "model.caffemodel", 1 * MB)
    _fill(cache.base / "scratch" / "gone" / "check" / "a.json", 1 * MB, age=7200)
    dead = _fill(cache.base / "tmp" / "run-check-999999999-0123456789ab" / "x", MB, age=3600)
    os.utime(dead.parent, (time.time() - 3600,) * 2)
    live = _fill(cache.base / "tmp" / f"run-map-{os.getpid()}-0123456789ab" / "x", MB, age=3600)
    os.utime(live.parent, (time.time() - 3600,) * 2)
    return cache, dead.parent, live.parent


def test_max_size_counts_out_scratch_and_tmp_and_drops_deleted_recipes(tmp_path):
    cache, dead, live = _layout(tmp_path)
    before = stats(cache)
    assert before["out_bytes"] == 6 * MB and before["tmp_bytes"] == 2 * MB
    result = gc(cache, max_size=2 * MB + MB // 2, grace=0, recipes={"old", "new"})
    assert not (cache.base / "out" / "gone").exists() and not (cache.base / "scratch" / "gone").exists()
    assert not dead.exists(), "--grace 0 keeps an hour-old staging folder of a dead build"
    assert live.exists(), "a running build's staging folder was removed"
    assert not (cache.base / "out" / "old").exists()  # least recently used goes first
    assert (cache.base / "out" / "new").exists()
    after = stats(cache)
    kept = after["bytes"] + after["out_bytes"] + after["scratch_bytes"] + after["tmp_bytes"]
    assert kept == result["kept_bytes"] == 2 * MB <= 2 * MB + MB // 2


def test_without_recipe_names_no_output_folder_is_dropped_for_being_unknown(tmp_path):
    cache, _dead, _live = _layout(tmp_path)
    gc(cache, max_size=None, grace=0, recipes=None)
    assert (cache.base / "out" / "gone").exists()


def test_cli_gc_and_stats(tmp_path, monkeypatch, capsys):
    cache, dead, _live = _layout(tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "new.yaml").write_text("schema_version: 1\n")
    for key, value in env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NNBUILD_ROOT", str(tmp_path))
    monkeypatch.delenv("NNBUILD_CACHE", raising=False)
    assert main(["cache", "stats"]) == 0
    out = capsys.readouterr().out
    assert "materialised outputs: 6.0 MB" in out and "staging (tmp): 2.0 MB" in out
    assert "total: 9.0 MB" in out
    assert main(["cache", "gc", "--max-size", "1.5MB", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    # gone (out + scratch) as a deleted recipe, then old and new by last use; the running
    # build's 1 MB staging folder is all that is left
    assert out == ("removed 0 entries, 0 files, 4 output folders, 1 stale staging items "
                   "(8.0 MB); kept 0 entries (1.0 MB)\n")
    assert not dead.exists() and list((cache.base / "out").iterdir()) == []
