"""Symbol tables of compressed weight blocks (wk-format.md §3), and what they can prove.

A 0x11 block carries 37 bytes at block offset 3, a 0x51 block 34: the plaintext's most frequent
byte values in descending frequency, the unused entries filled with small values that do not
occur in the plaintext. The codec itself is not decoded, so a compressed block can be checked
only through its table:

* ``table_consistent(table, plaintext)`` — for a block whose plaintext nnbuild can build: every
  value the table ranks occurs in the plaintext, in non-increasing frequency, no left-out value
  is more frequent than the last ranked one, and fillers only follow when every distinct value
  has been ranked.
* ``symbols_present(table, values)`` — for a block whose layout is unknown (depthwise): whether
  the given byte values (e.g. a channel's codes) all occur in the table's ranked part.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from nnbuild.nnie.wk import layout as L


def table_of(block: bytes | memoryview) -> bytes | None:
    """The symbol table of a block (None for raw and 0x01 blocks, which have none)."""
    size = L.SYMBOL_TABLES.get(block[0])
    return None if size is None else bytes(block[L.BLOCK_HEADER:L.BLOCK_HEADER + size])


def table_consistent(table: bytes, plaintext: bytes) -> tuple[bool, str]:
    """Whether ``table`` is a frequency ranking of ``plaintext`` (see module docstring).

    Returns:
        (ok, reason): reason names the first disagreement ("" when consistent).
    """
    counts = Counter(plaintext)
    ranked = 0
    while ranked < len(table) and table[ranked] in counts:
        ranked += 1
    strays = [v for v in table[ranked:] if v in counts]
    if strays:
        return False, f"table entry 0x{strays[0]:02x} occurs in the plaintext but ranks after " \
                      f"a value that does not"
    if ranked < min(len(table), len(counts)):
        missing = max((v for v in counts if v not in table[:ranked]), key=counts.__getitem__)
        return False, f"value 0x{missing:02x} ({counts[missing]}x) is missing from the table"
    freqs = [counts[v] for v in table[:ranked]]
    for i in range(1, ranked):
        if freqs[i] > freqs[i - 1]:
            return False, f"entry {i} (0x{table[i]:02x}, {freqs[i]}x) is more frequent than " \
                          f"entry {i - 1} (0x{table[i - 1]:02x}, {freqs[i - 1]}x)"
    left = [counts[v] for v in counts if v not in table[:ranked]]
    if ranked and left and max(left) > freqs[-1]:
        return False, f"a value left out of the table occurs {max(left)}x, more than the last " \
                      f"ranked entry ({freqs[-1]}x)"
    return True, ""


def ranked_part(table: bytes) -> bytes:
    """The table without its trailing fillers (§3: small ascending values).

    The longest strictly ascending suffix of values below 0x40 is cut off. A ranked value that
    is smaller than the first filler and below 0x40 is cut with it (never seen in the real
    files' depthwise tables, whose last ranked entries are codes of large magnitude).
    """
    end = len(table)
    while end > 1 and table[end - 1] < 0x40 and (end == len(table) or
                                                  table[end - 1] < table[end]):
        end -= 1
    return table[:end]


def symbols_present(table: bytes, values) -> bool:
    """Whether every byte value in ``values`` occurs in the ranked part of ``table``."""
    return set(values) <= set(ranked_part(table))


def consistent_many(table: bytes, base: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``table_consistent`` for many candidate plaintexts at once.

    Only the few ``extra`` bytes differ between candidates, so every count is the common
    histogram plus the candidate's own bytes, worked out on the table's columns and the extra
    bytes instead of all 256 values.

    Args:
        table: the symbol table.
        base: (256,) byte histogram of the part of the plaintext common to all candidates.
        extra: (candidates, L) uint8, the bytes that differ between candidates.

    Returns:
        (candidates,) bool: which candidates the table is consistent with.
    """
    order = np.frombuffer(bytes(table), dtype=np.uint8)
    extra = extra.astype(np.intp)
    in_table = np.zeros(256, dtype=bool)
    in_table[order] = True
    ranked_freq = base[order][None, :] + (extra[:, :, None] == order[None, None, :]).sum(axis=1)
    present = ranked_freq > 0
    ranked = np.where(present.all(axis=1), len(order), np.argmin(present, axis=1))
    inside = np.arange(len(order))[None, :] < ranked[:, None]
    stray = (present & ~inside).any(axis=1)
    same = extra[:, :, None] == extra[:, None, :]
    first = ~np.tril(same, k=-1).any(axis=2)              # first occurrence within the row
    new = first & (base[extra] == 0)
    distinct = np.count_nonzero(base) + new.sum(axis=1)
    complete = ranked >= np.minimum(len(order), distinct)
    rising = ((ranked_freq[:, 1:] > ranked_freq[:, :-1]) & inside[:, 1:]).any(axis=1)
    # most frequent value outside the ranked part: a non-table value (from the common part, or
    # an extra byte with its count), or a table entry past ``ranked`` (absent unless stray)
    outside_base = base[~in_table].max(initial=0)
    extra_counts = np.where(in_table[extra], 0, base[extra] + same.sum(axis=2))
    outside = np.maximum(outside_base, extra_counts.max(axis=1, initial=0))
    last = ranked_freq[np.arange(len(extra)), np.maximum(ranked - 1, 0)]
    beaten = (ranked > 0) & (outside > last)
    return ~stray & complete & ~rising & ~beaten
