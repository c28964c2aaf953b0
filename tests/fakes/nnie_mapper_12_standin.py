#!/usr/bin/env python3
"""Stand-in for HiSilicon's proprietary nnie_mapper_12, used only to test nnbuild's runner.

It checks the cfg it is given the way nnie-facts.md §2 describes the real tool's input — every
key present, ``instruction_name`` spelled right, no comments, the files named there exist, the
image list names OpenCV-readable pictures, the mean file fits norm_type — then writes a dummy
``<instruction_name>.wk``. It does NOT compile anything. Standard library only.

Test hooks (environment): STANDIN_FAIL=1 fails after logging; STANDIN_NO_WK=1 exits 0 without a
.wk. Without arguments it prints a usage banner with a version and exits 1, like a CLI tool.
"""

import os
import pathlib
import re
import sys

BANNER = "nnie_mapper_12 stand-in (nnbuild tests) version 1.2.0.0-standin"
KEYS = ("prototxt_file", "caffemodel_file", "net_type", "image_list", "image_type", "norm_type",
        "data_scale", "mean_file", "batch_num", "sparse_rate", "compile_mode", "compress_mode",
        "is_simulation", "instruction_name", "internal_stride", "is_check_prototxt", "log_level",
        "RGB_order")
CHOICES = {"net_type": "012", "image_type": ("0", "1", "3", "5"), "norm_type": "012345",
           "compile_mode": "012", "compress_mode": "01", "is_simulation": "01",
           "internal_stride": ("16", "32"), "is_check_prototxt": "01", "log_level": "0123",
           "RGB_order": ("RGB", "BGR")}
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")  # JPEG, PNG, BMP


def fail(message):
    print(f"[ERROR] {message}")
    sys.exit(3)


def parse(cfg):
    values = {}
    for number, line in enumerate(cfg.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if not line.startswith("[") or "]" not in line:
            fail(f"cfg line {number} is not '[key] value': {line!r}")
        key, _, value = line[1:].partition("]")
        if key not in KEYS:
            fail(f"unknown cfg key [{key}]")
        values[key] = value.strip()
    missing = [k for k in KEYS if k not in values]
    if missing:
        fail(f"cfg misses keys {missing}")
    return values


def check_values(values):
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            fail(f"[{key}] {values[key]} not in {list(allowed)}")
    if not 1 / 4096 < float(values["data_scale"]):
        fail("data_scale out of range")
    if not 0 <= int(values["batch_num"]) <= 256:
        fail("batch_num out of range")
    for key in ("prototxt_file", "caffemodel_file", "image_list"):
        if not pathlib.Path(values[key]).is_file():
            fail(f"[{key}] {values[key]}: no such file")
    if "layer" not in pathlib.Path(values["prototxt_file"]).read_text(errors="replace"):
        fail("prototxt has no layers")


def check_mean(values):
    norm, mean = values["norm_type"], values["mean_file"]
    if norm in "0" + "3":
        if mean != "null":
            fail(f"norm_type {norm} takes no mean file, got {mean}")
        return
    lines = pathlib.Path(mean).read_text().split() if pathlib.Path(mean).is_file() else []
    channels = input_channels(pathlib.Path(values["prototxt_file"]).read_text(errors="replace"))
    if len(lines) != channels:
        fail(f"mean_file {mean} must hold {channels} values (one per input channel)")
    [float(v) for v in lines]


def input_channels(prototxt):
    """C of the network input: the second input dim (input_dim / input_shape / Input layer's
    shape, whichever the prototxt opens with); 3 when none is found."""
    dims = re.findall(r"\b(?:input_dim|dim)\s*:\s*(\d+)", prototxt)
    return int(dims[1]) if len(dims) >= 2 else 3


def check_images(values):
    entries = [e.strip() for e in pathlib.Path(values["image_list"]).read_text().splitlines()
               if e.strip()]
    if not entries:
        fail("image_list is empty")
    for entry in entries:
        path = pathlib.Path(entry)
        if not path.is_file():
            fail(f"image {entry}: no such file")
        if not path.read_bytes()[:8].startswith(MAGIC):
            fail(f"image {entry}: cannot be read by OpenCV")
    print(f"[INFO] {len(entries)} calibration images")


def main(argv):
    if len(argv) != 2:
        print(BANNER)
        print("Usage: nnie_mapper_12 <cfg>")
        return 1
    print(BANNER)
    values = parse(pathlib.Path(argv[1]))
    check_values(values)
    check_mean(values)
    check_images(values)
    print(f"[INFO] compile_mode {values['compile_mode']}, RGB_order {values['RGB_order']}")
    if os.environ.get("STANDIN_FAIL"):
        fail("computeNonlinearQuantizationDelta: simulated failure")
    if not os.environ.get("STANDIN_NO_WK"):
        wk = pathlib.Path(values["instruction_name"] + ".wk")
        wk.parent.mkdir(parents=True, exist_ok=True)
        # STANDIN_WK: copy a real .wk instead of the stub (tests of the .wk verification)
        real = os.environ.get("STANDIN_WK")
        wk.write_bytes(pathlib.Path(real).read_bytes() if real else b"\0\0\0\0\1\1\1\2standin")
        print(f"[INFO] wrote {wk}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
