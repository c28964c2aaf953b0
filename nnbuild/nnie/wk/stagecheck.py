"""The map stage's check of a real mapper's ``.wk``: ``wk-verify.json`` next to it.

When a real nnie_mapper ran, the map stage reads the ``.wk`` it wrote (``reader``) and verifies it
against the patched model the mapper compiled and nnbuild's calibrated ranges (``verify``). The
result never fails the stage — the mapper's file is what the board runs either way — but is
written for the report: ``{"readable", "error", "inspect", "verify"}``. Compile with
``mapper.compress: bypass`` to make every block a raw, byte-comparable one (wk-format.md §4.5).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable, Mapping

from nnbuild.errors import NNBuildError

VERIFY_NAME = "wk-verify.json"


def verify_mapped(wk_path: pathlib.Path, graph, ranges: Mapping[str, float] | None
                  ) -> dict[str, Any]:
    """The ``wk-verify.json`` document for the mapper's ``wk_path`` (see module docstring)."""
    from nnbuild.nnie.wk.reader import read_wk
    from nnbuild.nnie.wk.summary import summarize
    from nnbuild.nnie.wk.verify import verify_wk

    try:
        wk = read_wk(wk_path, where=wk_path.name)
        inspect = summarize(wk)
        report = verify_wk(wk, graph, ranges=ranges)
    except NNBuildError as err:
        return {"readable": False, "error": str(err), "inspect": None, "verify": None}
    inspect.pop("file", None)
    report["file"] = wk_path.name
    return {"readable": True, "error": None, "inspect": inspect, "verify": report}


def summary_line(doc: Mapping[str, Any]) -> str:
    """One line for the stage log."""
    if not doc["readable"]:
        return f"verify-wk: {doc['error']}"
    s = doc["verify"]["summary"]
    raw = s["raw_blocks"]
    layers = ", ".join(f"{v} {k}" for k, v in sorted(s["layers"].items()))
    return (f"verify-wk: raw blocks {raw.get('identical', 0)}/{raw['total']} identical; "
            f"layers: {layers}")


def write_verification(out: pathlib.Path, wk_path: pathlib.Path, graph, ranges,
                       log: Callable[[str], Any]) -> None:
    """Write ``out/wk-verify.json`` (sorted keys, byte-stable) and log its summary line."""
    doc = verify_mapped(wk_path, graph, ranges)
    text = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False)
    (out / VERIFY_NAME).write_text(text + "\n", encoding="utf-8")
    log(summary_line(doc))


def report_section(map_dir: pathlib.Path) -> dict[str, Any] | None:
    """The ``wk`` section of report.json from the map stage's ``wk-verify.json`` (None without
    a real mapper): readability, the summary counts, and every layer not verified with why."""
    path = map_dir / VERIFY_NAME
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not doc["readable"]:
        return {"readable": False, "error": doc["error"]}
    report = doc["verify"]
    layers = [{"layer": row["name"], "verdict": row["verdict"],
               "first_difference": row["first_difference"], "notes": row["notes"]}
              for row in report["layers"] if row["verdict"] != "verified"]
    return {"readable": True, "error": None, "bits": report["bits"],
            "summary": report["summary"], "not_verified": layers,
            "unexplained": report["unexplained"]}
