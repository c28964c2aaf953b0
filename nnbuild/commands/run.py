"""``nnbuild run``: run the float engine on a picture (or a .npy) and save the blobs to .npz.

This is how a user compares nnbuild's numbers with another framework's: the same picture, the
same preprocessing flags, then ``numpy.load`` both files. Keys are Caffe blob names; when an
in-place layer rewrote a blob, the final version has the Caffe name and the earlier versions
(only with ``--keep``) are ``name@0``, ``name@1``, ...
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
from typing import Any

from nnbuild.errors import ModelError, NNBuildError


def register(subparsers: Any) -> None:
    """Add the ``run`` sub-command."""
    p = subparsers.add_parser("run", help="run the float engine on a picture, save outputs",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="the .prototxt")
    p.add_argument("--weights", metavar="M.caffemodel", help="the trained weights")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", metavar="PHOTO", help="a picture, preprocessed by the flags below")
    src.add_argument("--input", action="append", metavar="[NAME=]X.npy",
                     help="a ready NCHW tensor (repeat for several inputs)")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]N,C,H,W",
                   help="network input size (default: the prototxt's)")
    p.add_argument("--color", choices=("RGB", "BGR"), default="RGB",
                   help="channel order the network expects (default RGB)")
    p.add_argument("--mean", default="0", metavar="M or M1,M2,M3",
                   help="subtracted first, in the network's channel order (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplied after the mean")
    p.add_argument("--letterbox", action="store_true", help="keep the aspect ratio, pad")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to save")
    p.add_argument("--keep", metavar="all | BLOB,BLOB",
                   help="also save these blobs (all: every blob, for layer-by-layer comparison)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times and print the median milliseconds per forward pass")
    p.set_defaults(func=main)


def _floats(text: str, where: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise NNBuildError(where, "not a number list", expected="e.g. 127.5 or 104,117,123",
                           got=text, hint="separate the values with commas") from None


def _feeds(args: argparse.Namespace, graph) -> dict:
    """Network input name -> float32 array, from ``--image`` or ``--input``."""
    import numpy as np

    from nnbuild.commands.inspect import parse_input_shapes

    shapes = dict(graph.inputs)
    shapes.update(parse_input_shapes(args.input_shape, list(graph.inputs)))
    if args.image:
        if len(shapes) != 1:
            raise NNBuildError("--image", "the network has several inputs",
                               expected="one input", got=", ".join(shapes),
                               hint="feed each input with --input NAME=X.npy")
        from nnbuild.preprocess import load_tensor

        [(name, shape)] = shapes.items()
        mean = _floats(args.mean, "--mean")
        return {name: load_tensor(args.image, shape, color=args.color,
                                  mean=mean[0] if len(mean) == 1 else mean, scale=args.scale,
                                  resize="letterbox" if args.letterbox else "stretch")}
    feeds = {}
    for spec in args.input:
        name, _, path = spec.rpartition("=")
        name = name or (list(shapes)[0] if len(shapes) == 1 else "")
        try:
            feeds[name] = np.load(path).astype(np.float32)
        except (OSError, ValueError) as err:
            raise NNBuildError(f"--input {spec}", "cannot read the array", got=str(err),
                               hint="save it with numpy.save") from None
    return feeds


def _npz_names(graph, blobs) -> dict[str, str]:
    """SSA name -> key in the .npz: the last version of each Caffe blob gets its plain name."""
    order = list(graph.inputs) + [t for layer in graph.layers for t in layer.tops]
    last = {graph.caffe_name(b): b for b in order}
    names = {}
    for blob in blobs:
        base = graph.caffe_name(blob)
        if last[base] == blob:
            names[blob] = base
        else:
            names[blob] = blob if blob != base else f"{base}@0"
    return names


def main(args: argparse.Namespace) -> int:
    """Load, preprocess, run (``--repeat`` times), save; print one line per output."""
    import numpy as np

    from nnbuild.caffe.io import load
    from nnbuild.engine import run

    loaded = load(args.model, args.weights)
    if loaded.missing_weights:
        raise ModelError(args.model, "layers without weights cannot run",
                         got=", ".join(loaded.missing_weights[:4]),
                         hint="pass the matching caffemodel with --weights")
    if args.repeat < 1:
        raise NNBuildError("--repeat", "must be at least 1", got=args.repeat)
    graph = loaded.graph
    feeds = _feeds(args, graph)
    keep = None if not args.keep else "all" if args.keep == "all" else [
        _ssa(graph, b) for b in args.keep.split(",")]
    times, out = [], {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        out = run(graph, feeds, keep=keep)
        times.append((time.perf_counter() - start) * 1000)
    names = _npz_names(graph, out)
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # a file object: numpy adds no ".npz" to a path without it
        np.savez(handle, **{names[b]: a for b, a in out.items()})
    for blob in graph.outputs:
        a = out[blob]
        print(f"{names[blob]}: shape {tuple(a.shape)}, min {a.min():.6g}, max {a.max():.6g}")
    print(f"saved {len(out)} blob(s) to {path}")
    if args.repeat > 1:
        print(f"median {statistics.median(times):.1f} ms per forward pass over {args.repeat} runs")
    return 0


def _ssa(graph, name: str) -> str:
    """A ``--keep`` name: an SSA name as is, a Caffe name as its last version."""
    order = list(graph.inputs) + [t for layer in graph.layers for t in layer.tops]
    if name in order:
        versions = [b for b in order if graph.caffe_name(b) == name]
        return versions[-1]
    return name  # unknown: the engine reports it with the list of valid names
