"""Block index files (``<block_id>.idx``): the frame headers of a sealed block, packed for loading.

Owns: the byte layouts below, their encode/decode, and ``pack_frames`` (frame headers in file
order -> the sorted, packed per-record arrays, with the block's totals).
Must not: open files or decide whether to trust an index -- the store compares it with the
block's summary record and the real ``.blk`` (size, last frame) and rescans the block on any
doubt. The ``.blk`` is the truth; an ``.idx`` only saves reading payloads.

Version 2 (written now). Big-endian header, then the body:

    HEADER  magic "EIDX" | u16 version=2 | u16 reserved | u64 blk_size | u32 count | u32 n_metas
            | i64 min_ts | i64 max_ts | u64 frames_size | u64 payload_total | u32 crc
    body    n_metas x (u32 meta_len | meta bytes)        distinct metadata JSON of the block
            ts[count]    i64 little-endian               sorted by (ts, payload offset)
            poff[count]  i64 little-endian               payload offset of the frame
            plen[count]  i64 little-endian               payload length
            begin[count] i64 little-endian               payload bytes written to the block before it
            meta[count]  u32 little-endian               index into the metadata list

``crc`` is the CRC-32 (checksum.py) of the header before it and the whole body.

Why packed arrays: loading a block is a few ``array.frombytes`` calls (C speed) instead of one
Python object per record, so a sealed block can be loaded on first use and dropped again (the
store keeps only a bounded number loaded). Little-endian arrays because every target CPU is.

Every frame of the block is listed, including frames removed later through the journal and an
earlier frame whose timestamp was written again (removal is journal state, not block state).
``frames_size`` is the sum of the frames' ReductStore sizes (spec 15.2) before any journal op.

Version 1 (read for migration only): the same header without the totals and one
``i64 ts | u64 frame_offset | u64 payload_len | u32 meta_len | meta`` record per frame in file order.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass, field
from typing import Iterable

from edge.errors import CorruptRecordError
from edge.formats.frame import HEADER as FRAME_HEADER
from edge.formats.frame import decode_meta
from edge.formats.sizes import record_size
from .checksum import crc32

MAGIC = b"EIDX"
VERSION = 2
HEADER_V1 = struct.Struct(">4sHHQII")
assert HEADER_V1.size == 24
RECORD_V1 = struct.Struct(">qQQI")
assert RECORD_V1.size == 28
HEADER = struct.Struct(">4sHHQIIqqQQI")
assert HEADER.size == 60
META_LEN = struct.Struct(">I")
_BIG_ENDIAN_HOST = sys.byteorder == "big"
assert array("q").itemsize == 8 and array("I").itemsize == 4


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One frame of a version-1 index (and the unit ``pack_frames`` takes)."""

    ts_us: int
    frame_offset: int
    payload_len: int
    meta: bytes

    @property
    def payload_offset(self) -> int:
        return self.frame_offset + FRAME_HEADER.size + len(self.meta)


@dataclass(slots=True)
class PackedIndex:
    """The per-record arrays of one block (sorted by ts, then payload offset) and its totals."""

    blk_size: int = 0
    min_ts: int = 0
    max_ts: int = 0
    frames_size: int = 0  # sum of the frames' ReductStore sizes, no journal op applied
    payload_total: int = 0  # payload bytes of all frames (the next frame's ``begin``)
    metas: list[bytes] = field(default_factory=list)
    ts: array = field(default_factory=lambda: array("q"))
    poff: array = field(default_factory=lambda: array("q"))
    plen: array = field(default_factory=lambda: array("q"))
    begin: array = field(default_factory=lambda: array("q"))
    meta: array = field(default_factory=lambda: array("I"))

    def __len__(self) -> int:
        return len(self.ts)


def pack_frames(frames: Iterable[IndexRecord], blk_size: int) -> PackedIndex:
    """Frame headers in file order -> a PackedIndex (``begin`` and sizes as ReductStore counts them)."""
    metas: list[bytes] = []
    meta_ids: dict[bytes, int] = {}
    decoded: list[tuple[str, dict[str, str]]] = []
    rows = []
    begin = total = 0
    for f in frames:
        mid = meta_ids.get(f.meta)
        if mid is None:
            mid = meta_ids[f.meta] = len(metas)
            metas.append(f.meta)
            decoded.append(decode_meta(f.meta))
        ct, labels = decoded[mid]
        total += record_size(f.ts_us, begin, f.payload_len, ct, labels, False)
        rows.append((f.ts_us, f.payload_offset, f.payload_len, begin, mid))
        begin += f.payload_len
    rows.sort()
    p = PackedIndex(blk_size=blk_size, frames_size=total, payload_total=begin, metas=metas)
    if rows:
        ts, poff, plen, beg, mid_col = zip(*rows)
        p.ts, p.poff, p.plen, p.begin, p.meta = (array("q", ts), array("q", poff), array("q", plen),
                                                 array("q", beg), array("I", mid_col))
        p.min_ts, p.max_ts = p.ts[0], p.ts[-1]
    return p


