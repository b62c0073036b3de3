"""The block map of an entry: blocks in id order, which of them overlap in time, the FIFO key.

Owns: inserting and removing blocks in ``entry.blocks``/``entry._ids``, the exact overlap set
(``entry._overlaps``: ids of blocks whose newest record reaches past the next block's id), and
telling the bucket when the entry's oldest block changed (its FIFO heap key).
Must not: load indexes or do I/O (entry_index.py and entry_read.py do), import trio.

Why an overlap set and not a flag: a belated write into a full block opens a new block whose id
lies inside an older block's time range, and a batch can straddle a rotation. A lookup of ``ts``
must then search every block whose range covers it. Those are the block with the greatest id <=
ts plus blocks of the overlap set (a block whose range reaches ``ts`` past its successor's id is
in the set by definition), so the set makes lookups exact and O(log n + overlaps), where the old
"disjoint" flag, once cleared, made every later lookup scan every block.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from edge.store.blocks import Block

if TYPE_CHECKING:
    from edge.store.entry_state import EntryState


def position(entry: EntryState, b: Block) -> int:
    """Index of ``b`` in ``entry.blocks``, or -1 if it is not (or no longer) there."""
    k = bisect.bisect_left(entry._ids, b.id)
    if k < len(entry._ids) and entry.blocks[k] is b:
        return k
    return -1


def recheck(entry: EntryState, k: int) -> None:
    """Recompute whether block ``k`` overlaps its successor."""
    blocks = entry.blocks
    if not 0 <= k < len(blocks):
        return
    b = blocks[k]
    if k + 1 < len(blocks) and b.count and b.max_ts >= blocks[k + 1].id:
        entry._overlaps.add(b.id)
    else:
        entry._overlaps.discard(b.id)


def note_bounds(entry: EntryState, b: Block) -> None:
    """``b``'s time bounds changed."""
    entry._changed()
    k = position(entry, b)
    if k >= 0:
        recheck(entry, k)


def insert(entry: EntryState, j: int, b: Block) -> None:
    entry._changed()
    entry.blocks.insert(j, b)
    entry._ids.insert(j, b.id)
    recheck(entry, j - 1)
    recheck(entry, j)
    if j == 0:
        entry.bucket._fifo_note(entry)


def remove(entry: EntryState, b: Block) -> None:
    k = position(entry, b)
    if k < 0:
        return
    entry._changed()
    del entry.blocks[k]
    del entry._ids[k]
    entry._overlaps.discard(b.id)
    recheck(entry, k - 1)
    if k == 0:
        entry.bucket._fifo_note(entry)


def candidates(entry: EntryState, ts_us: int) -> list[Block]:
    """Blocks that may hold ``ts_us``, newest id first (their bounds still have to cover it)."""
    j = bisect.bisect_right(entry._ids, ts_us)
    if not j:
        return []
    out = [entry.blocks[j - 1]]
    if entry._overlaps:
        below = entry._ids[j - 1]
        ids = sorted((i for i in entry._overlaps if i < below), reverse=True)
        for block_id in ids:
            k = bisect.bisect_left(entry._ids, block_id)
            if k < len(entry._ids) and entry._ids[k] == block_id:
                out.append(entry.blocks[k])
    return out


def first_covering(entry: EntryState, start_us: int) -> int:
    """Index of the first block a scan from ``start_us`` must look at."""
    j = bisect.bisect_right(entry._ids, start_us)
    k = first = max(0, j - 1)
    if first >= len(entry._ids):
        return first
    for block_id in entry._overlaps:
        if block_id < entry._ids[first]:
            i = bisect.bisect_left(entry._ids, block_id)
            if entry.blocks[i].max_ts >= start_us:
                k = min(k, i)
    return k
