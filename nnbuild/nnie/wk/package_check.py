"""``nnbuild verify PACKAGE`` for a package holding a ``.wk``: read it and check it against the
manifest.

The manifest records the chip and the output names as the ``.wk`` stores them (31 characters,
in NNIE order). A packaged ``.wk`` must read cleanly (CRC, version; ``reader``), load on the
manifest's chip (arch version, nnie-facts §1), and carry exactly those outputs in that order
(the outputs of its last segment; earlier segments feed CPU layers).
"""

from __future__ import annotations

from typing import Any, Mapping

from nnbuild.nnie.wk.reader import WkError, read_wk
from nnbuild.nnie.wk.summary import check_chip, summarize


def check_package_wk(name: str, data: bytes, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Check the packaged ``.wk`` ``name`` (its bytes ``data``); return its inspect-wk summary.

    Raises:
        WkError: unreadable file, a chip that cannot load it, or outputs that differ from the
            manifest's.
    """
    wk = read_wk(data, where=name)
    chip = (manifest.get("target") or {}).get("chip")
    if chip:
        check_chip(wk, chip)
    want = [o.get("nnie_name") for o in manifest.get("outputs", [])]
    got = [node.name for node in wk.segments[-1].outputs]
    if want and got != want:
        raise WkError(name, "outputs differ from the manifest", expected=", ".join(want),
                      got=", ".join(got), hint="the .wk was not built from this package's "
                      "model.prototxt; rebuild the package")
    doc = summarize(wk)
    doc["file"] = name
    return doc


def packaged_wk(contents: Mapping[str, bytes]) -> list[str]:
    """Names of the ``.wk`` files in a package's contents (top level only)."""
    return sorted(n for n in contents if n.endswith(".wk") and "/" not in n)


__all__ = ["WkError", "check_package_wk", "packaged_wk"]
