"""A full ring buffer stays fast: start-up and ingest do not grow with the record count, and a
FIFO bucket's files stay within its quota plus one block.

How, without wall-clock thresholds: the same measurement at two sizes, 20k and 200k records
(100-byte records, one entry, built with the store API so building takes seconds), and the
larger must not cost more than 1.5x the smaller (O(records) behaviour costs ~10x here). Start-up
is the median of three real ``edge serve`` starts to ``/alive``; ingest is the server's own CPU
time per record (psutil, so other processes on the machine do not count) for 9,000 records in
batches of 900 -- the batch size that used to collapse when a batch straddled a block -- and 80.
The full 0.1M/1M/10M figures are ``bench/scale.py``'s.
"""

from __future__ import annotations

import os
import statistics
import time

import psutil
import pytest
import requests

from edge.model import BucketSettings
from edge.store import Engine
from tests.helpers import NO_AUTH, EdgeProcess

SMALL, LARGE = 20_000, 200_000
TS0 = 1_000_000_000
OCT = "application/octet-stream"


def build(path, records: int) -> None:
    engine = Engine.open(path)
    entry = engine.create_bucket("ring", BucketSettings()).get_or_create_entry("e")
    payload = os.urandom(100)
    for i in range(records):
        w = entry.begin_write(TS0 + i, 100, OCT, {"cam": "front"})
        w.write(payload)
        w.finish()
        if i % 900 == 899:
            entry.flush().close()
    entry.flush().close()
    engine.close()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    out = {}
    for n in (SMALL, LARGE):
        path = tmp_path_factory.mktemp(f"ring{n}") / "data"
        build(path, n)
        out[n] = path
    return out


def start_seconds(path) -> float:
    proc = EdgeProcess(path, auth=NO_AUTH)
    t0 = time.perf_counter()
    proc.start(timeout_s=120)
    seconds = time.perf_counter() - t0
    assert proc.stop() == 0
    return seconds


def test_start_up_does_not_grow_with_the_record_count(folders):
    times: dict[int, list[float]] = {SMALL: [], LARGE: []}
    for _ in range(3):
        for n in (SMALL, LARGE):  # interleaved: both see the same machine
            times[n].append(start_seconds(folders[n]))
    small, large = statistics.median(times[SMALL]), statistics.median(times[LARGE])
    assert large < 1.5 * small, f"start-up {small:.2f} s at {SMALL:,} records, {large:.2f} s at {LARGE:,}"


def ingest_cpu_us(proc: EdgeProcess, first: int, batch: int, count: int = 9_000) -> float:
    ps = psutil.Process(proc.proc.pid)
    s = requests.Session()
    payload = os.urandom(100)
    c0 = ps.cpu_times()
    for start in range(first, first + count, batch):
        n = min(batch, first + count - start)
        headers = {f"x-reduct-time-{TS0 + start + k}": "100,application/octet-stream,cam=front" for k in range(n)}
        r = s.post(f"{proc.api}/b/ring/e/batch", data=payload * n, headers=headers, timeout=60)
        assert r.status_code == 200 and not any(k.startswith("x-reduct-error") for k in r.headers), r.headers
    c1 = ps.cpu_times()
    return 1e6 * ((c1.user - c0.user) + (c1.system - c0.system)) / count


@pytest.mark.parametrize("batch", [900, 80])
def test_ingest_does_not_grow_with_the_record_count(folders, batch):
    procs = {n: EdgeProcess(folders[n], {"EDGE_SYNC": "none"}, auth=NO_AUTH).start(timeout_s=120)
             for n in (SMALL, LARGE)}
    try:
        cost: dict[int, list[float]] = {SMALL: [], LARGE: []}
        offset = {900: 100_000, 80: 200_000}[batch]  # past what is stored and what the other case wrote
        for rep in range(2):
            for n in (SMALL, LARGE):
                cost[n].append(ingest_cpu_us(procs[n], n + offset + rep * 9_000, batch))
        small, large = min(cost[SMALL]), min(cost[LARGE])
        assert large < 1.5 * small, (
            f"batches of {batch}: {small:.0f} µs CPU per record at {SMALL:,} records, {large:.0f} at {LARGE:,}")
    finally:
        for p in procs.values():
            p.stop()


