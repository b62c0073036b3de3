"""First start on a fresh data folder, and a restart on it, for one or more source trees.

``flock /tmp/edge-bench.lock python bench/first_start.py [--runs 15] [--tree OTHER_CHECKOUT ...]``
starts ``python -m edge serve`` (auth on: ``RS_API_TOKEN`` set, so tokens.json and link.key are
made) on an empty folder and times it until ``/alive`` answers, stops it, then times a restart
on the same folder. Every tree runs in the same session, interleaved, so the medians compare
(this checkout is always the first column). The folders live beside this checkout (a real
disk, where fsync costs what it costs; not a tmpfs).
"""

from __future__ import annotations

import argparse
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
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alive", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"edge in {tree} exited with {proc.returncode}")
            time.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to compare")
    args = ap.parse_args()
    trees = [ROOT, *(Path(t).resolve() for t in args.tree)]
    first: dict[Path, list[float]] = {t: [] for t in trees}
    again: dict[Path, list[float]] = {t: [] for t in trees}
    base = Path(tempfile.mkdtemp(prefix=".bench-first-start-", dir=ROOT.parent))
    try:
        for i in range(args.runs):
            for tree in trees:
                data = base / f"{i}-{trees.index(tree)}"
                proc, s = start(tree, data)
                first[tree].append(s)
                stop(proc)
                proc, s = start(tree, data)
                again[tree].append(s)
                stop(proc)
                shutil.rmtree(data)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"| tree | first start, median ms | restart, median ms | runs |")
    print("|---|---|---|---|")
    for tree in trees:
        print(f"| {tree} | {statistics.median(first[tree]) * 1000:.0f} | "
              f"{statistics.median(again[tree]) * 1000:.0f} | {args.runs} |")
    if len(trees) > 1:
        ratio = statistics.median(first[ROOT]) / statistics.median(first[trees[1]])
        print(f"\nfirst start, this tree / {trees[1].name}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
