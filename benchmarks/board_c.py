"""Generated RetinaFace C post-processing speed: decode of 640x640 NNIE outputs, compiled -O2.

Builds retinaface-640 (cached after the first time), takes ``postprocess/retinaface.{h,c}`` from
its package, simulates the quantized outputs of a real photo (default the crowd photo
../shared/images/photos/ultraface-1.jpg: 51 faces, the heaviest NMS of the set), writes them
in NNIE's memory layout and times ``retinaface_decode`` in a C loop.
Floor: one pass that copies the same bytes (memcpy) and sums them as int32, what touching every
output once costs; the decoder reads only the score channels in full (and the box/landmark
values of the candidates), so it may beat the floor. Target: median under 2 ms.

Usage: python benchmarks/board_c.py [--runs 200] [--image PATH]
Run from the project root; sources come through NNBUILD_MIRROR (default ../shared).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
RECIPE = "retinaface-640"
TARGET_MS = 2.0

MAIN = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "retinaface.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = argc == 3 ? atoi(argv[2]) : 0, i, r, n = 0;
    size_t total = 0, off = 0;
    nnbuild_blob blobs[RETINAFACE_NUM_OUTPUTS];
    retinaface_face faces[256];
    double *t_dec = malloc(sizeof(double) * runs), *t_floor = malloc(sizeof(double) * runs);
    FILE *f = fopen(argv[1], "rb");
    unsigned char *data, *copy;
    void *work = malloc(RETINAFACE_WORKSPACE_BYTES);
    volatile long long sink = 0;
    for (i = 0; i < RETINAFACE_NUM_OUTPUTS; i++)
        total += retinaface_output_bytes[i];
    data = malloc(total);
    copy = malloc(total);
    if (runs < 1 || !f || fread(data, 1, total, f) != total)
        return 3;
    fclose(f);
    for (i = 0; i < RETINAFACE_NUM_OUTPUTS; i++) {
        blobs[i].data = data + off;
        blobs[i].stride = retinaface_output_stride[i];
        off += retinaface_output_bytes[i];
    }
    for (r = 0; r < runs; r++) {
        double t0 = now_ms(), t1;
        long long s = 0;
        size_t k;
        memcpy(copy, data, total);
        for (k = 0; k + 4 <= total; k += 4) {
            int v;
            memcpy(&v, copy + k, 4);
            s += v;
        }
        sink += s;
        t1 = now_ms();
        t_floor[r] = t1 - t0;
        n = retinaface_decode(blobs, work, faces, 256);
        t_dec[r] = now_ms() - t1;
    }
    qsort(t_dec, runs, sizeof(double), cmp);
    qsort(t_floor, runs, sizeof(double), cmp);
    printf("%d %.4f %.4f %zu\n", n, t_dec[runs / 2], t_floor[runs / 2], total);
    return sink == 42 ? 1 : 0;
}
"""


def outputs_of(image: pathlib.Path, out: pathlib.Path):
    """Quantized outputs of ``image`` from the cached build (prototxt name -> array), and spec."""
    from nnbuild.board.spec import board_spec
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import simulate
    from nnbuild.preprocess import NetworkInput
    from nnbuild.recipe.load import load_merged
    from nnbuild.recipe.spec import RecipeSpec

    recipe = RecipeSpec.from_data(load_merged(ROOT / "recipes" / f"{RECIPE}.yaml"), RECIPE)
    graph = io.load(out / "patch" / "model.prototxt", out / "patch" / "model.caffemodel").graph
    feeds = NetworkInput.of(recipe.input, graph).feed(image)
    raw = simulate(graph, Ranges.load(out / "calibrate" / "ranges.json"), recipe.quant.mode, feeds)
    return ({graph.caffe_name(k): v for k, v in raw.items()},
            board_spec(RECIPE, recipe, out / "patch"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--image", type=pathlib.Path,
                        default=SHARED / "images" / "photos" / "ultraface-1.jpg")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from nnbuild.board.layout import to_nnie

    env = dict(os.environ)
    env.setdefault("NNBUILD_MIRROR",
                   os.pathsep.join([str(SHARED / "models"), str(SHARED / "images")]))
    subprocess.run([sys.executable, "-m", "doit", "build", RECIPE], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    outputs, spec = outputs_of(args.image, ROOT / "cache" / "v1" / "out" / RECIPE)
    cc = shutil.which("cc") or shutil.which("gcc")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        with tarfile.open(ROOT / "dist" / f"{RECIPE}.tar.gz") as tar:
            for m in tar:
                if m.isfile() and "/postprocess/" in m.name:
                    (tmp / pathlib.Path(m.name).name).write_bytes(tar.extractfile(m).read())
        (tmp / "bench.c").write_text(MAIN)
        (tmp / "blobs.bin").write_bytes(b"".join(to_nnie(outputs[o.name], spec.align)
                                                 for o in spec.outputs))
        subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I", str(tmp),
                        "-o", str(tmp / "bench"), str(tmp / "bench.c"), str(tmp / "retinaface.c"),
                        "-lm"], check=True)
        line = subprocess.run([str(tmp / "bench"), str(tmp / "blobs.bin"), str(args.runs)],
                              check=True, capture_output=True, text=True).stdout.split()
    faces, decode_ms, floor_ms, size = int(line[0]), float(line[1]), float(line[2]), int(line[3])
    print(f"RetinaFace 640x640 C decode ({args.image.name}, {faces} faces, {size} bytes of "
          f"outputs): {decode_ms:.3f} ms median of {args.runs} (target < {TARGET_MS} ms)")
    print(f"floor (memcpy + int32 sum of the same bytes): {floor_ms:.3f} ms; "
          f"decode / floor = {decode_ms / floor_ms:.1f}x")
    return 0 if decode_ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
