"""Template values every generated decoder shares: output tables, input geometry, helpers."""

from __future__ import annotations

from nnbuild.board.layout import nchw
from nnbuild.board.render import PLACEHOLDER, c_list, c_string, render, template
from nnbuild.board.spec import BoardSpec


def heads_by_shape(spec: BoardSpec, kind_of: dict[int, str], strides
                   ) -> tuple[dict[tuple[int, str], int], list[str]]:
    """Find a detector's head maps by shape: ((stride, kind) -> output index, missing).

    A 4-D output is the ``kind_of[C]`` map of stride ``s`` when it has C channels and the size
    ``ceil(input / s)``; ``missing`` names every ``kind@strideS`` not found.
    """
    found: dict[tuple[int, str], int] = {}
    h, w = spec.input_hw
    for index, out in enumerate(spec.outputs):
        if len(out.shape) != 4:
            continue
        _, c, oh, ow = nchw(out.shape)
        for s in strides:
            if c in kind_of and (oh, ow) == (-(-h // s), -(-w // s)):
                found[(s, kind_of[c])] = index
    missing = [f"{k}@stride{s}" for s in strides for k in dict.fromkeys(kind_of.values())
               if (s, k) not in found]
    return found, missing


def output_values(spec: BoardSpec) -> dict[str, str]:
    """``NUM_OUTPUTS``, ``OUTPUT_TABLE`` (header comment), ``OUTPUT_BYTES/STRIDES/NAMES``."""
    rows = [f" *   [{i}] {o.nnie_name:<31} {'x'.join(map(str, o.shape)):<16} "
            f"stride {o.stride(spec.align)} B" for i, o in enumerate(spec.outputs)]
    return {
        "NUM_OUTPUTS": str(len(spec.outputs)),
        "OUTPUT_TABLE": "\n".join(rows)[3:],
        "OUTPUT_BYTES": c_list(o.size(spec.align) for o in spec.outputs),
        "OUTPUT_STRIDES": c_list(o.stride(spec.align) for o in spec.outputs),
        "OUTPUT_NAMES": c_list((c_string(o.nnie_name) for o in spec.outputs), per_line=3),
    }


def input_values(spec: BoardSpec) -> dict[str, str]:
    """``RECIPE``, ``IN_W``, ``IN_H``, ``RESIZE``, ``ALIGN``, ``COMMON`` (the blob type)."""
    return {"RECIPE": spec.recipe, "IN_W": str(spec.input_hw[1]), "IN_H": str(spec.input_hw[0]),
            "RESIZE": spec.resize, "ALIGN": str(spec.align),
            "COMMON": template("common.h.in").rstrip()}


def geometry(spec: BoardSpec) -> str:
    """``source_geometry()``: network-input pixels -> camera picture pixels."""
    return render(template("geometry.c.in"), {
        "IN_W": str(spec.input_hw[1]), "IN_H": str(spec.input_hw[0]), "RESIZE": spec.resize,
        "LETTERBOX": "1" if spec.resize == "letterbox" else "0"})


def sort_code() -> str:
    """``sort_by_score()``: the stable descending sort every detector's NMS starts with."""
    return template("sort.c.in")


def face_nms_code(task: str) -> str:
    """``overlap()``, ``emit()``, ``<task>_decode()`` and ``<task>_to_source()``: the face
    detectors' shared "+1" NMS and mapping back to the source picture."""
    return render(template("face_nms.c.in"), {"TASK": task, "TASK_UPPER": task.upper()})


def task_files(task: str, values: dict[str, str]) -> dict[str, str]:
    """Render ``templates/<task>.h.in`` and ``.c.in`` into ``postprocess/<task>.{h,c}``.

    ``values`` may hold keys only one of the two files uses; every key must be used by one.
    """
    out, used = {}, set()
    for ext in ("h", "c"):
        text = template(f"{task}.{ext}.in")
        keys = set(PLACEHOLDER.findall(text))
        out[f"postprocess/{task}.{ext}"] = render(text, {k: values[k] for k in keys & set(values)})
        used |= keys
    if set(values) - used:
        raise KeyError(f"task_files({task}): unused values {sorted(set(values) - used)}")
    return out
