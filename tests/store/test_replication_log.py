"""The replication transaction log: order, cursor, compaction, bound, recovery of torn tails."""

from __future__ import annotations

import os

from edge.replication.log import UPDATE, WRITE, ReplicationLog


def test_append_read_commit_and_reopen(tmp_path):
    log = ReplicationLog.open(tmp_path / "r", segment_events=10)
    for i in range(25):
        log.append(WRITE, "e/x", i)
    log.append(UPDATE, "e/x", 3, {"k": "v", "gone": ""})
    assert log.pending == 26 and log.segment_count() == 3
    events = log.read(100)
    assert [e.ts_us for e in events[:25]] == list(range(25))
    assert events[-1].update == {"k": "v", "gone": ""} and events[-1].entry == "e/x"
    log.commit(events[14].seq + 1)
    assert log.pending == 11 and log.segment_count() == 2   # the first segment is gone
    log.close()
    log = ReplicationLog.open(tmp_path / "r", segment_events=10)
    assert [e.ts_us for e in log.read(5)] == [15, 16, 17, 18, 19]
    log.rewind()
    assert log.read(1)[0].ts_us == 15
    log.close()


def test_bounded_drops_oldest_and_counts(tmp_path):
    log = ReplicationLog.open(tmp_path / "r", limit=100, segment_events=16)
    for i in range(1000):
        log.append(WRITE, "e", i)
    assert log.pending == 100 and log.dropped == 900
    assert log.segment_count() <= 100 // 16 + 2
    assert log.read(1)[0].ts_us == 900
    log.close()
    assert ReplicationLog.open(tmp_path / "r", limit=100).dropped == 900


def test_torn_tail_is_truncated(tmp_path):
    log = ReplicationLog.open(tmp_path / "r")
    for i in range(10):
        log.append(WRITE, "e", i)
    log.close()
    seg = next(p for p in (tmp_path / "r").iterdir() if p.suffix == ".seg")
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - 3)   # the last frame never completed
    log = ReplicationLog.open(tmp_path / "r")
    assert log.pending == 9 and log.recovered_bytes > 0
    log.append(WRITE, "e", 99)
    assert [e.ts_us for e in log.read(100)] == list(range(9)) + [99]


def test_corrupt_cursor_falls_back_to_oldest(tmp_path):
    log = ReplicationLog.open(tmp_path / "r")
    for i in range(5):
        log.append(WRITE, "e", i)
    log.commit(3)
    log.close()
    with open(tmp_path / "r" / "cursor", "wb") as f:
        f.write(os.urandom(64))
    log = ReplicationLog.open(tmp_path / "r")
    assert log.pending == 5   # re-sent: harmless, the destination answers 409


def test_durability_names_the_segment(tmp_path):
    log = ReplicationLog.open(tmp_path / "r")
    d = log.append(WRITE, "e", 1)
    assert not d.empty
    d.sync()


def test_damage_in_an_older_segment_is_reported_and_skipped(tmp_path):
    # Older segments are complete by construction: a reader that reaches the end of one early
    # has met damaged frames. It says which events it could not read and goes on with the next.
    log = ReplicationLog.open(tmp_path / "r", segment_events=10)
    for i in range(25):
        log.append(WRITE, "e", i)
    log.close()
    first = sorted(p for p in (tmp_path / "r").iterdir() if p.suffix == ".seg")[0]
    raw = bytearray(first.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    first.write_bytes(bytes(raw))
    log = ReplicationLog.open(tmp_path / "r", segment_events=10)
    assert log.report == []                    # the last segment is fine; older ones are read lazily
    got = [e.ts_us for e in log.read(100)]
    assert got[:3] == [0, 1, 2] and got[-15:] == list(range(10, 25)) and len(got) < 25
    assert log.damaged_events == 25 - len(got)
    assert any("cannot be read" in line and first.name in line for line in log.report), log.report
    log.close()


def test_reads_decode_only_what_they_return(tmp_path, monkeypatch):
    """A read of a few events from a long segment decodes those few, not the whole chunk: the
    sender reads 1024 at a time from logs of up to a million (decoding every frame of each 1 MiB
    chunk at every read made catch-up quadratic). Frames before the cursor are skipped undecoded."""
    import edge.replication.log as rlog

    log = ReplicationLog.open(tmp_path / "r")
    for i in range(5000):
        log.append(WRITE, "e", i)
    made: list[int] = []
    real = rlog.Event

    def counting(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rlog, "Event", counting)
    got = [e.ts_us for e in log.read(10)]
    assert got == list(range(10)) and len(made) == 10
    assert [e.ts_us for e in log.read(3)] == [10, 11, 12] and len(made) == 13
    log.commit(4000)
    log.rewind()   # reading from the segment's start again: the 4000 delivered frames are skipped
    assert [e.ts_us for e in log.read(2)] == [4000, 4001] and len(made) == 15
    events = log.read(10_000)
    assert [e.ts_us for e in events] == list(range(4002, 5000))
    log.close()


def test_decode_frames_limit_and_min_seq():
    from edge.replication.log import decode_frames, encode

    data = b"".join(encode(seq, WRITE, "e", 100 + seq) for seq in range(10))
    one = len(encode(0, WRITE, "e", 100))
    events, used = decode_frames(data, 3)
    assert [e.seq for e in events] == [0, 1, 2] and used == 3 * one
    events, used = decode_frames(data, 2, min_seq=5)
    assert [e.seq for e in events] == [5, 6] and used == 7 * one
    events, used = decode_frames(data)
    assert len(events) == 10 and used == len(data)
