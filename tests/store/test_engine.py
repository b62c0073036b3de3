import errno
import os

import pytest

from edge.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    CorruptRecordError,
    DiskFullError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
)
from edge.model import BucketSettings, QuotaType
from edge.store import Engine

OCT = "application/octet-stream"


def put(entry, ts, data, labels=None, ct=OCT):
    w = entry.begin_write(ts, len(data), ct, labels or {})
    for i in range(0, len(data), 1000) or [0]:
        w.write(data[i : i + 1000])
    w.finish()
    d = entry.flush()
    d.sync()


def read(entry, ts):
    return b"".join(entry.read_payload(entry.get(ts)))


@pytest.fixture
def engine(tmp_path):
    e = Engine.open(tmp_path)
    yield e
    e.close()


def reopen(engine, **kw):
    engine.close()
    return Engine.open(engine.data_path, **kw)


def test_write_reopen_identical(engine):
    b = engine.create_bucket("b", BucketSettings())
    e = b.get_or_create_entry("e")
    payloads = {ts: os.urandom(ts % 5000) for ts in range(1000, 1100)}
    for ts, p in payloads.items():
        put(e, ts, p, {"k": str(ts)})
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == sorted(payloads)
    for ts, p in payloads.items():
        assert read(e, ts) == p
        assert e.get(ts).labels == {"k": str(ts)}
    assert e.latest().ts_us == 1099
    assert [r.ts_us for r in e.iter_refs(1010, 1013)] == [1010, 1011, 1012]
    engine.close()


def test_spec_sizes(engine):
    b = engine.create_bucket("b", BucketSettings())
    put(b.get_or_create_entry("entry_1"), 1_000_000, b"x" * 8)
    put(b.get_or_create_entry("entry_2"), 2_000_000, b"x" * 11)
    assert b.get_entry("entry_1").size == 40 and b.get_entry("entry_2").size == 43 and b.size == 83
    b2 = engine.create_bucket("c", BucketSettings())
    e = b2.get_or_create_entry("e")
    put(e, 5_000_000, b"x" * 11)
    put(e, 6_000_000, b"x" * 11)
    assert b2.size == 88
    b3 = engine.create_bucket("d", BucketSettings())
    e1, e2 = b3.get_or_create_entry("entry-1"), b3.get_or_create_entry("entry-2")
    for ts in (5, 6):
        put(e1, ts * 1_000_000, b"x" * 11, {"number": "1"})
    for ts in (5, 6, 7):
        put(e2, ts * 1_000_000, b"x" * 11, {"number": "1"})
    assert (e1.size, e2.size, e1.block_count, e2.record_count) == (114, 172, 1, 3)
    engine2 = reopen(engine)
    assert engine2.get_bucket("d").size == 286 and engine2.get_bucket("b").size == 83
    engine2.close()


def test_duplicate_and_lengths(engine):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 10, b"abc")
    with pytest.raises(ConflictError, match="A record with timestamp 10 already exists"):
        e.begin_write(10, 1, OCT, {})
    w = e.begin_write(11, 1, OCT, {})
    with pytest.raises(ConflictError):
        e.begin_write(11, 1, OCT, {})
    with pytest.raises(BadRequestError, match="bigger"):
        w.write(b"ab")
    w = e.begin_write(11, 3, OCT, {})
    w.write(b"a")
    with pytest.raises(BadRequestError, match="smaller"):
        w.finish()
    e.flush()
    with pytest.raises(NotFoundError, match="Record 11 not found in entry b/e"):
        e.get(11)


def test_not_visible_before_flush_and_abort(engine):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    w = e.begin_write(5, 3, OCT, {})
    w.write(b"abc")
    w.finish()
    with pytest.raises(NotFoundError, match="Record 0 not found in entry b/e"):
        e.latest()
    e.flush().sync()
    assert e.latest().ts_us == 5
    big = os.urandom(3 << 20)
    w = e.begin_write(6, len(big), OCT, {})
    w.write(big[: 2 << 20])  # streams through
    w.abort()
    e.flush()
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == [5]
    assert engine.recovery_report == []
    put(e, 6, big)
    assert read(e, 6) == big
    engine.close()


