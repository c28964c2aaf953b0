"""The team cache in process: two clones (separate local caches) sharing one remote, a
directory or S3 (moto server, ``conftest.py``), and each fault: corrupt or partial entries,
an unreachable or slow remote, missing credentials, failing writes, two writers of one key."""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fakestages import digest, gate, package, slow
from fakestages.project import MIRROR
from nnbuild.build.cache import Cache
from nnbuild.build.remote import RemoteStore, redact
from nnbuild.build.runner import Pipeline
from nnbuild.build.record import record_bytes, record_problem
from nnbuild.build.teamcache import TeamCache, read_stats
from nnbuild.errors import CheckFailed
from nnbuild.hashing import sha256_json
from nnbuild.recipe.load import Recipe

from fakestages.remote import DUMMY_CREDENTIALS, free_port

STAGES = ("fetch", "digest", "slow", "package")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("NNBUILD_MIRROR", MIRROR)
    monkeypatch.setenv("NNBUILD_OFFLINE", "1")
    monkeypatch.delenv("FAKE_RUN_LOG", raising=False)
    monkeypatch.delenv("NNBUILD_REMOTE", raising=False)


@pytest.fixture(params=["directory", "s3"])
def remote(request, tmp_path):
    """Each shared-remote test runs against a plain directory and against S3 (moto)."""
    if request.param == "directory":
        return str(tmp_path / "remote")
    return request.getfixturevalue("s3_remote")


def clone(tmp_path: Path, name: str, url: str, extra=()):
    """A project clone: its own cache and dist, the stage modules, ``url`` as its remote."""
    from nnbuild.stages import fetch

    modules = {"fetch": fetch, "digest": digest, "slow": slow, "package": package}
    modules.update({m.NAME: m for m in extra})
    cache = Cache(tmp_path / name / "cache")
    pipe = Pipeline(cache, tmp_path / name / "dist", modules)
    warnings: list[str] = []
    pipe.team = TeamCache(cache, url, warn=warnings.append)
    return pipe, warnings


def recipe(count=2):
    sha = {"prototxt": "adc1756d8515d3ca3a6a186c0fadab66fcae04bd8d3c6388e2fe8797a626dde4",
           "caffemodel": "d6085e7f48ba7e6b6f1b58964595f6bce5b97bcc4866751f7b4bdc98f920c096"}
    source = {k: {"url": f"https://example.invalid/det1.{k}", "sha256": v} for k, v in sha.items()}
    return Recipe("pnet", "/nowhere/pnet.yaml", {
        "schema_version": 1, "description": "x", "source": source,
        "input": {"shape": [1, 3, 12, 12], "color": "RGB"}, "calibration": {"count": count}})


def build_all(pipe: Pipeline, rec: Recipe, stages=STAGES) -> dict[str, str]:
    return {stage: pipe.build(rec, stage) for stage in stages}


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def remote_blob(root: Path, digest_hex: str) -> Path:
    return root / "v1" / "cas" / "sha256" / digest_hex[:2] / digest_hex


def test_a_second_clone_restores_every_stage_from_the_remote(tmp_path, remote):
    a, warn_a = clone(tmp_path, "a", remote)
    b, warn_b = clone(tmp_path, "b", remote)
    rec = recipe()
    assert build_all(a, rec) == dict.fromkeys(STAGES, "ran")
    assert build_all(b, rec) == dict.fromkeys(STAGES, "remote")  # nothing recomputed
    for stage in STAGES:
        assert files(b.cache.out_dir("pnet", stage)) == files(a.cache.out_dir("pnet", stage))
        entry = b.cache.read_entry(stage, b.key_doc(rec, stage)[0])
        assert entry["origin"] == "remote" and entry["doc"] == a.key_doc(rec, stage)[1]
    assert (tmp_path / "b/dist/pnet.tar.gz").read_bytes() == (
        tmp_path / "a/dist/pnet.tar.gz").read_bytes()
    assert warn_a == warn_b == []
    sent, got = read_stats(a.cache), read_stats(b.cache)
    assert (sent["misses"], sent["uploads"], sent["hits"]) == (4, 4, 0)
    assert (got["hits"], got["misses"], got["uploads"]) == (4, 0, 0)
    total = sum(o["size"] for s in STAGES for o in a.read_marker("pnet", s)["outputs"].values())
    assert sent["bytes_up"] == got["bytes_down"] == total
    records = RemoteStore(remote).list_records()
    assert records == sorted((s, a.key_doc(rec, s)[0]) for s in STAGES)
    assert build_all(b, rec) == dict.fromkeys(STAGES, "current")


