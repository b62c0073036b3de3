"""Replication catch-up: records/s a source sends to a destination (another edge) after an outage.

Usage: python bench/replication_catchup.py [--small N] [--large N]
A backlog (default 20,000 x 1 KB, then 300 x 1 MB) is written while the destination is down;
then the destination starts and we time until ``pending_records`` is 0. Real servers on loopback
with EDGE_SYNC=always (every write and its log event fsynced before the 200).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import NO_AUTH, EdgeProcess  # noqa: E402


def pending(src: EdgeProcess) -> int:
    return requests.get(f"{src.api}/replications/r").json()["info"]["pending_records"]


def backlog(src: EdgeProcess, entry: str, count: int, size: int) -> None:
    payload = os.urandom(size)
    per_batch = max(1, min(80, 8_000_000 // size))
    ts = 1
    while ts <= count:
        n = min(per_batch, count - ts + 1)
        headers = {f"x-reduct-time-{t}": f"{size}," for t in range(ts, ts + n)}
        requests.post(f"{src.api}/b/src/{entry}/batch", data=payload * n, headers=headers).raise_for_status()
        ts += n


def phase(src: EdgeProcess, dst: EdgeProcess, entry: str, count: int, size: int) -> None:
    dst.stop()
    t0 = time.perf_counter()
    backlog(src, entry, count, size)
    write_s = time.perf_counter() - t0
    assert pending(src) == count, pending(src)
    dst.start()
    t0 = time.perf_counter()
    first = None   # when the first batch was delivered: the sender's reconnect (backoff) is before it
    while (left := pending(src)) > 0:
        if first is None and left < count:
            first = time.perf_counter()
        time.sleep(0.02)
    end = time.perf_counter()
    s = end - t0
    first = end if first is None else first
    got = sum(e["record_count"] for e in requests.get(f"{dst.api}/b/dst").json()["entries"] if e["name"] == entry)
    assert got == count, (got, count)
    sending = max(end - first, 1e-9)
    print(f"{size:>8} B x {count:>6}: backlog written in {write_s:6.2f} s; caught up in {s:6.2f} s "
          f"= {count / s:9.0f} records/s, {count * size / s / 1e6:7.1f} MB/s; first batch delivered after "
          f"{first - t0:5.2f} s (reconnect), then {count / sending:9.0f} records/s, "
          f"{count * size / sending / 1e6:7.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=300)
    args = ap.parse_args()
    run(args.small, args.large)


def run(small: int, large: int) -> None:
    """Print the catch-up figures for ``small`` x 1 KB and ``large`` x 1 MB records."""
    root = Path(tempfile.mkdtemp(prefix="edge-repl-bench-"))
    env = {"RS_LOG_LEVEL": "WARN"}
    dst = EdgeProcess(root / "dst", env, auth=NO_AUTH).start()
    src = EdgeProcess(root / "src", env, auth=NO_AUTH).start()
    try:
        requests.post(f"{src.api}/b/src").raise_for_status()
        requests.post(f"{src.api}/replications/r",
                      json={"src_bucket": "src", "dst_bucket": "dst", "dst_host": dst.url}).raise_for_status()
        phase(src, dst, "small", small, 1024)
        phase(src, dst, "large", large, 1024 * 1024)
    finally:
        src.kill()
        dst.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
