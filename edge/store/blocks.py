"""In-memory index of one block: compact parallel arrays sorted by timestamp.

Owns: ``Block`` (what is published of a ``.blk``: ts, payload offset/length, upstream ``begin``,
interned metadata, the "labels updated" flag) plus the write bookkeeping the entry needs
(file size, reservations of unflushed writers, an active streaming writer), and ``MetaTable``
(interning of content type + labels, which repeat across records).
Must not: do I/O (entry.py reads and writes the files) or know about quotas.

Why arrays: ``array('q')`` costs ~8 bytes per field per record and bisects fast; a block holds at
most ``max_block_records`` records, so an insert of a belated record is a short memmove.
"""

from __future__ import annotations

import bisect
from array import array
from types import MappingProxyType
from typing import Any, Mapping

from edge.formats.frame import decode_meta, encode_meta
from edge.formats.sizes import record_size


class MetaTable:
    """Interns (content_type, labels) per entry; records store an int."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, int] = {}
        self._values: list[tuple[str, Mapping[str, str]]] = []

    def intern_raw(self, meta: bytes) -> int:
        idx = self._by_key.get(meta)
        if idx is None:
            ct, labels = decode_meta(meta)
            idx = self._add(meta, ct, labels)
        return idx

    def intern_known(self, meta: bytes, content_type: str, labels: Mapping[str, str]) -> int:
        """``intern_raw`` for a writer that still has what ``meta`` encodes: no JSON decode."""
        idx = self._by_key.get(meta)
        if idx is None:
            idx = self._add(meta, content_type, dict(labels))
        return idx

    def intern(self, content_type: str, labels: Mapping[str, str]) -> int:
        meta = encode_meta(content_type, labels)
        idx = self._by_key.get(meta)
        if idx is None:
            idx = self._add(meta, content_type, dict(labels))
        return idx

    def _add(self, meta: bytes, ct: str, labels: dict[str, str]) -> int:
        idx = len(self._values)
        self._by_key[meta] = idx
        self._values.append((ct, MappingProxyType(labels)))
        return idx

    def get(self, idx: int) -> tuple[str, Mapping[str, str]]:
        return self._values[idx]


class Block:
    __slots__ = (
        "id", "ts", "poff", "plen", "begin", "meta", "upd", "size", "file_size", "next_begin",
        "pending", "reserved", "streamer", "has_idx", "removed", "idx_dirty",
    )

    def __init__(self, block_id: int):
        self.id = block_id
        self.ts = array("q")
        self.poff = array("q")
        self.plen = array("q")
        self.begin = array("q")  # upstream's begin: payload bytes written to the block before it
        self.meta = array("l")
        self.upd = array("b")
        self.size = 0  # sum of record sizes (spec formula) of published records
        self.file_size = 0  # bytes of the .blk written so far (flushed or streamed)
        self.next_begin = 0  # payload bytes ever written into this block
        self.pending = 0  # unflushed writers targeting this block
        self.reserved = 0  # their payload bytes
        self.streamer: Any = None  # the RecordWriter appending straight to the file, if any
        self.has_idx = False  # a valid .idx exists on disk
        self.removed: list[tuple[int, int]] = []  # (ts, payload offset) of frames the journal removed
        self.idx_dirty = False  # frames were added since the .idx was written

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def payload_total(self) -> int:
        return self.next_begin

    def find(self, ts_us: int) -> int:
        i = bisect.bisect_left(self.ts, ts_us)
        if i < len(self.ts) and self.ts[i] == ts_us:
            return i
        return -1

    def insert(self, ts_us: int, poff: int, plen: int, begin: int, meta_idx: int, upd: bool, size: int) -> None:
        i = bisect.bisect_left(self.ts, ts_us)
        self.ts.insert(i, ts_us)
        self.poff.insert(i, poff)
        self.plen.insert(i, plen)
        self.begin.insert(i, begin)
        self.meta.insert(i, meta_idx)
        self.upd.insert(i, 1 if upd else 0)
        self.size += size

    def pop(self, i: int, size: int) -> None:
        for arr in (self.ts, self.poff, self.plen, self.begin, self.meta, self.upd):
            arr.pop(i)
        self.size -= size

    def record_size(self, i: int, metas: MetaTable) -> int:
        ct, labels = metas.get(self.meta[i])
        return record_size(self.ts[i], self.begin[i], self.plen[i], ct, labels, bool(self.upd[i]))

    @property
    def min_ts(self) -> int:
        return self.ts[0]

    @property
    def max_ts(self) -> int:
        return self.ts[-1]

    @property
    def evictable(self) -> bool:
        return self.pending == 0 and self.streamer is None

    def range(self, start: int | None, stop: int | None) -> tuple[int, int]:
        lo = 0 if start is None else bisect.bisect_left(self.ts, start)
        hi = len(self.ts) if stop is None else bisect.bisect_left(self.ts, stop)
        return lo, hi


def block_file_name(block_id: int) -> str:
    return f"{block_id:020d}.blk"


def index_file_name(block_id: int) -> str:
    return f"{block_id:020d}.idx"
