"""Block summary log (``blocks.sum``): what start-up needs to know of each sealed block.

Owns: the layout below, encode/decode, "read up to the last valid record", and folding the
log into the current state (the last record of a block id wins).
Must not: open files or decide whether to trust a record -- the store checks a record against
the ``.blk`` size and the ``.idx`` it names, and scans the block on any doubt.

Why a log: start-up reads one small file per entry instead of every block's index, so it costs
O(blocks), not O(records) (10M records of 1024 per block: ~10k records of 76 bytes, < 1 MB). A
record is appended when a block is sealed, and a deleted record when it is deleted or unsealed (a
belated write: start-up then checks it against its files); the store rewrites the file
(atomically) once dead records outnumber the live ones.

Layout (big-endian): an 8-byte file header, then fixed-size records:

    FILE    magic "ESUM" | u16 version=1 | u16 reserved
    RECORD  u8 kind (1 sealed, 2 deleted) | u8 0 | u16 0 | i64 block_id | i64 min_ts | i64 max_ts
            | u64 frames | u64 frames_size | u64 payload_total | u64 blk_size | u64 idx_size
            | u32 idx_crc | u32 crc (CRC-32 of the record before it)

``frames``/``frames_size`` count every frame of the block before journal ops (as the index does);
``idx_crc`` is the body crc of the block's version-2 ``.idx``, so an index copied from another
block or left over from an earlier seal is never believed. A deleted record carries only its id.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import crc32

MAGIC = b"ESUM"
VERSION = 1
FILE_HEADER = struct.Struct(">4sHH")
assert FILE_HEADER.size == 8
RECORD = struct.Struct(">BBHqqqQQQQQII")
assert RECORD.size == 76
SEALED, DELETED = 1, 2


@dataclass(frozen=True, slots=True)
class BlockSummary:
    kind: int
    block_id: int
    min_ts: int = 0
    max_ts: int = 0
    frames: int = 0
    frames_size: int = 0
    payload_total: int = 0
    blk_size: int = 0
    idx_size: int = 0
    idx_crc: int = 0


def file_header() -> bytes:
    return FILE_HEADER.pack(MAGIC, VERSION, 0)


def encode_record(s: BlockSummary) -> bytes:
    head = RECORD.pack(s.kind, 0, 0, s.block_id, s.min_ts, s.max_ts, s.frames, s.frames_size,
                       s.payload_total, s.blk_size, s.idx_size, s.idx_crc, 0)[:-4]
    return head + struct.pack(">I", crc32(head))


def encode_file(records: list[BlockSummary]) -> bytes:
    return file_header() + b"".join(encode_record(r) for r in records)


def decode(data: bytes) -> tuple[list[BlockSummary], int, str]:
    """(records, good_end, reason): every valid record from the start, stopping at the first bad
    or short one (``reason`` says why; "" when the whole file is good)."""
    if len(data) < FILE_HEADER.size:
        return [], 0, "summary shorter than its header" if data else ""
    magic, version, reserved = FILE_HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION or reserved != 0:   # reserved: always written 0, so
        return [], 0, "bad summary magic or version"            # a changed byte there is rot
    out: list[BlockSummary] = []
    pos = FILE_HEADER.size
    n = len(data)
    while pos < n:
        if n - pos < RECORD.size:
            return out, pos, f"incomplete summary record at offset {pos}"
        fields = RECORD.unpack_from(data, pos)
        if crc32(data[pos:pos + RECORD.size - 4]) != fields[-1] or fields[0] not in (SEALED, DELETED):
            return out, pos, f"bad summary record at offset {pos}"
        kind, _, _, block_id, min_ts, max_ts, frames, fsize, ptotal, blk_size, idx_size, idx_crc, _ = fields
        out.append(BlockSummary(kind, block_id, min_ts, max_ts, frames, fsize, ptotal, blk_size, idx_size, idx_crc))
        pos += RECORD.size
    return out, pos, ""


def is_torn_tail(data: bytes, good_end: int) -> bool:
    """Is what follows ``good_end`` (where ``decode`` stopped) what a power cut leaves of an
    append: less than one record, or zeros (a file system that extended the file and never
    wrote the page)? Anything else after a good header is damage: a record of the right
    size whose crc fails, or a bad header."""
    if good_end < FILE_HEADER.size:
        return len(data) < FILE_HEADER.size or not data.strip(b"\0")
    tail = data[good_end:]
    return len(tail) < RECORD.size or not tail.strip(b"\0")


def current(records: list[BlockSummary]) -> dict[int, BlockSummary]:
    """Block id -> its sealed summary, after every later record (deleted ones drop out)."""
    state: dict[int, BlockSummary] = {}
    for r in records:
        if r.kind == SEALED:
            state[r.block_id] = r
        else:
            state.pop(r.block_id, None)
    return state
