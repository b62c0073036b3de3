import zlib

import pytest

from edge.errors import CorruptRecordError
from edge.formats import journal as j
from edge.formats.frame import HEADER, NEED_MORE, decode_frame, decode_head, decode_meta, encode_frame
from edge.formats.index import IndexRecord, decode_index, encode_index
from edge.formats.recovery import scan


def test_frame_roundtrip():
    data = encode_frame(123, b"hello", "text/plain", {"a": "b"})
    f = decode_frame(data)
    assert f.head.ts_us == 123 and f.head.payload_len == 5
    assert decode_meta(f.head.meta) == ("text/plain", {"a": "b"})
    assert data[f.payload_offset : f.payload_offset + 5] == b"hello"
    assert f.end == len(data) and f.payload_crc == zlib.crc32(b"hello")


def test_frame_short_is_need_more():
    data = encode_frame(1, b"abc", "x", {})
    for n in range(len(data)):
        assert decode_frame(data[:n]) is NEED_MORE


def test_frame_bad_payload_crc():
    data = bytearray(encode_frame(1, b"abc", "x", {}))
    data[-5] ^= 1
    with pytest.raises(CorruptRecordError):
        decode_frame(bytes(data))
    assert decode_frame(bytes(data), verify_payload=False) is not NEED_MORE


def test_frame_bad_header():
    data = bytearray(encode_frame(1, b"abc", "x", {}))
    data[5] ^= 1
    with pytest.raises(CorruptRecordError):
        decode_head(bytes(data))
    with pytest.raises(CorruptRecordError):
        decode_head(b"XXXX")


def test_scan_stops_at_tear():
    a = encode_frame(1, b"a" * 10, "x", {})
    b = encode_frame(2, b"b" * 10, "x", {})
    plan = scan(a + b[:-3])
    assert plan.good_end == len(a) and len(plan.frames) == 1 and plan.torn_bytes == len(b) - 3
    assert scan(a + b).clean


def test_scan_skips_a_damaged_payload_when_good_frames_follow():
    a, b, c = (encode_frame(i, bytes([i]) * 10, "x", {}) for i in (1, 2, 3))
    rotten = bytearray(a + b + c)
    rotten[len(a) + len(b) - 8] ^= 0xFF  # inside b's payload: its header (and length) still check out
    plan = scan(bytes(rotten))
    assert [f.head.ts_us for f in plan.frames] == [1, 3] and [f.head.ts_us for f in plan.damaged] == [2]
    assert plan.good_end == len(rotten) and plan.torn_bytes == 0


def test_scan_tears_a_damaged_payload_at_the_end():
    a, b = (encode_frame(i, bytes([i]) * 10, "x", {}) for i in (1, 2))
    rotten = bytearray(a + b)
    rotten[-8] ^= 0xFF  # the last frame: a write never acknowledged, not rot in the middle
    plan = scan(bytes(rotten))
    assert [f.head.ts_us for f in plan.frames] == [1] and plan.damaged == []
    assert plan.good_end == len(a) and plan.torn_bytes == len(b) and "Bad payload crc" in plan.reason


def test_index_roundtrip_and_corruption():
    recs = [IndexRecord(5, 0, 10, b'{"c":"x","l":{}}'), IndexRecord(6, 50, 3, b"{}")]
    data = encode_index(100, recs)
    assert decode_index(data) == (100, recs)
    assert recs[0].payload_offset == HEADER.size + len(recs[0].meta)
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        decode_index(bytes(bad))
    with pytest.raises(CorruptRecordError):
        decode_index(data[:-1])


def test_journal_roundtrip_and_tear():
    ops = [j.JournalOp(j.OP_LABELS, 1, 1, 28, {"x": "y"}), j.JournalOp(j.OP_REMOVE, 2, 1, 60)]
    data = b"".join(j.encode_op(o) for o in ops)
    assert j.decode_ops(data) == (ops, len(data), "")
    got, end, reason = j.decode_ops(data[:-2])
    assert got == ops[:1] and end == len(j.encode_op(ops[0])) and reason
    bad = bytearray(data)
    bad[10] ^= 1
    assert j.decode_ops(bytes(bad))[0] == []