def test_belated_and_rotation(engine):
    b = engine.create_bucket("b", BucketSettings(max_block_records=3))
    e = b.get_or_create_entry("e")
    for ts in (100, 200, 300, 400, 500):
        put(e, ts, b"x")
    assert e.block_count == 2
    put(e, 250, b"y")  # into block 100, which is full -> new block 250 overlapping
    put(e, 50, b"z")  # older than the first block -> new block 50
    assert e.block_count == 4
    assert [r.ts_us for r in e.iter_refs()] == [50, 100, 200, 250, 300, 400, 500]
    assert [r.ts_us for r in e.iter_refs(210, 450)] == [250, 300, 400]
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == [50, 100, 200, 250, 300, 400, 500]
    assert read(e, 250) == b"y" and e.block_count == 4
    engine.close()


def test_block_size_rotation(engine):
    b = engine.create_bucket("b", BucketSettings(max_block_size=100))
    e = b.get_or_create_entry("e")
    for ts in range(1, 6):
        put(e, ts, b"x" * 40)
    assert e.block_count == 3  # 2 records of 40 per block


def test_labels_and_remove_survive_reopen(engine):
    b = engine.create_bucket("b", BucketSettings())
    e = b.get_or_create_entry("e")
    for ts in range(1, 6):
        put(e, ts, b"x" * 3, {"x": "y", "a": "b"})
    size0 = e.size
    e.update_labels(2, {"x": "z", "a": "", "1": "2"})
    assert e.get(2).labels == {"x": "z", "1": "2"}
    assert e.size == size0 + 2  # "a=b" (-7) replaced by "1=2" (+7), plus state FINISHED (+2)
    e.remove_record(4)
    with pytest.raises(NotFoundError, match="Record 4 not found in entry b/e"):
        e.remove_record(4)
    e.flush().sync()
    size1, count1 = e.size, e.record_count
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert e.get(2).labels == {"x": "z", "1": "2"}
    assert [r.ts_us for r in e.iter_refs()] == [1, 2, 3, 5]
    assert (e.size, e.record_count) == (size1, count1)
    put(e, 4, b"new")  # the ts can be reused after removal
    engine = reopen(engine)
    assert read(engine.get_bucket("b").get_entry("e"), 4) == b"new"
    engine.close()


def test_remove_all_records_deletes_block_and_journal_compacts(engine):
    b = engine.create_bucket("b", BucketSettings(max_block_records=2))
    e = b.get_or_create_entry("e")
    for ts in range(1, 5):
        put(e, ts, b"x")
    e.remove_record(1)
    e.remove_record(2)
    assert not (e.dir / f"{1:020d}.blk").exists() and e.block_count == 1
    for i in range(100):
        e.update_labels(3, {"n": str(i)})
    assert (e.dir / "journal.log").stat().st_size < 20 * 60
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert e.get(3).labels == {"n": "99"} and e.record_count == 2
    engine.close()


def test_torn_tail_truncated_and_kept(engine):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"a" * 100)
    put(e, 2, b"b" * 100)
    path = e.dir / f"{1:020d}.blk"
    engine.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 10)
    engine = Engine.open(engine.data_path)
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == [1]
    assert read(e, 1) == b"a" * 100
    assert len(engine.recovery_report) == 1
    assert (e.dir / f"{path.name}.torn-0").exists()
    put(e, 3, b"c")
    engine = reopen(engine)
    assert [r.ts_us for r in engine.get_bucket("b").get_entry("e").iter_refs()] == [1, 3]
    engine.close()


def test_corrupt_idx_rebuilt(engine):
    e = engine.create_bucket("b", BucketSettings(max_block_records=2)).get_or_create_entry("e")
    for ts in range(1, 6):
        put(e, ts, b"abc")
    idx = e.dir / f"{1:020d}.idx"
    engine.close()
    assert idx.exists()
    data = bytearray(idx.read_bytes())
    data[-3] ^= 0xFF
    idx.write_bytes(bytes(data))
    engine = Engine.open(engine.data_path)
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == [1, 2, 3, 4, 5]
    assert any("rebuilt" in line for line in engine.recovery_report)
    engine.close()
    engine = Engine.open(engine.data_path)
    assert engine.recovery_report == []
    engine.close()


