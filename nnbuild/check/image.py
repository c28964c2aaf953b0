"""One check image, float vs quantized: every blob accumulated and isolated, outputs, task result.

``check_image(job)`` is what the check stage fans out over a process pool: it takes only paths
and plain values (picklable), loads the models once per worker process, and returns a JSON-able
dict that the stage caches by content key and aggregates (nnbuild.stages.check).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from nnbuild.check.metrics import DATA_MOVEMENT_TYPES, compare, dynamic_blobs

HIST_BINS = 64


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything one image needs (all picklable).

    Attributes:
        model: (prototxt, caffemodel) of the patched NNIE part: the float reference.
        cpu: (prototxt, caffemodel) of the CPU part, or None.
        ranges: path of ranges.json.
        mode: recipe quant.mode.
        input: the resolved network input (``preprocess.NetworkInput``).
        task: check.task; task_args: check.task_args plus ``input_hw``/``image_name``/``gt_boxes``.
        image: path of the picture.
        isolated: also run every layer on its own (per-layer isolated metrics).
        compiled: (prototxt, caffemodel) the mapper compiles when it is not ``model`` (the
            bias-corrected model, ``nnbuild.nnie.biascorrect``): simulated against ``model``.
    """

    model: tuple[str, str]
    cpu: tuple[str, str] | None
    ranges: str
    mode: str
    input: tuple
    task: str
    task_args: dict
    image: str
    isolated: bool = True
    compiled: tuple[str, str] | None = None


@functools.lru_cache(maxsize=4)
def load_models(model: tuple[str, str], cpu: tuple[str, str] | None, ranges: str, mode: str,
                compiled: tuple[str, str] | None = None):
    """(float graph, cpu_graph or None, ranges, simulation plan), memoised per worker process.

    The plan simulates ``compiled`` when given (``plan.graph``; same layers and blobs as the
    float graph, other biases), else the float graph itself.
    """
    from nnbuild.caffe import io
    from nnbuild.nnie.calibrate import Ranges
    from nnbuild.nnie.simulate import prepare

    graph = io.load(*model).graph
    quantized = io.load(*compiled).graph if compiled else graph
    cpu_graph = io.load(*cpu).graph if cpu else None
    rng = Ranges.load(ranges)
    return graph, cpu_graph, rng, prepare(quantized, rng, mode)


def final_outputs(graph, cpu_graph, nnie_out: dict, feeds: dict) -> dict:
    """Every NNIE-part output and every CPU-part output, by prototxt name.

    The NNIE part's outputs are what the .wk returns, so they stay in the result even when the CPU
    part reads them. The CPU part's inputs are the NNIE part's cut blobs plus, if it reads them,
    blobs it needs only for their shape (PriorBox bottoms) and the image input.
    """
    from nnbuild.engine import run

    named = {graph.caffe_name(k): v for k, v in nnie_out.items()}
    final = {graph.caffe_name(b): named[graph.caffe_name(b)] for b in graph.outputs}
    if cpu_graph is None:
        return final
    avail = {**named, **feeds}
    out = run(cpu_graph, {blob: avail[blob] for blob in cpu_graph.inputs})
    final.update({cpu_graph.caffe_name(k): v for k, v in out.items()})
    return final


def compared_outputs(cpu_graph, final: dict) -> list[str]:
    """The outputs compared element-wise: all but the CPU part's data-dependent ones.

    DetectionOutput keeps a data-dependent number of rows (float and quantized differ); the task
    metric compares those, the report's output metrics cover the NNIE outputs that feed them.
    """
    dynamic = dynamic_blobs(cpu_graph) if cpu_graph is not None else set()
    return [name for name in final if name not in dynamic]


def _histogram(array: np.ndarray, max_abs: float) -> list[int]:
    if not max_abs > 0:
        return [int(array.size)] + [0] * (HIST_BINS - 1)
    counts, _ = np.histogram(np.abs(array), bins=HIST_BINS, range=(0.0, max_abs))
    return counts.tolist()


