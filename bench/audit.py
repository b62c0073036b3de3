"""The cost of ``$system`` audit on the 1 KB write path, measured in one run.

``python bench/audit.py`` (wrap it: ``flock /tmp/edge-bench.lock python bench/audit.py``).
Authentication is on in every case (a full-access token), so each request goes through the
audit hook exactly as on a device. Three servers per round, each fresh (empty temp data folder,
pinned to CPU 0 when there are two CPUs; the client runs on CPU 1):

- ``events off``: ``RS_SYSTEM_EVENTS_ENABLED=false`` (no writer, no hooks);
- ``audit off``: events on, ``RS_AUDIT_ENABLED=false`` (usage and logs only);
- ``audit on``: the default with authentication (every request aggregated into audit records).

and two workloads of 1,000-byte records over one keep-alive connection, one request in flight:
``single`` (one ``POST /b/bench/e?ts=`` per record: the worst case for a per-request cost) and
``batch`` (batch protocol v1, 80 records per ``POST .../batch``, as reduct-py's ``write_batch``).
Rounds interleave the three servers so each sees the same background noise. It prints, per
workload and sync policy, median (min-max) records/s and server CPU µs per record, and the ratios
``audit on / audit off`` and ``audit on / events off`` (target: the audit costs under 5 %).
Options: ``--rounds 5``, ``--records 3000``, ``--sync always none`` (``none`` = no fdatasync:
CPU-bound, the strictest view of a per-request cost).

Last, the audit hook alone, in this process (deterministic where the end-to-end figures are
noisy on a shared machine): µs per request of what audit adds to a write (the ``Caller`` that
``authorize`` records and ``SystemEvents.observe_request``), next to the median server CPU per
single 1 KB write measured above with audit off: their ratio is the audit's share of the write
path. ``--hook-only`` prints just that.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-audit-secret"
PAYLOAD = os.urandom(1000)
BATCH = 80
CONFIGS = {
    "events off": {"RS_SYSTEM_EVENTS_ENABLED": "false"},
    "audit off": {"RS_AUDIT_ENABLED": "false"},
    "audit on": {},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, extra: dict[str, str], sync: str):
        self.extra, self.sync = extra, sync

    def __enter__(self) -> "Server":
        self.dir = tempfile.mkdtemp(prefix="edge-bench-audit-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
        env.update(RS_DATA_PATH=self.dir, RS_HOST="127.0.0.1", RS_PORT=str(self.port), RS_LOG_LEVEL="WARN",
                   RS_API_TOKEN=TOKEN, EDGE_SYNC=self.sync, RS_INSTANCE_NAME="bench",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **self.extra)
        prefix = ["taskset", "-c", "0"] if os.cpu_count() == 2 and shutil.which("taskset") else []
        self.proc = subprocess.Popen(prefix + [sys.executable, "-m", "edge", "serve"], env=env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/alive", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.ps = psutil.Process(self.proc.pid)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.request("POST", "/api/v1/b/bench", b"")
        return self

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.conn.request(method, path, body, {"Authorization": f"Bearer {TOKEN}", **(headers or {})})
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {path} -> {resp.status} {resp.getheader('x-reduct-error')}")

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def single(srv: Server, n: int, ts0: int) -> None:
    for i in range(n):
        srv.request("POST", f"/api/v1/b/bench/e?ts={ts0 + i}", PAYLOAD, {"Content-Type": "application/octet-stream"})


def batch(srv: Server, n: int, ts0: int) -> None:
    for start in range(0, n, BATCH):
        stamps = range(ts0 + start, ts0 + min(n, start + BATCH))
        headers = {f"x-reduct-time-{ts}": f"{len(PAYLOAD)},application/octet-stream" for ts in stamps}
        srv.request("POST", "/api/v1/b/bench/e/batch", PAYLOAD * len(stamps),
                    {"Content-Type": "application/octet-stream", **headers})


WORKLOADS = {"single": single, "batch": batch}


def measure(config: str, sync: str, workload: str, n: int) -> tuple[float, float]:
    """(records/s, server CPU µs per record) for one fresh server."""
    with Server(CONFIGS[config], sync) as srv:
        WORKLOADS[workload](srv, min(n, 200), 1)          # warm-up: imports, first block
        cpu0, t0 = srv.cpu_s(), time.perf_counter()
        WORKLOADS[workload](srv, n, 1_000_000)
        wall, cpu = time.perf_counter() - t0, srv.cpu_s() - cpu0
    return n / wall, cpu / n * 1e6


def hook_us(n: int = 200_000) -> float:
    """µs per request that audit adds in-process: Caller + observe_request of a 1 KB write."""
    sys.path.insert(0, str(ROOT))
    from edge.config import Config
    from edge.http import records
    from edge.server.types import Caller, Request, Response
    from edge.services.system_events import SystemEvents

    events = SystemEvents(None, None, None, Config.from_env({"RS_API_TOKEN": TOKEN}))  # type: ignore[arg-type]
    assert events.audit_on
    req = Request.build("POST", "/api/v1/b/bench/e?ts=1", [("authorization", f"Bearer {TOKEN}")], PAYLOAD)
    resp = Response(200, [])
    params = {"bucket": "bench", "entry": "e"}
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            req.caller = Caller("init-token", "127.0.0.1")
            events.observe_request(req, resp, records.write_record, params, 0.0001)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
        events._audit.drain(0)
    return best


def fmt(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--sync", nargs="+", default=["always", "none"], choices=["always", "none"])
    ap.add_argument("--hook-only", action="store_true", help="only the in-process cost of the audit hook")
    args = ap.parse_args()
    if args.hook_only:
        print(f"audit hook: {hook_us():.2f} µs per request (best of 5 x 200,000)")
        return 0
    if os.cpu_count() == 2 and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for sync in args.sync:
            for workload in WORKLOADS:
                order = list(CONFIGS) if r % 2 == 0 else list(reversed(CONFIGS))
                for config in order:
                    results.setdefault((sync, workload, config), []).append(
                        measure(config, sync, workload, args.records))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"\n1 KB writes, {args.records} records per server, {args.rounds} rounds, medians (min-max); "
          "auth on in every case\n")
    print("| sync | workload | server | records/s | server CPU µs/record |")
    print("|---|---|---|---|---|")
    for sync in args.sync:
        for workload in WORKLOADS:
            for config in CONFIGS:
                rows = results[(sync, workload, config)]
                print(f"| {sync} | {workload} | {config} | {fmt([x[0] for x in rows])} | {fmt([x[1] for x in rows], 1)} |")
    print("\n| sync | workload | records/s audit on / audit off | / events off | CPU per record audit on / audit off "
          "| / events off |")
    print("|---|---|---|---|---|---|")
    for sync in args.sync:
        for workload in WORKLOADS:
            med = {c: (statistics.median(x[0] for x in results[(sync, workload, c)]),
                       statistics.median(x[1] for x in results[(sync, workload, c)])) for c in CONFIGS}
            on, off, none = med["audit on"], med["audit off"], med["events off"]
            print(f"| {sync} | {workload} | {on[0] / off[0]:.3f} | {on[0] / none[0]:.3f} | "
                  f"{on[1] / off[1]:.3f} | {on[1] / none[1]:.3f} |")
    hook = hook_us()
    print(f"\naudit hook in-process: {hook:.2f} µs per request (best of 5 x 200,000)")
    for sync in args.sync:
        cpu = statistics.median(x[1] for x in results[(sync, "single", "audit off")])
        print(f"| {sync} | single 1 KB write: server CPU {cpu:,.0f} µs/record (audit off) | "
              f"audit hook {hook:.2f} µs = {hook / cpu * 100:.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
