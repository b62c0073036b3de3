"""First start on a fresh data folder, and a restart on it, for one or more source trees.

``flock /tmp/edge-bench.lock python bench/first_start.py [--runs 15] [--tree OTHER_CHECKOUT ...]``
starts ``python -m edge serve`` (auth on: ``RS_API_TOKEN`` set, so tokens.json and link.key are
made) on an empty folder and times it until ``/alive`` answers, then until the first token, the
first bucket and the first 1 KB record are acknowledged (one after the other, as a device's
first minute does: each is the first durable folder and file of its kind), stops it, then times
a restart on the same folder until ``/alive``. Every tree runs in the same session, interleaved, so the medians compare
(this checkout is always the first column). The folders live beside this checkout (a real
disk, where fsync costs what it costs; not a tmpfs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, stop  # noqa: E402


def start(tree: Path, data: Path) -> tuple[subprocess.Popen, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
    env.update(RS_DATA_PATH=str(data), RS_HOST="127.0.0.1", RS_PORT=str(port), RS_API_TOKEN="bench-token",
               RS_LOG_LEVEL="WARN", PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "edge", "serve"], cwd=str(tree), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.port = port   # type: ignore[attr-defined]
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alive", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"edge in {tree} exited with {proc.returncode}")
            time.sleep(0.005)


def call(port: int, method: str, path: str, body: bytes = b"") -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", data=body, method=method,
                                 headers={"Authorization": "Bearer bench-token"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status}")
        r.read()


def firsts(port: int) -> None:
    """The first token, bucket and 1 KB record, each acknowledged before the next."""
    call(port, "POST", "/tokens/first", json.dumps({"full_access": True}).encode())
    call(port, "POST", "/b/first")
    call(port, "POST", "/b/first/e?ts=1", b"x" * 1000)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to compare")
    args = ap.parse_args()
    trees = [ROOT, *(Path(t).resolve() for t in args.tree)]
    first: dict[Path, list[float]] = {t: [] for t in trees}
    write: dict[Path, list[float]] = {t: [] for t in trees}
    firsts_only: dict[Path, list[float]] = {t: [] for t in trees}
    again: dict[Path, list[float]] = {t: [] for t in trees}
    print(f"load average before: {load()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix=".bench-first-start-", dir=ROOT.parent))
    try:
        for i in range(args.runs):
            for tree in trees:
                data = base / f"{i}-{trees.index(tree)}"
                t0 = time.perf_counter()
                proc, s = start(tree, data)
                first[tree].append(s)
                try:
                    firsts(proc.port)   # type: ignore[attr-defined]
                    write[tree].append(time.perf_counter() - t0)
                    firsts_only[tree].append(write[tree][-1] - s)
                finally:
                    stop(proc)
                proc, s = start(tree, data)
                again[tree].append(s)
                stop(proc)
                shutil.rmtree(data)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average after: {load()}")
    print("| tree | first start to /alive, median (min-max) ms | to first token + bucket + 1 KB write "
          "acknowledged, ms | of which the three firsts, ms | restart to /alive, ms | runs |")
    print("|---|---|---|---|---|---|")

    def cell(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1000:.0f} ({min(xs) * 1000:.0f}-{max(xs) * 1000:.0f})"

    for tree in trees:
        print(f"| {tree} | {cell(first[tree])} | {cell(write[tree])} | {cell(firsts_only[tree])} | {cell(again[tree])} | {args.runs} |")
    for other in trees[1:]:
        ratios = [statistics.median(d[ROOT]) / statistics.median(d[other])
                  for d in (first, write, firsts_only, again)]
        print(f"\nthis tree / {other.name}: first start {ratios[0]:.2f}x, first write acknowledged "
              f"{ratios[1]:.2f}x, the three firsts {ratios[2]:.2f}x, restart {ratios[3]:.2f}x")


if __name__ == "__main__":
    main()
