"""Test stage ``gate``: writes a verdict and records a gate failure when calibration.count is 7."""

from nnbuild.errors import CheckFailed

NAME = "gate"
NEEDS = ("digest",)
READS = ("calibration.count",)


def run(ctx):
    """Write ``verdict.txt``; with count 7, fail the gate (outputs are still cached)."""
    count = ctx.recipe["calibration"]["count"]
    (ctx.out / "verdict.txt").write_text("fail\n" if count == 7 else "pass\n")
    if count == 7:
        ctx.fail(CheckFailed("check.gate", "count is unlucky", expected="not 7", got=count,
                             hint="pick another count"))