def test_the_directory_remote_has_the_versioned_layout(tmp_path):
    a, _ = clone(tmp_path, "a", str(tmp_path / "remote"))
    rec = recipe()
    build_all(a, rec)
    key = a.key_doc(rec, "digest")[0]
    record = json.loads((tmp_path / f"remote/v1/ac/digest/{key}.json").read_text())
    assert record["key"] == key and sha256_json(record["doc"]) == key
    (info,) = record["outputs"].values()
    assert remote_blob(tmp_path / "remote", info["sha256"]).read_bytes() == (
        a.cache.out_dir("pnet", "digest") / "digest.json").read_bytes()
    assert not list((tmp_path / "remote").rglob("*.tmp-*"))  # writes went aside, then renamed


def test_a_corrupt_blob_is_a_reported_miss_and_the_next_push_repairs_it(tmp_path):
    root = tmp_path / "remote"
    a, _ = clone(tmp_path, "a", str(root))
    rec = recipe()
    build_all(a, rec)
    (info,) = a.read_marker("pnet", "digest")["outputs"].values()
    blob = remote_blob(root, info["sha256"])
    good = blob.read_bytes()
    blob.write_bytes(bytes([good[0] ^ 1]) + good[1:])  # same size, other content
    b, warn_b = clone(tmp_path, "b", str(root))
    assert build_all(b, rec) == {"fetch": "remote", "digest": "ran", "slow": "remote",
                                 "package": "remote"}
    assert len(warn_b) == 1 and "corrupt or partial" in warn_b[0] and "sha256" in warn_b[0]
    assert (b.cache.out_dir("pnet", "digest") / "digest.json").read_bytes() == good
    assert blob.read_bytes() == good  # b built it and uploaded the blob again
    c, warn_c = clone(tmp_path, "c", str(root))
    assert build_all(c, rec) == dict.fromkeys(STAGES, "remote") and warn_c == []


@pytest.mark.parametrize("damage", ["garbage record", "missing blob", "foreign document"])
def test_a_corrupt_or_partial_entry_is_reported_once_and_not_read_again(tmp_path, monkeypatch,
                                                                         damage):
    root = tmp_path / "remote"
    a, _ = clone(tmp_path, "a", str(root))
    rec = recipe()
    build_all(a, rec)
    key = a.key_doc(rec, "slow")[0]
    path = root / f"v1/ac/slow/{key}.json"
    record = json.loads(path.read_text())
    if damage == "garbage record":
        path.write_text(path.read_text()[:40])  # a truncated upload
    elif damage == "missing blob":
        remote_blob(root, record["outputs"]["done.txt"]["sha256"]).unlink()
    else:  # a record of other code, renamed to this key: its document does not hash to it
        record["doc"]["code"] = {"files": {"x.py": "0" * 64}}
        path.write_bytes(record_bytes(record, "slow", key))
    b, warnings = clone(tmp_path, "b", str(root))
    reads = []
    real = RemoteStore.get_record
    monkeypatch.setattr(RemoteStore, "get_record", lambda s, st, k: reads.append(st) or real(
        s, st, k))
    assert not b.team.pull("slow", key) and len(warnings) == 1
    assert "corrupt or partial" in warnings[0] and b.cache.read_entry("slow", key) is None
    assert not b.team.pull("slow", key) and len(warnings) == 1 and reads == ["slow"]
    again = TeamCache(b.cache, str(root), warn=warnings.append)  # a later build, same cache
    assert not again.pull("slow", key) and reads == ["slow"] and again.is_bad("slow", key)
    assert f"slow/{key}" in json.loads((b.cache.base / "remote/bad.json").read_text())


