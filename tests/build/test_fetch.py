"""Fetching pinned inputs: local path, mirror by sha256, loopback download, manifests, errors."""

import hashlib
import http.server
import threading

import pytest

from nnbuild import hashing

from nnbuild.build import fetch
from nnbuild.build.cache import Cache
from nnbuild.errors import FetchError, RecipeError
from fakestages.project import SHARED

MNET = SHARED / "models" / "retinaface-mnet25" / "mnet.prototxt"
MNET_SHA = "100f7698e3588cf888bd87b8d14398d23cba24ff1604af1edd171509a035221e"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNBUILD_MIRROR", "")  # no mirrors at all, not even the project default
    monkeypatch.setenv("NNBUILD_OFFLINE", "1")
    return Cache(tmp_path / "cache")


def test_local_path_is_verified(cache, tmp_path):
    got = fetch.fetch({"path": str(MNET), "sha256": MNET_SHA}, cache)
    assert got == cache.cas_path(MNET_SHA) and got.read_bytes() == MNET.read_bytes()
    copy = tmp_path / "m.prototxt"
    copy.write_bytes(MNET.read_bytes() + b"\n")
    with pytest.raises(FetchError, match=rf"sha256 mismatch. Expected {MNET_SHA}, got "
                                         rf"{hashlib.sha256(copy.read_bytes()).hexdigest()}"):
        fetch.fetch({"path": str(copy), "sha256": MNET_SHA}, Cache(tmp_path / "c2"))
    # A store file edited behind nnbuild's back is not trusted: it is fetched again.
    import os
    os.chmod(got, 0o644)
    got.write_bytes(b"tampered")
    assert fetch.fetch({"path": str(MNET), "sha256": MNET_SHA}, cache).read_bytes() == \
        MNET.read_bytes()


def test_mirror_finds_files_by_hash_whatever_their_name(cache, monkeypatch):
    monkeypatch.setenv("NNBUILD_MIRROR", f"/nonexistent:{SHARED / 'models'}")
    ref = {"url": "https://example.invalid/renamed.bin", "sha256": MNET_SHA}
    assert fetch.fetch(ref, cache).read_bytes() == MNET.read_bytes()
    index_files = list((cache.base / "mirror").glob("*.json"))
    assert len(index_files) == 1
    calls = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or real(p))
    fresh = Cache(cache.root)  # new process: index and stat cache come from disk
    index = fetch.mirror_index((SHARED / "models").resolve(), fresh)
    assert index[MNET_SHA] == "retinaface-mnet25/mnet.prototxt" and calls == []


def test_offline_not_found_is_one_line_with_places_and_hint(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("NNBUILD_MIRROR", str(tmp_path / "empty"))
    ref = {"path": str(tmp_path / "models/x.caffemodel"), "sha256": "ab" * 32,
           "url": "https://example.invalid/x.caffemodel"}
    with pytest.raises(FetchError) as info:
        fetch.fetch(ref, cache, "source.caffemodel")
    text = str(info.value)
    assert "\n" not in text and text.startswith("source.caffemodel: x.caffemodel (sha256 abab")
    assert f"path {tmp_path}/models/x.caffemodel; mirror {tmp_path}/empty; url " in text
    assert f"Hint: set NNBUILD_MIRROR to a directory holding the file (any name), or put the " \
           f"file at {tmp_path}/models/x.caffemodel" in text


class _Handler(http.server.BaseHTTPRequestHandler):
    payloads: dict = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        body, declared = self.payloads[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)  # declared > len(body) simulates a connection cut mid-download

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verified_and_partial_never_stored(cache, server, monkeypatch):
    monkeypatch.delenv("NNBUILD_OFFLINE")
    monkeypatch.setattr(fetch, "RETRIES", 2)
    data = MNET.read_bytes()
    _Handler.payloads = {"/ok": (data, len(data)), "/cut": (data[:1000], len(data)),
                         "/wrong": (data + b"x", len(data) + 1)}
    assert fetch.fetch({"url": server + "/ok", "sha256": MNET_SHA}, cache).read_bytes() == data
    other = Cache(cache.root.parent / "other")
    with pytest.raises(FetchError, match=r"not found.*url http://127.0.0.1:\d+/cut \("):
        fetch.fetch({"url": server + "/cut", "sha256": MNET_SHA}, other)
    wrong = hashlib.sha256(data + b"x").hexdigest()
    with pytest.raises(FetchError, match=rf"wrong sha256. Expected {MNET_SHA}, got {wrong}"):
        fetch.fetch({"url": server + "/wrong", "sha256": MNET_SHA}, other)
    assert not list((other.base / "cas").rglob("*")) if (other.base / "cas").exists() else True
    assert not [p for p in (other.base / "tmp").iterdir()]


def test_manifests_url_lines_and_shared_tsv(tmp_path):
    tsv = SHARED / "images" / "photos" / "SOURCES.tsv"
    refs = fetch.image_refs({"manifest": str(tsv), "skip": 1}, count=2)
    lines = tsv.read_text().splitlines()[2:4]
    assert [r["sha256"] for r in refs] == [line.split("\t")[1] for line in lines]
    assert refs[0]["path"] == str(tsv.parent / lines[0].split("\t")[0])
    plain = tmp_path / "list.txt"
    plain.write_text("# comment\n\nhttps://h/a.jpg " + "a" * 64 + "\nhttps://h/b.jpg " + "b" * 64)
    assert fetch.image_refs({"manifest": str(plain)}) == [
        {"url": "https://h/a.jpg", "sha256": "a" * 64}, {"url": "https://h/b.jpg", "sha256": "b" * 64}]
    with pytest.raises(RecipeError, match="not enough images. Expected at least 3, got 2"):
        fetch.image_refs({"manifest": str(plain)}, count=3)
    plain.write_text("https://h/a.jpg " + "a" * 64 + "\nhttps://h/b.jpg nothex\n")
    with pytest.raises(RecipeError, match=r"list.txt:2: malformed manifest line"):
        fetch.image_refs({"manifest": str(plain)})


def test_photos_manifest_resolves_through_image_mirror(cache, monkeypatch):
    monkeypatch.setenv("NNBUILD_MIRROR", str(SHARED / "images"))
    refs = fetch.image_refs({"manifest": str(SHARED.parent / "main/recipes/_data/photos.txt")},
                            count=2) if (SHARED.parent / "main/recipes/_data/photos.txt").exists() \
        else [{"url": "u", "sha256": hashing.sha256_file(SHARED / "images/photos/ultraface-1.jpg")}]
    for ref in refs:
        assert hashing.sha256_file(fetch.fetch(ref, cache)) == ref["sha256"]


def test_project_default_mirrors_apply_only_without_nnbuild_mirror(tmp_path, monkeypatch):
    from nnbuild.build.fetch import mirror_dirs

    (tmp_path / "pyproject.toml").write_text('[tool.nnbuild]\nmirror = ["../m1", "m2"]\n')
    monkeypatch.setenv("NNBUILD_ROOT", str(tmp_path))
    monkeypatch.delenv("NNBUILD_MIRROR", raising=False)
    assert mirror_dirs() == [(tmp_path / "../m1").resolve(), tmp_path / "m2"]
    monkeypatch.setenv("NNBUILD_MIRROR", "")
    assert mirror_dirs() == []
    monkeypatch.setenv("NNBUILD_MIRROR", str(tmp_path / "x"))
    assert mirror_dirs() == [tmp_path / "x"]
