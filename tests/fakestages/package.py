"""Test stage ``package``: a gzip file named after the recipe (published to dist/)."""

import gzip
import os

NAME = "package"
NEEDS = ("slow",)
READS = ()


def run(ctx):
    """Compress slow's done.txt into ``<recipe>.tar.gz`` (content only matters for the test)."""
    data = (ctx.upstream("slow") / "done.txt").read_bytes()
    (ctx.out / f"{ctx.name}.tar.gz").write_bytes(gzip.compress(data, mtime=0))
    log = os.environ.get("FAKE_RUN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{ctx.stage}:{ctx.name}\n")
