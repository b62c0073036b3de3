"""A slow disk must not stall the event loop (issue 23 item 3, edge/blocking.py).

The server runs with ``EDGE_TEST_SLOW_FSYNC_MS`` (a test-only knob: every fsync/fdatasync of the
process sleeps first, like a slow SD card). While big writes, a bucket deletion, share-link
creation (sealing, scrypt, registry fsync) and downloads, and a replication catching up run
against it, a prober times ``GET /api/v1/alive`` and a read of a small cached record.

Why it can fail: a blocking call left on the event loop holds every request for at least one
fsync (``DELAY_MS``), so the slowest probe crosses ``MAX_S`` (= 3/4 of one fsync); a loop that is
merely busy shows in the p99 (``P99_S`` = 50 ms, the issue's bound). Moving one call back inline
(e.g. the rmtree + fsync of the bucket DELETE) fails it: see the commit that added it.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest
import requests
from tests.helpers import NO_AUTH

pytestmark = [pytest.mark.timeout(240), pytest.mark.serial]

DELAY_MS = 200
P99_S = 0.050
MAX_S = 0.75 * DELAY_MS / 1000


def _batch(s: requests.Session, api: str, bucket: str, entry: str, sizes: list[int], ts0: int = 1) -> None:
    headers = {f"x-reduct-time-{ts0 + i}": f"{n},application/octet-stream" for i, n in enumerate(sizes)}
    r = s.post(f"{api}/b/{bucket}/{entry}/batch", data=os.urandom(sum(sizes)), headers=headers)
    assert r.status_code == 200 and not [h for h in r.headers if h.startswith("x-reduct-error-")], r.headers


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Prober(threading.Thread):
    """Alternates GET /alive and GET of a cached small record on one keep-alive connection."""

    def __init__(self, api: str, record_url: str) -> None:
        super().__init__(daemon=True)
        self.api, self.record_url = api, record_url
        self.samples: list[tuple[float, str, float]] = []   # (start, what, seconds)
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        s = requests.Session()
        targets = [("alive", f"{self.api}/alive"), ("read", self.record_url)]
        i = 0
        while not self.stop.is_set():
            what, url = targets[i % 2]
            i += 1
            t0 = time.perf_counter()
            r = s.get(url, timeout=10)
            took = time.perf_counter() - t0
            if r.status_code != 200:
                self.errors.append(f"{what}: {r.status_code}")
            self.samples.append((t0, what, took))
            time.sleep(0.002)

    def window(self, t0: float, t1: float) -> list[float]:
        return [took for start, _, took in self.samples if t0 <= start <= t1]


def test_slow_fsync_leaves_alive_and_cached_reads_responsive(make_server):
    dst = make_server(auth=NO_AUTH)
    src = make_server({"EDGE_TEST_SLOW_FSYNC_MS": str(DELAY_MS)}, auth=NO_AUTH)
    api = src.api
    s = requests.Session()
    # --- set-up (not measured) --------------------------------------------------------------
    assert s.post(f"{api}/b/hot").status_code == 200
    assert s.post(f"{api}/b/hot/e?ts=1", data=b"x" * 1000).status_code == 200
    record_url = f"{api}/b/hot/e?ts=1"
    assert s.get(record_url).content == b"x" * 1000      # now cached (page cache, index)
    assert s.post(f"{api}/b/doomed", json={"max_block_records": 8}).status_code == 200
    for k in range(8):                                    # 8 entries x 8 blocks of 8 records
        _batch(s, api, "doomed", f"e{k}", [4096] * 64)
    assert s.post(f"{api}/b/src").status_code == 200
    r = s.post(f"{api}/replications/r", json={"src_bucket": "src", "dst_bucket": "dst", "dst_host": dst.url})
    assert r.status_code == 200, r.text
    assert s.post(f"{api}/b/big").status_code == 200

    prober = Prober(api, record_url)
    prober.start()
    time.sleep(1.0)
    idle = prober.window(0, time.perf_counter())

    # --- the load ---------------------------------------------------------------------------
    done: dict[str, object] = {}
    big = os.urandom(8_000_000)

    def writer(k: int) -> None:
        ws = requests.Session()
        for i in range(4):
            r = ws.post(f"{api}/b/big/w{k}?ts={i + 1}", data=big, timeout=60)
            assert r.status_code == 200, r.headers
        done[f"writer{k}"] = True

    def deleter() -> None:
        time.sleep(0.3)
        r = requests.delete(f"{api}/b/doomed", timeout=60)
        assert r.status_code == 200, r.headers
        done["delete"] = True

    def linker() -> None:
        ls = requests.Session()
        for i in range(4):
            body = {"bucket": "hot", "entry": "e", "record_entry": "e", "record_timestamp": 1,
                    "query": {"query_type": "QUERY", "entries": ["e"]}, "expire_at": int(time.time()) + 3600,
                    "password": f"pw{i}"}
            r = ls.post(f"{api}/links/f{i}.bin", json=body, timeout=60)
            assert r.status_code == 200, r.headers
            link = r.json()["link"]
            got = ls.get(link, auth=("", f"pw{i}"), timeout=60)
            assert got.status_code == 200 and got.content == b"x" * 1000, got.headers
        done["links"] = True

    def replicator() -> None:
        rs = requests.Session()   # replicated: the records written from now on
        _batch(rs, api, "src", "small", [64 * 1024] * 48)
        _batch(rs, api, "src", "big", [6_000_000, 6_000_000])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            r = requests.get(f"{dst.api}/b/dst", timeout=10)
            if r.status_code == 200 and sum(e["record_count"] for e in r.json()["entries"]) == 50:
                done["replication"] = True
                return
            time.sleep(0.1)

    jobs = [threading.Thread(target=f, args=a) for f, a in
            ((writer, (0,)), (writer, (1,)), (deleter, ()), (linker, ()), (replicator, ()))]
    t0 = time.perf_counter()
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(120)
    t1 = time.perf_counter()
    prober.stop.set()
    prober.join(15)
    assert sorted(done) == ["delete", "links", "replication", "writer0", "writer1"], done
    assert not prober.errors, prober.errors[:5]

    loaded = prober.window(t0, t1)
    reads = [took for start, what, took in prober.samples if t0 <= start <= t1 and what == "read"]
    figures = (f"fsync delay {DELAY_MS} ms; load {t1 - t0:.1f} s, {len(loaded)} probes "
               f"(idle: {len(idle)}, p50 {statistics.median(idle) * 1000:.1f} ms, "
               f"p99 {_percentile(idle, 0.99) * 1000:.1f} ms); "
               f"under load p50 {statistics.median(loaded) * 1000:.1f} ms, "
               f"p99 {_percentile(loaded, 0.99) * 1000:.1f} ms, max {max(loaded) * 1000:.1f} ms "
               f"(cached reads p99 {_percentile(reads, 0.99) * 1000:.1f} ms)")
    print(figures)
    assert len(loaded) > 50, figures      # the probes really ran during the load
    assert _percentile(loaded, 0.99) < P99_S, figures
    assert max(loaded) < MAX_S, figures
    # Deterministic, whatever the machine's load: no fsync ran on the event loop once the server
    # listened (start-up opens its rooms before it serves anything).
    text = src.log_path.read_text(errors="replace")
    serving = text[text.index("listening on"):]
    inline = [line for line in serving.splitlines() if "fsync on the event loop" in line]
    print("\n".join(inline[:20]))
    assert not inline, "\n".join(inline[:10])