def _le_bytes(a: array) -> bytes:
    if _BIG_ENDIAN_HOST:  # pragma: no cover - no big-endian target today
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _le_array(typecode: str, data: memoryview) -> array:
    a = array(typecode)
    a.frombytes(data)
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        a.byteswap()
    return a


def encode_index(p: PackedIndex) -> bytes:
    parts = []
    for m in p.metas:
        parts.append(META_LEN.pack(len(m)))
        parts.append(m)
    parts += [_le_bytes(p.ts), _le_bytes(p.poff), _le_bytes(p.plen), _le_bytes(p.begin), _le_bytes(p.meta)]
    body = b"".join(parts)
    head = HEADER.pack(MAGIC, VERSION, 0, p.blk_size, len(p.ts), len(p.metas), p.min_ts, p.max_ts,
                       p.frames_size, p.payload_total, 0)[:-4]
    return head + struct.pack(">I", crc32(body, crc32(head))) + body


def body_crc(data: bytes) -> int:
    """The crc an index claims (0 if it is not a version-2 index); the block summary keeps it."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        return 0
    fields = HEADER.unpack_from(data, 0)
    return fields[-1] if fields[1] == VERSION else 0


def version_of(data: bytes) -> int:
    if len(data) < 6 or data[:4] != MAGIC:
        raise CorruptRecordError("Bad index magic")
    return struct.unpack_from(">H", data, 4)[0]


def decode_index(data: bytes) -> PackedIndex:
    """A version-2 index; CorruptRecordError for anything that is not a whole, valid one."""
    if len(data) < HEADER.size:
        raise CorruptRecordError("Index too short")
    (magic, version, _, blk_size, count, n_metas, min_ts, max_ts, frames_size, payload_total,
     crc) = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise CorruptRecordError("Bad index magic or version")
    view = memoryview(data)
    if crc32(view[HEADER.size:], crc32(view[:HEADER.size - 4])) != crc:
        raise CorruptRecordError("Bad index crc")
    pos = HEADER.size
    metas = []
    for _ in range(n_metas):
        if pos + META_LEN.size > len(data):
            raise CorruptRecordError("Index truncated")
        (n,) = META_LEN.unpack_from(data, pos)
        pos += META_LEN.size
        if pos + n > len(data):
            raise CorruptRecordError("Index truncated")
        metas.append(bytes(view[pos:pos + n]))
        pos += n
    if len(data) - pos != count * 36:
        raise CorruptRecordError("Index arrays have the wrong length")
    cols = []
    for typecode, width in (("q", 8), ("q", 8), ("q", 8), ("q", 8), ("I", 4)):
        cols.append(_le_array(typecode, view[pos:pos + count * width]))
        pos += count * width
    p = PackedIndex(blk_size, min_ts, max_ts, frames_size, payload_total, metas, *cols)
    if count and (p.ts[0] != min_ts or p.ts[-1] != max_ts):
        raise CorruptRecordError("Index bounds disagree with its records")
    if count and max(p.meta) >= len(metas):
        raise CorruptRecordError("Index names metadata it does not have")
    return p


def decode_index_v1(data: bytes) -> tuple[int, list[IndexRecord]]:
    """(blk_size, records in file order) of a version-1 index (data folders written before v2)."""
    if len(data) < HEADER_V1.size:
        raise CorruptRecordError("Index too short")
    magic, version, _, blk_size, count, crc = HEADER_V1.unpack_from(data, 0)
    if magic != MAGIC or version != 1:
        raise CorruptRecordError("Bad index magic or version")
    body = memoryview(data)[HEADER_V1.size:]
    if crc32(body) != crc:
        raise CorruptRecordError("Bad index crc")
    records = []
    pos = HEADER_V1.size
    for _ in range(count):
        if pos + RECORD_V1.size > len(data):
            raise CorruptRecordError("Index truncated")
        ts_us, off, plen, mlen = RECORD_V1.unpack_from(data, pos)
        pos += RECORD_V1.size
        if pos + mlen > len(data):
            raise CorruptRecordError("Index truncated")
        records.append(IndexRecord(ts_us, off, plen, bytes(data[pos:pos + mlen])))
        pos += mlen
    if pos != len(data):
        raise CorruptRecordError("Index has trailing bytes")
    return blk_size, records


def encode_index_v1(blk_size: int, records: list[IndexRecord]) -> bytes:
    """Version 1, kept so tests can build a data folder as an older edge wrote it."""
    parts = []
    for r in records:
        parts.append(RECORD_V1.pack(r.ts_us, r.frame_offset, r.payload_len, len(r.meta)))
        parts.append(r.meta)
    body = b"".join(parts)
    return HEADER_V1.pack(MAGIC, 1, 0, blk_size, len(records), crc32(body)) + body
