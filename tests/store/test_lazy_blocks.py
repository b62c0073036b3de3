"""The store at scale, in miniature: block summaries at start-up, indexes loaded on demand and
bounded by the cache, journal replay without indexes, migration of the old layout, exact
overlaps, FIFO from a heap, the disk quota, the storage cap and the free-space reserve.

Every test compares the store with a plain dict model of what must be there, across reopens.
"""

from __future__ import annotations

import os
import random

import pytest

from edge.errors import DiskFullError, NotFoundError, StorageLimitError
from edge.formats import journal as jfmt
from edge.formats.index import IndexRecord, decode_index, encode_index_v1
from edge.formats.recovery import scan
from edge.model import BIG_RECORD_BYTES, BucketSettings, EngineLimits, QuotaType
from edge.store import Engine
from edge.store.entry_index import SUMMARY

OCT = "application/octet-stream"


def put(entry, ts, data, labels=None):
    w = entry.begin_write(ts, len(data), OCT, labels or {})
    w.write(data)
    w.finish()
    entry.flush().sync()


def files_size(bucket) -> int:
    return sum(p.stat().st_size for p in bucket.path.rglob("*") if p.is_file() and p.name != "settings.json")


def state(entry) -> dict[int, tuple[bytes, dict]]:
    out = {}
    for ref in entry.iter_refs():
        out[ref.ts_us] = (b"".join(entry.read_payload(ref)), dict(ref.labels))
    return out


def fill(entry, model, stamps, labels=None):
    for ts in stamps:
        data = os.urandom(ts % 300)
        put(entry, ts, data, labels(ts) if labels else {"n": str(ts)})
        model[ts] = (data, labels(ts) if labels else {"n": str(ts)})


def reopen(engine, **kw):
    engine.close()
    return Engine.open(engine.data_path, **kw)


@pytest.fixture
def engine(tmp_path):
    e = Engine.open(tmp_path)
    yield e
    e.close()


def test_start_up_loads_no_index_and_a_read_loads_one(engine):
    e = engine.create_bucket("b", BucketSettings(max_block_records=10)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 101))
    size, count, blocks = e.size, e.record_count, e.block_count
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert engine.index_cache.loads == 0 and len(engine.index_cache) == 0
    assert (e.size, e.record_count, e.block_count) == (size, count, blocks) == (size, 100, 10)
    assert (e.oldest_ts, e.latest_ts) == (1, 100) and engine.recovery_report == []
    assert engine.index_cache.loads == 0  # bounds come from the summaries
    assert e.get(55).labels == {"n": "55"}
    assert engine.index_cache.loads == 1
    assert e.latest().ts_us == 100 and engine.index_cache.loads == 2
    assert state(e) == model
    engine.close()


def test_cache_stays_within_its_budget(tmp_path):
    budget = 20_000  # a few blocks of 10 records
    engine = Engine.open(tmp_path, limits=EngineLimits(index_cache_size=budget))
    e = engine.create_bucket("b", BucketSettings(max_block_records=10)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 301))
    assert engine.index_cache.used <= budget + 2_000  # the block being written may be pinned
    assert state(e) == model
    assert engine.index_cache.used <= budget and engine.index_cache.drops > 0
    for ts in random.Random(1).sample(range(1, 301), 50):
        assert b"".join(e.read_payload(e.get(ts))) == model[ts][0]
        assert engine.index_cache.used <= budget
    engine.close()


def test_journal_replays_without_indexes_and_sizes_stay_exact(engine):
    b = engine.create_bucket("b", BucketSettings(max_block_records=8))
    e = b.get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 81))
    rng = random.Random(7)
    for ts in rng.sample(range(1, 81), 20):
        e.update_labels(ts, {"n": "", "u": "x" * (1 + ts % 7)})
        model[ts] = (model[ts][0], {"u": "x" * (1 + ts % 7)})
    for ts in rng.sample(sorted(model), 15):
        e.remove_record(ts)
        del model[ts]
    for ts in (1, 2, 3, 4, 5, 6, 7, 8):  # a whole block
        if ts in model:
            e.remove_record(ts)
            del model[ts]
    e.flush().sync()
    before = (e.size, e.record_count, b.size, e.latest_ts, e.oldest_ts)
    assert e.record_count == len(model)
    engine = reopen(engine)
    b = engine.get_bucket("b")
    e = b.get_entry("e")
    assert engine.index_cache.loads == 0
    assert (e.size, e.record_count, b.size) == before[:3]
    assert (e.latest_ts, e.oldest_ts) == (max(model), min(model)) == before[3:]
    assert state(e) == model
    assert (e.size, e.record_count, b.size) == before[:3]  # loading the indexes changed nothing
    assert b.disk_usage == files_size(b)
    engine.close()