def test_corrupt_payload_raises_on_read(engine):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"a" * 100)
    ref = e.get(1)
    path = e.dir / f"{1:020d}.blk"
    with open(path, "r+b") as f:
        f.seek(ref.payload_offset + 50)
        f.write(b"X")
    with pytest.raises(CorruptRecordError):
        b"".join(e.read_payload(ref))
    assert e.read_range(ref, 50, 2) == b"Xa"


def test_fifo_keeps_quota(engine):
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 10_000, max_block_records=5))
    es = [b.get_or_create_entry(n) for n in ("a", "b")]
    for ts in range(1, 301):
        put(es[ts % 2], ts, b"x" * 100)
        # a disk quota: the bucket's files (only the open blocks' indexes are written later)
        assert b.disk_usage <= 10_000 and b.size <= b.disk_usage
        assert b.disk_usage == sum(p.stat().st_size for p in b.path.rglob("*") if p.is_file()
                                   and p.name != "settings.json")
    assert es[0].latest().ts_us == 300 and es[1].latest().ts_us == 299
    assert b.disk_usage > 6_000
    with pytest.raises(PayloadTooLargeError):
        es[0].begin_write(1000, 20_000, OCT, {})
    assert es[0].latest().ts_us == 300


def test_fifo_never_evicts_unflushed_or_meta(engine):
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 1500))
    m = b.get_or_create_entry("a/$meta")
    put(m, 1, b"m" * 300)
    e = b.get_or_create_entry("a")
    w = e.begin_write(2, 300, OCT, {})
    from edge.errors import StorageLimitError

    with pytest.raises(StorageLimitError, match="Failed to keep quota of 'b'"):
        e.begin_write(3, 500, OCT, {})
    w.write(b"x" * 300)
    w.finish()
    e.flush()
    assert m.record_count == 1


def test_fifo_never_evicts_a_record_before_its_write_is_answered(engine):
    # The rule (README "Durability"): FIFO evicts only blocks whose every record was answered
    # (its flush's group commit is done); if the quota cannot be kept otherwise, the write that
    # needs the room is refused with the quota error. So no write is answered 200 after the
    # quota already took its own record (a batch over two entries did exactly that).
    from edge.errors import StorageLimitError

    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 4000, max_block_records=2))
    a, c = b.get_or_create_entry("a"), b.get_or_create_entry("c")
    unanswered = []
    for ts in range(1, 5):
        w = a.begin_write(ts, 500, OCT, {})
        w.write(b"a" * 500)
        w.finish()
        unanswered.append(a.flush())          # published, its group commit not run yet
    with pytest.raises(StorageLimitError, match="Failed to keep quota of 'b'"):
        for ts in range(100, 110):             # needs the room of a's (unanswered) blocks
            put(c, ts, b"c" * 500)
    assert [r.ts_us for r in a.iter_refs()] == [1, 2, 3, 4]
    for d in unanswered:
        d.sync()                               # answered now: its blocks may go
    put(c, 200, b"c" * 500)
    assert engine.stats["blocks_evicted"] >= 1 and a.oldest_ts > 1
    assert read(c, 200) == b"c" * 500


def test_an_eviction_joins_the_next_group_commit(engine):
    # The evicted block's folder is synced by the Durability of the write that needed its room
    # (and by every one after it until one of them has synced), not inline on the write path.
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 3000, max_block_records=2))
    a, c = b.get_or_create_entry("a"), b.get_or_create_entry("c")
    for ts in range(1, 7):
        put(a, ts, b"a" * 400)
    assert engine.stats["blocks_evicted"] == 0 or not engine.unsynced
    evicted = engine.stats["blocks_evicted"]
    put_d = None
    for ts in range(100, 110):
        w = c.begin_write(ts, 400, OCT, {})
        w.write(b"c" * 400)
        w.finish()
        put_d = c.flush()
        if engine.stats["blocks_evicted"] > evicted:
            break
        put_d.sync()
    assert engine.stats["blocks_evicted"] > evicted
    assert a.dir in engine.unsynced and str(a.dir) in put_d._dirs
    later = c.flush()                          # a flush before that sync ran covers it too
    assert str(a.dir) in later._dirs
    put_d.sync()
    later.close()
    assert str(a.dir) not in c.flush()._dirs and a.dir not in engine.unsynced


