"""Stage ``check``: float vs quantized on the check images, task metrics, the gate, report.json.

Reads the patch outputs (float patched model, CPU part if any), the calibrate stage's
``ranges.json`` and the map stage's ``quant.json`` (latency), runs ``nnbuild.check.image`` for every
check image (process pool, results cached per image by content key in ``ctx.scratch``), then
aggregates, applies the gate and writes ``report.json`` (docs/report-json.md) and ``report.html``
when ``nnbuild.check.report_html`` is available. A missed threshold calls ``ctx.fail(CheckFailed(...))``.

Importable without numpy: heavy modules are imported inside ``run``.
"""

from __future__ import annotations

import json
import os
import pathlib

from nnbuild.hashing import sha256_file, sha256_json

NAME = "check"
NEEDS = ("patch", "calibrate", "map")
USES_NAME = True  # the recipe name is in the outputs (see runner.key_doc)
READS = ("input", "quant", "target", "check")
GROUP = "check"
TRUTH = "ground_truth"
# Bump when the per-image result format changes: it is part of every scratch cache key.
# 2: split models compare the NNIE outputs and fixed-size CPU outputs, not DetectionOutput rows.
IMAGE_RESULT_VERSION = 2


def external_inputs(spec) -> dict[str, list]:
    """The check pictures: ``{"check": [ref, ...]}`` from ``check.images``/``check.count``."""
    from nnbuild.build.fetch import image_refs

    from nnbuild.board.frames import mean_file_refs

    check = spec.check
    groups = {GROUP: image_refs(check.images, check.count, "check.images"),
              **mean_file_refs(spec)}
    truth = check.task_args.get("ground_truth")
    if truth:
        groups[TRUTH] = [{"path": truth} if isinstance(truth, str) else truth]
    return groups


def display_names(spec) -> dict[str, str]:
    """sha256 -> the picture's file name in its ref (the runner hands over CAS copies)."""
    names: dict[str, str] = {}
    if not spec.check.images:
        return names
    for ref in external_inputs(spec)[GROUP]:
        if isinstance(ref, dict) and ref.get("sha256"):
            where = ref.get("path") or ref.get("url") or ""
            names[ref["sha256"]] = where.rstrip("/").rsplit("/", 1)[-1]
    return names


def truth_boxes(path: pathlib.Path, name: str, truth: dict, net) -> list | None:
    """WIDER ground truth of one picture, in network-input pixels (None when it has none)."""
    from PIL import Image

    from nnbuild import preprocess
    from nnbuild.check.tasks import retinaface

    rows = truth.get(name)
    if rows is None:
        return None
    boxes = retinaface.gt_boxes(rows)
    with Image.open(path) as image:
        src = image.size
    height, width = net.shape[2:]
    if net.resize == "letterbox":
        scale, pad_x, pad_y = preprocess.letterbox_geometry(src, net.shape)
        return (boxes * scale + [pad_x, pad_y, pad_x, pad_y]).tolist()
    return (boxes * ([width / src[0], height / src[1]] * 2)).tolist()


def _jobs(ctx, files: list[pathlib.Path]) -> list:
    """One ``check_image.Job`` per picture."""
    from nnbuild.check.image import Job
    from nnbuild.nnie.biascorrect import compiled_model
    from nnbuild.preprocess import NetworkInput

    patch, calib = ctx.upstream("patch"), ctx.upstream("calibrate")
    model = (str(patch / "model.prototxt"), str(patch / "model.caffemodel"))
    compiled = tuple(map(str, compiled_model(patch, calib)))
    compiled = None if compiled == model else compiled
    cpu = ((str(patch / "cpu.prototxt"), str(patch / "cpu.caffemodel"))
           if (patch / "cpu.prototxt").is_file() else None)
    from nnbuild.caffe import io
    graph = io.load(*model).graph
    net = NetworkInput.of(ctx.spec.input, graph)
    if net.mean_file is not None:  # the verified copy, named by its sha256: per-image keys cover it
        import dataclasses
        net = dataclasses.replace(net, mean_file=str(ctx.files("mean_file")[0]))
    check = ctx.spec.check
    names = display_names(ctx.spec)
    truth = {}
    if check.task_args.get("ground_truth"):
        from nnbuild.check.tasks.retinaface import read_wider_gt
        truth = read_wider_gt(ctx.files(TRUTH)[0])
    jobs = []
    for path in files:
        name = names.get(path.name, path.name)
        args = dict(check.task_args, input_hw=tuple(net.shape[2:]), image_name=name)
        args.pop("ground_truth", None)
        if truth:
            args["gt_boxes"] = truth_boxes(path, name, truth, net)
            if args["gt_boxes"] is None:
                del args["gt_boxes"]
        jobs.append(Job(model, cpu, str(calib / "ranges.json"), ctx.spec.quant.mode, net,
                        check.task, args, str(path), compiled=compiled))
    return jobs