def test_old_layout_is_migrated_once(tmp_path):
    """A folder as the previous version wrote it: v1 indexes, ops without sizes, no blocks.sum."""
    engine = Engine.open(tmp_path)
    e = engine.create_bucket("b", BucketSettings(max_block_records=5)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 23))
    engine.close()
    entry_dir = tmp_path / "b" / "e"
    (entry_dir / SUMMARY).unlink()
    for blk in sorted(entry_dir.glob("*.blk"))[:-1]:
        frames = scan(blk.read_bytes()).frames
        recs = [IndexRecord(f.head.ts_us, f.offset, f.head.payload_len, f.head.meta) for f in frames]
        blk.with_suffix(".idx").write_bytes(encode_index_v1(blk.stat().st_size, recs))
    (sorted(entry_dir.glob("*.blk"))[-1].with_suffix(".idx")).unlink()
    # unsized ops, as written before: a label update and a removal
    raw = scan((entry_dir / f"{6:020d}.blk").read_bytes()).frames
    f7 = next(f for f in raw if f.head.ts_us == 7)
    f8 = next(f for f in raw if f.head.ts_us == 8)
    (entry_dir / "journal.log").write_bytes(
        jfmt.encode_op(jfmt.JournalOp(jfmt.OP_LABELS, 7, 6, f7.payload_offset, {"k": "v"}))
        + jfmt.encode_op(jfmt.JournalOp(jfmt.OP_REMOVE, 8, 6, f8.payload_offset)))
    model[7] = (model[7][0], {"k": "v"})
    del model[8]

    engine = Engine.open(tmp_path)
    e = engine.get_bucket("b").get_entry("e")
    assert engine.recovery_report == []
    assert state(e) == model and e.record_count == len(model)
    size = e.size
    engine.close()
    engine = Engine.open(tmp_path)  # migrated: the second start trusts the summary
    e = engine.get_bucket("b").get_entry("e")
    assert engine.index_cache.loads == 0 and e.size == size and state(e) == model
    assert all(decode_index((p).read_bytes()) for p in entry_dir.glob("*.idx"))
    engine.close()


def test_overlaps_are_exact_after_belated_writes_and_eviction(engine):
    e = engine.create_bucket("b", BucketSettings(max_block_records=3)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, [100, 200, 300, 400, 500, 600])
    fill(e, model, [250, 260, 150])  # belated into full blocks: new blocks inside older ranges
    assert e._overlaps  # blocks 100.. reach past the ids of the belated blocks
    assert state(e) == model and [r.ts_us for r in e.iter_refs(240, 410)] == [250, 260, 300, 400]
    for ts in model:
        assert e.get(ts).ts_us == ts
    with pytest.raises(NotFoundError):
        e.get(270)
    e.evict_oldest_block()
    model = {ts: v for ts, v in model.items() if ts not in (100, 200, 300)}
    assert state(e) == model
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert state(e) == model
    for ts in model:
        assert e.get(ts).ts_us == ts
    engine.close()


def test_append_only_lookups_load_nothing(engine):
    """A write past the newest record loads no index, not even the newest block's (an in-order
    append needs only the block's summary; sealing reads the frame heads it wrote)."""
    e = engine.create_bucket("b", BucketSettings(max_block_records=10)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 96))
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    fill(e, model, range(96, 131))
    assert engine.index_cache.loads == 0
    assert state(e) == model
    engine.close()


