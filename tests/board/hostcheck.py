"""Host check of a package's generated C: simulate real photos, decode in C and in Python, compare.

Used by the board tests (one recipe per task) and by the zoo end-to-end test (every decodable
recipe of the zoo). ``outputs_of`` runs the NNIE simulator of a built recipe on its own check
photos; ``check_package`` compiles the package's ``postprocess/*.c`` with ``-Werror`` (optionally
under sanitizers) and requires the Python decoder's detections, in the same order, within 1e-3 px.
"""

from __future__ import annotations

import hashlib
import pathlib
import tarfile

import numpy as np

from board import cc
from board.blobs import dump
from e2e.e2e_project import SHARED

TOL = 1e-3


def spec_of(path: pathlib.Path):
    """The ``RecipeSpec`` of a recipe file."""
    from nnbuild.recipe.load import load_merged
    from nnbuild.recipe.spec import RecipeSpec

    return RecipeSpec.from_data(load_merged(path), path.stem)


def check_photos(recipe, count: int, section: str = "check") -> list[pathlib.Path]:
    """The first ``count`` pictures of the recipe's check (or calibration) set, found in
    ../shared by sha256."""
    from nnbuild.build.fetch import image_refs

    refs = image_refs(getattr(recipe, section).images, count, f"{section}.images")
    folders = [SHARED / "images" / d for d in ("photos", "faces112")]
    by_hash = {hashlib.sha256(p.read_bytes()).hexdigest(): p
               for folder in folders for p in sorted(folder.glob("*.jpg"))}
    return [by_hash[ref["sha256"]] for ref in refs]


def outputs_of(proj: pathlib.Path, name: str, recipe, count: int):
    """``(spec, [(photo, {output name: array}), ...])``: simulated outputs of the check photos.

    The NNIE part's outputs are what the .wk returns; for split models the CPU part's outputs
    (DetectionOutput) are added, as the check stage computes them.
    """
    from nnbuild.board.spec import board_spec
    from nnbuild.caffe import io
    from nnbuild.check.image import final_outputs
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import prepare, simulate
    from nnbuild.preprocess import NetworkInput

    out = proj / "cache" / "v1" / "out" / name
    patch = out / "patch"
    graph = io.load(patch / "model.prototxt", patch / "model.caffemodel").graph
    cpu = patch / "cpu.prototxt"
    cpu_graph = io.load(cpu, patch / "cpu.caffemodel").graph if cpu.is_file() else None
    ranges = Ranges.load(out / "calibrate" / "ranges.json")
    mode = recipe.quant.mode
    plan = prepare(graph, ranges, mode)
    net = NetworkInput.of(recipe.input, graph)
    results = []
    for photo in check_photos(recipe, count):
        feeds = net.feed(photo)
        keep = "all" if cpu_graph else None  # PriorBox reads the shapes of inner blobs
        raw = simulate(graph, ranges, mode, feeds, keep, plan=plan)
        results.append((photo, final_outputs(graph, cpu_graph, raw, feeds)))
    return board_spec(name, recipe, patch), results


def packaged(proj: pathlib.Path, name: str) -> dict[str, str]:
    """``{arcname: text}`` of the package's ``postprocess/`` files."""
    with tarfile.open(proj / "dist" / f"{name}.tar.gz") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar if m.isfile() and "/postprocess/" in m.name}


def _retinaface(spec, outputs):
    from nnbuild.check.tasks import retinaface

    a = spec.task_args
    faces = retinaface.decode(outputs, spec.input_hw,
                              score_threshold=float(a.get("score_threshold", 0.5)),
                              nms_iou=float(a.get("nms_iou", 0.4)))
    return [f["box"] + [f["score"]] + [v for p in f["landmarks"] for v in p] for f in faces]


def _scrfd(spec, outputs):
    from nnbuild.check.tasks import scrfd

    a = spec.task_args
    faces = scrfd.decode(outputs, spec.input_hw,
                         score_threshold=float(a.get("score_threshold", 0.5)),
                         nms_iou=float(a.get("nms_iou", 0.4)))
    return [f["box"] + [f["score"]] + [v for p in f["landmarks"] for v in p] for f in faces]


