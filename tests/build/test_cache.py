"""Hashing, the content store and action cache, stage keys in the runner, gc and stats."""

import hashlib
import json
import os

import pytest

from nnbuild import hashing
from nnbuild.build.cache import Cache
from nnbuild.build.gc import gc, parse_size, stats
from nnbuild.errors import CacheError, NNBuildError
from nnbuild.recipe.load import Recipe
from nnbuild.build.runner import Pipeline, keyable
from fakestages import digest, package, slow
from fakestages.project import MIRROR


def test_canonical_json_ignores_key_order_and_spacing():
    a = hashing.sha256_json({"b": [1, 2], "a": {"y": 1, "x": 2}})
    b = hashing.sha256_json({"a": {"x": 2, "y": 1}, "b": [1, 2]})
    assert a == b == hashlib.sha256(b'{"a":{"x":2,"y":1},"b":[1,2]}').hexdigest()


def test_stat_cache_rehashes_only_on_change(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"one")
    calls = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or real(p))
    stats = hashing.StatCache(tmp_path / "stat.json")
    assert stats.sha256(target) == hashlib.sha256(b"one").hexdigest()
    stats.save()
    again = hashing.StatCache(tmp_path / "stat.json")
    assert again.sha256(target) == hashlib.sha256(b"one").hexdigest() and len(calls) == 1
    st = os.stat(target)
    target.write_bytes(b"two")  # same size, mtime forced back: ctime still changes
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert again.sha256(target) == hashlib.sha256(b"two").hexdigest() and len(calls) == 2


def test_store_entry_restore_and_corruption(tmp_path):
    warnings = []
    cache = Cache(tmp_path / "cache", warn=warnings.append)
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    digest = cache.put_file(src)
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert cache.cas_path(digest).read_bytes() == b"hello"
    with pytest.raises(CacheError, match="content changed while storing"):
        cache.put_file(src, expected="0" * 64)
    entry = {"outputs": {"a.txt": {"sha256": digest, "size": 5}}}
    cache.write_entry("s", "k" * 64, entry)
    got = cache.read_entry("s", "k" * 64)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert cache.restore(got, dest) and (dest / "a.txt").read_bytes() == b"hello"
    # A content file edited behind nnbuild's back: detected on restore, file and entry removed.
    os.chmod(cache.cas_path(digest), 0o644)
    cache.cas_path(digest).write_bytes(b"HELLO")
    assert not cache.restore(got, dest)
    assert not cache.cas_path(digest).exists() and cache.read_entry("s", "k" * 64) is None
    assert any("changed behind nnbuild's back" in w for w in warnings)


@pytest.mark.parametrize("text", ["{not json", '{"schema": 1}', json.dumps(
    {"schema": 1, "stage": "s", "key": "k" * 64, "outputs": {"x": {"sha256": "a" * 64, "size": 1}}})])
def test_corrupt_or_partial_entry_is_a_reported_miss(tmp_path, text):
    warnings = []
    cache = Cache(tmp_path, warn=warnings.append)
    path = cache.entry_path("s", "k" * 64)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert cache.read_entry("s", "k" * 64) is None
    assert not path.exists() and len(warnings) == 1 and "corrupt entry removed" in warnings[0]


def _pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("NNBUILD_MIRROR", MIRROR)
    monkeypatch.setenv("NNBUILD_OFFLINE", "1")
    monkeypatch.delenv("FAKE_RUN_LOG", raising=False)
    from nnbuild.stages import fetch

    modules = {"fetch": fetch, "digest": digest, "slow": slow, "package": package}
    return Pipeline(Cache(tmp_path / "cache"), tmp_path / "dist", modules)


def _recipe(shape=(1, 3, 12, 12), count=2, description="x"):
    sha = {"prototxt": "adc1756d8515d3ca3a6a186c0fadab66fcae04bd8d3c6388e2fe8797a626dde4",
           "caffemodel": "d6085e7f48ba7e6b6f1b58964595f6bce5b97bcc4866751f7b4bdc98f920c096"}
    source = {k: {"url": f"https://example.invalid/det1.{k}", "sha256": v} for k, v in sha.items()}
    return Recipe("pnet", "/nowhere/pnet.yaml", {
        "schema_version": 1, "description": description, "source": source,
        "input": {"shape": list(shape), "color": "RGB"}, "calibration": {"count": count}})


def test_keys_change_exactly_for_the_stages_that_read_a_field(tmp_path, monkeypatch):
    pipe = _pipeline(tmp_path, monkeypatch)
    base = _recipe()
    for stage in pipe.modules:
        assert pipe.build(base, stage) == "ran"
    keys = {s: pipe.key_doc(base, s)[0] for s in pipe.modules}
    for changed, stale in ((_recipe(description="other"), set()),
                           (_recipe(count=3), {"slow", "package"}),
                           (_recipe(shape=(1, 3, 24, 24)), {"digest", "slow", "package"})):
        pipe.forget(changed)
        moved = set()
        for stage in pipe.modules:
            found = pipe.key_doc(changed, stage)
            if found is None or found[0] != keys[stage]:
                moved.add(stage)
                pipe.build(changed, stage)
        assert moved == stale
        for stage in pipe.modules:  # back to the base recipe: every stage restores, none runs
            pipe.forget(base)
            assert pipe.build(base, stage) in ("current", "restored")