def test_writes_while_the_cache_drops_every_index(tmp_path):
    """Buffered writers in flight do not pin their block's index: a cache of one byte drops it
    between begin_write and flush, and the records published without it (in order, belated, in
    a batch across a rotation, streamed ones) read back exactly, before and after a reopen and
    after the blocks are sealed from their frames."""
    limits = EngineLimits(index_cache_size=1)
    engine = Engine.open(tmp_path, limits=limits)
    e = engine.create_bucket("b", BucketSettings(max_block_records=7)).get_or_create_entry("e")
    other = engine.get_bucket("b").get_or_create_entry("o")
    model: dict = {}
    rng = random.Random(5)
    stamps = list(range(1000, 1200, 2)) + list(range(1001, 1200, 6))  # then belated odd ones
    i = 0
    while i < len(stamps):
        batch = stamps[i:i + rng.randrange(1, 12)]
        i += len(batch)
        writers = []
        for ts in batch:
            big = rng.random() < 0.1
            data = os.urandom(BIG_RECORD_BYTES + 10 if big else ts % 200)
            w = e.begin_write(ts, len(data), OCT, {"n": str(ts)})
            put(other, 5_000_000 + ts, b"x")  # loads and drops other indexes meanwhile
            if i > len(batch):  # a read while the writer is in flight (the first batch is flushed)
                assert e.get(stamps[0]).ts_us == stamps[0]
            w.write(data)
            w.finish()
            writers.append(w)
            model[ts] = (data, {"n": str(ts)})
        e.flush().sync()
        assert all(w.state == "published" for w in writers)
    assert state(e) == model
    engine = reopen(engine, limits=limits)
    e = engine.get_bucket("b").get_entry("e")
    assert state(e) == model
    assert engine.recovery_report == []
    engine.close()


def test_fifo_evicts_oldest_block_across_entries(engine):
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 60_000, max_block_records=4))
    entries = [b.get_or_create_entry(f"e{k}") for k in range(5)]
    for ts in range(1, 501):
        put(entries[ts % 5], ts, os.urandom(200))
        # within the quota plus one block (here: the summary records of evictions, ~76 bytes each)
        assert b.disk_usage <= 60_000 + 4 * 300
        assert b.disk_usage == files_size(b)
    oldest = [e.oldest_ts for e in entries]
    # what is left is the newest data of every entry, and the oldest blocks went first
    assert min(oldest) > 250 and max(e.latest_ts for e in entries) == 500
    assert max(oldest) - min(oldest) < 30


def test_storage_cap_and_free_space_reserve_refuse_before_writing(tmp_path):
    free = {"n": 10**12}
    engine = Engine.open(tmp_path, free_bytes=lambda p: free["n"],
                         limits=EngineLimits(max_storage_size=20_000, free_reserve=1_000_000))
    b = engine.create_bucket("b", BucketSettings())
    e = b.get_or_create_entry("e")
    put(e, 1, b"x" * 5_000)
    with pytest.raises(StorageLimitError, match="storage limit exceeded"):
        e.begin_write(2, 20_000, OCT, {})
    du = files_size(b)
    free["n"] = 1_000_000 + 3_000  # the record would eat into the reserve
    with pytest.raises(DiskFullError, match="Not enough free disk space"):
        e.begin_write(3, 5_000, OCT, {})
    assert files_size(b) == du and e.record_count == 1
    free["n"] = 10**12
    put(e, 4, b"y" * 100)
    assert [r.ts_us for r in e.iter_refs()] == [1, 4]
    engine.close()


def test_damaged_summary_is_set_aside_reported_and_rebuilt(engine):
    # Bit rot in blocks.sum is a damaged state file like any other: kept beside it, reported
    # (engine.damaged: the log, /metrics, edge check), nothing of it trusted, rebuilt.
    e = engine.create_bucket("b", BucketSettings(max_block_records=5)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 31))
    path = e.dir / SUMMARY
    engine.close()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))
    engine = Engine.open(engine.data_path)
    b = engine.get_bucket("b")
    e = b.get_entry("e")
    assert [d.path for d in engine.damaged] == [path]
    kept = engine.damaged[0].kept_as
    assert kept is not None and kept.read_bytes() == bytes(raw)       # byte for byte, never deleted
    assert any("blocks.sum: damaged" in line for line in engine.recovery_report), engine.recovery_report
    assert state(e) == model and e.record_count == 30
    assert b.disk_usage == files_size(b)
    engine = reopen(engine)
    assert engine.recovery_report == [] and engine.damaged == [] and engine.index_cache.loads == 0
    assert state(engine.get_bucket("b").get_entry("e")) == model
    engine.close()


@pytest.mark.parametrize("tail", [b"\x01" * 30, b"\0" * 76, b"\0" * 200])
def test_a_torn_summary_tail_is_cut_not_called_damage(engine, tail):
    # What a power cut leaves of an append (part of a record, or zeros a file system appended)
    # is cut and reported as a repair, not as damage waiting for a human.
    e = engine.create_bucket("b", BucketSettings(max_block_records=5)).get_or_create_entry("e")
    model: dict = {}
    fill(e, model, range(1, 21))
    path = e.dir / SUMMARY
    engine.close()
    with open(path, "ab") as f:
        f.write(tail)
    engine = Engine.open(engine.data_path)
    assert engine.damaged == []
    assert any("blocks.sum truncated" in line for line in engine.recovery_report), engine.recovery_report
    assert state(engine.get_bucket("b").get_entry("e")) == model
    engine.close()


