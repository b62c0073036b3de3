"""Torn tails kept by recovery are bounded: the oldest beyond ``EDGE_TORN_KEEP_SIZE`` are removed
(reported), a block's torn files go with the block, and the figures are what is on the disk."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edge.model import BucketSettings, EngineLimits, QuotaType
from edge.store import Engine

OCT = "application/octet-stream"


def put(entry, ts, data):
    w = entry.begin_write(ts, len(data), OCT, {})
    w.write(data)
    w.finish()
    entry.flush().sync()


def files_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "settings.json")


def tear(block: Path, n: int) -> None:
    """A power cut left ``n`` bytes of a frame that was never finished at the end of ``block``."""
    with open(block, "ab") as f:
        f.write(b"\x01" * n)


def test_the_oldest_torn_files_beyond_the_bound_are_removed_and_reported(tmp_path):
    limits = EngineLimits(torn_keep_size=2500)
    engine = Engine.open(tmp_path, limits=limits)
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"a" * 100)
    block = e.dir / f"{1:020d}.blk"
    engine.close()
    kept = []
    for cut in range(4):                       # four power cuts, 1000 torn bytes each
        tear(block, 1000)
        engine = Engine.open(tmp_path, limits=limits)
        e = engine.get_bucket("b").get_entry("e")
        assert [r.ts_us for r in e.iter_refs()] == [1]
        kept = sorted(p.name for p in e.dir.iterdir() if ".torn-" in p.name)
        assert len(kept) == min(cut + 1, 2), kept
        assert engine.torn.bytes == 1000 * len(kept) <= 2500
        assert engine.get_bucket("b").disk_usage == files_size(tmp_path / "b")
        if cut >= 2:
            removed = [x for x in engine.recovery_report if "removed: the torn bytes kept exceed" in x]
            assert len(removed) == 1 and "EDGE_TORN_KEEP_SIZE" in removed[0], engine.recovery_report
            assert engine.torn.removed_files == 1
        engine.close()
        time.sleep(0.01)                       # distinct ages
    assert kept == [f"{1:020d}.blk.torn-2", f"{1:020d}.blk.torn-3"]   # the newest two


def test_a_block_takes_its_torn_files_with_it(tmp_path):
    engine = Engine.open(tmp_path)
    b = engine.create_bucket("f", BucketSettings(QuotaType.FIFO, 6000, max_block_records=2))
    e = b.get_or_create_entry("e")
    put(e, 1, b"a" * 500)
    engine.close()
    tear(e.dir / f"{1:020d}.blk", 300)
    engine = Engine.open(tmp_path)
    b = engine.get_bucket("f")
    e = b.get_entry("e")
    torn = e.dir / f"{1:020d}.blk.torn-0"
    assert torn.exists() and len(engine.torn) == 1
    for ts in range(2, 20):                    # FIFO wraps: block 1 is evicted
        put(e, ts, b"x" * 500)
    assert e.oldest_ts > 1 and not torn.exists()
    assert len(engine.torn) == 0 and engine.torn.bytes == 0
    assert b.disk_usage == files_size(tmp_path / "f")
    engine.close()


def test_torn_files_of_a_removed_entry_are_forgotten(tmp_path):
    engine = Engine.open(tmp_path)
    e = engine.create_bucket("b", BucketSettings()).get_or_create_entry("e")
    put(e, 1, b"a" * 100)
    engine.close()
    tear(e.dir / f"{1:020d}.blk", 300)
    engine = Engine.open(tmp_path)
    assert engine.torn.bytes == 300
    engine.get_bucket("b").remove_entry("e")
    assert len(engine.torn) == 0 and engine.torn.bytes == 0
    engine.close()
    assert not os.path.exists(tmp_path / "b" / "e")
