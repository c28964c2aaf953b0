"""The byte layout of a ``.wk`` file: offsets, record sizes and enums (wk-format.md §1-§3, §5).

Only facts marked [public] or [verified] on docs/wk-format.md are used. All integers
are little-endian.
"""

from __future__ import annotations

import struct
import zlib

HEADER_SIZE = 0xC0               # §1: u32@0x08 holds it; 192 in every real file
SEGMENT_RECORD = 16              # §2: {u8 net_type, u8 src, u8 dst, u8 roi, u16, u16, u32, u32}
NODE_RECORD = 64                 # §2: {u32 h, w, c, 2 bytes, u8 blob_type, u8 id, name[32], 16}
NAME_FIELD = 32                  # §2: 31 characters + NUL (SVP_NNIE_NODE_NAME_LEN 32)
MAX_NAME = NAME_FIELD - 1
MAX_SEGMENTS = 8                 # §1 0x31: segment count 1..8 [public]; nnie-facts §5
REGIONS = 6                      # §1 0x50-0xAF: weights, compress index, 4 constant tables
REGION_NAMES = ("weights", "compress index", "table 0", "table 1", "table 2", "table 3")
TAIL_RECORD = 48                 # §5: one record per hardware operation
BUILD_ID_LEN = 14                # §1 0x20: e.g. 19010713251682 (the next 2 bytes are not part)

# Header fields (§1): name -> (offset, struct format).
FIELDS = {
    "crc": (0x00, "<I"), "nodes_word": (0x04, "<I"), "header_size": (0x08, "<I"),
    "temp_buffer": (0x0C, "<I"), "version": (0x10, "<4B"), "run_mode": (0x30, "<B"),
    "segment_count": (0x31, "<B"), "body_offset": (0x34, "<I"), "body_length": (0x38, "<I"),
    "instruction_end": (0x40, "<I"), "body_length_copy": (0xB0, "<I"), "tail_length": (0xB4, "<I"),
}
REGION_TABLE = 0x50              # §1: 6 x {u32 offset, u32 length, 0, 0}, body-relative
BUILD_ID_AT = 0x20

# Version bytes {format major, minor, arch major, minor} (§1) -> NNIE version / mapper version.
ARCH_VERSIONS = {(1, 2): 12, (1, 1): 11}
FORMAT_VERSION = (1, 1)

# SVP_BLOB_TYPE_E (hi_comm_svp.h, HiSilicon SDK) [public]; §2 verifies 1 = U8 image input,
# 0 = S32 outputs.
BLOB_TYPES = {0: "S32", 1: "U8", 2: "YVU420SP", 3: "YVU422SP", 4: "VEC_S32", 5: "SEQ_S32"}

# Weight-block types (§3): u8 type | u16 payload length | payload.
BLOCK_RAW, BLOCK_PACKED, BLOCK_TABLE, BLOCK_DEPTHWISE = 0x00, 0x01, 0x11, 0x51
# 0x51 is the depthwise variant in RetinaFace (§3) but also occurs in LeNet: named by its byte.
BLOCK_TYPES = {BLOCK_RAW: "raw", BLOCK_PACKED: "compressed 0x01", BLOCK_TABLE: "compressed 0x11",
               BLOCK_DEPTHWISE: "compressed 0x51"}
BLOCK_HEADER = 3
RAW_TRAILER = 2                  # §3: raw payload, then 2 unknown bytes
SYMBOL_TABLES = {BLOCK_TABLE: 37, BLOCK_DEPTHWISE: 34}   # §3: table at bytes 3.. of the block


def crc32(data: bytes | memoryview) -> int:
    """§1: CRC-32, reflected polynomial 0xEDB88320, register starting at 0, final XOR ~0.

    zlib's ``crc32(data, value)`` starts its register at ``~value``, so ``value = ~0`` gives the
    zero start.
    """
    return zlib.crc32(data, 0xFFFFFFFF)


def field(data: bytes | memoryview, name: str):
    """One header field (§1) of ``data``; tuples for multi-byte fields such as ``version``."""
    offset, fmt = FIELDS[name]
    values = struct.unpack_from(fmt, data, offset)
    return values if len(values) > 1 else values[0]


def body_offset_for(node_counts: list[int]) -> int:
    """§1 0x34: body offset = 0xC0 + sum over segments of (16 + 64 * nodes)."""
    return HEADER_SIZE + sum(SEGMENT_RECORD + NODE_RECORD * n for n in node_counts)