def test_disk_usage_tracks_the_files(engine):
    b = engine.create_bucket("b", BucketSettings(max_block_records=6))
    e = b.get_or_create_entry("a/b")
    model: dict = {}
    fill(e, model, range(1, 40))
    big = os.urandom(3 << 20)  # streamed through
    put(e, 100, big)
    for ts in (3, 4, 5):
        e.update_labels(ts, {"x": "y"})
    e.remove_record(10)
    e.evict_oldest_block()
    e.flush().sync()
    assert b.disk_usage == files_size(b)
    engine = reopen(engine)
    b = engine.get_bucket("b")
    assert b.disk_usage == files_size(b) and b.info().disk_usage == b.disk_usage
    b.remove_entry("a/b")
    assert b.disk_usage == files_size(b)
    assert engine.disk_usage == sum(x.disk_usage for x in engine.buckets.values())
    engine.close()


def test_evicted_files_go_to_trash_and_are_unlinked_off_the_loop(engine):
    b = engine.create_bucket("b", BucketSettings(QuotaType.FIFO, 20_000, max_block_records=4))
    e = b.get_or_create_entry("e")
    for ts in range(1, 40):
        w = e.begin_write(ts, 300, OCT, {})
        w.write(os.urandom(300))
        w.finish()
        d = e.flush()
        renamed = [p.name for p in e.dir.glob("*.deleted")]
        if renamed:
            assert d.has_trash  # the flush hands the unlink to whoever syncs it
        d.sync()
        assert not list(e.dir.glob("*.deleted"))
    assert b.disk_usage == files_size(b) <= 20_000 + 2_000
    # a crash between the rename and the unlink: start-up sweeps the trash
    (e.dir / f"{1:020d}.blk.deleted").write_bytes(b"x" * 1000)
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert not list(e.dir.glob("*.deleted"))
    assert engine.get_bucket("b").disk_usage == files_size(engine.get_bucket("b"))
    engine.close()


def test_a_trusted_block_whose_files_changed_is_rescanned_on_first_use(engine):
    """Start-up trusts a sealed block's summary record without a stat of its files; on first use
    they must be the sizes the record names. A frame that reached a sealed .blk while blocks.sum
    and the .idx kept their old contents (the unseal record lost to a power cut; simulated by
    restoring both) is found when the block is first used, counted and sealed again; a .blk cut
    short behind our back is rescanned at its first read (the torn bytes kept), never a crash."""
    bucket = engine.create_bucket("b", BucketSettings(max_block_size=1000, max_block_records=1000))
    e = bucket.get_or_create_entry("e")
    model: dict = {}
    for ts in range(10, 510, 10):  # 100-byte records: 10 per block, blocks 10, 110, 210, 310, 410
        data = os.urandom(100)
        put(e, ts, data, {"n": str(ts)})
        model[ts] = (data, {"n": str(ts)})
    d = e.dir
    engine = reopen(engine)
    assert len(list(d.glob("*.blk"))) == 5
    saved = {p.name: p.read_bytes() for p in d.iterdir() if p.name == SUMMARY or p.name.endswith(".idx")}
    e = engine.get_bucket("b").get_entry("e")
    put(e, 115, b"", {"n": "115"})  # belated, into block 110 (0 bytes always fit)
    model[115] = (b"", {"n": "115"})
    engine.close()
    for name, data in saved.items():
        (d / name).write_bytes(data)
    blk = d / f"{310:020d}.blk"
    os.truncate(blk, blk.stat().st_size - 5)  # into the last frame of block 310
    del model[400]
    engine = Engine.open(engine.data_path)
    e = engine.get_bucket("b").get_entry("e")
    assert e.record_count == 50 and engine.recovery_report == []  # nothing looked at yet
    assert e.get(115).labels == {"n": "115"}
    assert e.record_count == 51 and any("block 110" in line for line in engine.recovery_report)
    with pytest.raises(NotFoundError):
        e.get(400)
    assert any("torn bytes kept" in line for line in engine.recovery_report)
    assert state(e) == model and e.record_count == len(model)
    engine = reopen(engine)
    e = engine.get_bucket("b").get_entry("e")
    assert state(e) == model and e.record_count == len(model) and engine.recovery_report == []
    engine.close()
