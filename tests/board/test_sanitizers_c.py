"""Every generated decoder, compiled under ``-fsanitize=address,undefined``, on real outputs.

One compile and run per task (``nnbuild.board.generate.GENERATORS``: a task added there without
a recipe here fails ``test_every_generator_has_a_sanitizer_run``): the package's C, built with
``-fno-sanitize-recover=all`` so any out-of-bounds read (row padding, a wrong blob size),
use of freed memory or undefined arithmetic aborts the harness, decodes the simulator's outputs
of two check photos and must still match the Python decoder (board/hostcheck.py). Skipped, with
the reason, only when the compiler cannot link the sanitizer runtime.
"""

from __future__ import annotations

import subprocess

import pytest

from board import cc
from board.hostcheck import check_package
from nnbuild.board.generate import GENERATORS

# task -> the board fixture's recipe of that task (tests/board/conftest.py RECIPES)
TASK_RECIPES = {"retinaface": "retinaface-640", "ultraface": "ultraface-slim-320",
                "ssd": "yufacedetect-v1", "embedding": "mobilefacenet",
                "scrfd": "scrfd-500m-640"}


def test_every_generator_has_a_sanitizer_run():
    assert set(TASK_RECIPES) == set(GENERATORS)


@pytest.mark.parametrize("task", sorted(TASK_RECIPES))
def test_generated_c_is_clean_under_address_and_undefined_sanitizers(built, quantized, tmp_path,
                                                                     task):
    reason = cc.sanitizer_missing()
    if reason:
        pytest.skip(reason)
    proj, _ = built
    spec, results = quantized(TASK_RECIPES[task], 2)
    assert spec.task == task
    assert check_package(proj, TASK_RECIPES[task], spec, results, tmp_path,
                         extra=cc.SANITIZE) >= 1


def test_the_sanitized_build_aborts_on_an_out_of_bounds_read(tmp_path):
    """The flags would catch a decoder reading past a blob: one int32 beyond a heap buffer."""
    reason = cc.sanitizer_missing()
    if reason:
        pytest.skip(reason)
    src = tmp_path / "oob.c"
    src.write_text("#include <stdint.h>\n#include <stdlib.h>\n#include <stdio.h>\n"
                   "int main(int argc, char **argv) { int32_t *p = malloc(4 * sizeof *p);"
                   " int v; (void)argv; p[0] = p[1] = p[2] = p[3] = 1;"
                   " v = p[3 + argc]; printf(\"%d\\n\", v); free(p); return 0; }\n")
    proc = subprocess.run([cc.CC, *cc.FLAGS, *cc.SANITIZE, "-o", str(tmp_path / "oob"),
                           str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(tmp_path / "oob")], capture_output=True, text=True, timeout=60)
    # UBSan's object-size check or ASan's heap-buffer-overflow, whichever sees it first
    assert run.returncode != 0 and "oob.c:4" in run.stderr
    assert "AddressSanitizer: heap-buffer-overflow" in run.stderr or "runtime error" in run.stderr
