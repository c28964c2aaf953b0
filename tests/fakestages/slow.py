"""Test stage ``slow``: writes several files with pauses (kill -9 tests), reads calibration.count."""

import os
import time

NAME = "slow"
NEEDS = ("digest",)
READS = ("calibration.count",)


def run(ctx):
    """Write ``count`` files of 256 KiB, sleeping ``H5_SLOW_SECONDS`` between them."""
    pause = float(os.environ.get("H5_SLOW_SECONDS", "0"))
    digest = (ctx.upstream("digest") / "digest.json").read_text()
    count = ctx.recipe["calibration"]["count"]
    for index in ctx.progress(range(count), total=count, desc="slow"):
        (ctx.out / "parts").mkdir(exist_ok=True)
        (ctx.out / "parts" / f"{index:03d}.bin").write_bytes(
            (digest + str(index)).encode() * 4096)
        time.sleep(pause)
    (ctx.out / "done.txt").write_text(f"{count}\n")
    log = os.environ.get("FAKE_RUN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{ctx.stage}:{ctx.name}\n")
