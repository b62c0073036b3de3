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

pytestmark = pytest.mark.skipif(available() is not None, reason=f"crash disk unavailable: {available()}")


@pytest.mark.parametrize("mode", ["bad", "nodirsync", "good"])
def test_crash_disk_tells_a_careless_writer_from_a_durable_one(tmp_path, mode):
    got = trial(mode, tmp_path, run_s=1.0)
    assert got.acked >= 5, got
    if mode == "good":
        assert got.lost == 0, got
    else:
        assert got.lost > 0, got          # a disk that kept unsynced data would prove nothing
    print(f"{mode}: {got.acked} acknowledged, {got.lost} lost after the cut")


def test_power_cuts_under_edge(tmp_path):
    # 4 cuts: two from a fresh folder (the firsts), two on the folder the previous cut left
    results = edge_run.run(4, tmp_path, seed=int(os.environ.get("EDGE_POWERLOSS_SEED", "24")), fresh_every=2)
    summary = edge_run.summary(results)
    print(summary)
    assert summary["acked"] > 100, summary
    found = [(r.index, k, d) for r in results for k, d in r.findings]
    assert found == [], found