def test_hard_quota(engine):
    # a disk quota: 100 payload bytes take ~340 on disk (frame, index row, metadata, summary)
    b = engine.create_bucket("b", BucketSettings(QuotaType.HARD, 500))
    e = b.get_or_create_entry("e")
    put(e, 1, b"x" * 100)
    with pytest.raises(QuotaExceededError, match="Quota of 'b' exceeded"):
        e.begin_write(2, 100, OCT, {})
    assert read(e, 1) == b"x" * 100


def test_free_space_refusal(tmp_path):
    free = {"n": 10**9}
    engine = Engine.open(tmp_path, free_bytes=lambda p: free["n"])
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"keep")
    free["n"] = 10
    with pytest.raises(DiskFullError, match="Not enough free disk space"):
        e.begin_write(2, 100, OCT, {})
    assert read(e, 1) == b"keep"
    engine.close()


def test_enospc_during_flush_truncates(engine, monkeypatch):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"keep")
    w = e.begin_write(2, 10, OCT, {})
    w.write(b"0123456789")
    w.finish()
    real = os.writev

    def full(fd, bufs):
        real(fd, [bytes(bufs[0])[:5]])
        raise OSError(errno.ENOSPC, "full")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(DiskFullError):
        e.flush()
    monkeypatch.setattr(os, "writev", real)
    assert [r.ts_us for r in e.iter_refs()] == [1]
    engine = reopen(engine)
    assert engine.recovery_report == []
    e = engine.get_bucket("b").get_entry("e")
    assert [r.ts_us for r in e.iter_refs()] == [1] and read(e, 1) == b"keep"
    engine.close()


def test_names_rename_remove_meta(engine):
    with pytest.raises(InvalidInputError, match="digests"):
        engine.create_bucket("a b", BucketSettings())
    b = engine.create_bucket("b", BucketSettings())
    with pytest.raises(AlreadyExistsError, match="Bucket 'b' already exists"):
        engine.create_bucket("b", BucketSettings())
    with pytest.raises(InvalidInputError, match="empty path segments"):
        b.get_or_create_entry("a//b")
    with pytest.raises(InvalidInputError, match="only letters, digits"):
        b.get_or_create_entry("a.b")
    put(b.get_or_create_entry("a/b/c"), 1, b"abc")
    put(b.get_or_create_entry("a/$meta"), 2, b"meta", {"key": "k"})
    assert b.entry_names() == ["a", "a/b", "a/b/c"]
    assert b.info().entry_count == 3 and b.size == b.get_entry("a/b/c").size + b.get_entry("a/$meta").size
    with pytest.raises(AlreadyExistsError, match="Entry 'a/b' already exists in bucket 'b'"):
        b.rename_entry("a", "a/b")
    b.rename_entry("a/b", "x/y")
    assert b.entry_names(include_meta=True) == ["a", "a/$meta", "x", "x/y", "x/y/c"]
    assert read(b.get_entry("x/y/c"), 1) == b"abc"
    engine.rename_bucket("b", "b2")
    with pytest.raises(AlreadyExistsError):
        engine.rename_bucket("b2", "b2")
    engine = reopen(engine)
    b = engine.get_bucket("b2")
    assert b.entry_names(include_meta=True) == ["a", "a/$meta", "x", "x/y", "x/y/c"]
    size = b.size
    b.remove_entry("a")
    assert b.entry_names(include_meta=True) == ["x", "x/y", "x/y/c"] and b.size < size
    with pytest.raises(NotFoundError, match="Entry 'a' not found in bucket 'b2'"):
        b.get_entry("a")
    engine.remove_bucket("b2")
    with pytest.raises(NotFoundError, match="Bucket 'b2' is not found"):
        engine.get_bucket("b2")
    engine.close()


