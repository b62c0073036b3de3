"""Record sizes as ReductStore reports them (spec section 15.2).

Owns: the protobuf-length arithmetic that makes entry/bucket ``size`` match ReductStore
byte for byte (8-byte record at 1 s -> 40, etc.).
Must not: do I/O or know how edge itself stores records -- the numbers describe upstream's
descriptor, not our frames.
"""

from __future__ import annotations

from typing import Mapping


def varint_len(n: int) -> int:
    """Bytes of ``n`` (>= 0) as a protobuf varint."""
    return 1 if n < 0x80 else (n.bit_length() + 6) // 7


def _string_field(s: str) -> int:
    if not s:
        return 0
    b = len(s) if s.isascii() else len(s.encode())
    return (2 if b < 0x80 else 1 + (b.bit_length() + 6) // 7) + b


def labels_meta_size(content_type: str, labels: Mapping[str, str]) -> int:
    """The part of a Record descriptor that depends on its metadata only (labels, content type):
    the same for every record with the same metadata, so callers may keep it."""
    total = 0
    for name, value in labels.items():
        n = len(name) if name.isascii() else len(name.encode())
        v = len(value) if value.isascii() else len(value.encode())
        body = ((2 if n < 0x80 else 1 + (n.bit_length() + 6) // 7) + n if n else 0) + (
            (2 if v < 0x80 else 1 + (v.bit_length() + 6) // 7) + v if v else 0)
        total += (2 if body < 0x80 else 1 + (body.bit_length() + 6) // 7) + body
    return total + _string_field(content_type)


def fixed_meta_size(ts_us: int, begin: int, size: int, updated: bool) -> int:
    """The rest of the descriptor: timestamp, begin, end, state."""
    seconds, micros = divmod(ts_us, 1_000_000)
    ts_body = 0
    if seconds:
        ts_body = 2 if seconds < 0x80 else 1 + (seconds.bit_length() + 6) // 7
    if micros:
        nanos = micros * 1000
        ts_body += 2 if nanos < 0x80 else 1 + (nanos.bit_length() + 6) // 7
    total = 2 + ts_body  # ts_body < 128 always (two varints of at most 10 bytes)
    end = begin + size
    if begin:
        total += 2 if begin < 0x80 else 1 + (begin.bit_length() + 6) // 7
    if end:
        total += 2 if end < 0x80 else 1 + (end.bit_length() + 6) // 7
    if updated:
        total += 2  # state FINISHED is written when the descriptor is re-encoded on a label update
    return total


def record_meta_size(
    ts_us: int, begin: int, size: int, content_type: str, labels: Mapping[str, str], updated: bool
) -> int:
    """Length of upstream's Record descriptor: timestamp, begin, end, state, labels, content_type."""
    return fixed_meta_size(ts_us, begin, size, updated) + labels_meta_size(content_type, labels)


def record_size(ts_us: int, begin: int, size: int, content_type: str, labels: Mapping[str, str], updated: bool) -> int:
    """Payload + descriptor: what one record adds to entry ``size``."""
    return size + record_meta_size(ts_us, begin, size, content_type, labels, updated)
