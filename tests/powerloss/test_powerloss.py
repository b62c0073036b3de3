"""Power loss, for real: a file system that forgets what was not synced (``crashfs``).

First the crash disk itself is validated on known writers: one that never fsyncs and one that
never fsyncs a folder must lose acknowledged files, edge's own ``durable`` writer must lose
none. Then edge runs on it from a fresh data folder (first start, token, link, upload link,
mail, a wrapping FIFO quota, removals, renames) and from the folder each cut left, and after
every cut the server must start and keep every acknowledged write, token, link, upload link
and mail, and never serve garbage (``edge_run.judge``).

Every finding fails the test: a lost write, token, link, upload link or mail, a removal, rename
or FIFO eviction undone, a bucket over its quota, torn tails beyond their bound, a failed start.
The long run (100 cuts) is ``python -m tests.powerloss.edge_run --cuts 100`` (README); the
store's removals are also cut one scenario at a time in ``test_store_cuts.py``.
"""

from __future__ import annotations

import os

import pytest

from tests.powerloss import edge_run
from tests.powerloss.harness import available
from tests.powerloss.writers import trial

needs_disk = pytest.mark.skipif(available() is not None, reason=f"crash disk unavailable: {available()}")


@needs_disk
@pytest.mark.parametrize("mode", ["bad", "nodirsync", "good"])
def test_crash_disk_tells_a_careless_writer_from_a_durable_one(tmp_path, mode):
    got = trial(mode, tmp_path, run_s=1.0)
    assert got.acked >= 5, got
    if mode == "good":
        assert got.lost == 0, got
    else:
        assert got.lost > 0, got          # a disk that kept unsynced data would prove nothing
    print(f"{mode}: {got.acked} acknowledged, {got.lost} lost after the cut")


@needs_disk
def test_power_cuts_under_edge(tmp_path):
    # 4 cuts: two from a fresh folder (the firsts), two on the folder the previous cut left
    results = edge_run.run(4, tmp_path, seed=int(os.environ.get("EDGE_POWERLOSS_SEED", "24")), fresh_every=2)
    summary = edge_run.summary(results)
    print(summary)
    assert summary["acked"] > 100, summary
    found = [(r.index, k, d) for r in results for k, d in r.findings]
    assert found == [], found


def test_fifo_allowance_counts_from_the_start_of_the_records_block():
    # f0 writes rarely, f1 often: f0's one block (ts 10..) spans f1's traffic, and FIFO evicts it
    # whole, oldest block id first, once the bytes since ITS start pass the quota; its newest
    # record, only a little way from the head, may go with it (100-cut run, cut 60)
    B, K = edge_run.BLOCK, edge_run.FIFO_KEEP
    fifo = [("f0", 10, B // 4)]
    fifo += [("f1", 11 + i, 6000) for i in range(K // 6000)]      # K bytes of f1 after f0's start
    fifo += [("f0", 1000, B // 4), ("f1", 1001, 6000)]
    req = edge_run.fifo_required(fifo)
    assert ("f0", 1000) not in req                 # its block began at ts 10: > K bytes ago
    assert ("f1", 1001) in req and ("f1", fifo[-3][1]) in req
    # the same record in a block of its own (the previous one full) must survive
    fifo[0] = ("f0", 10, B)
    req = edge_run.fifo_required(fifo)
    assert ("f0", 1000) in req and ("f0", 10) not in req
    # and bytes since the start are what count: well inside the allowance, everything is required
    assert edge_run.fifo_required(fifo[-2:]) == {("f0", 1000), ("f1", 1001)}