@pytest.mark.parametrize("change,problem", [
    (lambda r: r.update(stage="other"), "stage/key do not match"),
    (lambda r: r["outputs"].update({"../../evil": r["outputs"]["done.txt"]}), "leaves the stage"),
    (lambda r: r["outputs"]["done.txt"].update(size="2"), "bad output record"),
    (lambda r: r["doc"].update(recipe={"calibration.count": 99}), "does not hash to its key"),
    (lambda r: r.update(schema=99), "unknown record format"),
    (lambda r: r.update(recipe=["a"]), "bad recipe field"),
    (lambda r: r.update(failure="boom"), "bad failure field"),
])
def test_record_problems(change, problem):
    doc = {"cache": "v1", "stage": "slow", "recipe": {"calibration.count": 2}}
    key = sha256_json(doc)
    record = {"schema": 1, "stage": "slow", "key": key, "doc": doc, "failure": None,
              "outputs": {"done.txt": {"sha256": "a" * 64, "size": 2}}}
    assert record_problem(json.loads(json.dumps(record)), "slow", key) is None
    change(record)
    assert problem in record_problem(record, "slow", key)


def test_an_unreachable_remote_warns_once_and_the_build_goes_on(tmp_path, monkeypatch):
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NNBUILD_REMOTE_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    a, warnings = clone(tmp_path, "a", "s3://team-bucket/cache")
    assert build_all(a, recipe()) == dict.fromkeys(STAGES, "ran")
    assert len(warnings) == 1, warnings
    assert "s3://team-bucket/cache" in warnings[0] and "building without the remote" in warnings[0]
    assert DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in warnings[0]
    assert read_stats(a.cache)["errors"] == 1