def test_keys_hold_no_paths(tmp_path, monkeypatch):
    pipe = _pipeline(tmp_path, monkeypatch)
    rec = _recipe()
    pipe.build(rec, "fetch")
    _key, doc, _labels = pipe.key_doc(rec, "digest")
    assert str(tmp_path) not in json.dumps(doc) and "/nowhere" not in json.dumps(doc)
    assert keyable({"manifest": "/a/b/photos.txt", "skip": 2}) == {"manifest": "photos.txt",
                                                                   "skip": 2}


def test_recorded_failure_is_cached_and_raised_again(tmp_path, monkeypatch):
    pipe = _pipeline(tmp_path, monkeypatch)
    import types

    gate = types.ModuleType("fakegate")
    gate.NAME, gate.NEEDS, gate.READS = "gate", ("fetch",), ()
    calls = []

    def run(ctx):
        calls.append(1)
        (ctx.out / "report.json").write_text("{}")
        from nnbuild.errors import CheckFailed
        ctx.fail(CheckFailed("check", "cosine too low", expected=">= 0.9", got=0.5))

    gate.run = run
    pipe.modules["gate"] = gate
    rec = _recipe()
    pipe.build(rec, "fetch")
    for _ in range(2):
        with pytest.raises(NNBuildError, match=r"check: cosine too low. Expected >= 0.9, got 0.5"):
            os.remove(pipe.marker_path(rec.name, "gate")) if calls else None
            pipe.build(rec, "gate")
    assert calls == [1] and (pipe.cache.out_dir("pnet", "gate") / "report.json").exists()
    # With the marker of the failed build in place, the stage is still not "current": the next
    # build (and doit's uptodate) raises the recorded failure again without running the stage.
    assert not pipe.is_current(rec, "gate")
    with pytest.raises(NNBuildError, match="cosine too low"):
        pipe.build(rec, "gate")
    assert calls == [1]


def test_gc_lru_and_unreferenced_files(tmp_path):
    cache = Cache(tmp_path)
    digests = []
    for index in range(3):
        src = tmp_path / f"in{index}"
        src.write_bytes(bytes([index]) * 1000)
        digests.append(cache.put_file(src))
        path = cache.write_entry("s", str(index) * 64, {
            "outputs": {"f": {"sha256": digests[-1], "size": 1000}}})
        os.utime(path, (1000 + index, 1000 + index))  # entry 0 is the least recently used
    orphan = tmp_path / "orphan"
    orphan.write_bytes(b"x" * 10)
    orphan_digest = cache.put_file(orphan)
    assert stats(cache)["files"] == 4
    result = gc(cache, max_size=2000, grace=0)
    assert result["entries"] == 1 and result["files"] == 2 and result["kept_bytes"] == 2000
    assert not cache.cas_path(digests[0]).exists() and not cache.cas_path(orphan_digest).exists()
    assert cache.read_entry("s", "1" * 64) is not None
    assert stats(cache)["entries"] == {"s": 2}
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2MiB") == 2 * 2**20
    with pytest.raises(NNBuildError, match="--max-size: not a size"):
        parse_size("lots")


def test_stages_that_write_the_recipe_name_key_on_it(tmp_path, monkeypatch):
    import types

    def stage(uses_name):
        module = types.ModuleType(f"namestage{uses_name}")
        module.NAME, module.NEEDS, module.READS = "named", (), ("input",)
        module.USES_NAME = uses_name
        module.run = lambda ctx: (ctx.out / "name.txt").write_text(ctx.name)
        return module

    for uses_name in (True, False):
        pipe = Pipeline(Cache(tmp_path / f"c{uses_name}"), tmp_path / "dist",
                        {"named": stage(uses_name)})
        a = Recipe("a", "/x/a.yaml", {"input": {"shape": [1, 3, 8, 8], "color": "RGB"}})
        b = Recipe("b", "/x/b.yaml", {"input": {"shape": [1, 3, 8, 8], "color": "RGB"}})
        same = pipe.key_doc(a, "named")[0] == pipe.key_doc(b, "named")[0]
        assert same is not uses_name
        if uses_name:
            pipe.build(a, "named")
            assert pipe.build(b, "named") == "ran"
            assert (pipe.cache.out_dir("b", "named") / "name.txt").read_text() == "b"


def test_locked_excludes_other_processes_until_released(tmp_path):
    """``Cache.locked`` is what keeps two builds from swapping one output folder at once."""
    import subprocess
    import sys
    import time

    cache = Cache(tmp_path / "cache")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from nnbuild.build.cache import Cache\n"
         f"c = Cache({str(tmp_path / 'cache')!r})\n"
         "with c.locked('r.map'):\n    print('held', flush=True); time.sleep(1.0)\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    with cache.locked("r.map"):
        waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert waited > 0.5, waited  # it waited for the other process to let go
    start = time.monotonic()
    with cache.locked("r.other"):  # another name is another lock: no wait
        assert time.monotonic() - start < 0.5
