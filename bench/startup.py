"""Start-up time and memory of ``edge serve`` on a data folder with many entries, blocks and records.

``python bench/startup.py [--entries 1000] [--blocks 20] [--records 1000000]`` builds two data
folders with the store API directly (fast, no HTTP): A) ``--entries`` entries of ``--blocks``
sealed blocks each (one small record per block, ``max_block_records`` = 1), and B) one entry with
``--records`` records of 16 bytes. For each it starts a fresh ``python -m edge serve`` (on CPU 0
when ``taskset`` is there), measures the seconds until ``/alive`` answers and the server's RSS
right then and after a ``GET /api/v1/b/<bucket>`` (which walks every entry), and prints a table.
The folders are removed afterwards. ``--keep DIR`` builds (or reuses) them under DIR instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import cpu_pinning, free_port, stop, wait_alive  # noqa: E402


def build_many_entries(path: Path, entries: int, blocks: int) -> None:
    from edge.model import BucketSettings
    from edge.store import Engine

    engine = Engine.open(path)
    bucket = engine.create_bucket("many", BucketSettings(max_block_records=1))
    for e in range(entries):
        entry = bucket.get_or_create_entry(f"entry-{e}")
        for k in range(blocks):
            w = entry.begin_write(1_000 + k, 16, "application/octet-stream", {"k": "v"})
            w.write(b"x" * 16)
            w.finish()
            entry.flush().close()
    engine.close()


def build_many_records(path: Path, records: int) -> None:
    from edge.model import BucketSettings
    from edge.store import Engine

    engine = Engine.open(path)
    bucket = engine.create_bucket("big", BucketSettings())
    entry = bucket.get_or_create_entry("one")
    payload = b"y" * 16
    for i in range(records):
        w = entry.begin_write(1_000 + i, 16, "application/octet-stream", {})
        w.write(payload)
        w.finish()
        if i % 1000 == 999:
            entry.flush().close()
    entry.flush().close()
    engine.close()


def measure(path: Path, bucket: str, prefix: list[str]) -> tuple[float, float, float]:
    port = free_port()
    env = dict(os.environ, RS_DATA_PATH=str(path), RS_HOST="127.0.0.1", RS_PORT=str(port), RS_LOG_LEVEL="WARN",
               RS_DISABLE_AUTH="true",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(prefix + [sys.executable, "-m", "edge", "serve"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL)
    try:
        seconds = wait_alive(port, proc, timeout=600)
        ps = psutil.Process(proc.pid)
        rss_alive = ps.memory_info().rss / 1e6
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/b/{bucket}", timeout=600) as r:
            r.read()
        rss_after = ps.memory_info().rss / 1e6
    finally:
        stop(proc)
    return seconds, rss_alive, rss_after


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--keep", default=None, help="build the folders here and keep them")
    a = ap.parse_args()
    prefix, _ = cpu_pinning()
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="edge-startup-"))
    rows = []
    try:
        for name, bucket, build, label in (
            ("many", "many", lambda p: build_many_entries(p, a.entries, a.blocks),
             f"{a.entries:,} entries x {a.blocks} blocks"),
            ("big", "big", lambda p: build_many_records(p, a.records), f"1 entry x {a.records:,} records of 16 B"),
        ):
            path = base / name
            if not path.exists():
                t0 = time.perf_counter()
                build(path)
                print(f"built {label} in {time.perf_counter() - t0:.1f} s", flush=True)
            seconds, rss_alive, rss_after = measure(path, bucket, prefix)
            rows.append((label, seconds, rss_alive, rss_after))
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("| data folder | seconds to first /alive | RSS at /alive MB | RSS after GET bucket MB |")
    print("|---|---|---|---|")
    for label, seconds, rss_alive, rss_after in rows:
        print(f"| {label} | {seconds:.2f} | {rss_alive:.0f} | {rss_after:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