@pytest.mark.timeout(90)
def test_a_remote_that_never_answers_times_out_once(tmp_path, monkeypatch):
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("NNBUILD_REMOTE_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("NNBUILD_REMOTE_TIMEOUT", "1,1")
        a, warnings = clone(tmp_path, "a", "s3://team-bucket/cache")
        assert build_all(a, recipe()) == dict.fromkeys(STAGES, "ran")
    assert len(warnings) == 1 and "timeout" in warnings[0].lower(), warnings


def test_missing_credentials_say_how_to_provide_them(tmp_path, monkeypatch, moto_endpoint):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NNBUILD_REMOTE_ENDPOINT", moto_endpoint)
    a, warnings = clone(tmp_path, "a", "s3://team-bucket/cache")
    assert build_all(a, recipe()) == dict.fromkeys(STAGES, "ran")
    assert len(warnings) == 1 and "no AWS credentials" in warnings[0]
    for hint in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        assert hint in warnings[0]


def test_a_failing_remote_write_never_fails_the_build(tmp_path, monkeypatch):
    from fsspec.implementations.local import LocalFileSystem

    def read_only(*_args, **_kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(LocalFileSystem, "put_file", read_only)  # a share mounted read-only
    root = tmp_path / "remote"
    a, warnings = clone(tmp_path, "a", str(root))  # records are read (a miss), uploads fail
    assert build_all(a, recipe()) == dict.fromkeys(STAGES, "ran")
    assert len(warnings) == 1 and "uploading a file failed" in warnings[0], warnings
    assert "Read-only file system" in warnings[0] and "building without the remote" in warnings[0]
    assert not (root / "v1" / "ac").exists()  # no record without its blobs


def test_a_recorded_gate_failure_is_shared_like_a_local_one(tmp_path):
    remote = str(tmp_path / "remote")  # the protocol does not matter here
    a, _ = clone(tmp_path, "a", remote, extra=[gate])
    b, _ = clone(tmp_path, "b", remote, extra=[gate])
    rec = recipe(count=7)
    for pipe, how in ((a, "ran"), (b, "remote")):
        assert build_all(pipe, rec, ("fetch", "digest")) == {"fetch": how, "digest": how}
        with pytest.raises(CheckFailed, match="check.gate: count is unlucky"):
            pipe.build(rec, "gate")
        assert (pipe.cache.out_dir("pnet", "gate") / "verdict.txt").read_text() == "fail\n"
    assert read_stats(b.cache)["hits"] == 3


def test_two_writers_of_one_key_leave_one_valid_entry(tmp_path, remote):
    a, _ = clone(tmp_path, "a", None)
    rec = recipe()
    build_all(a, rec)
    key = a.key_doc(rec, "slow")[0]
    entry = a.cache.read_entry("slow", key)
    writers = [TeamCache(Cache(tmp_path / "a/cache"), remote, warn=pytest.fail) for _ in range(3)]
    threads = [threading.Thread(target=lambda w=w: [w.push("slow", key, entry) for _ in range(2)])
               for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader, warnings = clone(tmp_path, "r", remote)
    assert reader.team.pull("slow", key) and warnings == []
    assert reader.cache.read_entry("slow", key)["outputs"] == entry["outputs"]
    assert RemoteStore(remote).list_records() == [("slow", key)]


def test_messages_never_show_credentials_of_the_url():
    assert redact("s3://AKIA123:secret@bucket/prefix") == "s3://bucket/prefix"
    assert redact("/srv/team-cache") == "/srv/team-cache"


def test_no_remote_configured_is_inactive(tmp_path, monkeypatch):
    monkeypatch.setenv("NNBUILD_REMOTE", "off")
    cache = Cache(tmp_path / "cache")
    team = TeamCache(cache)
    assert team.store is None and team.url is None and not team.pull("slow", "0" * 64)
    team.save()
    assert not (cache.base / "remote").exists()


def test_the_directory_remote_needs_no_s3fs(tmp_path, monkeypatch):
    for name in ("s3fs", "botocore", "aiobotocore"):
        monkeypatch.setitem(sys.modules, name, None)  # `import s3fs` now fails
    a, warn_a = clone(tmp_path, "a", f"file://{tmp_path / 'remote'}")
    b, warn_b = clone(tmp_path, "b", str(tmp_path / "remote"))
    rec = recipe()
    assert build_all(a, rec) == dict.fromkeys(STAGES, "ran")
    assert build_all(b, rec) == dict.fromkeys(STAGES, "remote") and warn_a == warn_b == []
    # An S3 remote without s3fs (a fresh process: this one may have loaded it): one line.
    code = ("import sys; sys.modules['s3fs'] = None; from nnbuild.build.remote import "
            "RemoteStore; store = RemoteStore('s3://team-bucket/cache'); "
            "print(store.get_record('fetch', '0' * 64), store.disabled)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["None", "True"], result
    (line,) = result.stderr.splitlines()
    assert line.startswith("nnbuild: remote: s3://team-bucket/cache: ImportError")
    assert line.endswith("Hint: pip install 'nnbuild[remote]' (fsspec, s3fs)")


def test_a_fresh_store_writes_below_its_root_whatever_it_does_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"content")
    digest_hex = hashlib.sha256(b"content").hexdigest()
    assert RemoteStore("team/cache").put_blob(digest_hex, blob)  # relative: to the cwd
    assert remote_blob(tmp_path / "team/cache", digest_hex).read_bytes() == b"content"
    assert RemoteStore(f"file://{tmp_path}/other").put_record("slow", "0" * 64, b"{}")
    assert (tmp_path / "other/v1/ac/slow" / f"{'0' * 64}.json").read_bytes() == b"{}"