def _isolated(graph, rng, mode, plan, float_blobs: dict) -> dict:
    """Per produced blob: the metrics of its layer run alone, quantized, on float inputs."""
    from nnbuild.nnie.simulate import simulate_layer

    result = {}
    for layer in graph.layers:
        if layer.type in DATA_MOVEMENT_TYPES or not layer.bottoms:
            continue
        inputs = [float_blobs[b] for b in layer.bottoms]
        outs = simulate_layer(graph, rng, mode, layer, inputs, plan=plan)
        for top, out in zip(layer.tops, outs):
            result[top] = compare(float_blobs[top], out, where=f"blob {top!r}")
    return result


def check_image(job: Job) -> dict:
    """Compare float and quantized runs of one image (see module docstring).

    Returns:
        ``{"accumulated": {ssa_blob: metrics}, "isolated": {ssa_blob: metrics},
        "outputs": {name: metrics}, "task": per-image task result,
        "histograms": {ssa_blob: counts}}``.
    """
    from nnbuild.engine import run
    from nnbuild.nnie.simulate import simulate
    from nnbuild.check.tasks import registry

    graph, cpu_graph, rng, plan = load_models(job.model, job.cpu, job.ranges, job.mode,
                                              job.compiled)
    feeds = job.input.feed(job.image)
    float_blobs = run(graph, feeds, "all")
    quant_blobs = simulate(plan.graph, rng, job.mode, feeds, "all", plan=plan)
    accumulated = {b: compare(float_blobs[b], quant_blobs[b], where=f"blob {b!r}")
                   for layer in graph.layers for b in layer.tops}
    hist = {b: _histogram(float_blobs[b], plan.blob_max[b]) for b in plan.blob_max}
    isolated = _isolated(plan.graph, rng, job.mode, plan, float_blobs) if job.isolated else {}
    f_out = final_outputs(graph, cpu_graph, float_blobs, feeds)
    q_out = final_outputs(graph, cpu_graph, quant_blobs, feeds)
    del float_blobs, quant_blobs
    outputs = {k: compare(f_out[k], q_out[k], where=f"output {k!r}")
               for k in compared_outputs(cpu_graph, f_out)}
    task = registry.get(job.task).per_image(f_out, q_out, job.task_args)
    return {"accumulated": accumulated, "isolated": isolated, "outputs": outputs,
            "task": _jsonable(task), "histograms": hist}


def check_image_safe(job: Job) -> dict:
    """``check_image`` for a worker process: an error comes back as data, because
    NNBuildError's keyword-only constructor does not survive pickling (the stage re-raises it).

    Any other exception is an nnbuild bug; it comes back as an ``NNBuildError`` naming the
    exception, the picture and the innermost source line, so the user sees one line and the bug
    report has what it needs.
    """
    import traceback

    from nnbuild.errors import NNBuildError

    try:
        return check_image(job)
    except NNBuildError as err:
        return {"error": {"class": type(err).__name__, "where": err.where, "what": err.what,
                          "expected": _jsonable(err.expected), "got": _jsonable(err.got),
                          "hint": err.hint}}
    except Exception as err:  # noqa: BLE001 - not swallowed: re-raised by the stage, one line
        frame = traceback.extract_tb(err.__traceback__)[-1]
        return {"error": {"class": "NNBuildError", "where": f"check {job.image}",
                          "what": f"internal error {type(err).__name__}: {err}",
                          "expected": None, "got": None,
                          "hint": f"this is an nnbuild bug (raised at {frame.filename}:"
                                  f"{frame.lineno}): please report it with the recipe"}}


def raise_error(result: dict) -> None:
    """Re-raise an error ``check_image_safe`` returned (no-op for a normal result)."""
    from nnbuild import errors

    found = result.get("error")
    if found:
        cls = getattr(errors, found["class"], errors.NNBuildError)
        raise cls(found["where"], found["what"], expected=found["expected"], got=found["got"],
                  hint=found["hint"])


def _jsonable(value):
    """numpy scalars/arrays inside a task result -> plain Python (the result is cached as JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
