"""The store's removals under a power cut, one scenario at a time (crash disk, no server).

Each test opens an ``Engine`` on the crash disk (``crashfs``: only what was synced survives),
does what a request would do, syncs exactly what that request would wait for before its answer
(the flush's ``Durability``: the group commit), cuts the power, and opens the device after the
cut. What was "answered" must hold there: an eviction stays done once the write that needed
its space is answered, removals stay removed, a write answered while its entry or bucket was
being renamed survives under the new name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import NotFoundError
from edge.model import BucketSettings, QuotaType
from edge.store import Engine
from tests.powerloss.harness import CrashDisk, available

pytestmark = pytest.mark.skipif(available() is not None, reason=f"crash disk unavailable: {available()}")

OCT = "application/octet-stream"
ROOMY = 1 << 40


def open_engine(path: Path) -> Engine:
    return Engine.open(path, free_bytes=lambda _p: ROOMY)


def write(entry, ts: int, data: bytes):
    """One record flushed; returns the Durability its writer waits for (not synced yet)."""
    w = entry.begin_write(ts, len(data), OCT, {})
    w.write(data)
    w.finish()
    return entry.flush()


def data_of(ts: int, size: int = 900) -> bytes:
    return (str(ts).encode() * size)[:size]


def after_cut(tmp_path: Path, work) -> Engine:
    """Run ``work(engine)`` on a crash disk, cut the power, open what survived."""
    image, mnt, after = tmp_path / "image", tmp_path / "mnt", tmp_path / "after"
    image.mkdir()
    with CrashDisk(image, mnt) as disk:
        engine = open_engine(mnt / "data")
        work(engine)
        disk.cut(after)
        engine.fds.close_all()
    return open_engine(after / "data")


def timestamps(engine: Engine, bucket: str, entry: str) -> list[int]:
    try:
        e = engine.get_bucket(bucket).get_entry(entry)
    except NotFoundError:
        return []
    return [r.ts_us for r in e.iter_refs()]


def test_an_eviction_is_on_the_disk_before_the_write_that_needed_it_is_answered(tmp_path):
    # Two entries share a FIFO quota; a write to e1 evicts e0's oldest block. The write is
    # answered after its group commit: the eviction in e0's folder must be durable by then.
    seen: dict = {}

    def work(engine: Engine) -> None:
        b = engine.create_bucket("f", BucketSettings(QuotaType.FIFO, 12_000, max_block_records=2))
        e0 = b.get_or_create_entry("e0")
        for ts in range(1, 9):
            write(e0, ts, data_of(ts)).sync()
        e1 = b.get_or_create_entry("e1")
        for ts in range(100, 106):
            write(e1, ts, data_of(ts)).sync()   # each one answered
        assert engine.stats["blocks_evicted"] > 0
        seen["e0"] = timestamps(engine, "f", "e0")

    engine = after_cut(tmp_path, work)
    try:
        assert seen["e0"][0] > 1
        assert timestamps(engine, "f", "e0") == seen["e0"]   # nothing evicted came back
        assert timestamps(engine, "f", "e1") == list(range(100, 106))
    finally:
        engine.close()


def test_removing_the_last_records_of_a_block_never_brings_earlier_removals_back(tmp_path):
    # Removing the last record of a block deletes the block and compacts the journal (its ops are
    # dead). If the compaction reached the disk before the block's removal, a cut would bring the
    # block back without the ops that had removed its other records: answered removals undone.
    # (It holds because the compaction's folder sync covers the block's unlink; a compaction
    # that stopped syncing, or ran before the unlink, fails here.)
    def work(engine: Engine) -> None:
        b = engine.create_bucket("k", BucketSettings(QuotaType.NONE, 0, max_block_records=3))
        e = b.get_or_create_entry("e")
        for ts in range(1, 8):
            write(e, ts, data_of(ts)).sync()
        for ts in (1, 2, 3):   # the whole first block, one answered removal at a time
            e.remove_record(ts)
            e.flush().sync()

    engine = after_cut(tmp_path, work)
    try:
        assert timestamps(engine, "k", "e") == [4, 5, 6, 7]
    finally:
        engine.close()


@pytest.mark.parametrize("renamed", ["entry", "bucket"])
def test_a_write_answered_while_its_folder_was_renamed_survives(tmp_path, renamed):
    # The write opened a new block (a new name in the entry's folder); the entry (or its bucket)
    # was renamed before the write's group commit ran. That commit syncs the folder by its old
    # path, which no longer exists: the rename must have synced the folder's new names itself.
    bucket, entry = ("k", "new") if renamed == "entry" else ("new", "e")

    def work(engine: Engine) -> None:
        b = engine.create_bucket("k" if renamed == "entry" else "old", BucketSettings(QuotaType.NONE, 0))
        d = write(b.get_or_create_entry("old" if renamed == "entry" else "e"), 1, data_of(1))
        if renamed == "entry":
            b.rename_entry("old", "new")
        else:
            engine.rename_bucket("old", "new")
        d.sync()   # the write is answered now

    engine = after_cut(tmp_path, work)
    try:
        assert engine.bucket_names() == [bucket]
        assert timestamps(engine, bucket, entry) == [1]
        assert timestamps(engine, bucket, "old") == []
    finally:
        engine.close()