def content_key(job, hashes: dict[str, str], code: str) -> str:
    """Scratch cache key of one image's result: everything that can change it, hashed —
    ``code`` is the fingerprint of the module computing it (``ctx.code_digest``)."""
    fields = {"v": IMAGE_RESULT_VERSION, "code": code, "image": hashes[job.image],
              "model": [hashes[p] for p in job.model],
              "cpu": [hashes[p] for p in job.cpu] if job.cpu else None,
              "compiled": [hashes[p] for p in job.compiled] if job.compiled else None,
              "ranges": hashes[job.ranges], "mode": job.mode, "input": repr(job.input),
              "task": job.task, "args": repr(sorted(job.task_args.items())),
              "isolated": job.isolated}
    return sha256_json(fields)


def compute(ctx, jobs: list, keys: list[str]) -> list[dict]:
    """Per-image results: cached ones from ``ctx.scratch``, the rest over a process pool."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from nnbuild.build.origins import renamed
    from nnbuild.build.workers import die_with_parent, stop_pool
    from nnbuild.errors import NNBuildError
    from nnbuild.check.image import check_image_safe, raise_error

    results: list[dict | None] = [None] * len(jobs)
    todo = []
    for i, key in enumerate(keys):
        cached = ctx.scratch / f"{key}.json"
        if cached.is_file():
            results[i] = json.loads(cached.read_text(encoding="utf-8"))
        else:
            todo.append(i)
    ctx.log(f"check: {len(jobs) - len(todo)} image(s) cached, {len(todo)} to compute")
    workers = min(os.cpu_count() or 1, len(todo))

    def reraise(result: dict, i: int) -> None:
        try:
            raise_error(result)
        except NNBuildError as err:  # name the recipe's picture, not its cache copy
            if not ctx.spec.check.images:
                raise
            raise renamed(err, jobs[i].image, external_inputs(ctx.spec)[GROUP],
                          "check.images") from None

    def store(i: int, result: dict) -> None:
        tmp = ctx.scratch / f"{keys[i]}.tmp{os.getpid()}"
        try:
            tmp.write_text(json.dumps(result), encoding="utf-8")
            os.replace(tmp, ctx.scratch / f"{keys[i]}.json")
        except BaseException:  # a full disk: no partial result file left behind
            tmp.unlink(missing_ok=True)
            raise
        results[i] = result

    if workers <= 1:
        for i in ctx.progress(todo, total=len(todo), desc="check"):
            result = check_image_safe(jobs[i])
            reraise(result, i)  # both paths report errors the same way: one line
            store(i, result)
    elif todo:
        pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            futures = {pool.submit(check_image_safe, jobs[i]): i for i in todo}
            for future in ctx.progress(as_completed(futures), total=len(todo), desc="check"):
                result = future.result()
                reraise(result, futures[future])
                store(futures[future], result)
        except BaseException:
            stop_pool(pool)  # Ctrl-C, SIGTERM or an error: do not finish the queue first
            raise
        pool.shutdown()
    return results


def run(ctx) -> None:
    """Compare, score, gate, and write report.json (+ report.html)."""
    from nnbuild.check import report_json as check_report

    files = list(ctx.files(GROUP))
    jobs = _jobs(ctx, files)
    paths = {p for job in jobs for p in (job.image, job.ranges, *job.model, *(job.cpu or ()),
                                         *(job.compiled or ()))}
    hashes = {p: sha256_file(pathlib.Path(p)) for p in sorted(paths)}
    from nnbuild.check.image import check_image_safe

    code = ctx.code_digest(check_image_safe.__module__)
    keys = [content_key(job, hashes, code) for job in jobs]
    results = compute(ctx, jobs, keys)
    report = check_report.build(ctx, jobs, results, hashes)
    (ctx.out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n",
                                         encoding="utf-8")
    check_report.write_html(ctx, report, jobs)
    if report["failures"]:
        from nnbuild.check.metrics import check_failed
        ctx.fail(check_failed(ctx.name, report["failures"], report["explanation"]))
