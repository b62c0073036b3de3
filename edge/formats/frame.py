"""Record frames: the bytes of one record inside a block file (``<block_id>.blk``).

Owns: the frame layout below, encode/decode, the checksum rules, the metadata JSON.
Must not: open files, know about buckets, quotas or HTTP, import trio.

Layout (big-endian), see HEADER and TRAILER:

    offset  size  field
    0       4     magic        0x45444731 ("EDG1")
    4       8     ts_us        u64 record timestamp
    12      8     payload_len  u64
    20      4     meta_len     u32 length of the meta JSON
    24      4     header_crc   u32 CRC-32 (checksum.py) over bytes 0..23 and the meta bytes
    28      M     meta         compact JSON {"c": content_type, "l": {label: value}}
    28+M    P     payload
    28+M+P  4     payload_crc  u32 CRC-32 (checksum.py) of the payload

Why two crcs: the header crc lets the index be rebuilt and metadata served without reading
payloads, and the trailing payload crc can be computed while a payload streams in, before its
end is known to be reached.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Mapping

from edge.errors import CorruptRecordError
from .checksum import crc32

MAGIC = 0x45444731
HEADER = struct.Struct(">IQQII")  # magic, ts_us, payload_len, meta_len, header_crc
assert HEADER.size == 28
TRAILER = struct.Struct(">I")  # payload_crc
assert TRAILER.size == 4

# Metadata is labels + content type; anything bigger is garbage that happens to follow a magic.
MAX_META_LEN = 1 << 22


class _NeedMore:
    """Marker: the buffer ends inside a frame; more bytes are needed to decide."""

    _instance: "_NeedMore | None" = None

    def __new__(cls) -> "_NeedMore":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_MORE"

    def __bool__(self) -> bool:
        return False


NEED_MORE = _NeedMore()


# Strings json.dumps(ensure_ascii=False) writes as they are between quotes.
_JSON_PLAIN_RE = re.compile(r'[^"\\\x00-\x1f]*')


def encode_meta(content_type: str, labels: Mapping[str, str]) -> bytes:
    # Fast path (every string plain ASCII): exactly json.dumps's bytes, ~4x cheaper per record.
    plain = _JSON_PLAIN_RE.fullmatch
    if content_type.isascii() and plain(content_type) is not None:
        parts = []
        for k, v in labels.items():
            if not (k.isascii() and v.isascii() and plain(k) is not None and plain(v) is not None):
                break
            parts.append(f'"{k}":"{v}"')
        else:
            return f'{{"c":"{content_type}","l":{{{",".join(parts)}}}}}'.encode()
    return json.dumps(
        {"c": content_type, "l": dict(labels)}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def decode_meta(meta: bytes) -> tuple[str, dict[str, str]]:
    try:
        obj = json.loads(meta)
        content_type = obj["c"]
        labels = obj["l"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecordError(f"Bad record metadata: {exc}") from None
    if not isinstance(content_type, str) or not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise CorruptRecordError("Bad record metadata: wrong types")
    return content_type, labels


@dataclass(frozen=True, slots=True)
class FrameHead:
    ts_us: int
    payload_len: int
    meta: bytes  # raw meta JSON; decode_meta() turns it into (content_type, labels)

    @property
    def head_len(self) -> int:
        return HEADER.size + len(self.meta)

    @property
    def frame_len(self) -> int:
        return HEADER.size + len(self.meta) + self.payload_len + TRAILER.size


@dataclass(frozen=True, slots=True)
class Frame:
    head: FrameHead
    offset: int  # of the magic inside the buffer that was decoded
    payload_crc: int

    @property
    def payload_offset(self) -> int:
        return self.offset + self.head.head_len

    @property
    def end(self) -> int:
        return self.offset + self.head.frame_len


def encode_head(ts_us: int, payload_len: int, meta: bytes) -> bytes:
    """Header + meta; the payload and encode_trailer() follow it."""
    if ts_us < 0 or payload_len < 0 or len(meta) > MAX_META_LEN:
        raise ValueError("frame field out of range")
    fixed = HEADER.pack(MAGIC, ts_us, payload_len, len(meta), 0)[:24]
    crc = crc32(meta, crc32(fixed))
    return fixed + struct.pack(">I", crc) + meta


def encode_trailer(payload_crc: int) -> bytes:
    return TRAILER.pack(payload_crc & 0xFFFFFFFF)


def encode_frame(ts_us: int, payload: bytes, content_type: str, labels: Mapping[str, str]) -> bytes:
    return (
        encode_head(ts_us, len(payload), encode_meta(content_type, labels))
        + payload
        + encode_trailer(crc32(payload))
    )


def decode_head(buf: bytes | memoryview, pos: int = 0) -> FrameHead | _NeedMore:
    """Decode and check the header + meta at ``pos``; the payload is not looked at."""
    if len(buf) - pos < HEADER.size:
        # A short tail is only "incomplete" if what we have could start a frame.
        have = bytes(buf[pos : pos + 4])
        if have != struct.pack(">I", MAGIC)[: len(have)]:
            raise CorruptRecordError(f"Bad frame magic at offset {pos}")
        return NEED_MORE
    magic, ts_us, payload_len, meta_len, header_crc = HEADER.unpack_from(buf, pos)
    if magic != MAGIC:
        raise CorruptRecordError(f"Bad frame magic at offset {pos}")
    if meta_len > MAX_META_LEN:
        raise CorruptRecordError(f"Bad frame meta length {meta_len} at offset {pos}")
    meta_end = pos + HEADER.size + meta_len
    if len(buf) < meta_end:
        # The crc is checked before trusting meta_len for anything but "how much to wait for".
        return NEED_MORE
    meta = bytes(buf[pos + HEADER.size : meta_end])
    crc = crc32(meta, crc32(buf[pos : pos + 24]))
    if crc != header_crc:
        raise CorruptRecordError(f"Bad frame header crc at offset {pos}")
    return FrameHead(ts_us, payload_len, meta)


def decode_frame(buf: bytes | memoryview, pos: int = 0, verify_payload: bool = True) -> Frame | _NeedMore:
    """A whole frame at ``pos``: NEED_MORE if cut short, CorruptRecordError if bad."""
    head = decode_head(buf, pos)
    if head is NEED_MORE:
        return NEED_MORE
    assert isinstance(head, FrameHead)
    payload_start = pos + head.head_len
    end = payload_start + head.payload_len + TRAILER.size
    if len(buf) < end:
        return NEED_MORE
    (payload_crc,) = TRAILER.unpack_from(buf, end - TRAILER.size)
    frame = Frame(head, pos, payload_crc)
    if verify_payload and not payload_ok(buf, frame):
        raise CorruptRecordError(f"Bad payload crc of record {head.ts_us} at offset {pos}")
    return frame


def payload_ok(buf: bytes | memoryview, frame: Frame) -> bool:
    """Does the payload of a decoded ``frame`` inside ``buf`` match its crc?"""
    start = frame.payload_offset
    return crc32(buf[start : start + frame.head.payload_len]) == frame.payload_crc