def _ultraface(spec, outputs):
    from nnbuild.check.tasks import ultraface

    a = spec.task_args
    dets = ultraface.decode(outputs["scores"], outputs["boxes"], spec.input_hw,
                            score_threshold=float(a.get("score_threshold", 0.7)),
                            nms_iou=float(a.get("nms_iou", 0.3)), top_k=int(a.get("top_k", 200)))
    return [d["box"] + [d["score"]] for d in dets]


def _ssd(spec, outputs):
    from nnbuild.check.tasks import ssd

    thr = float(spec.task_args.get("score_threshold", 0.5))
    return [d["box"] + [d["score"]]
            for d in ssd.detections(outputs[spec.task_args.get("output", "detection_out")],
                                    spec.input_hw, thr)]


def _embedding(spec, outputs):
    name = spec.task_args.get("output") or spec.outputs[0].name
    v = np.asarray(outputs[name], dtype=np.float64).ravel()
    return [(v / np.linalg.norm(v)).tolist(), [1.0]]


# task -> (Python reference rows, columns holding scores (compared to 1e-6, not TOL))
REFERENCES = {"retinaface": (_retinaface, [4]), "ultraface": (_ultraface, [4]),
              "ssd": (_ssd, [4]), "embedding": (_embedding, None), "scrfd": (_scrfd, [4])}


def compare(task: str, c_rows, py_rows) -> None:
    """Same rows in the same order; coordinates within TOL px, scores within 1e-6."""
    assert len(c_rows) == len(py_rows), (len(c_rows), len(py_rows))
    if task == "embedding":
        assert np.abs(np.array(c_rows[0]) - py_rows[0]).max() <= 1e-6
        assert abs(c_rows[1][0] - 1.0) <= 1e-5
        return
    if py_rows:
        c, p = np.array(c_rows), np.array(py_rows)
        scores = REFERENCES[task][1]
        coords = [i for i in range(p.shape[1]) if i not in scores]
        assert np.abs(c[:, coords] - p[:, coords]).max() <= TOL
        assert np.abs(c[:, scores] - p[:, scores]).max() <= 1e-6


def check_face_letterbox(task: str, exe, blobs, py_rows, input_hw=(640, 640)) -> None:
    """The C decoder's faces mapped to pictures of three sizes equal the Python decoder's
    network-input faces with the letterbox geometry undone (rows: x1 y1 x2 y2, score, then five
    landmark x y pairs)."""
    from nnbuild import preprocess

    py = np.array(py_rows)
    assert len(py)
    for src_w, src_h in [(1024, 683), (333, 999), (640, 640)]:
        scale, pad_x, pad_y = preprocess.letterbox_geometry((src_w, src_h), input_hw)
        shift = np.array([pad_x, pad_y] * 2 + [0] + [pad_x, pad_y] * 5, dtype=np.float64)
        div = np.array([scale] * 4 + [1] + [scale] * 10, dtype=np.float64)
        compare(task, cc.run(exe, blobs, src_w, src_h), ((py - shift) / div).tolist())


def check_package(proj, name, spec, results, work: pathlib.Path, extra=(), files=None) -> int:
    """Compile the package's C (or ``files``), decode every result, compare; returns the count
    of detections compared (embedding: the number of vectors)."""
    files = packaged(proj, name) if files is None else files
    assert set(files) == {f"postprocess/{spec.task}.h", f"postprocess/{spec.task}.c"}
    work.mkdir(parents=True, exist_ok=True)
    exe = cc.build(cc.write(files, work), spec.task, work / spec.task, extra=extra)
    reference = REFERENCES[spec.task][0]
    total = 0
    for i, (photo, outputs) in enumerate(results):
        py_rows = reference(spec, outputs)
        compare(spec.task, cc.run(exe, dump(spec, outputs, work / f"{i}.bin")), py_rows)
        total += 1 if spec.task == "embedding" else len(py_rows)
    return total
