"""``nnbuild verify`` against hostile archives: links, devices, unsafe names, duplicates,
unlisted members, lying sizes and decompression bombs (bounded memory, checked in a child)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import textwrap

import pytest

from nnbuild.archive import PackageError, canonical_json, file_entries, verify, write_archive
from nnbuild.cli import main


def _package(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "model.prototxt").write_bytes(b"layer {}\n")
    (src / "images" / "000.bgr").write_bytes(bytes(range(256)) * 3)
    files = {"model.prototxt": src / "model.prototxt", "images/000.bgr": src / "images" / "000.bgr"}
    return files


def _hostile(tmp_path, extra, manifest_extra=None, drop=()):
    """A package (good members + manifest) with ``extra`` members (TarInfo, bytes|None) added."""
    files = _package(tmp_path)
    entries = file_entries(files)
    entries.update(manifest_extra or {})
    members = [(_info("demo", tarfile.DIRTYPE), None), (_info("demo/images", tarfile.DIRTYPE), None)]
    for name, path in files.items():
        if name not in drop:
            members.append((_info(f"demo/{name}"), path.read_bytes()))
    members.append((_info("demo/manifest.json"), canonical_json({"files": entries})))
    members.extend(extra)
    out = tmp_path / "hostile.tar.gz"
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def _info(name, kind=tarfile.REGTYPE, **fields):
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _refused(archive, capsys, pattern):
    with pytest.raises(PackageError, match=pattern):
        verify(archive)
    assert main(["verify", str(archive)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "ok (" not in err
    return err


def test_a_listed_symlink_is_refused(tmp_path, capsys):
    link = _info("demo/evil", tarfile.SYMTYPE, linkname="/etc/passwd")
    archive = _hostile(tmp_path, [(link, None)],
                       {"evil": {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0}})
    err = _refused(archive, capsys, r"demo/evil: member is a symlink\. Expected only regular "
                                    r"files and folders, got symlink")
    assert "Hint: the archive was edited" in err


@pytest.mark.parametrize("kind, word", [(tarfile.LNKTYPE, "hardlink"), (tarfile.CHRTYPE, "device"),
                                        (tarfile.BLKTYPE, "device"), (tarfile.FIFOTYPE, "fifo"), (tarfile.CONTTYPE, "member of type")])
def test_links_devices_and_fifos_are_refused(tmp_path, capsys, kind, word):
    member = _info("demo/odd", kind, linkname="demo/model.prototxt" if kind == tarfile.LNKTYPE else "")
    _refused(_hostile(tmp_path, [(member, None)]), capsys, rf"demo/odd: member is a {word}")


@pytest.mark.parametrize("name", ["/tmp/abs.txt", "demo/../../escape.txt", "demo/./x", "demo//x",
                                  "demo/a\\b", "../demo/x"])
def test_unsafe_names_are_refused(tmp_path, capsys, name):
    _refused(_hostile(tmp_path, [(_info(name), b"x")]), capsys, r"unsafe member name\. Expected "
             r"a relative name")


def test_duplicate_member_is_refused_even_with_the_right_content(tmp_path, capsys):
    again = (_info("demo/model.prototxt"), b"layer {}\n")
    _refused(_hostile(tmp_path, [again]), capsys, r"demo/model\.prototxt: member appears twice")


def test_member_not_in_the_manifest_is_refused(tmp_path, capsys):
    _refused(_hostile(tmp_path, [(_info("demo/notes.txt"), b"hi\n")]), capsys,
             r"notes\.txt: present but not listed in the manifest")


def test_size_disagreeing_with_the_manifest_is_refused_at_the_header(tmp_path, capsys):
    wrong = {"model.prototxt": {"sha256": "0" * 64, "size": 10 ** 12}}
    _refused(_hostile(tmp_path, [], wrong), capsys, r"model\.prototxt: size does not match the "
             r"manifest\. Expected 1000000000000 bytes, got 9 bytes")


def test_setuid_bits_are_refused(tmp_path, capsys):
    archive = _hostile(tmp_path, [(_info("demo/run.sh", mode=0o4755), b"#!/bin/sh\n")])
    _refused(archive, capsys, r"run\.sh: member has special mode bits")


def test_pax_header_claiming_a_gigabyte_is_refused_without_reading_it(tmp_path, capsys):
    header = _info("demo/././@PaxHeader", tarfile.XHDTYPE, size=1 << 30).tobuf(tarfile.USTAR_FORMAT)
    archive = tmp_path / "pax.tar.gz"
    archive.write_bytes(gzip.compress(header + bytes(1 << 16)))
    _refused(archive, capsys, r"archive header too large\. Expected at most 67108864 bytes, "
                              r"got 1073741824 bytes")


def _bomb(path, member_bytes):
    """A .tar.gz whose one member holds ``member_bytes`` zeros, written as repeated gzip members
    (valid gzip; built in seconds), with a manifest claiming that size."""
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    head = _info("demo/manifest.json")
    body = canonical_json({"files": {"big.bin": {"sha256": "0" * 64, "size": member_bytes}}})
    head.size = len(body)
    first = (_info("demo", tarfile.DIRTYPE).tobuf(tarfile.USTAR_FORMAT)
             + _info("demo/big.bin", size=member_bytes).tobuf(tarfile.USTAR_FORMAT))
    with open(path, "wb") as f:
        f.write(gzip.compress(first))
        for _ in range(member_bytes >> 20):
            f.write(zeros)
        pad = bytes(-len(body) % tarfile.BLOCKSIZE)
        f.write(gzip.compress(head.tobuf(tarfile.USTAR_FORMAT) + body + pad
                              + bytes(2 * tarfile.BLOCKSIZE)))
    return path


def test_a_gzip_bomb_is_verified_in_bounded_memory(tmp_path):
    archive = _bomb(tmp_path / "bomb.tar.gz", 400 << 20)
    assert archive.stat().st_size < 1 << 20
    script = textwrap.dedent(f"""
        import resource, sys
        from nnbuild.archive import PackageError, verify
        try:
            verify({str(archive)!r})
        except PackageError as err:
            print(err)
        # VmHWM: this image's own peak (ru_maxrss keeps the forking parent's after exec)
        print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert "big.bin: content does not match the manifest" in out[0]
    assert int(out[-1]) < 100, f"verify used {out[-1]} MiB"


def test_the_real_package_layout_still_verifies(tmp_path, capsys):
    files = _package(tmp_path)
    out = tmp_path / "ok.tar.gz"
    write_archive(out, "demo", files, {"files": file_entries(files)})
    assert json.dumps(verify(out)["files"], sort_keys=True) == json.dumps(file_entries(files),
                                                                          sort_keys=True)
