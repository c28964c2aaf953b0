"""Compile and run generated C on the host (the system C compiler, as the issue asks)."""

from __future__ import annotations

import functools
import pathlib
import shutil
import subprocess
import tempfile

import pytest

HARNESS = pathlib.Path(__file__).parent / "harness"
CC = shutil.which("cc") or shutil.which("gcc")
FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")

needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc) on PATH: install gcc "
                                                  "(.ci/run does so with apt-get)")


@functools.lru_cache(maxsize=None)
def sanitizer_missing() -> str | None:
    """Why ``SANITIZE`` programs cannot be built and run here (None when they can).

    Compiles and runs a program that touches the heap with ``SANITIZE``: a compiler without
    the ASan/UBSan runtime (libasan, libubsan) fails to link it.
    """
    if CC is None:
        return "no C compiler (cc/gcc) on PATH"
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = pathlib.Path(tmp) / "probe.c", pathlib.Path(tmp) / "probe"
        src.write_text("#include <stdlib.h>\nint main(void) { char *p = malloc(4); p[3] = 0;"
                       " free(p); return 0; }\n")
        proc = subprocess.run([CC, *FLAGS, *SANITIZE, "-o", str(exe), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return (f"{CC} cannot link -fsanitize=address,undefined (install Debian's gcc, which "
                    f"brings libasan and libubsan): {proc.stderr.strip()[-300:]}")
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            return f"a sanitized program does not run here: {proc.stderr.strip()[-300:]}"
    return None


def write(files: dict[str, str], folder: pathlib.Path) -> pathlib.Path:
    """Write generated ``{arcname: text}`` below ``folder``; returns ``folder/postprocess``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder / "postprocess"


def build(source_dir: pathlib.Path, task: str, out: pathlib.Path, extra=()) -> pathlib.Path:
    """Compile ``<task>.c`` with the harness ``<task>_main.c`` into ``out``; fail on a warning."""
    cmd = [CC, *FLAGS, *extra, "-I", str(source_dir), "-I", str(HARNESS), "-o", str(out),
           str(source_dir / f"{task}.c"), str(HARNESS / f"{task}_main.c"), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def run(exe: pathlib.Path, *args, env=None) -> list[list[float]]:
    """Run a harness; its output is a count line, then one line of numbers per detection."""
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    count = int(lines[0])
    if count < 0:
        return count
    rows = [[float(v) for v in line.split()] for line in lines[1:1 + count]]
    assert len(rows) == count, proc.stdout
    return rows
