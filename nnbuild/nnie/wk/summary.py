"""What ``nnbuild inspect-wk`` reports about a ``.wk``: a JSON-ready summary and its text form.

Names are flagged as the board will see them (wk-format.md §2, nnie-facts §5): a name of exactly
31 characters may have been cut by the mapper (the field keeps 31 + NUL), and outputs whose
stored names collide can only be told apart by their order.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from nnbuild.nnie.chips import get_chip
from nnbuild.nnie.wk import layout as L
from nnbuild.nnie.wk.reader import Node, WkError, WkFile


def _node(node: Node, collisions: set[str]) -> dict[str, Any]:
    flags = []
    if len(node.name) >= L.MAX_NAME:
        flags.append("31 chars: maybe truncated")
    if node.name in collisions:
        flags.append("collides")
    return {"name": node.name, "shape": [node.c, node.h, node.w],
            "blob_type": node.blob_type_name, "flags": flags}


def census(wk: WkFile) -> dict[str, Any]:
    """Weight blocks by type (§3), index rows (empty rows included) and stored bytes."""
    kinds = Counter(L.BLOCK_TYPES.get(b.type, f"type 0x{b.type:02x}") for b in wk.blocks)
    return {"blocks": len(wk.blocks), "index_rows": wk.index_rows,
            "by_type": dict(sorted(kinds.items())),
            "bytes": sum(b.length for b in wk.blocks)}


def summarize(wk: WkFile) -> dict[str, Any]:
    """The inspect-wk JSON document for ``wk``."""
    segments = []
    for seg in wk.segments:
        names = Counter(n.name for n in seg.outputs)
        collisions = {name for name, count in names.items() if count > 1}
        segments.append({"net_type": seg.net_type,
                         "inputs": [_node(n, set()) for n in seg.inputs],
                         "outputs": [_node(n, collisions) for n in seg.outputs]})
    return {"file": wk.path, "crc": f"0x{wk.crc:08x}", "crc_ok": True,
            "version": ".".join(map(str, wk.version)), "format_version": wk.format_version,
            "arch_version": wk.arch_version, "nnie": wk.nnie, "chips": wk.chips,
            "mapper_build": wk.build_id, "data_width": wk.data_width,
            "temp_buffer": wk.temp_buffer, "size": len(wk.data), "segments": segments,
            "weights": census(wk)}


def check_chip(wk: WkFile, chip_name: str) -> None:
    """Raise ``WkError`` when ``chip_name`` cannot load ``wk`` (arch version, nnie-facts §1)."""
    chip = get_chip(chip_name, where="--chip")
    if chip.mapper_version != wk.arch_version:
        raise WkError(wk.path, f"{chip.name} cannot load this file: arch_version("
                      f"{wk.arch_version}) of input model should be {chip.mapper_version}",
                      expected=f"a .wk built by nnie_mapper_{chip.mapper_version}",
                      got=f"NNIE {wk.nnie} (loads on {', '.join(wk.chips)})",
                      hint=f"rebuild with target.chip: {chip.name} (nnie_mapper_"
                           f"{chip.mapper_version})")


def _node_line(kind: str, node: dict[str, Any]) -> str:
    shape = "x".join(map(str, node["shape"]))
    flags = f"  [{', '.join(node['flags'])}]" if node["flags"] else ""
    return f"  {kind:<6} {node['name']:<32} {shape:<14} {node['blob_type']}{flags}"


def format_text(doc: dict[str, Any]) -> str:
    """The human-readable form of ``summarize``'s document (shapes are C x H x W)."""
    weights = doc["weights"]
    kinds = ", ".join(f"{count} {kind}" for kind, count in weights["by_type"].items())
    lines = [f"{doc['file']}: CRC {doc['crc']} ok, version {doc['version']} "
             f"(NNIE {doc['nnie']}: {', '.join(doc['chips'])})",
             f"mapper build {doc['mapper_build']}, {doc['data_width']}-bit, temp buffer "
             f"{doc['temp_buffer']:,} bytes, {doc['size']:,} bytes"]
    for number, seg in enumerate(doc["segments"]):
        lines.append(f"segment {number} (net_type {seg['net_type']}): "
                     f"{len(seg['inputs'])} input(s), {len(seg['outputs'])} output(s)")
        lines += [_node_line("input", n) for n in seg["inputs"]]
        lines += [_node_line("output", n) for n in seg["outputs"]]
    lines.append(f"weights: {weights['blocks']} blocks ({kinds}), {weights['bytes']:,} bytes, "
                 f"{weights['index_rows']} index rows")
    return "\n".join(lines)
