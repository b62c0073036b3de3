"""What the store keeps in memory of a block: its summary always, its per-record index on demand.

Owns: ``Block`` (the summary of one ``.blk`` that start-up reads from ``blocks.sum``: id, time
bounds, counts and sizes, file sizes, sealed state; the journal state of its records; the write
bookkeeping: reservations of unflushed writers, an active streaming writer), ``BlockIndex`` (the
per-record arrays of a loaded block: ts, payload offset/length, upstream ``begin``, metadata)
and ``IndexCache`` (the bound on how many records' indexes are loaded at once, LRU).
Must not: do I/O (entry_index.py loads and writes indexes) or know about quotas.

Why split summary and index: a full ring buffer holds millions of records, but a request needs
the per-record data of one or two blocks. The summary costs ~300 bytes per block (~0.3 bytes per
record at 1024 records per block); the index ~45 bytes per record, and only the blocks in the
cache have one. A block whose file holds frames that are not published yet (a record streamed
through, not flushed) is pinned: its index is never dropped, as it could not be rebuilt from the
file. Buffered writers reach the file only inside ``flush``, which publishes them at once, so a
block with only buffered writers in flight is not pinned: an in-order append needs no index
(publication updates the summary, and the index too if it is loaded), and a dropped index is
rebuilt from the frames, exactly what was published.

Journal state lives on the Block, not in the index, so it survives the index being dropped:
``removed`` (frames the journal removed) and ``labelled`` (records whose labels the journal
replaced). Loading an index applies both. Invariants kept by the entry modules:
``count == frames - len(removed)`` and
``size == frames_size + sum(size - orig for labelled) - sum(orig for removed)``.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping, NamedTuple

from edge.formats.frame import decode_meta
from edge.formats.index import PackedIndex
from edge.formats.sizes import record_size

if TYPE_CHECKING:
    from edge.store.files import SyncToken

RECORD_COST = 45  # bytes of a loaded index per record (5 x 8-byte arrays + a u32 + a flag)
META_COST = 240  # per distinct metadata: the bytes object, its list slot, the decoded labels


class Labelled(NamedTuple):
    """A record whose labels the journal replaced."""

    ts_us: int
    labels: Mapping[str, str]
    orig: int  # its frame's ReductStore size before any op
    size: int  # its size now


class Removed(NamedTuple):
    ts_us: int
    poff: int
    orig: int


class BlockIndex:
    """The per-record arrays of one block, sorted by timestamp (unique once loaded)."""

    __slots__ = ("ts", "poff", "plen", "begin", "meta", "upd", "metas", "_decoded", "_keys", "meta_cost")

    def __init__(self, p: PackedIndex | None = None):
        # Copies (a memcpy each): the caller may still write ``p`` out as the block's .idx, which
        # must list every frame, while this index drops the ones the journal removed.
        p = p or PackedIndex()
        self.ts = array("q", p.ts)
        self.poff = array("q", p.poff)
        self.plen = array("q", p.plen)
        self.begin = array("q", p.begin)
        self.meta = array("I", p.meta)
        self.upd = array("b", bytes(len(p.ts)))
        self.metas: list[bytes] = list(p.metas)
        self._decoded: list[tuple[str, Mapping[str, str]] | None] = [None] * len(p.metas)
        self._keys: dict[bytes, int] | None = None
        self.meta_cost = sum(len(m) + META_COST for m in p.metas)

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def cost(self) -> int:
        return RECORD_COST * len(self.ts) + self.meta_cost

    def find(self, ts_us: int) -> int:
        i = bisect.bisect_left(self.ts, ts_us)
        if i < len(self.ts) and self.ts[i] == ts_us:
            return i
        return -1

    def find_frame(self, ts_us: int, poff: int) -> int:
        """Position of the frame (ts, payload offset), or -1."""
        i = bisect.bisect_left(self.ts, ts_us)
        while i < len(self.ts) and self.ts[i] == ts_us:
            if self.poff[i] == poff:
                return i
            i += 1
        return -1

    def intern(self, raw: bytes, decoded: tuple[str, Mapping[str, str]] | None = None) -> int:
        keys = self._keys
        if keys is None:
            keys = self._keys = {m: k for k, m in enumerate(self.metas)}
        mid = keys.get(raw)
        if mid is None:
            mid = keys[raw] = len(self.metas)
            self.metas.append(raw)
            self._decoded.append(None if decoded is None else (decoded[0], MappingProxyType(dict(decoded[1]))))
            self.meta_cost += len(raw) + META_COST
        return mid

    def labels_of(self, i: int) -> tuple[str, Mapping[str, str]]:
        mid = self.meta[i]
        got = self._decoded[mid]
        if got is None:
            ct, labels = decode_meta(self.metas[mid])
            got = self._decoded[mid] = (ct, MappingProxyType(labels))
        return got

    def record_size(self, i: int) -> int:
        ct, labels = self.labels_of(i)
        return record_size(self.ts[i], self.begin[i], self.plen[i], ct, labels, bool(self.upd[i]))

    def insert(self, ts_us: int, poff: int, plen: int, begin: int, meta_id: int, upd: bool) -> int:
        ts = self.ts
        if not ts or ts_us > ts[-1]:  # the common case: an append in time order
            ts.append(ts_us)
            self.poff.append(poff)
            self.plen.append(plen)
            self.begin.append(begin)
            self.meta.append(meta_id)
            self.upd.append(1 if upd else 0)
            return len(ts) - 1
        i = bisect.bisect_right(ts, ts_us)
        self.ts.insert(i, ts_us)
        self.poff.insert(i, poff)
        self.plen.insert(i, plen)
        self.begin.insert(i, begin)
        self.meta.insert(i, meta_id)
        self.upd.insert(i, 1 if upd else 0)
        return i

    def pop(self, i: int) -> None:
        for arr in (self.ts, self.poff, self.plen, self.begin, self.meta, self.upd):
            arr.pop(i)

    def range(self, start: int | None, stop: int | None) -> tuple[int, int]:
        lo = 0 if start is None else bisect.bisect_left(self.ts, start)
        hi = len(self.ts) if stop is None else bisect.bisect_left(self.ts, stop)
        return lo, hi


class Block:
    __slots__ = (
        "id", "count", "size", "frames", "frames_size", "min_ts", "max_ts", "bounds_exact",
        "file_size", "next_begin", "pending", "reserved", "streamer", "has_idx", "idx_size", "idx_crc",
        "removed", "labelled", "index", "cost", "idx_due", "acks", "unpublished", "unverified",
    )

    def __init__(self, block_id: int):
        self.id = block_id
        self.count = 0  # live records
        self.size = 0  # sum of the live records' sizes (spec formula), journal ops applied
        self.frames = 0  # frames in the .blk (published or removed through the journal)
        self.frames_size = 0  # their sizes before any journal op
        self.min_ts = block_id  # bounds of the live records; exact unless ``bounds_exact`` is False
        self.max_ts = block_id
        self.bounds_exact = True  # False after start-up replayed removals without the index
        self.file_size = 0  # bytes of the .blk written so far (flushed or streamed)
        self.next_begin = 0  # payload bytes ever written into this block
        self.pending = 0  # unflushed writers targeting this block
        self.reserved = 0  # their payload bytes
        # The writer appending straight to the file (an entry_write.RecordWriter; only its identity
        # matters here, so blocks.py stays below the entry modules).
        self.streamer: object | None = None
        self.has_idx = False  # a valid .idx (and its summary record) describe the whole .blk
        self.idx_size = 0  # bytes of the .idx on disk (0 when there is none)
        self.idx_crc = 0
        self.removed: list[Removed] | None = None
        self.labelled: dict[int, Labelled] | None = None  # payload offset -> state
        self.index: BlockIndex | None = None  # loaded per-record data, see IndexCache
        self.cost = 0  # what the cache charged for ``index``
        self.idx_due = 0  # bytes its .idx and summary record will take when it is sealed
        self.acks: list[SyncToken] | None = None  # group commits of flushes that published here
        self.unpublished = 0  # streamed frames in the file, not published (or aborted) yet
        self.unverified = False  # trusted from blocks.sum at start-up; file sizes not checked yet

    def __len__(self) -> int:
        return self.count

    @property
    def payload_total(self) -> int:
        return self.next_begin

    @property
    def pinned(self) -> bool:
        """The file holds frames that are not published yet: the index stays loaded."""
        return self.unpublished > 0 or self.streamer is not None

    @property
    def busy(self) -> bool:
        """Writers in flight (buffered or streaming): not to be sealed, deleted or evicted."""
        return self.pending > 0 or self.streamer is not None

    @property
    def evictable(self) -> bool:
        """FIFO may take it: no writer in flight, and every record in it has been answered (the
        group commit of each flush that published here is done). So a write is never answered
        200 after the quota evicted its own record: FIFO takes older blocks or refuses."""
        if self.pending or self.streamer is not None:
            return False
        acks = self.acks
        if acks:
            acks = [t for t in acks if not t.done]
            self.acks = acks or None
            return not acks
        return True

    @property
    def ops(self) -> int:
        """Journal ops that describe this block's records."""
        return len(self.removed or ()) + len(self.labelled or ())

    def covers(self, ts_us: int) -> bool:
        """Could a live record with this ts be here? (bounds may be wider than exact)"""
        return self.count > 0 and self.min_ts <= ts_us <= self.max_ts


