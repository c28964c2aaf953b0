"""Package archives: byte reproducibility, manifest verification and its error messages."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from nnbuild.cli import main
from nnbuild.archive import PackageError, file_entries, nnie_output_names, verify, write_archive


def _make(tmp_path, sub, content=b"layer {}\n"):
    src = tmp_path / sub
    (src / "images").mkdir(parents=True)
    (src / "model.prototxt").write_bytes(content)
    (src / "images" / "000.bgr").write_bytes(bytes(range(256)) * 3)
    files = {"model.prototxt": src / "model.prototxt", "images/000.bgr": src / "images" / "000.bgr"}
    out = tmp_path / f"{sub}.tar.gz"
    write_archive(out, "demo", files, {"files": file_entries(files), "recipe": "demo"})
    return out


def test_same_content_different_paths_gives_identical_bytes(tmp_path):
    a, b = _make(tmp_path, "a"), _make(tmp_path, "elsewhere/b")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_archive_entries_are_normalised(tmp_path):
    with tarfile.open(_make(tmp_path, "a"), "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["demo", "demo/images", "demo/images/000.bgr",
                                         "demo/manifest.json", "demo/model.prototxt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isfile()} == {0o644}


def test_verify_accepts_an_intact_archive_and_cli_says_ok(tmp_path, capsys):
    archive = _make(tmp_path, "a")
    assert set(verify(archive)["files"]) == {"model.prototxt", "images/000.bgr"}
    assert main(["verify", str(archive)]) == 0
    assert "ok (2 files match manifest.json)" in capsys.readouterr().out


def _rewrite(archive, edit):
    with tarfile.open(archive, "r:gz") as tar:
        entries = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in edit(entries):
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


def test_verify_names_the_changed_file_and_both_hashes(tmp_path, capsys):
    archive = _make(tmp_path, "a")
    _rewrite(archive, lambda es: [(m, b"tampered\n" if m.name.endswith(".prototxt") else d)
                                  for m, d in es])
    with pytest.raises(PackageError, match=r"model\.prototxt: content does not match the "
                                           r"manifest\. Expected sha256 [0-9a-f]{64}"):
        verify(archive)
    assert main(["verify", str(archive)]) == 2
    assert "rebuild the package" in capsys.readouterr().err


def test_verify_reports_missing_and_extra_files(tmp_path):
    archive = _make(tmp_path, "a")
    _rewrite(archive, lambda es: [(m, d) for m, d in es if not m.name.endswith(".bgr")])
    with pytest.raises(PackageError, match="images/000.bgr: listed in the manifest but missing"):
        verify(archive)


def test_verify_rejects_a_truncated_archive(tmp_path):
    archive = _make(tmp_path, "a")
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(PackageError, match="cannot read the archive"):
        verify(archive)


def test_manifest_is_canonical_json(tmp_path):
    with tarfile.open(_make(tmp_path, "a"), "r:gz") as tar:
        text = tar.extractfile("demo/manifest.json").read().decode()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_nnie_output_names_truncate_to_31_characters():
    names = nnie_output_names(["face_rpn_cls_prob_reshape_stride32", "short"])
    assert names[0]["nnie_name"] == "face_rpn_cls_prob_reshape_strid"
    assert len(names[0]["nnie_name"]) == 31 and names[1]["nnie_name"] == "short"
