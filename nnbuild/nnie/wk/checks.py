"""The per-layer checks behind ``verify-wk`` (see ``nnbuild.nnie.wk.verify`` for the rules).

``LayerCheck`` compares one weighted layer's blocks with what nnbuild expects and fills a report
row: raw blocks byte for byte, 0x11 blocks through their symbol table, depthwise channels through
the codes their table ranks; unestablished layouts are recorded as not verifiable, with why.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from nnbuild.ir import Graph
from nnbuild.nnie import quantize as nq
from nnbuild.nnie.fastquant import group_codes
from nnbuild.nnie.wk import expect as E
from nnbuild.nnie.wk import layout as L
from nnbuild.nnie.wk.blockmap import LayerBlocks
from nnbuild.nnie.wk.reader import WkFile
from nnbuild.nnie.wk.tables import consistent_many, symbols_present, table_consistent, table_of

# Exponents tried for a table check when no raw block gives one: those whose M / scale fit
# the record's 32 bits (8-bit n, 16-bit n without BatchNorm, 16-bit E with one).
SEARCH = {8: range(E.M8_BASE - 512, E.M8_BASE + 1), 16: range(E.M16_BASE - 3968, E.M16_BASE + 1),
          "bn": range(0, 3969)}


def bn_after(graph: Graph, layer, consumers) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, b) of an unfolded BatchNorm + Scale reading ``layer`` (float64), else None."""
    readers = consumers.get(layer.tops[0], [])
    if len(readers) != 1 or readers[0].type != "BatchNorm":
        return None
    bn = readers[0]
    scales = consumers.get(bn.tops[0], [])
    gamma = beta = None
    if len(scales) == 1 and scales[0].type == "Scale" and len(scales[0].blobs) >= 2:
        gamma, beta = (np.asarray(b, dtype=np.float64) for b in scales[0].blobs[:2])
    mean, var, factor = (np.asarray(b, dtype=np.float64) for b in bn.blobs[:3])
    factor = 1.0 / factor[0] if factor[0] else 0.0
    a = 1.0 / np.sqrt(var * factor + bn.param.batch_norm_param.eps)
    a = a * gamma if gamma is not None else a
    b = -mean * factor * a + (beta if beta is not None else 0.0)
    return a, b


def _as_bytes(codes: np.ndarray) -> list[int]:
    """The byte values of codes as stored (16-bit words little-endian)."""
    return np.ascontiguousarray(codes).ravel().astype(codes.dtype.newbyteorder("<")).view(
        np.uint8).tolist()


