import zlib

import pytest

from edge.errors import CorruptRecordError
from edge.formats import journal as j
from edge.formats.frame import HEADER, NEED_MORE, decode_frame, decode_head, decode_meta, encode_frame
from edge.formats import summary as sfmt
from edge.formats.index import (IndexRecord, decode_index, decode_index_v1, encode_index, encode_index_v1,
                                pack_frames)
from edge.formats.sizes import record_size
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


def test_scan_resyncs_past_a_damaged_header_at_every_byte():
    frames = [encode_frame(i, bytes([i]) * (20 + i), "x", {"k": str(i)}) for i in range(1, 6)]
    data = b"".join(frames)
    start = len(frames[0]) + len(frames[1])            # frame 3
    for at in range(start, start + HEADER.size + len(decode_frame(frames[2]).head.meta)):
        for x in (0x01, 0x80, 0xFF):
            rotten = bytearray(data)
            rotten[at] ^= x
            plan = scan(bytes(rotten))
            assert [f.head.ts_us for f in plan.frames] == [1, 2, 4, 5], (at, x, plan.reason)
            assert plan.clean and [s_[:2] for s_ in plan.skipped] == [(start, start + len(frames[2]))]


def test_scan_never_takes_a_frame_inside_a_payload_for_a_record():
    # a record whose payload is itself a block file (frames with valid crcs), its header rotten:
    # the frames inside chain to the end of that payload, not of the file, so they are not records
    inner = b"".join(encode_frame(100 + i, b"inner" * 3, "x", {}) for i in range(3))
    outer = [encode_frame(1, b"a" * 10, "x", {}), encode_frame(2, inner, "x", {}), encode_frame(3, b"c" * 10, "x", {})]
    for last in (True, False):                          # the carrier last in the block, or not
        parts = outer if not last else outer[:2]
        rotten = bytearray(b"".join(parts))
        rotten[len(parts[0]) + 2] ^= 0x40               # the carrier's magic
        plan = scan(bytes(rotten))
        got = [f.head.ts_us for f in plan.frames]
        assert not any(ts >= 100 for ts in got), got
        assert got == ([1] if last else [1, 3]), got


def test_scan_resyncs_on_index_offsets_between_several_damaged_headers():
    frames = [encode_frame(i, bytes([i]) * 30, "x", {}) for i in range(1, 8)]
    offsets, pos = [], 0
    for f in frames:
        offsets.append(pos)
        pos += len(f)
    rotten = bytearray(b"".join(frames))
    for k in (1, 3, 6):                                 # frames 2, 4 and the last one, 7
        rotten[offsets[k] + 10] ^= 0x22
    assert [f.head.ts_us for f in scan(bytes(rotten)).frames] == [1]      # no proof: torn after 1
    plan = scan(bytes(rotten), hints=offsets)
    assert [f.head.ts_us for f in plan.frames] == [1, 3, 5, 6]
    assert len(plan.skipped) == 2 and plan.good_end == offsets[6] and "crc" in plan.reason


def test_summary_header_reserved_bytes_are_checked():
    data = sfmt.encode_file([sfmt.BlockSummary(sfmt.SEALED, 5, 1, 2, 1, 10, 10, 40, 0, 0)])
    assert sfmt.decode(data)[1] == len(data)
    rotten = bytearray(data)
    rotten[7] ^= 1
    records, end, reason = sfmt.decode(bytes(rotten))
    assert (records, end) == ([], 0) and reason and not sfmt.is_torn_tail(bytes(rotten), end)


def test_index_roundtrip_and_corruption():
    m1, m2 = b'{"c":"x","l":{}}', b'{"c":"y","l":{"a":"b"}}'
    recs = [IndexRecord(6, 0, 10, m1), IndexRecord(5, 100, 3, m2), IndexRecord(6, 200, 7, m1)]
    p = pack_frames(recs, 300)
    # sorted by (ts, offset); begin = payload bytes before the frame in file order
    assert list(p.ts) == [5, 6, 6] and list(p.begin) == [10, 0, 13] and list(p.plen) == [3, 10, 7]
    assert list(p.poff) == [100 + HEADER.size + len(m2), HEADER.size + len(m1), 200 + HEADER.size + len(m1)]
    assert p.metas == [m1, m2] and list(p.meta) == [1, 0, 0]
    assert (p.min_ts, p.max_ts, p.payload_total) == (5, 6, 20)
    assert p.frames_size == (record_size(6, 0, 10, "x", {}, False) + record_size(5, 10, 3, "y", {"a": "b"}, False)
                             + record_size(6, 13, 7, "x", {}, False))
    data = encode_index(p)
    q = decode_index(data)
    assert (q.blk_size, q.metas, list(q.ts), list(q.poff), list(q.plen), list(q.begin), list(q.meta)) == (
        300, p.metas, list(p.ts), list(p.poff), list(p.plen), list(p.begin), list(p.meta))
    assert (q.frames_size, q.payload_total, q.min_ts, q.max_ts) == (p.frames_size, 20, 5, 6)
    for k in (0, 8, 30, len(data) - 1):
        bad = bytearray(data)
        bad[k] ^= 1
        with pytest.raises(CorruptRecordError):
            decode_index(bytes(bad))
    with pytest.raises(CorruptRecordError):
        decode_index(data[:-1])
    # version 1 (folders written before version 2) still reads
    v1 = encode_index_v1(300, recs)
    assert decode_index_v1(v1) == (300, recs)
    with pytest.raises(CorruptRecordError):
        decode_index(v1)
    assert recs[0].payload_offset == HEADER.size + len(recs[0].meta)


def test_summary_roundtrip_tear_and_fold():
    a = sfmt.BlockSummary(sfmt.SEALED, 1, 1, 9, 5, 500, 400, 700, 300, 0xDEADBEEF)
    b = sfmt.BlockSummary(sfmt.SEALED, 10, 10, 19, 5, 500, 400, 700, 300, 7)
    data = sfmt.encode_file([a, b, sfmt.BlockSummary(sfmt.DELETED, 1)])
    recs, end, reason = sfmt.decode(data)
    assert end == len(data) and reason == "" and recs[:2] == [a, b]
    assert sfmt.current(recs) == {10: b}
    recs, end, reason = sfmt.decode(data[:-3])
    assert len(recs) == 2 and end == len(data) - sfmt.RECORD.size and "incomplete" in reason
    bad = bytearray(data)
    bad[sfmt.FILE_HEADER.size + sfmt.RECORD.size + 20] ^= 1
    recs, end, reason = sfmt.decode(bytes(bad))
    assert recs == [a] and "bad summary record" in reason
    assert sfmt.decode(b"XXXX\0\1\0\0")[0] == [] and sfmt.decode(b"") == ([], 0, "")


def test_journal_roundtrip_and_tear():
    ops = [j.JournalOp(j.OP_LABELS, 1, 1, 28, {"x": "y"}), j.JournalOp(j.OP_REMOVE, 2, 1, 60),
           j.JournalOp(j.OP_LABELS, 3, 1, 90, {"k": "v"}, size=60, orig=50),
           j.JournalOp(j.OP_REMOVE, 4, 1, 120, size=60, orig=50)]
    data = b"".join(j.encode_op(o) for o in ops)
    assert j.decode_ops(data) == (ops, len(data), "")
    got, end, reason = j.decode_ops(data[:-2])
    assert got == ops[:3] and end == sum(len(j.encode_op(o)) for o in ops[:3]) and reason
    bad = bytearray(data)
    bad[10] ^= 1
    assert j.decode_ops(bytes(bad))[0] == []
