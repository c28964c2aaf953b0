"""``nnbuild inspect``: layers, shapes, parameter/MAC counts and NNIE lint of one Caffe model.

Exit status: 0 when lint finds nothing (or only "info" findings), 1 with errors or warnings,
2 when the model cannot be read or its shapes/weights disagree (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

from nnbuild.nnie.chips import CHIPS, DEFAULT_CHIP


def register(subparsers: Any) -> None:
    """Add the ``inspect`` sub-command."""
    parser = subparsers.add_parser(
        "inspect", help="layers, shapes, params/MACs and NNIE lint of a Caffe model",
        description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .prototxt")
    parser.add_argument("--weights", metavar="M.caffemodel",
                        help="weights: counted from the blobs and checked against the shapes")
    parser.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]N,C,H,W",
                        help="infer at this input shape (repeat for several inputs)")
    parser.add_argument("--chip", default=DEFAULT_CHIP,
                        help=f"target chip, one of {', '.join(CHIPS)}: selects the mapper "
                             f"version and limits (default {DEFAULT_CHIP})")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def parse_input_shapes(specs: list[str], inputs: list[str]) -> dict[str, tuple[int, ...]]:
    """``["1,3,640,640"]`` or ``["data=1,3,640,640", ...]`` -> input blob -> shape.

    Raises:
        NNBuildError: a malformed spec, or a spec without a name for a net with several inputs.
    """
    from nnbuild.errors import NNBuildError

    result = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        if not name:
            if len(inputs) != 1:
                raise NNBuildError("--input-shape", "the net has several inputs",
                                   expected="NAME=N,C,H,W with NAME in " + ", ".join(inputs),
                                   got=spec, hint="prefix the shape with the input name")
            name = inputs[0]
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise NNBuildError("--input-shape", "not a shape", expected="positive integers "
                               "separated by commas, e.g. 1,3,640,640", got=spec,
                               hint="write the shape as N,C,H,W")
        result[name] = shape
    return result


def inspect_model(model: str, weights: str | None = None, input_shapes: list[str] = (),
                  chip: str = DEFAULT_CHIP) -> dict:
    """Everything ``nnbuild inspect`` shows, as a JSON-ready dict (see ``run``)."""
    from nnbuild.caffe.io import load
    from nnbuild.nnie.chips import get_chip
    from nnbuild.errors import ModelError
    from nnbuild.nnie.lint import cpu_segments, lint
    from nnbuild.shapes import infer_shapes
    from nnbuild.shapes.stats import graph_stats, totals

    for path in (model, weights):
        if path and not pathlib.Path(path).is_file():
            raise ModelError(path, "file not found", hint="check the path")
    loaded = load(model, weights)
    graph = loaded.graph
    target = get_chip(chip, where="--chip")
    shapes = infer_shapes(graph, parse_input_shapes(list(input_shapes), list(graph.inputs)),
                          partial=True)
    stats = graph_stats(graph, shapes)
    params, macs = totals(stats)
    name = graph.caffe_name
    return {
        "model": str(model), "weights": weights, "chip": target.name,
        "mapper_version": target.mapper_version,
        "inputs": {name(b): list(shapes.get(b, s)) for b, s in graph.inputs.items()},
        "outputs": {name(b): list(shapes[b]) if b in shapes else None for b in graph.outputs},
        "layers": [{"name": s.name, "type": s.type, "bottoms": [name(b) for b in s.bottoms],
                    "tops": [name(t) for t in s.tops],
                    "shapes": [list(x) if x else None for x in s.out_shapes],
                    "params": s.params, "macs": s.macs} for s in stats],
        "totals": {"layers": len(stats), "params": params, "macs": macs},
        "segments": [{"device": s.device, "layers": list(s.layers), "inputs": list(s.inputs),
                      "outputs": list(s.outputs)} for s in cpu_segments(graph)],
        "findings": [{"rule": f.rule, "layer": f.layer, "message": f.message, "hint": f.hint,
                      "severity": f.severity} for f in lint(graph, target, shapes)],
        "unused_weights": sorted(getattr(loaded, "unused_weights", None) or []),
    }


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def format_text(info: dict) -> str:
    """The human-readable report of ``inspect_model``'s result."""
    rows = [["layer", "type", "bottoms -> tops", "output shape", "params", "MACs"]]
    for layer in info["layers"]:
        shape = " ".join("x".join(map(str, s)) if s else "?" for s in layer["shapes"])
        rows.append([layer["name"], layer["type"],
                     f"{', '.join(layer['bottoms'])} -> {', '.join(layer['tops'])}",
                     shape, f"{layer['params']:,}", f"{layer['macs']:,}"])
    t = info["totals"]
    lines = [f"{info['model']}  chip {info['chip']} (nnie_mapper_{info['mapper_version']})", ""]
    lines += _table(rows, right={4, 5})
    lines += ["", f"total: {t['layers']} layers, {t['params']:,} params "
              f"({t['params'] / 1e6:.3f} M), {t['macs']:,} MACs ({t['macs'] / 1e9:.3f} GMAC)"]
    lines.append("segments: " + " -> ".join(f"{s['device']}({len(s['layers'])} layers)"
                                            for s in info["segments"]))
    if info["unused_weights"]:
        lines.append(f"weights not used by the prototxt ({len(info['unused_weights'])}): "
                     + ", ".join(info["unused_weights"]))
    findings = info["findings"]
    lines += ["", f"lint: {len(findings)} finding(s)" if findings else "lint: clean"]
    lines += [f"  {f['severity']}[{f['rule']}] {f['layer']}: {f['message']}. Hint: {f['hint']}"
              for f in findings]
    return "\n".join(lines)


def exit_status(info: dict) -> int:
    """0 when no finding is an error or warning, else 1."""
    return int(any(f["severity"] != "info" for f in info["findings"]))


def run(args: argparse.Namespace) -> int:
    """Print the report (text or JSON) and return the exit status."""
    info = inspect_model(args.model, args.weights, args.input_shape, args.chip)
    text = json.dumps(info, indent=1) if args.json else format_text(info)
    sys.stdout.write(text + "\n")
    return exit_status(info)
