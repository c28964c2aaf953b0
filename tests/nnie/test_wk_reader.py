"""The .wk reader on the four real files of ../shared/wk and on synthetic files from the layout."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED
from wkgen import SynthNode, make_wk, resign

from nnbuild.cli import main
from nnbuild.nnie.wk.reader import WkError, read_wk
from nnbuild.nnie.wk.summary import summarize

WK = SHARED / "wk"
NNIE12 = ["hi3516cv500", "hi3516dv300", "hi3516av300", "hi3519av100"]
MNET_OUTPUTS = [
    ("face_rpn_bbox_pred_stride32", [8, 20, 20]), ("face_rpn_bbox_pred_stride16", [8, 40, 40]),
    ("face_rpn_bbox_pred_stride8", [8, 80, 80]),
    ("face_rpn_landmark_pred_stride32", [20, 20, 20]),
    ("face_rpn_landmark_pred_stride16", [20, 40, 40]),
    ("face_rpn_landmark_pred_stride8", [20, 80, 80]),
    ("face_rpn_cls_prob_reshape_strid", [4, 20, 20]),
    ("face_rpn_cls_prob_reshape_strid", [4, 40, 40]),
    ("face_rpn_cls_prob_reshape_strid", [4, 80, 80])]
# file -> (data width, build id, temp buffer, input, outputs, blocks by type); wk-format.md §1-§3.
REAL = {
    "nniefacelib-mnet-640-8bit.wk": (8, "19010713251682", 3_686_400, ("data", [3, 640, 640]),
                                     MNET_OUTPUTS, {"raw": 531, "compressed 0x01": 12,
                                                    "compressed 0x11": 7,
                                                    "compressed 0x51": 1368}),
    "nniefacelib-mnet-640-16bit.wk": (16, "19010713251682", 7_372_800, ("data", [3, 640, 640]),
                                      MNET_OUTPUTS, {"raw": 271, "compressed 0x01": 1886,
                                                     "compressed 0x11": 1411}),
    "enet-cityscapes-16bit.wk": (16, "18101617452119", 89_128_960, ("data", [3, 512, 1024]),
                                 [("deconv6_0_0", [33, 512, 1024])],
                                 {"raw": 264, "compressed 0x01": 4249, "compressed 0x11": 93}),
    "sdk-mnist-8bit.wk": (8, "18062020191990", 1_989_888, ("data", [1, 28, 28]),
                          [("prob", [10, 1, 1])], {"raw": 12, "compressed 0x01": 12,
                                                   "compressed 0x11": 1, "compressed 0x51": 5}),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files(name):
    width, build, temp, (in_name, in_shape), outputs, kinds = REAL[name]
    doc = summarize(read_wk(WK / name))
    assert (doc["version"], doc["nnie"], doc["arch_version"]) == ("1.1.1.2", "1.2", 12)
    assert doc["chips"] == NNIE12
    assert (doc["data_width"], doc["mapper_build"], doc["temp_buffer"]) == (width, build, temp)
    [segment] = doc["segments"]
    assert [(n["name"], n["shape"], n["blob_type"]) for n in segment["inputs"]] == [
        (in_name, in_shape, "U8")]
    assert [(n["name"], n["shape"]) for n in segment["outputs"]] == outputs
    assert {n["blob_type"] for n in segment["outputs"]} == {"S32"}
    assert doc["weights"]["by_type"] == kinds
    assert doc["weights"]["blocks"] == sum(kinds.values())


def test_retinaface_names_flagged():
    outputs = summarize(read_wk(WK / "nniefacelib-mnet-640-8bit.wk"))["segments"][0]["outputs"]
    flags = [n["flags"] for n in outputs]
    assert flags[:3] == [[], [], []]
    assert flags[3] == ["31 chars: maybe truncated"]
    assert flags[6:] == [["31 chars: maybe truncated", "collides"]] * 3


def test_8bit_retinaface_block_count_and_index():
    wk = read_wk(WK / "nniefacelib-mnet-640-8bit.wk")
    assert len(wk.blocks) == 1918 and wk.index_rows == 3318     # wk-format.md §3
    assert wk.tail_records == 1435                              # §5
    assert all(b.offset % 16 == 0 for b in wk.blocks)


def test_synthetic_round_trip():
    nodes = ([SynthNode("data", 3, 32, 48, 1)],
             [SynthNode("out_a", 8, 4, 6, 0), SynthNode("x" * 40, 2, 1, 1, 0)])
    second = ([SynthNode("feat", 16, 4, 6, 0)], [SynthNode("emb", 128, 1, 1, 0)])
    data = make_wk([nodes, second], width_bytes=2, build=b"18101617452119", temp_buffer=12345,
                   blocks=[(0, b"\x01" * 100), (0x01, b"\x02" * 30), (0x51, b"\x03" * 40)])
    wk = read_wk(data)
    doc = summarize(wk)
    assert (doc["data_width"], doc["mapper_build"], doc["temp_buffer"]) == (
        16, "18101617452119", 12345)
    assert [[(n["name"], n["shape"]) for n in s["inputs"] + s["outputs"]]
            for s in doc["segments"]] == [
        [("data", [3, 32, 48]), ("out_a", [8, 4, 6]), ("x" * 31, [2, 1, 1])],
        [("feat", [16, 4, 6]), ("emb", [128, 1, 1])]]
    assert doc["segments"][0]["outputs"][1]["flags"] == ["31 chars: maybe truncated"]
    assert [(b.type, b.payload_length) for b in wk.blocks] == [(0, 100), (1, 30), (0x51, 40)]
    assert bytes(wk.block_bytes(wk.blocks[0]))[3:103] == b"\x01" * 100


def test_nnie11_file_loads_on_hi3559av100_only():
    wk = read_wk(make_wk(version=(1, 1, 1, 1)))
    assert (wk.nnie, wk.chips) == ("1.1", ["hi3559av100"])


def _error(data) -> str:
    with pytest.raises(WkError) as info:
        read_wk(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_corrupt_crc():
    data = bytearray(make_wk())
    data[0x200] ^= 0x01
    assert "CRC-32 mismatch: the file is corrupt. Expected 0x" in _error(bytes(data))


def test_wrong_version():
    message = _error(make_wk(version=(1, 1, 1, 3)))
    assert message == ("<bytes>: unknown .wk version. Expected format 11 and arch 12 (NNIE 1.2) "
                       "or 11 (NNIE 1.1), bytes 1.1.1.2 or 1.1.1.1, got 1.1.1.3. Hint: this "
                       "file was not written by nnie_mapper_11/12.")


def test_truncated():
    data = make_wk()
    message = _error(data[:-10])
    assert message == (f"<bytes>: truncated .wk file. Expected {len(data)} bytes (header + body "
                       f"+ tail), got {len(data) - 10} bytes. Hint: copy the file again; it was "
                       f"cut short.")
    assert "shorter than the 192-byte header" in _error(data[:100])


def test_too_many_segments():
    data = bytearray(make_wk())
    data[0x31] = 9
    message = _error(resign(data))
    assert message.startswith("<bytes>: segment count out of range. Expected 1..8, got 9.")


def test_segment_records_disagree_with_body_offset():
    data = bytearray(make_wk())
    data[0x31] = 2
    assert "segment records do not end where the body starts" in _error(resign(data))


def test_not_a_wk(tmp_path):
    png = tmp_path / "x.wk"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    assert f"{png}: not a .wk file (header size field at 0x08). Expected 192, got 0." in \
        _error(png)
    assert "trailing bytes after the .wk tail" in _error(make_wk() + b"\0")


def test_cli_json_and_chip(capsys):
    path = WK / "nniefacelib-mnet-640-8bit.wk"
    assert main(["inspect-wk", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["segments"][0]["outputs"][0]["name"] == "face_rpn_bbox_pred_stride32"
    assert main(["inspect-wk", str(path), "--chip", "hi3516dv300"]) == 0
    assert "NNIE 1.2" in capsys.readouterr().out
    assert main(["inspect-wk", str(path), "--chip", "Hi3559AV100"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"nnbuild: error: {path}: hi3559av100 cannot load this file: arch_version(12) "
                   "of input model should be 11. Expected a .wk built by nnie_mapper_11, got "
                   "NNIE 1.2 (loads on hi3516cv500, hi3516dv300, hi3516av300, hi3519av100). "
                   "Hint: rebuild with target.chip: hi3559av100 (nnie_mapper_11).")


def test_cli_corrupt_file_one_line(tmp_path, capsys):
    data = bytearray((WK / "sdk-mnist-8bit.wk").read_bytes())
    data[0x1000] ^= 0xFF
    bad = tmp_path / "bad.wk"
    bad.write_bytes(bytes(data))
    assert main(["inspect-wk", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"nnbuild: error: {bad}: CRC-32 mismatch: the file is corrupt. "
                          "Expected 0x")
