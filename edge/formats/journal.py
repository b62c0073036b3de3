"""Entry journal (``journal.log``): metadata changes to records already in blocks.

Owns: the op layout below, encode/decode, "replay up to the last valid frame".
Must not: open files or apply ops -- store/entry.py replays, truncates torn tails and compacts.

Layout (big-endian), one frame per op:

    HEADER  u32 body_len | u8 op | i64 ts_us | i64 block_id | u64 payload_offset
    body    op LABELS (3): i64 size | i64 orig | compact JSON object of the record's full labels
            op REMOVE (4): i64 size | i64 orig
    u32 crc CRC-32 (checksum.py) over HEADER and body

An op names its record by (block_id, payload_offset) as well as ts: a timestamp can be reused
after a removal, a frame position cannot (while its block exists). LABELS carries the full label
set, not the delta, so replay is idempotent and compaction keeps one op per record.

``size`` is the record's ReductStore size (spec 15.2) after a LABELS op, or the size a REMOVE
takes away; ``orig`` is the size of its frame before any op. With them start-up can keep
entry and bucket sizes exact without loading the index of the block an op names.

Ops 1 (LABELS) and 2 (REMOVE) are the same without the two sizes: journals written before the
sizes existed still replay (the store then loads the named block's index to learn them).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Mapping

from edge.errors import CorruptRecordError
from .checksum import crc32

OP_LABELS = 1
OP_REMOVE = 2
_SIZED = {OP_LABELS: 3, OP_REMOVE: 4}  # op -> its code with sizes
_UNSIZED = {3: OP_LABELS, 4: OP_REMOVE}
SIZES = struct.Struct(">qq")
HEADER = struct.Struct(">IBqqQ")
assert HEADER.size == 29
CRC = struct.Struct(">I")
assert CRC.size == 4
MAX_BODY = 1 << 22


@dataclass(frozen=True, slots=True)
class JournalOp:
    op: int
    ts_us: int
    block_id: int
    payload_offset: int
    labels: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None  # see the module header; None only in ops read from an old journal
    orig: int | None = None


def encode_op(op: JournalOp) -> bytes:
    body = b""
    if op.op == OP_LABELS:
        body = json.dumps(dict(op.labels), separators=(",", ":"), ensure_ascii=False).encode()
    elif op.op != OP_REMOVE:
        raise ValueError(f"unknown journal op {op.op}")
    code = op.op
    if op.size is not None:
        body = SIZES.pack(op.size, op.orig if op.orig is not None else op.size) + body
        code = _SIZED[op.op]
    head = HEADER.pack(len(body), code, op.ts_us, op.block_id, op.payload_offset)
    return head + body + CRC.pack(crc32(body, crc32(head)))


def decode_ops(data: bytes) -> tuple[list[JournalOp], int, str]:
    """(ops, good_end, reason): every valid op from the start; stops at the first bad or short one."""
    ops: list[JournalOp] = []
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < HEADER.size:
            return ops, pos, f"incomplete journal op at offset {pos}"
        body_len, op, ts_us, block_id, poff = HEADER.unpack_from(data, pos)
        if body_len > MAX_BODY or op not in (OP_LABELS, OP_REMOVE, 3, 4):
            return ops, pos, f"bad journal op at offset {pos}"
        end = pos + HEADER.size + body_len + CRC.size
        if end > n:
            return ops, pos, f"incomplete journal op at offset {pos}"
        (crc,) = CRC.unpack_from(data, end - CRC.size)
        if crc32(data[pos : end - CRC.size]) != crc:
            return ops, pos, f"bad journal crc at offset {pos}"
        labels: dict[str, str] = {}
        size = orig = None
        body_start = pos + HEADER.size
        if op in _UNSIZED:
            if body_len < SIZES.size:
                return ops, pos, f"bad journal op at offset {pos}"
            size, orig = SIZES.unpack_from(data, body_start)
            body_start += SIZES.size
            op = _UNSIZED[op]
        if op == OP_LABELS:
            try:
                labels = json.loads(data[body_start : end - CRC.size])
            except ValueError:
                return ops, pos, f"bad journal labels at offset {pos}"
            if not isinstance(labels, dict):
                return ops, pos, f"bad journal labels at offset {pos}"
        elif body_start != end - CRC.size:
            return ops, pos, f"bad journal op at offset {pos}"
        ops.append(JournalOp(op, ts_us, block_id, poff, labels, size, orig))
        pos = end
    return ops, pos, ""


def decode_ops_strict(data: bytes) -> list[JournalOp]:
    ops, end, reason = decode_ops(data)
    if end != len(data):
        raise CorruptRecordError(reason)
    return ops