class LayerCheck:
    """The checks of one layer; fills ``row`` (the layer's entry in the report)."""

    def __init__(self, entry: LayerBlocks, wk: WkFile, weights, bias, bn):
        self.entry, self.wk, self.bits = entry, wk, wk.data_width
        self.weights, self.bias, self.bn = weights, bias, bn
        self.row: dict[str, Any] = {"name": entry.layer.name, "type": entry.layer.type,
                                    "kind": entry.kind, "blocks": len(entry.blocks),
                                    "raw": Counter(), "table": Counter(), "channels": Counter(),
                                    "untabled": 0, "notes": [], "first_difference": None,
                                    "exponent": None}
        self.unexplained: list[dict[str, Any]] = []

    def note(self, text: str) -> None:
        if text not in self.row["notes"]:
            self.row["notes"].append(text)

    def skip(self, block, reason: str) -> None:
        kind = "raw" if block.type == L.BLOCK_RAW else "table"
        if block.type in L.SYMBOL_TABLES or block.type == L.BLOCK_RAW:
            self.row[kind]["not verifiable"] += 1
        else:
            self.row["untabled"] += 1
        if block.type == L.BLOCK_RAW:
            self.unexplained.append({"layer": self.entry.layer.name, "block": block.index,
                                     "reason": reason})
        self.note(reason)

    # -- dense layers -------------------------------------------------------------------------
    def run_dense(self) -> None:
        layer, shape = self.entry.layer, self.weights.shape
        length = E.dense8_length(shape) if self.bits == 8 else E.dense16_length(shape)
        reason = None
        if layer.type != "Convolution":
            reason = f"{layer.type} layout not established (wk-format.md §3)"
        elif length is None:
            reason = "16-bit layout with K not a multiple of 32 not established (§3)"
        self.codes = nq.encode(self.weights, float(np.max(np.abs(self.weights))), self.bits)
        if not np.any(self.weights):
            self.note("the model's weights of this layer are all zero")
        for index, block in enumerate(self.entry.blocks):
            if reason is None and block.type == L.BLOCK_RAW and block.payload_length == length:
                payload = bytes(self.wk.block_bytes(block))[L.BLOCK_HEADER:]
                self.row["exponent"] = self.exponent_from(payload, index)
                break
        for index, block in enumerate(self.entry.blocks):
            if reason is None and block.payload_length != length:
                reason = (f"payload of {block.payload_length} bytes, the established layout "
                          f"gives {length} (layout not established, §3)")
            if reason is not None:
                self.skip(block, reason)
                continue
            self.check_dense_block(index, block)

    def exponent_from(self, payload: bytes, index: int) -> int | None:
        """The record exponent stored in the raw block of block ``index``."""
        if self.bits == 8:
            return E.exponent8(payload)
        scale = None if self.bn is None else float(self.bn[0][index])
        return E.exponent16(payload, scale)

    def expected(self, index: int, exponent: int) -> bytes:
        if self.bits == 8:
            first = 4 * index
            return E.dense8_records(self.bias, exponent, first) + \
                E.dense8_weights(self.codes, first).astype(np.uint8).tobytes()
        if self.bn is None:
            record = E.record16_plain(float(self.bias[index]), exponent)
        else:
            record = E.record16_bn(float(self.bn[0][index]), float(self.bn[1][index]), exponent)
        return record + E.dense16_words(self.codes, index).astype("<u2").tobytes()

    def record_mask(self) -> slice | None:
        """Bytes of the record nnbuild cannot predict: the bias field with BN and a conv bias."""
        if self.bits == 16 and self.bn is not None and np.any(self.bias):
            return slice(0, 4)
        return None

    def check_dense_block(self, index: int, block) -> None:
        payload = bytes(self.wk.block_bytes(block))[L.BLOCK_HEADER:]
        if block.type == L.BLOCK_RAW:
            self.compare_raw(index, block, payload[:block.payload_length])
        elif block.type in L.SYMBOL_TABLES:
            self.check_table(index, block)
        else:
            self.row["untabled"] += 1

    def compare_raw(self, index: int, block, payload: bytes) -> None:
        exponent = self.row["exponent"]
        if exponent is None:
            self.skip(block, "record exponent unreadable (M or scale is 0)")
            return
        want = bytearray(self.expected(index, exponent))
        got = bytearray(payload)
        mask = self.record_mask()
        if mask is not None:
            want[mask] = got[mask]
            self.note("bias field of the 16-bit BN record not predicted (conv has a bias)")
        if want == got:
            self.row["raw"]["identical"] += 1
            return
        self.row["raw"]["differs"] += 1
        text = self.describe_difference(index, want, got)
        self.row["first_difference"] = self.row["first_difference"] or text
        self.unexplained.append({"layer": self.entry.layer.name, "block": block.index,
                                 "reason": f"differs: {text}"})

    def describe_difference(self, index: int, want: bytes, got: bytes) -> str:
        at = next(i for i, (a, b) in enumerate(zip(want, got)) if a != b)
        records = 4 * E.RECORD8 if self.bits == 8 else E.RECORD16
        if at < records:
            return f"block {index} record byte {at}: expected 0x{want[at]:02x}, got 0x{got[at]:02x}"
        shape = self.codes.shape
        if self.bits == 8:
            where = E.dense8_weights(np.arange(self.codes.size).reshape(shape) + 256, 4 * index)
            flat = int(where[at - records]) - 256
            width, pos = 1, at - records
        else:
            where = E.dense16_words(np.arange(self.codes.size).reshape(shape), index)
            pos = (at - records) // 2
            flat, width = int(where[pos]), 2
        start = records + pos * width

        def value(data: bytes) -> int:
            return int.from_bytes(data[start:start + width], "little")

        if flat < 0:
            return (f"block {index} padding byte {at}: expected {value(want):#x}, "
                    f"got {value(got):#x}")
        o, c, y, x = np.unravel_index(flat, shape)
        return (f"weight [{o}, {c}, {y}, {x}] = {float(self.weights[o, c, y, x]):.6g}: expected "
                f"code {value(want):#x}, got {value(got):#x}")

    def check_table(self, index: int, block) -> None:
        if self.record_mask() is not None:
            self.skip(block, "symbol table not checkable: the 16-bit BN record's bias field is "
                             "not predicted (conv has a bias)")
            return
        table = table_of(self.wk.block_bytes(block))
        exponent = self.row["exponent"]
        search = SEARCH["bn" if self.bits == 16 and self.bn is not None else self.bits]
        tried = [exponent] if exponent is not None else search
        fits = self.search(table, index, np.array(tried))
        if fits:
            self.row["table"]["consistent"] += 1
            if exponent is None:
                self.note("record exponent unknown (no raw block): searched, the table fits "
                          f"exponent {fits[0]}")
            return
        self.row["table"]["inconsistent"] += 1
        if exponent is None:
            reason = f"no exponent in {search.start}..{search.stop - 1} makes it consistent"
        else:
            reason = table_consistent(table, self.expected(index, exponent))[1]
        self.row["first_difference"] = self.row["first_difference"] or \
            f"block {index} symbol table: {reason}"

    def search(self, table: bytes, index: int, exponents: np.ndarray) -> list[int]:
        """Exponents that fit, tried nearest to the middle of the range first, in chunks, up to
        the first chunk with a fit (consistency needs one; the search is for speed only)."""
        middle = exponents[len(exponents) // 2]
        ordered = exponents[np.argsort(np.abs(exponents - middle), kind="stable")]
        for start in range(0, len(ordered), 256):
            fits = self.fitting_exponents(table, index, ordered[start:start + 256])
            if fits:
                return fits
        return []

    def fitting_exponents(self, table: bytes, index: int, exponents: np.ndarray) -> list[int]:
        """The exponents for which the block's expected plaintext fits ``table`` (vectorised:
        only the record bytes depend on the exponent)."""
        if self.bits == 8:
            weights = E.dense8_weights(self.codes, 4 * index).astype(np.uint8)
            extra, valid, zeros = E.records_many(8, exponents, bias=self.bias, first=4 * index)
        else:
            weights = E.dense16_words(self.codes, index).astype("<u2").view(np.uint8)
            if self.bn is None:
                extra, valid, zeros = E.records_many(16, exponents, bias=self.bias[index])
            else:
                extra, valid, zeros = E.records_many(16, exponents, scale=float(
                    self.bn[0][index]), shift=float(self.bn[1][index]))
        base = np.bincount(weights, minlength=256)
        base[0] += zeros
        fits = consistent_many(table, base, extra) & valid
        return [int(e) for e in exponents[fits]]

    # -- depthwise ----------------------------------------------------------------------------
    def run_per_group(self) -> None:
        layer = self.entry.layer
        if layer.type != "Convolution":
            for block in self.entry.blocks:
                self.skip(block, "Deconvolution expansion not established (§3)")
            return
        bits, groups = self.bits, self.entry.groups
        zero = nq.CODES[bits][1]
        per_layer = nq.encode(self.weights, float(np.max(np.abs(self.weights))), bits)
        per_channel = group_codes(self.weights, groups, bits)[0]   # == nq.encode_weights
        for channel, block in enumerate(self.entry.blocks):
            table = table_of(self.wk.block_bytes(block))
            if table is None:
                self.skip(block, "depthwise block without a symbol table (layout not "
                          "established, §3)")
                continue
            if np.all(per_layer[channel] == zero):
                self.row["channels"]["dead"] += 1
                continue
            fits = (symbols_present(table, _as_bytes(per_channel[channel])),
                    symbols_present(table, _as_bytes(per_layer[channel])))
            verdict = {(True, False): "consistent", (True, True): "consistent (both fit)",
                       (False, True): "differs (per-layer codes fit)",
                       (False, False): "differs"}[fits]
            self.row["channels"][verdict] += 1
            if not fits[0] and self.row["first_difference"] is None:
                self.row["first_difference"] = f"channel {channel}: per-channel codes missing " \
                                               f"from the block's symbol table"
        if self.row["channels"]["dead"]:
            self.note("dead channels (weights below the layer's smallest level) stored with the "
                      "unexplained code ±0x10 (wk-format.md §4.2): not compared")