def test_settings_persist_and_dot_folders(engine, tmp_path):
    (tmp_path / ".edge").mkdir()
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 1234))
    b.is_provisioned = True
    b.save()
    engine = reopen(engine)
    assert engine.bucket_names() == ["b"]
    b = engine.get_bucket("b")
    assert b.settings.quota_size == 1234 and b.is_provisioned and b.info().is_provisioned
    engine.close()


def test_durability_merge_and_sync(engine):
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    w = e.begin_write(1, 1, OCT, {})
    w.write(b"x")
    w.finish()
    d1 = e.flush()
    assert not d1.empty
    d2 = e.flush()  # covers the recent write too
    d1.merge(d2)
    assert d2.empty
    d1.sync()
    assert d1.empty


def test_detach_bucket_keeps_the_name_until_its_files_are_gone(engine, tmp_path):
    """The server deletes a bucket's files in a worker thread (edge.blocking): the bucket is gone
    from the engine at once, and its name cannot be reused before the folder is deleted."""
    b = engine.create_bucket("b", BucketSettings())
    put(b.get_or_create_entry("e"), 1, b"x" * 5000)
    engine.create_bucket("other", BucketSettings())
    remove_files = engine.detach_bucket("b")
    with pytest.raises(NotFoundError):
        engine.get_bucket("b")
    assert (tmp_path / "b").is_dir()   # nothing deleted yet: that is the file step
    with pytest.raises(ConflictError, match="Bucket 'b' is being removed"):
        engine.create_bucket("b", BucketSettings())
    with pytest.raises(ConflictError, match="Bucket 'b' is being removed"):
        engine.rename_bucket("other", "b")
    remove_files()
    assert not (tmp_path / "b").exists()
    engine.removed("b")
    engine.create_bucket("b", BucketSettings())
    assert engine.bucket_names() == ["b", "other"]


def test_cached_entry_and_bucket_info_follow_every_change(engine):
    """Entry.info() is cached (GET /b/<bucket> with many entries); after every kind of change it
    must equal what the entry computes afresh, and the bucket's bounds the entries' ones."""
    from edge.model import EntryInfo

    b = engine.create_bucket("b", BucketSettings(quota_type=QuotaType.FIFO, quota_size=60_000,
                                                 max_block_size=4_000, max_block_records=8))
    entries = [b.get_or_create_entry(f"e{k}") for k in range(3)]

    def check():
        for e in entries:
            fresh = EntryInfo(e.name, e.size, e.record_count, e.block_count, e.oldest_ts, e.latest_ts)
            assert e.info() == fresh
            assert e.info() is e.info()  # nothing changed in between: the same object
        live = [e for e in entries if e.record_count]
        info = b.info()
        assert (info.oldest_record, info.latest_record) == (
            min((e.oldest_ts for e in live), default=0), max((e.latest_ts for e in live), default=0))
        assert info.entry_count == len(b.entry_names())

    check()
    for ts in range(1, 200):
        e = entries[ts % 3]
        put(e, 1000 + ts, b"x" * (ts % 7 * 100))   # fills blocks; FIFO evicts the oldest
        check()
        if ts % 11 == 0:
            e.remove_record(e.latest_ts)          # the newest record: latest moves back
            check()
        if ts % 13 == 0 and e.record_count:
            e.update_labels(e.oldest_ts, {"k": "v" * 30})   # size only
            check()
        if ts % 17 == 0 and e.record_count:
            e.remove_record(e.oldest_ts)          # the oldest: oldest moves on
            check()
    put(entries[0], 50, b"belated")               # before everything: a block of its own, overlapping
    check()
    b.update_settings(BucketSettings(max_block_size=4_000, max_block_records=8))   # no quota: room to stream
    w = entries[1].begin_write(10_000, 3 << 20, OCT, {})   # streamed: its block has bytes first
    check()
    w.write(b"y" * (2 << 20))
    check()
    w.abort()
    check()
    b.rename_entry("e2", "z2")
    check()
    b.remove_entry("z2")
    entries.pop()
    check()
