"""``nnbuild verify-wk FILE.wk --model M.prototxt --weights M.caffemodel``: nnbuild vs a real .wk.

Per weighted layer: verified / differs (first differing weight) / not verifiable (layout not
established — never guessed); raw blocks byte for byte, compressed blocks by their symbol table,
depthwise channels by their codes. Exit status 0 when nothing differs, 1 when a layer differs,
2 when the file or the model cannot be read or do not belong together.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``verify-wk`` sub-command."""
    parser = subparsers.add_parser(
        "verify-wk", help="compare a real .wk with the weights nnbuild expects",
        description=__doc__.splitlines()[0])
    parser.add_argument("wk", type=pathlib.Path, metavar="FILE.wk")
    parser.add_argument("--model", required=True, type=pathlib.Path, metavar="M.prototxt")
    parser.add_argument("--weights", required=True, type=pathlib.Path, metavar="M.caffemodel")
    parser.add_argument("--fold-bn", choices=("none", "nniefacelib"), default="none",
                        help="merge BatchNorms as nniefacelib's merge tool did before compiling "
                             "(the 8-bit RetinaFace file); default: compare the weights as given")
    parser.add_argument("--ranges", type=pathlib.Path, metavar="ranges.json",
                        help="calibrated ranges (calibrate stage) to compare input exponents with")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _counts(section: dict[str, int]) -> str:
    parts = [f"{v} {k}" for k, v in section.items() if k != "total" and v]
    return f"{section.get('total', 0)}" + (f" ({', '.join(parts)})" if parts else "")


def format_text(report: dict[str, Any]) -> str:
    """The human-readable report: totals, the layers that are not verified, unexplained blocks."""
    s = report["summary"]
    lines = [f"{report['file']}: {report['bits']}-bit, fold {report['fold']}",
             f"raw blocks: {_counts(s['raw_blocks'])}",
             f"compressed blocks with a symbol table: {_counts(s['table_blocks'])}; "
             f"without one (not checkable): {s['untabled_blocks']}",
             f"depthwise channels: {_counts(s['depthwise_channels'])}",
             "layers: " + ", ".join(f"{v} {k}" for k, v in sorted(s["layers"].items()))]
    for row in report["layers"]:
        exp = row.get("input_exponent") or {}
        diff = exp.get("difference_sixteenths")
        extra = f", input k_x {exp['k_x']}" if exp else ""
        extra += f" ({diff:+.1f} steps vs calibration)" if diff is not None else ""
        if row["verdict"] != "verified" or diff is not None:
            why = "; ".join(([row["first_difference"]] if row["first_difference"] else [])
                            + row["notes"])
            lines.append(f"  {row['name']:<32} {row['verdict']:<15} {why}{extra}")
    for item in report["unexplained"]:
        lines.append(f"  raw block {item['block']} ({item['layer']}): {item['reason']}")
    return "\n".join(lines)


def _ranges(path: pathlib.Path | None) -> dict[str, float] | None:
    if path is None:
        return None
    from nnbuild.nnie.calibrate import Ranges

    return dict(Ranges.load(path).blobs)


def run(args) -> int:
    from nnbuild.caffe.io import load
    from nnbuild.nnie.wk.reader import read_wk
    from nnbuild.nnie.wk.verify import verify_wk

    wk = read_wk(args.wk)
    graph = load(args.model, args.weights).graph
    report = verify_wk(wk, graph, fold=args.fold_bn, ranges=_ranges(args.ranges))
    print(json.dumps(report, indent=1) if args.json else format_text(report))
    return 1 if report["summary"]["layers"].get("differs") else 0
