"""Synthetic ``.wk`` files written from docs/wk-format.md alone (not from the reader).

``make_wk`` lays out header (§1), segment and node records (§2), a body with weight blocks and
their compress index (§3), four 1 KiB tables, instructions, and a tail of 48-byte records (§5),
and signs it with a CRC-32 computed here bit by bit (reflected 0xEDB88320, register 0, final ~).
Tests corrupt the result byte by byte.
"""

from __future__ import annotations

import dataclasses
import struct


def crc32_bitwise(data: bytes) -> int:
    """§1 CRC, one bit at a time (independent of zlib)."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    crc = 0
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@dataclasses.dataclass
class SynthNode:
    name: str
    c: int
    h: int
    w: int
    blob_type: int


def _node(node: SynthNode, node_id: int) -> bytes:
    name = node.name.encode("ascii")[:31]
    record = struct.pack("<3I2xBB", node.h, node.w, node.c, node.blob_type, node_id)
    return record + name.ljust(32, b"\0") + bytes(16)


def _blocks(blocks: list[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """Region 0 (blocks at 128-byte alignment) and region 1 (offset, length rows, one pad row)."""
    region, rows = b"", []
    for kind, payload in blocks:
        block = struct.pack("<BH", kind, len(payload)) + payload + (b"\0\0" if kind == 0 else b"")
        rows += [len(region), len(block)]
        region += block
        region += bytes(-len(region) % 128)
    rows += [0, 0]
    return region, struct.pack(f"<{len(rows)}I", *rows)


def make_wk(segments: list[tuple[list[SynthNode], list[SynthNode]]] | None = None, *,
            version=(1, 1, 1, 2), width_bytes: int = 1, build: bytes = b"19010713251682",
            temp_buffer: int = 4096, blocks: list[tuple[int, bytes]] | None = None,
            tail_records: int = 2, segment_count: int | None = None) -> bytes:
    """A well-formed .wk (per the documented layout) with the given nodes and weight blocks."""
    if segments is None:
        segments = [([SynthNode("data", 3, 8, 8, 1)], [SynthNode("prob", 10, 1, 1, 0)])]
    if blocks is None:
        blocks = [(0, bytes(range(64))), (0x11, bytes(40))]
    records, nodes = b"", 0
    for inputs, outputs in segments:
        records += struct.pack("<4BHHII", 0, len(inputs), len(outputs), 0, 0, 0, 0, 0)
        for i, node in enumerate(inputs + outputs):
            records += _node(node, i)
        nodes += len(inputs) + len(outputs)
    body_offset = 0xC0 + len(records)
    weights, index = _blocks(blocks)
    regions, body = [], b""
    for part in (weights, index, bytes(1024), bytes(1024), bytes(1024), bytes(1024)):
        regions.append((len(body), len(part)))
        body += part + bytes(-len(part) % 256)
    body += b"\xAA" * 64                                   # "instructions"
    tail = b""
    for n in range(tail_records):
        tail += struct.pack("<BB", 0x2C, width_bytes) + bytes(46)
    header = bytearray(0xC0)
    struct.pack_into("<III", header, 4, len(body) + 64 * nodes, 0xC0, temp_buffer)
    header[0x10:0x14] = bytes(version)
    header[0x20:0x20 + len(build)] = build
    header[0x30] = 0
    header[0x31] = len(segments) if segment_count is None else segment_count
    struct.pack_into("<II", header, 0x34, body_offset, len(body))
    struct.pack_into("<I", header, 0x40, len(body))
    for i, (offset, length) in enumerate(regions):
        struct.pack_into("<II", header, 0x50 + 16 * i, offset, length)
    struct.pack_into("<II", header, 0xB0, len(body), len(tail))
    data = bytearray(header) + records + body + tail
    struct.pack_into("<I", data, 0, crc32_bitwise(bytes(data[4:body_offset + len(body)])))
    return bytes(data)


def resign(data: bytes | bytearray) -> bytes:
    """Recompute the CRC of ``data`` after an edit (so only the edit is wrong)."""
    data = bytearray(data)
    body, length = struct.unpack_from("<II", data, 0x34)
    struct.pack_into("<I", data, 0, crc32_bitwise(bytes(data[4:body + length])))
    return bytes(data)