def bucket_files(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "settings.json")


def test_fifo_bucket_files_stay_within_quota_plus_one_block(tmp_path):
    quota, block = 2_000_000, 200_000
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        b = f"{proc.api}/b/fifo"
        assert requests.post(b, json={"quota_type": "FIFO", "quota_size": quota, "max_block_size": block,
                                      "max_block_records": 256}).status_code == 200
        s = requests.Session()
        rng = __import__("random").Random(3)
        written = ts = 0
        worst = 0
        while written < 3 * quota:
            ts += 1
            size = rng.choice([10, 100, 1_000, 20_000, 150_000])  # any record size
            labels = {"x-reduct-label-n": "v" * rng.randrange(0, 300)}
            r = s.post(f"{b}/e{ts % 3}?ts={ts}", data=os.urandom(size), headers=labels, timeout=30)
            assert r.status_code == 200, r.headers.get("x-reduct-error")
            if ts % 7 == 0:
                assert s.patch(f"{b}/e{ts % 3}?ts={ts}", headers={"x-reduct-label-m": "y" * 50},
                               timeout=30).status_code == 200
            written += size
            used = bucket_files(tmp_path / "data" / "fifo")
            worst = max(worst, used)
            assert used <= quota + block, (ts, used)
            assert s.get(b, timeout=30).json()["info"]["disk_usage"] == used
        assert worst > quota * 0.8  # it did fill up
        assert proc.stop() == 0
        proc.start()
        assert bucket_files(tmp_path / "data" / "fifo") <= quota + block
        info = requests.get(b, timeout=30).json()["info"]
        assert info["latest_record"] == ts and info["size"] <= info["disk_usage"]
    finally:
        proc.kill()


def test_memory_per_entry_does_not_grow_with_its_batches(tmp_path):
    """What an entry keeps between writes must not depend on how big its batches were: the same
    number of entries (200) written with one batch of 10 records each and with one of 900 must
    grow the server's RSS alike. (An entry's writer sets used to keep the table of their largest
    batch: ~64 KiB per entry, 13 MiB here, 64 MiB at 1000 entries.) The index cache is small, so
    the per-record indexes it may hold (a documented bound of its own) do not count."""
    proc = EdgeProcess(tmp_path / "data", {"EDGE_SYNC": "none", "EDGE_INDEX_CACHE_SIZE": "256KiB"},
                       auth=NO_AUTH).start()
    try:
        ps = psutil.Process(proc.proc.pid)
        s = requests.Session()
        assert s.post(f"{proc.api}/b/many", json={"quota_type": "NONE"}, timeout=30).status_code == 200
        payload = os.urandom(100)
        growth = {}
        for phase, n in (("small", 10), ("large", 900)):
            before = ps.memory_info().rss
            for k in range(200):
                headers = {f"x-reduct-time-{TS0 + i}": "100,application/octet-stream" for i in range(n)}
                r = s.post(f"{proc.api}/b/many/{phase}-{k}/batch", data=payload * n, headers=headers, timeout=60)
                assert r.status_code == 200 and not any(h.startswith("x-reduct-error") for h in r.headers)
            growth[phase] = ps.memory_info().rss - before
        per_entry = (growth["large"] - growth["small"]) / 200
        assert per_entry < 20 * 1024, (
            f"RSS grew {growth['small'] / 2**20:.1f} MiB for 200 entries of 10 records, "
            f"{growth['large'] / 2**20:.1f} MiB for 200 entries of 900 ({per_entry / 1024:.0f} KiB more per entry)")
    finally:
        proc.stop()