class IndexCache:
    """An LRU of the blocks whose ``index`` is loaded, bounded by ``budget`` bytes (estimated).

    Pinned blocks are never dropped; while everything is pinned the cache may exceed its budget
    by the blocks that writers are filling right now.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self.loads = 0
        self.drops = 0
        self._lru: OrderedDict[int, Block] = OrderedDict()

    def __len__(self) -> int:
        return len(self._lru)

    def touch(self, b: Block) -> None:
        key = id(b)
        if key in self._lru:
            self._lru.move_to_end(key)

    def add(self, b: Block, loaded: bool = True) -> None:
        assert b.index is not None
        key = id(b)
        if key in self._lru:
            self.used -= b.cost
        self._lru[key] = b
        b.cost = b.index.cost
        self.used += b.cost
        if loaded:
            self.loads += 1
        self.shrink(keep=b)

    def recharge(self, b: Block) -> None:
        """``b``'s index grew (a publish): charge the difference (shrinks at the next add)."""
        if b.index is not None and id(b) in self._lru:
            cost = b.index.cost
            self.used += cost - b.cost
            b.cost = cost

    def discard(self, b: Block) -> None:
        if self._lru.pop(id(b), None) is not None:
            self.used -= b.cost
        b.cost = 0
        b.index = None

    def shrink(self, keep: Block | None = None) -> None:
        """Drop least recently used indexes until within budget (never ``keep``, never a pinned one)."""
        if self.used <= self.budget:
            return
        for key in list(self._lru):
            b = self._lru[key]
            if b.pinned or b is keep:
                continue
            del self._lru[key]
            self.used -= b.cost
            b.cost = 0
            b.index = None
            self.drops += 1
            if self.used <= self.budget:
                return


def index_bytes(frames: int, metas: list[bytes]) -> int:
    """What the .idx of a block (format version 2) and its summary record take on disk."""
    return IDX_FIXED + IDX_ROW * frames + sum(IDX_META + len(m) for m in metas)


IDX_HEADER = 60  # formats/index.py HEADER
SUMMARY_RECORD = 76  # formats/summary.py RECORD
IDX_FIXED = IDX_HEADER + SUMMARY_RECORD
IDX_ROW = 36  # per frame: 4 x i64 + u32
IDX_META = 4  # per distinct metadata: its length


def block_file_name(block_id: int) -> str:
    return f"{block_id:020d}.blk"


def index_file_name(block_id: int) -> str:
    return f"{block_id:020d}.idx"
