"""Soak: 8 writers, 8 readers and share-link downloads against one server for a bounded time.

What it checks, and why: leaks show only under sustained load -- an fd not closed after a
sendfile, a query registry that never forgets, a dup'd fd kept by a Durability, a cache without a
bound. So one real server gets steady mixed traffic (writes of 1 B..64 KiB with labels into a FIFO
bucket that keeps evicting, byte-checked reads of recent records, queries, link downloads) and
the test samples the server process (psutil: RSS and open fds) once a second. After a warm-up
third, memory and open files must stay flat:

* no request fails (every write 200, every read 200 with the written bytes);
* RSS in the last third exceeds the level at the end of warm-up by less than
  max(24 MiB, 20 %), and open fds by at most 16.

As a script (default 60 s; prints the figures):

    python tests/reliability/soak.py --seconds 60 [--writers 8 --readers 8]

pytest runs ``test_soak_short`` (~15 s). Everything is on 127.0.0.1, time-bounded, and the server
is killed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import NO_AUTH, EdgeProcess  # noqa: E402

TIMEOUT = 15
CI_SECONDS = 15.0


class Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recent: dict[int, list[tuple[int, str]]] = {}  # writer -> [(ts, sha)] newest last
        self.counts = {"writes": 0, "reads": 0, "queries": 0, "links": 0, "bytes_written": 0}
        self.errors: list[str] = []

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 100:
                self.errors.append(text)


def writer(api: str, wid: int, sh: Shared, stop: threading.Event) -> None:
    s = requests.Session()
    rng = random.Random(wid)
    ts = 1_000_000 + wid * 10**12
    sh.recent[wid] = []
    while not stop.is_set():
        ts += rng.randint(1, 1000)
        body = rng.randbytes(rng.choice([1, 100, 1000, 4000, 16_000, 64_000]))
        try:
            r = s.post(f"{api}/b/soak/w{wid}?ts={ts}", data=body,
                       headers={"x-reduct-label-w": str(wid), "x-reduct-label-n": str(ts % 97)}, timeout=TIMEOUT)
        except requests.RequestException as exc:
            sh.error(f"write: {exc!r}")
            continue
        if r.status_code != 200:
            sh.error(f"write {wid}/{ts}: {r.status_code} {r.headers.get('x-reduct-error')}")
            continue
        with sh.lock:
            lst = sh.recent[wid]
            lst.append((ts, hashlib.sha256(body).hexdigest()))
            del lst[:-200]
            sh.counts["writes"] += 1
            sh.counts["bytes_written"] += len(body)


def reader(api: str, rid: int, sh: Shared, stop: threading.Event) -> None:
    s = requests.Session()
    rng = random.Random(1000 + rid)
    while not stop.is_set():
        wid = rng.randrange(8)
        with sh.lock:
            lst = list(sh.recent.get(wid, []))
        if not lst:
            time.sleep(0.01)
            continue
        try:
            if rng.random() < 0.1:
                r = s.get(f"{api}/b/soak/w{wid}/q", params={"start": lst[-20][0] if len(lst) >= 20 else lst[0][0],
                                                             "ttl": 5}, timeout=TIMEOUT)
                if r.status_code != 200:
                    sh.error(f"query: {r.status_code} {r.headers.get('x-reduct-error')}")
                    continue
                r = s.get(f"{api}/b/soak/w{wid}/batch", params={"q": r.json()["id"]}, timeout=TIMEOUT)
                if r.status_code not in (200, 204):
                    sh.error(f"query read: {r.status_code} {r.headers.get('x-reduct-error')}")
                sh.count("queries")
                continue
            ts, digest = rng.choice(lst[-100:])
            r = s.get(f"{api}/b/soak/w{wid}?ts={ts}", timeout=TIMEOUT)
        except requests.RequestException as exc:
            sh.error(f"read: {exc!r}")
            continue
        if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != digest:
            sh.error(f"read w{wid}/{ts}: {r.status_code} {r.headers.get('x-reduct-error')}")
        sh.count("reads")


def downloader(links: dict[str, tuple[str, bytes]], did: int, sh: Shared, stop: threading.Event) -> None:
    s = requests.Session()
    rng = random.Random(2000 + did)
    names = sorted(links)
    while not stop.is_set():
        url, data = links[rng.choice(names)]
        try:
            if rng.random() < 0.3 and len(data) > 100:
                r = s.get(url, headers={"range": "bytes=10-99"}, timeout=TIMEOUT)
                ok = r.status_code == 206 and r.content == data[10:100]
            else:
                r = s.get(url, timeout=TIMEOUT)
                ok = r.status_code == 200 and r.content == data
        except requests.RequestException as exc:
            sh.error(f"link: {exc!r}")
            continue
        if not ok:
            sh.error(f"link {url[-30:]}: {r.status_code}")
        sh.count("links")


def _links(api: str) -> dict[str, tuple[str, bytes]]:
    assert requests.post(f"{api}/b/shared", timeout=TIMEOUT).status_code == 200
    out = {}
    for i, size in enumerate([500, 100_000, 3_000_000]):  # small, medium, streamed with sendfile
        data = os.urandom(size)
        assert requests.post(f"{api}/b/shared/files?ts={i + 1}", data=data, timeout=TIMEOUT).status_code == 200
        body = {"bucket": "shared", "entry": "files", "record_entry": "files", "record_timestamp": i + 1,
                "query": {"query_type": "QUERY", "entries": ["files"]}, "expire_at": int(time.time()) + 3600}
        r = requests.post(f"{api}/links/f{i}.bin", json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.headers
        out[f"f{i}"] = (r.json()["link"], data)
    return out


def run(seconds: float, data: Path, writers: int = 8, readers: int = 8, downloaders: int = 2, out=print) -> dict:
    proc = EdgeProcess(data, auth=NO_AUTH).start()
    try:
        api = proc.api
        r = requests.post(f"{api}/b/soak", json={"quota_type": "FIFO", "quota_size": 150_000_000}, timeout=TIMEOUT)
        assert r.status_code == 200, r.headers
        links = _links(api)
        server = psutil.Process(proc.proc.pid)
        sh = Shared()
        stop = threading.Event()
        threads = ([threading.Thread(target=writer, args=(api, w, sh, stop), daemon=True) for w in range(writers)]
                   + [threading.Thread(target=reader, args=(api, i, sh, stop), daemon=True) for i in range(readers)]
                   + [threading.Thread(target=downloader, args=(links, i, sh, stop), daemon=True)
                      for i in range(downloaders)])
        for t in threads:
            t.start()
        samples: list[tuple[float, int, int]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            samples.append((time.monotonic() - t0, server.memory_info().rss, server.num_fds()))
        stop.set()
        for t in threads:
            t.join(TIMEOUT + 5)
        hung = sum(t.is_alive() for t in threads)
        elapsed = time.monotonic() - t0
        third = max(1, len(samples) // 3)
        warm_rss = max(s[1] for s in samples[third - 1:third + 1])
        warm_fds = max(s[2] for s in samples[third - 1:third + 1])
        late = samples[-third:]
        figures = {
            "seconds": round(elapsed, 1), **sh.counts,
            "writes_per_s": round(sh.counts["writes"] / elapsed), "reads_per_s": round(sh.counts["reads"] / elapsed),
            "rss_mib_start": samples[0][1] >> 20, "rss_mib_warm": warm_rss >> 20,
            "rss_mib_late_max": max(s[1] for s in late) >> 20, "rss_mib_end": samples[-1][1] >> 20,
            "fds_start": samples[0][2], "fds_warm": warm_fds, "fds_late_max": max(s[2] for s in late),
            "fds_end": samples[-1][2], "errors": len(sh.errors), "hung_threads": hung,
        }
        out("soak: " + " ".join(f"{k}={v}" for k, v in figures.items()))
        for e in sh.errors[:10]:
            out(f"  ERROR {e}")
        figures["error_texts"] = sh.errors
        figures["rss_growth"] = max(s[1] for s in late) - warm_rss
        figures["fd_growth"] = figures["fds_late_max"] - warm_fds
        figures["rss_warm"] = warm_rss
        return figures
    finally:
        proc.kill()


def check(figures: dict) -> list[str]:
    problems = []
    if figures["errors"]:
        problems.append(f"{figures['errors']} failed requests: {figures['error_texts'][:5]}")
    if figures["hung_threads"]:
        problems.append(f"{figures['hung_threads']} client threads hung")
    if figures["rss_growth"] >= max(24 << 20, figures["rss_warm"] // 5):
        problems.append(f"RSS grew by {figures['rss_growth'] >> 20} MiB after warm-up")
    if figures["fd_growth"] > 16:
        problems.append(f"open fds grew by {figures['fd_growth']} after warm-up")
    return problems


def test_soak_short(tmp_path):
    figures = run(CI_SECONDS, tmp_path / "data")
    assert not check(figures), check(figures)
    assert figures["writes"] > 100 and figures["reads"] > 100 and figures["links"] > 10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--readers", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-soak-") as tmp:
        figures = run(args.seconds, Path(tmp) / "data", args.writers, args.readers)
    problems = check(figures)
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
