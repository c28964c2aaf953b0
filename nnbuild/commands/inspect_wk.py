"""``nnbuild inspect-wk FILE.wk``: what a compiled NNIE model holds, and whether a chip loads it.

Exit status: 0 when the file reads (and loads on ``--chip``), 1 when ``--chip`` cannot load it,
2 when the file is not a readable .wk (corrupt CRC, unknown version, truncated...).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``inspect-wk`` sub-command."""
    parser = subparsers.add_parser(
        "inspect-wk", help="header, version, nodes and weight blocks of a real .wk file",
        description=__doc__.splitlines()[0])
    parser.add_argument("wk", type=pathlib.Path, metavar="FILE.wk")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--chip", help="exit 1 unless this chip can load the file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from nnbuild.nnie.wk.reader import WkError, read_wk
    from nnbuild.nnie.wk.summary import check_chip, format_text, summarize

    wk = read_wk(args.wk)
    doc = summarize(wk)
    status = 0
    if args.chip:
        try:
            check_chip(wk, args.chip)
            doc["chip"] = {"name": args.chip.lower(), "loads": True}
        except WkError as err:
            doc["chip"] = {"name": args.chip.lower(), "loads": False, "reason": str(err)}
            print(f"nnbuild: error: {err}", file=sys.stderr)
            status = 1
    print(json.dumps(doc, indent=1) if args.json else format_text(doc))
    return status
