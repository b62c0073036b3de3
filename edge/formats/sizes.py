"""Record sizes as ReductStore reports them (spec section 15.2).

Owns: the protobuf-length arithmetic that makes entry/bucket ``size`` match ReductStore
byte for byte (8-byte record at 1 s -> 40, etc.).
Must not: do I/O or know how edge itself stores records -- the numbers describe upstream's
descriptor, not our frames.
"""

from __future__ import annotations

from typing import Mapping


def varint_len(n: int) -> int:
    length = 1
    while n >= 0x80:
        n >>= 7
        length += 1
    return length


def _string_field(s: str) -> int:
    if not s:
        return 0
    b = len(s.encode())
    return 1 + varint_len(b) + b


def record_meta_size(
    ts_us: int, begin: int, size: int, content_type: str, labels: Mapping[str, str], updated: bool
) -> int:
    """Length of upstream's Record descriptor: timestamp, begin, end, state, labels, content_type."""
    seconds, micros = divmod(ts_us, 1_000_000)
    nanos = micros * 1000
    ts_body = (1 + varint_len(seconds) if seconds else 0) + (1 + varint_len(nanos) if nanos else 0)
    total = 1 + varint_len(ts_body) + ts_body
    end = begin + size
    if begin:
        total += 1 + varint_len(begin)
    if end:
        total += 1 + varint_len(end)
    if updated:
        total += 2  # state FINISHED is written when the descriptor is re-encoded on a label update
    for name, value in labels.items():
        body = _string_field(name) + _string_field(value)
        total += 1 + varint_len(body) + body
    total += _string_field(content_type)
    return total


def record_size(ts_us: int, begin: int, size: int, content_type: str, labels: Mapping[str, str], updated: bool) -> int:
    """Payload + descriptor: what one record adds to entry ``size``."""
    return size + record_meta_size(ts_us, begin, size, content_type, labels, updated)
