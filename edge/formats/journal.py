"""Entry journal (``journal.log``): metadata changes to records already in blocks.

Owns: the op layout below, encode/decode, "replay up to the last valid frame".
Must not: open files or apply ops -- store/entry.py replays, truncates torn tails and compacts.

Layout (big-endian), one frame per op:

    HEADER  u32 body_len | u8 op | i64 ts_us | i64 block_id | u64 payload_offset
    body    op LABELS: compact JSON object of the record's full labels after the update
            op REMOVE: empty
    u32 crc zlib.crc32 over HEADER and body

An op names its record by (block_id, payload_offset) as well as ts: a timestamp can be reused
after a removal, a frame position cannot (while its block exists). LABELS carries the full label
set, not the delta, so replay is idempotent and compaction keeps one op per record.
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


def encode_op(op: JournalOp) -> bytes:
    body = b""
    if op.op == OP_LABELS:
        body = json.dumps(dict(op.labels), separators=(",", ":"), ensure_ascii=False).encode()
    elif op.op != OP_REMOVE:
        raise ValueError(f"unknown journal op {op.op}")
    head = HEADER.pack(len(body), op.op, op.ts_us, op.block_id, op.payload_offset)
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
        if body_len > MAX_BODY or op not in (OP_LABELS, OP_REMOVE):
            return ops, pos, f"bad journal op at offset {pos}"
        end = pos + HEADER.size + body_len + CRC.size
        if end > n:
            return ops, pos, f"incomplete journal op at offset {pos}"
        (crc,) = CRC.unpack_from(data, end - CRC.size)
        if crc32(data[pos : end - CRC.size]) != crc:
            return ops, pos, f"bad journal crc at offset {pos}"
        labels: dict[str, str] = {}
        if op == OP_LABELS:
            try:
                labels = json.loads(data[pos + HEADER.size : end - CRC.size])
            except ValueError:
                return ops, pos, f"bad journal labels at offset {pos}"
            if not isinstance(labels, dict):
                return ops, pos, f"bad journal labels at offset {pos}"
        ops.append(JournalOp(op, ts_us, block_id, poff, labels))
        pos = end
    return ops, pos, ""


def decode_ops_strict(data: bytes) -> list[JournalOp]:
    ops, end, reason = decode_ops(data)
    if end != len(data):
        raise CorruptRecordError(reason)
    return ops
