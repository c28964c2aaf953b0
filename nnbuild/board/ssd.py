"""Generated C for the ``ssd`` task (yufacedetect): the CPU part as ``postprocess/ssd.{h,c}``.

Parameters come from the patch stage's ``cpu.prototxt`` (``cpu_split``): each PriorBox layer (in
the order the prior Concat joins them) with its feature map size, and DetectionOutput's
thresholds. The generated code covers the SSD heads nnbuild's zoo uses: one shared location per
prior, CENTER_SIZE coding, one foreground class, eta 1; anything else is refused here rather
than decoded wrongly on the board.
"""

from __future__ import annotations

import math

from nnbuild.board.common import geometry, input_values, output_values, sort_code, task_files
from nnbuild.board.render import c_double
from nnbuild.board.spec import BoardSpec
from nnbuild.errors import ModelError


CENTER_SIZE = 2  # PriorBoxParameter.CodeType (caffe.proto)


def _aspect_ratios(ratios, flip: bool) -> list[float]:
    """SSD PriorBox's list: 1 first, then each new ratio (and its inverse when ``flip``)."""
    out = [1.0]
    for ar in ratios:
        if all(abs(ar - seen) >= 1e-6 for seen in out):
            out += [float(ar)] + ([1.0 / ar] if flip else [])
    return out


def _prior_sizes(min_sizes, max_sizes, ratios) -> list[tuple[float, float]]:
    """Box (width, height) of each prior at one location, in PriorBox's order: per min_size
    the min box, sqrt(min * max), then the aspect ratios (w = min * sqrt(ar), h = min / sqrt)."""
    sizes = []
    for k, mn in enumerate(min_sizes):
        sizes.append((mn, mn))
        if max_sizes:
            sizes.append((math.sqrt(mn * max_sizes[k]),) * 2)
        sizes += [(mn * math.sqrt(ar), mn / math.sqrt(ar)) for ar in ratios if abs(ar - 1) >= 1e-6]
    return sizes


def _unsupported(what: str, expected, got) -> ModelError:
    return ModelError("board: ssd cpu.prototxt", f"generated SSD decoder: {what}",
                      expected=expected, got=got,
                      hint="extend nnbuild/board/ssd.py, or use check.task raw for this model")


def _cpu_layers(spec: BoardSpec):
    """(graph, shapes, PriorBox layers in concat order, DetectionOutput layer)."""
    from nnbuild.caffe.io import load
    from nnbuild.shapes import infer_shapes

    if spec.cpu_prototxt is None:
        raise _unsupported("no CPU part", "a cpu_split patch", "no cpu.prototxt")
    graph = load(spec.cpu_prototxt).graph
    shapes = infer_shapes(graph, check_weights=False)
    det = [layer for layer in graph.layers if layer.type == "DetectionOutput"]
    if len(det) != 1:
        raise _unsupported("DetectionOutput layers", 1, len(det))
    producers = graph.producers()
    concat = producers[det[0].bottoms[2]]
    priors = [producers[b] for b in concat.bottoms] if concat.type == "Concat" else [concat]
    if any(p.type != "PriorBox" for p in priors):
        raise _unsupported("prior input", "a Concat of PriorBox layers", concat.type)
    return graph, shapes, priors, det[0]


