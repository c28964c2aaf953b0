"""``nnbuild verify PACKAGE`` reads a packaged .wk and checks it against the manifest."""

from __future__ import annotations

import struct

from conftest import SHARED
from wkgen import make_wk

from nnbuild.cli import main
from nnbuild.archive import file_entries, nnie_output_names, write_archive

REAL = SHARED / "wk" / "nniefacelib-mnet-640-8bit.wk"
OUTPUTS = [f"face_rpn_{kind}_stride{s}" for kind in ("bbox_pred", "landmark_pred")
           for s in (32, 16, 8)] + [f"face_rpn_cls_prob_reshape_stride{s}" for s in (32, 16, 8)]


def package(tmp_path, wk_bytes: bytes, *, chip="hi3516dv300", outputs=OUTPUTS):
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    (folder / "net.wk").write_bytes(wk_bytes)
    (folder / "model.prototxt").write_text("name: 'x'\n")
    files = {p.name: p for p in folder.iterdir()}
    manifest = {"files": file_entries(files), "target": {"chip": chip},
                "outputs": nnie_output_names(outputs)}
    out = tmp_path / "pkg.tar.gz"
    write_archive(out, "pkg", files, manifest)
    return out


def test_real_wk_matches_manifest(tmp_path, capsys):
    archive = package(tmp_path, REAL.read_bytes())
    assert main(["verify", str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"{archive}: net.wk ok (NNIE 1.2, 8-bit, 9 outputs match manifest.json)" in out


def test_outputs_in_another_order(tmp_path, capsys):
    archive = package(tmp_path, REAL.read_bytes(), outputs=OUTPUTS[3:] + OUTPUTS[:3])
    assert main(["verify", str(archive)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnbuild: error: {archive}: net.wk: outputs differ from the manifest. "
                          "Expected face_rpn_landmark_pred_stride32")
    assert err.count("\n") == 1


def test_chip_that_cannot_load_it(tmp_path, capsys):
    archive = package(tmp_path, REAL.read_bytes(), chip="hi3559av100")
    assert main(["verify", str(archive)]) == 2
    assert "hi3559av100 cannot load this file: arch_version(12) of input model should be 11" \
        in capsys.readouterr().err


def test_corrupt_packaged_wk(tmp_path, capsys):
    data = bytearray(make_wk())
    data[struct.unpack_from("<I", data, 0x34)[0] + 10] ^= 1     # a body byte: CRC mismatch
    archive = package(tmp_path, bytes(data), outputs=["prob"])
    assert main(["verify", str(archive)]) == 2
    assert "net.wk: CRC-32 mismatch: the file is corrupt" in capsys.readouterr().err


def test_package_without_wk_unchanged(tmp_path, capsys):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "model.prototxt").write_text("x")
    files = {p.name: p for p in folder.iterdir()}
    archive = tmp_path / "pkg.tar.gz"
    write_archive(archive, "pkg", files, {"files": file_entries(files)})
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out.strip() == f"{archive}: ok (1 files match manifest.json)"
