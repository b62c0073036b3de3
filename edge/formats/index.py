"""Block index files (``<block_id>.idx``): a cache of the frame headers of a sealed block.

Owns: the byte layout below and its encode/decode.
Must not: open files or decide whether to trust an index -- the store compares ``blk_size``
with the real ``.blk`` size (and spot-checks the last frame) and rescans the block on any doubt.
The ``.blk`` is the truth; an ``.idx`` only saves reading payloads at startup.

Layout (big-endian):

    HEADER   magic "EIDX" | u16 version | u16 reserved | u64 blk_size | u32 count | u32 body_crc
    count x  RECORD i64 ts_us | u64 frame_offset | u64 payload_len | u32 meta_len | meta bytes

``body_crc`` is zlib.crc32 of everything after the header. Records are in file order, one per
frame in the block, including frames removed later through the journal (removal is journal state,
not block state).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from edge.errors import CorruptRecordError
from edge.formats.frame import HEADER as FRAME_HEADER
from .checksum import crc32

MAGIC = b"EIDX"
VERSION = 1
HEADER = struct.Struct(">4sHHQII")
assert HEADER.size == 24
RECORD = struct.Struct(">qQQI")
assert RECORD.size == 28


@dataclass(frozen=True, slots=True)
class IndexRecord:
    ts_us: int
    frame_offset: int
    payload_len: int
    meta: bytes

    @property
    def payload_offset(self) -> int:
        return self.frame_offset + FRAME_HEADER.size + len(self.meta)


def encode_index(blk_size: int, records: list[IndexRecord]) -> bytes:
    parts = []
    for r in records:
        parts.append(RECORD.pack(r.ts_us, r.frame_offset, r.payload_len, len(r.meta)))
        parts.append(r.meta)
    body = b"".join(parts)
    return HEADER.pack(MAGIC, VERSION, 0, blk_size, len(records), crc32(body)) + body


def decode_index(data: bytes) -> tuple[int, list[IndexRecord]]:
    """(blk_size, records); CorruptRecordError for anything that is not a whole, valid index."""
    if len(data) < HEADER.size:
        raise CorruptRecordError("Index too short")
    magic, version, _, blk_size, count, crc = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise CorruptRecordError("Bad index magic or version")
    body = memoryview(data)[HEADER.size :]
    if crc32(body) != crc:
        raise CorruptRecordError("Bad index crc")
    records = []
    pos = HEADER.size
    for _ in range(count):
        if pos + RECORD.size > len(data):
            raise CorruptRecordError("Index truncated")
        ts_us, off, plen, mlen = RECORD.unpack_from(data, pos)
        pos += RECORD.size
        if pos + mlen > len(data):
            raise CorruptRecordError("Index truncated")
        records.append(IndexRecord(ts_us, off, plen, bytes(data[pos : pos + mlen])))
        pos += mlen
    if pos != len(data):
        raise CorruptRecordError("Index has trailing bytes")
    return blk_size, records