def _prior_rows(graph, shapes, priors, image_hw) -> tuple[list[str], int, int, list[float]]:
    """C initialisers of the prior layers, the prior count, the most sizes, the variance."""
    rows, count, most, variance = [], 0, 1, None
    for layer in priors:
        pp = layer.param.prior_box_param
        fh, fw = shapes[layer.bottoms[0]][2:]
        sizes = _prior_sizes(list(pp.min_size), list(pp.max_size),
                             _aspect_ratios(list(pp.aspect_ratio), bool(pp.flip)))
        step = (float(pp.step_h), float(pp.step_w)) if pp.step_h or pp.step_w else \
            (float(pp.step), float(pp.step)) if pp.step else (image_hw[0] / fh, image_hw[1] / fw)
        var = list(pp.variance) if len(pp.variance) == 4 else [pp.variance[0] if pp.variance
                                                               else 0.1] * 4
        clip = bool(priors[0].param.prior_box_param.clip)
        if variance not in (None, var) or bool(pp.clip) != clip:
            raise _unsupported("PriorBox layers differ in variance or clip", "the same", layer.name)
        if pp.img_h or pp.img_w or pp.img_size:
            raise _unsupported("explicit img_size", "the network input size", layer.name)
        variance = var
        pairs = ", ".join(f"{{{c_double(w)}, {c_double(h)}}}" for w, h in sizes)
        rows.append((fh, fw, len(sizes), step, float(pp.offset), pairs))
        count += fh * fw * len(sizes)
        most = max(most, len(sizes))
    text = [f"    {{{fh}, {fw}, {n}, {c_double(s[0])}, {c_double(s[1])}, {c_double(off)}, "
            f"{{{pairs}}}}}," for fh, fw, n, s, off, pairs in rows]
    return text, count, most, variance


def _check_detection_output(dp, graph, det) -> None:
    if dp.num_classes != 2 or dp.background_label_id != 0:
        raise _unsupported("classes", "2 (background 0, one foreground class)",
                           f"{dp.num_classes} (background {dp.background_label_id})")
    if not dp.share_location or dp.code_type != CENTER_SIZE or dp.variance_encoded_in_target:
        raise _unsupported("box coding", "shared locations, CENTER_SIZE, variances in PriorBox",
                           f"share_location {dp.share_location}, code_type {dp.code_type}")
    if abs(float(dp.nms_param.eta) - 1.0) > 0:
        raise _unsupported("adaptive NMS", "eta 1", dp.nms_param.eta)
    softmax = [layer for layer in graph.layers if layer.type == "Softmax"]
    if len(softmax) != 1:
        raise _unsupported("confidence head", "one Softmax over the class logits", len(softmax))


def generate(spec: BoardSpec) -> dict[str, str]:
    """``{"postprocess/ssd.h": text, "postprocess/ssd.c": text}``."""
    graph, shapes, priors, det = _cpu_layers(spec)
    dp = det.param.detection_output_param
    _check_detection_output(dp, graph, det)
    rows, count, most, variance = _prior_rows(graph, shapes, priors, spec.input_hw)
    loc, conf = (spec.index(graph.caffe_name(b)) for b in (det.bottoms[0],
                                                           _conf_input(graph, det)))
    top_k = int(dp.nms_param.top_k) if dp.nms_param.HasField("top_k") else count
    keep = int(dp.keep_top_k) if dp.keep_top_k > -1 else count
    threshold = float(dp.confidence_threshold) if dp.HasField("confidence_threshold") else -1.0
    values = {**input_values(spec), **output_values(spec),
              "SCORE_THRESHOLD": c_double(spec.task_args.get("score_threshold", 0.5)),
              "CONFIDENCE_THRESHOLD": c_double(threshold),
              "NMS_THRESHOLD": c_double(dp.nms_param.nms_threshold),
              "KEEP_TOP_K": str(keep), "TOP_K": str(min(top_k, count)),
              "LOC_INDEX": str(loc), "CONF_INDEX": str(conf), "LABEL": "1",
              "NUM_CLASSES": "2", "BACKGROUND": "0", "NUM_PRIORS": str(count),
              "NUM_LAYERS": str(len(rows)), "MAX_SIZES": str(most),
              "PRIOR_LAYERS": "\n".join(rows).rstrip(","),
              "VARIANCE": ", ".join(c_double(v) + "f" for v in variance),
              "CLIP": "1" if priors[0].param.prior_box_param.clip else "0",
              "SORT": sort_code(), "GEOMETRY": geometry(spec)}
    return task_files("ssd", values)


def _conf_input(graph, det) -> str:
    """The NNIE output the confidences come from (the input of the Reshape/Softmax chain)."""
    blob = det.bottoms[1]
    producers = graph.producers()
    while blob in producers:
        blob = producers[blob].bottoms[0]
    return blob
