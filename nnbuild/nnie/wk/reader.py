"""Read a ``.wk`` file: header, CRC, version, segments, nodes, regions, weight blocks, tail.

``read_wk(path)`` checks every structural fact of wk-format.md §1-§3 that holds on all four real
files and raises ``WkError`` (one line: where, what, expected, got, hint) on the first that does
not. What is read is described in ``WkFile``. No numpy: this is plain ``struct`` work.
"""

from __future__ import annotations

import dataclasses
import pathlib
import struct

from nnbuild.nnie.chips import CHIPS
from nnbuild.errors import ModelError
from nnbuild.nnie.wk import layout as L


class WkError(ModelError):
    """A file is not a readable ``.wk`` (bad CRC, version, size or structure)."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One input or output node record (§2)."""

    name: str
    c: int
    h: int
    w: int
    blob_type: int
    node_id: int

    @property
    def blob_type_name(self) -> str:
        return L.BLOB_TYPES.get(self.blob_type, f"type {self.blob_type}")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One segment record (§2) with its nodes."""

    net_type: int
    roi_pool_num: int
    max_step: int
    instruction_offset: int
    instruction_length: int
    inputs: tuple[Node, ...]
    outputs: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Block:
    """One weight block (§3), located through the compress index."""

    index: int         # position among the non-empty index rows
    offset: int        # into region 0
    length: int        # bytes of the block, header included
    type: int          # §3 block type byte
    payload_length: int


@dataclasses.dataclass
class WkFile:
    """Everything ``read_wk`` establishes about one file.

    Attributes:
        path: where it was read from ("<bytes>" for in-memory data).
        data: the file's bytes.
        crc: the stored CRC-32 (it matched the computed one).
        version: the 4 version bytes; ``format_version`` / ``arch_version`` as 11 / 12.
        build_id: the mapper build id (ASCII, §1 0x20).
        temp_buffer: bytes the runtime must allocate (§1 0x0C).
        body_offset, body_length, tail_length: file = body offset + body + tail (§1).
        regions: region name -> (body-relative offset, length) (§1 0x50).
        segments: the segment records with their nodes (§2).
        blocks: the weight blocks in index order (§3); ``index_rows`` counts (0, 0) rows too.
        data_width: 8 or 16, from byte 1 of the first tail record (§5).
        tail_records: number of 48-byte tail records (§5).
    """

    path: str
    data: bytes
    crc: int
    version: tuple[int, int, int, int]
    build_id: str
    temp_buffer: int
    run_mode: int
    body_offset: int
    body_length: int
    tail_length: int
    regions: dict[str, tuple[int, int]]
    segments: list[Segment]
    blocks: list[Block]
    index_rows: int
    data_width: int
    tail_records: int

    @property
    def format_version(self) -> int:
        return self.version[0] * 10 + self.version[1]

    @property
    def arch_version(self) -> int:
        return self.version[2] * 10 + self.version[3]

    @property
    def nnie(self) -> str:
        """``"1.2"`` (Hi3516CV500/DV300/AV300, Hi3519AV100) or ``"1.1"`` (Hi3559AV100), §1."""
        return f"{self.version[2]}.{self.version[3]}"

    @property
    def chips(self) -> list[str]:
        """Chips whose loader accepts this arch version (nnbuild.nnie.chips, nnie-facts §1)."""
        return [c.name for c in CHIPS.values() if c.mapper_version == self.arch_version]

    def region(self, name: str) -> memoryview:
        """The bytes of a body region (§1) by name, e.g. ``"weights"``."""
        offset, length = self.regions[name]
        start = self.body_offset + offset
        return memoryview(self.data)[start:start + length]

    def block_bytes(self, block: Block) -> memoryview:
        """The bytes of one weight block, header included."""
        return self.region("weights")[block.offset:block.offset + block.length]


def _fail(where: str, what: str, expected, got, hint: str) -> WkError:
    return WkError(where, what, expected=expected, got=got, hint=hint)


def _check_size(where: str, data: bytes) -> tuple[int, int, int]:
    """Header size, truncation and the §1 size identity; returns (body offset, body, tail)."""
    if len(data) < L.HEADER_SIZE:
        raise _fail(where, "truncated or not a .wk file (shorter than the 192-byte header)",
                    f">= {L.HEADER_SIZE} bytes", f"{len(data)} bytes",
                    "pass the <name>.wk that nnie_mapper wrote, copied completely")
    if L.field(data, "header_size") != L.HEADER_SIZE:
        raise _fail(where, "not a .wk file (header size field at 0x08)", L.HEADER_SIZE,
                    L.field(data, "header_size"), "pass the <name>.wk that nnie_mapper wrote")
    body, length, tail = (L.field(data, k) for k in ("body_offset", "body_length", "tail_length"))
    if L.field(data, "body_length_copy") != length:
        raise _fail(where, "not a .wk file (body length at 0x38 and 0xB0 differ)", length,
                    L.field(data, "body_length_copy"), "pass the <name>.wk that nnie_mapper wrote")
    expected = body + length + tail
    if len(data) < expected:
        raise _fail(where, "truncated .wk file", f"{expected} bytes (header + body + tail)",
                    f"{len(data)} bytes", "copy the file again; it was cut short")
    if len(data) > expected:
        raise _fail(where, "trailing bytes after the .wk tail", f"{expected} bytes",
                    f"{len(data)} bytes", "the file was appended to or is not a single .wk")
    return body, length, tail


def _check_crc(where: str, data: bytes, body: int, length: int) -> int:
    stored, computed = L.field(data, "crc"), L.crc32(memoryview(data)[4:body + length])
    if stored != computed:
        raise _fail(where, "CRC-32 mismatch: the file is corrupt", f"0x{computed:08x}",
                    f"0x{stored:08x}", "copy the file again from where the mapper wrote it")
    return stored


def _check_version(where: str, data: bytes) -> tuple[int, int, int, int]:
    version = L.field(data, "version")
    fmt, arch = tuple(version[:2]), tuple(version[2:])
    if fmt != L.FORMAT_VERSION or arch not in L.ARCH_VERSIONS:
        raise _fail(where, "unknown .wk version", "format 11 and arch 12 (NNIE 1.2) or 11 "
                    "(NNIE 1.1), bytes 1.1.1.2 or 1.1.1.1", ".".join(map(str, version)),
                    "this file was not written by nnie_mapper_11/12")
    return version


def _node(data: bytes, at: int) -> Node:
    h, w, c = struct.unpack_from("<3I", data, at)
    blob_type, node_id = data[at + 14], data[at + 15]
    raw = data[at + 16:at + 16 + L.NAME_FIELD]
    name = raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
    return Node(name, c, h, w, blob_type, node_id)


def _segments(where: str, data: bytes, body: int) -> list[Segment]:
    count = L.field(data, "segment_count")
    if not 1 <= count <= L.MAX_SEGMENTS:
        raise _fail(where, "segment count out of range", f"1..{L.MAX_SEGMENTS}", count,
                    "NNIE nets have at most 8 segments (nnie-facts §5); the file is corrupt")
    segments, at, counts = [], L.HEADER_SIZE, []
    for _ in range(count):
        if at + L.SEGMENT_RECORD > body:
            break
        net_type, src, dst, roi, max_step = struct.unpack_from("<4BH", data, at)
        inst_offset, inst_len = struct.unpack_from("<2I", data, at + 8)
        nodes = [_node(data, at + L.SEGMENT_RECORD + L.NODE_RECORD * i) for i in range(src + dst)]
        segments.append(Segment(net_type, roi, max_step, inst_offset, inst_len,
                                tuple(nodes[:src]), tuple(nodes[src:])))
        counts.append(src + dst)
        at += L.SEGMENT_RECORD + L.NODE_RECORD * (src + dst)
    if len(counts) != count or L.body_offset_for(counts) != body:
        raise _fail(where, "segment records do not end where the body starts",
                    f"body offset 0x{L.body_offset_for(counts):x} for {count} segment(s)",
                    f"0x{body:x}", "the segment count or node counts are corrupt")
    return segments


def _regions(where: str, data: bytes, length: int) -> dict[str, tuple[int, int]]:
    regions = {}
    for i, name in enumerate(L.REGION_NAMES):
        offset, size = struct.unpack_from("<2I", data, L.REGION_TABLE + 16 * i)
        if offset + size > length:
            raise _fail(where, f"region {name!r} lies outside the body",
                        f"end <= {length}", offset + size, "the file is corrupt")
        regions[name] = (offset, size)
    return regions


def _blocks(where: str, wk: WkFile) -> tuple[list[Block], int]:
    index = wk.region("compress index")
    weights = wk.region("weights")
    rows = struct.unpack_from(f"<{len(index) // 4}I", index)
    blocks = []
    for offset, length in zip(rows[0::2], rows[1::2]):
        if (offset, length) == (0, 0):
            continue
        if offset + length > len(weights) or length < L.BLOCK_HEADER:
            raise _fail(where, f"weight block {len(blocks)} lies outside the weight region",
                        f"end <= {len(weights)}", offset + length, "the file is corrupt")
        kind, payload = struct.unpack_from("<BH", weights, offset)
        blocks.append(Block(len(blocks), offset, length, kind, payload))
    return blocks, len(rows) // 2


def _data_width(data: bytes, body: int, length: int, tail: int) -> int:
    """§5: byte 1 of tail record 0 is the bytes per element of the input blob (1 or 2)."""
    if tail < L.TAIL_RECORD:
        return 0
    return 8 * data[body + length + 1]


def read_wk(source: str | pathlib.Path | bytes, where: str | None = None) -> WkFile:
    """Read and check a ``.wk`` file (a path or its bytes; ``where`` names it in messages).

    Raises:
        WkError: not a .wk, truncated, trailing bytes, CRC mismatch, unknown version, segment
            count outside 1..8, or records that do not fit (one line each).
    """
    if isinstance(source, (bytes, bytearray)):
        where, data = where or "<bytes>", bytes(source)
    else:
        where = where or str(source)
        try:
            data = pathlib.Path(source).read_bytes()
        except OSError as err:
            raise _fail(where, "cannot read the file", "a readable .wk file",
                        err.strerror or type(err).__name__, "check the path") from None
    body, length, tail = _check_size(where, data)
    crc = _check_crc(where, data, body, length)
    version = _check_version(where, data)
    segments = _segments(where, data, body)
    regions = _regions(where, data, length)
    build = data[L.BUILD_ID_AT:L.BUILD_ID_AT + L.BUILD_ID_LEN].split(b"\0", 1)[0]
    wk = WkFile(where, data, crc, version, build.decode("ascii", errors="replace"),
                L.field(data, "temp_buffer"), L.field(data, "run_mode"), body, length, tail,
                regions, segments, [], 0, _data_width(data, body, length, tail),
                tail // L.TAIL_RECORD)
    wk.blocks, wk.index_rows = _blocks(where, wk)
    return wk
