"""The benchmark: ReductStore's own workload against a fresh ``edge serve``, next to this machine's ceilings.

``python bench/run.py`` (``--quick`` for a short run). For every repetition and every cell
(1,000 B x 10,000 records, 100,000 B x 10,000, 10,000,000 B x 100) it

1. starts a fresh ``python -m edge serve`` on a free loopback port with an empty temp data folder
   (pinned to CPU 0 with ``taskset`` when there are two CPUs; this client runs on CPU 1), and with
   reduct-py: writes the records with ``write_batch`` (flushed at 80 records or 8,000,000 B; labels
   ``key=value``, ``index=<i>``), reads them back with ``bucket.query`` + ``read_all`` and checks count
   and bytes, updates a label of every record with ``update_batch`` (same batch limits), removes every
   second record with ``remove_query(when={"$each_n": 2})`` and checks the count; the server's RSS
   is sampled every 10 ms (peak per cell) and its CPU time taken per phase;
2. runs the very same workload code against an instant-answer ReductStore dummy
   (``bench/dummy_server.py``, raw Trio, CPU 0): the **client** ceiling, what reduct-py itself reaches;
3. drives the dummy with a minimal blocking-socket client sending the same requests (same
   headers, same bodies, one request in flight): the **HTTP** ceiling of loopback + a minimal server;
4. measures the **disk** ceiling for the same shape in the same file system: one ``os.writev`` of a
   batch's records + ``fdatasync`` per batch (write), 80 small appends + ``fdatasync`` per batch
   (label update, like edge's journal), a page-cache read of the written bytes (read).

Cells and targets are interleaved per repetition so each sees the same background noise. It prints
median (min-max) records/s and MB/s per cell and phase, the ratios of edge to each ceiling and to
the lowest one, peak server RSS per cell, the issue's targets as PASS/FAIL, and writes every run to
``bench/results.csv``. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
TS0 = 1_000_000
BATCH_RECORDS = 80
BATCH_BYTES = 8_000_000
ENTRY = "e"
PHASES = ("write", "read", "update", "remove")
CELLS = {"1KB": (1_000, 10_000), "100KB": (100_000, 10_000), "10MB": (10_000_000, 100)}
QUICK_COUNTS = {"1KB": 3_000, "100KB": 1_000, "10MB": 20}
RSS_LIMIT_MB = 150


# --------------------------------------------------------------------------- pinning, processes

def cpu_pinning() -> tuple[list[str], int | None]:
    """(command prefix for servers, CPU for this client): CPU 0 / CPU 1 when both exist."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return [], None
    if len(cpus) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpus[0])], cpus[1]
    return [], None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_alive(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    t0 = time.perf_counter()
    url = f"http://127.0.0.1:{port}/api/v1/alive"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not answer /alive in time")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class EdgeServer:
    """A fresh ``edge serve`` in a temp data folder, removed again on exit."""

    def __init__(self, prefix: list[str], sync: str, data_root: str | None, tree: Path = ROOT):
        self.prefix, self.sync, self.data_root, self.tree = prefix, sync, data_root, tree

    def __enter__(self) -> "EdgeServer":
        self.dir = tempfile.mkdtemp(prefix="edge-bench-", dir=self.data_root)
        self.port = free_port()
        env = dict(os.environ, RS_DATA_PATH=self.dir, RS_HOST="127.0.0.1", RS_PORT=str(self.port),
                   RS_LOG_LEVEL="WARN", EDGE_SYNC=self.sync,
                   PYTHONPATH=str(self.tree) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if not env.get("RS_API_TOKEN"):
            env["RS_DISABLE_AUTH"] = "true"   # measured without auth unless a caller sets a token
        self.proc = subprocess.Popen(self.prefix + [sys.executable, "-m", "edge", "serve"], env=env, cwd=self.tree,
                                     stdout=subprocess.DEVNULL)
        try:
            wait_alive(self.port, self.proc)
        except BaseException:
            self.__exit__()
            raise
        self.ps = psutil.Process(self.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class RssSampler:
    """Samples a process's RSS every ``period`` s in a thread; ``peak`` in bytes."""

    def __init__(self, ps: psutil.Process, period: float = 0.01):
        self.ps, self.period, self.peak = ps, period, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.ps.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.period)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, self.ps.memory_info().rss)
        except psutil.Error:
            pass


def cpu_seconds(ps: psutil.Process | None) -> float:
    if ps is None:
        return 0.0
    t = ps.cpu_times()
    return t.user + t.system


# --------------------------------------------------------------------------- the workload (reduct-py)

async def workload(url: str, bucket_name: str, size: int, count: int, ps: psutil.Process | None) -> dict:
    """ReductStore's benchmark, phase by phase; returns {phase: (records, bytes, seconds, server cpu s)}."""
    from reduct import Batch, Client

    payload = os.urandom(size)
    out: dict[str, tuple[int, int, float, float]] = {}
    async with Client(url, timeout=600) as client:
        bucket = await client.create_bucket(bucket_name, exist_ok=True)

        c0, t0 = cpu_seconds(ps), time.perf_counter()
        batch = Batch()
        for i in range(count):
            batch.add(TS0 + i, payload, labels={"key": "value", "index": str(i)})
            if len(batch) >= BATCH_RECORDS or batch.size >= BATCH_BYTES or i == count - 1:
                errors = await bucket.write_batch(ENTRY, batch)
                if errors:
                    raise AssertionError(f"write errors: {list(errors.items())[:3]}")
                batch.clear()
        out["write"] = (count, count * size, time.perf_counter() - t0, cpu_seconds(ps) - c0)

        c0, t0 = cpu_seconds(ps), time.perf_counter()
        n = nbytes = 0
        async for record in bucket.query(ENTRY, start=TS0, stop=TS0 + count):
            nbytes += len(await record.read_all())
            n += 1
        out["read"] = (n, nbytes, time.perf_counter() - t0, cpu_seconds(ps) - c0)
        if n != count or nbytes != count * size:
            raise AssertionError(f"read back {n} records / {nbytes} B, expected {count} / {count * size}")

        c0, t0 = cpu_seconds(ps), time.perf_counter()
        batch = Batch()
        for i in range(count):
            batch.add(TS0 + i, labels={"key": "updated"})
            if len(batch) >= BATCH_RECORDS or i == count - 1:
                errors = await bucket.update_batch(ENTRY, batch)
                if errors:
                    raise AssertionError(f"update errors: {list(errors.items())[:3]}")
                batch.clear()
        out["update"] = (count, 0, time.perf_counter() - t0, cpu_seconds(ps) - c0)

        c0, t0 = cpu_seconds(ps), time.perf_counter()
        removed = await bucket.remove_query(ENTRY, start=TS0, stop=TS0 + count, when={"$each_n": 2})
        out["remove"] = (removed, 0, time.perf_counter() - t0, cpu_seconds(ps) - c0)
        if removed != count // 2:
            raise AssertionError(f"removed {removed}, expected {count // 2}")
    return out


# --------------------------------------------------------------------------- HTTP ceiling (minimal client)

class RawConn:
    """One keep-alive connection; blocking sends, responses parsed just enough to frame them."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.scratch = memoryview(bytearray(1 << 20))
        self.host = f"127.0.0.1:{port}"

    def close(self) -> None:
        self.sock.close()

    def request(self, head: bytes, body: list[bytes] | None = None) -> tuple[bytes, bytes, int]:
        """Send a request; return (response head, body if small, body length)."""
        if body and len(body) > 1 and sum(map(len, body)) < (1 << 20):
            self.sock.sendall(head + b"".join(body))
        else:
            self.sock.sendall(head)
            for part in body or ():
                self.sock.sendall(part)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        rhead = bytes(self.buf[:end])
        del self.buf[:end + 4]
        lower = rhead.lower()
        i = lower.find(b"content-length:")
        clen = int(lower[i + 15:lower.find(b"\r\n", i) if lower.find(b"\r\n", i) >= 0 else None]) if i >= 0 else 0
        if len(self.buf) >= clen:
            small = bytes(self.buf[:clen])
            del self.buf[:clen]
            return rhead, small, clen
        got = len(self.buf)
        small = bytes(self.buf) if clen < 65536 else b""
        parts = [small]
        self.buf.clear()
        while got < clen:
            k = self.sock.recv_into(self.scratch, min(len(self.scratch), clen - got))
            if not k:
                raise ConnectionError("closed")
            if clen < 65536:
                parts.append(bytes(self.scratch[:k]))
            got += k
        return rhead, b"".join(parts), clen

    def head(self, method: str, path: str, headers: list[str], length: int) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "Accept: */*",
                 f"Content-Length: {length}", *headers, "", ""]
        return "\r\n".join(lines).encode("latin-1")


def http_ceiling(port: int, bucket: str, size: int, count: int) -> dict:
    """The workload's requests, byte for byte in shape, from a client that costs next to nothing."""
    conn = RawConn(port)
    payload = os.urandom(size)
    out = {}
    try:
        conn.request(conn.head("POST", f"/api/v1/b/{bucket}", ["Content-Type: application/json"], 2), [b"{}"])
        t0 = time.perf_counter()
        i = 0
        while i < count:
            n = min(BATCH_RECORDS, max(1, BATCH_BYTES // size), count - i)
            hs = [f"x-reduct-time-{TS0 + i + k}: {size},application/octet-stream,key=value,index={i + k}"
                  for k in range(n)]
            hs.append("Content-Type: application/octet-stream")
            status, _, _ = conn.request(conn.head("POST", f"/api/v1/b/{bucket}/{ENTRY}/batch", hs, n * size),
                                        [payload] * n)
            assert status.startswith(b"HTTP/1.1 200"), status
            i += n
        out["write"] = (count, count * size, time.perf_counter() - t0)

        t0 = time.perf_counter()
        q = json.dumps({"query_type": "QUERY", "entries": [ENTRY], "start": TS0, "stop": TS0 + count}).encode()
        _, body, _ = conn.request(conn.head("POST", f"/api/v1/io/{bucket}/q", ["Content-Type: application/json"],
                                            len(q)), [q])
        qid = json.loads(body)["id"]
        n = nbytes = 0
        while True:
            rhead, _, clen = conn.request(conn.head("GET", f"/api/v1/io/{bucket}/read",
                                                    [f"x-reduct-query-id: {qid}"], 0))
            if rhead.startswith(b"HTTP/1.1 204"):
                break
            nbytes += clen
            n += rhead.count(b"\r\nx-reduct-0-")
            if b"x-reduct-last: true" in rhead:
                break
        out["read"] = (n, nbytes, time.perf_counter() - t0)
        assert n == count and nbytes == count * size, (n, nbytes)

        t0 = time.perf_counter()
        i = 0
        while i < count:
            n = min(BATCH_RECORDS, count - i)
            hs = [f"x-reduct-time-{TS0 + i + k}: 0,application/octet-stream,key=updated" for k in range(n)]
            hs.append("Content-Type: application/octet-stream")
            conn.request(conn.head("PATCH", f"/api/v1/b/{bucket}/{ENTRY}/batch", hs, 0))
            i += n
        out["update"] = (count, 0, time.perf_counter() - t0)
    finally:
        conn.close()
    return out


# --------------------------------------------------------------------------- disk ceiling

def disk_ceiling(directory: str, size: int, count: int) -> dict:
    """Durable appends shaped like the workload's batches, in the file system the server uses."""
    path = os.path.join(directory, "disk-ceiling.dat")
    payload = os.urandom(size)
    out = {}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    try:
        t0 = time.perf_counter()
        i = 0
        while i < count:
            n = min(BATCH_RECORDS, max(1, BATCH_BYTES // size), count - i)
            os.writev(fd, [payload] * n)
            os.fdatasync(fd)
            i += n
        out["write"] = (count, count * size, time.perf_counter() - t0)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.perf_counter()
        nbytes = 0
        buf = bytearray(1 << 20)
        while k := os.readv(fd, [buf]):
            nbytes += k
        out["read"] = (count, nbytes, time.perf_counter() - t0)
    finally:
        os.close(fd)
    os.unlink(path)
    op = os.urandom(64)  # one label-update op of a journal, roughly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    try:
        t0 = time.perf_counter()
        i = 0
        while i < count:
            n = min(BATCH_RECORDS, count - i)
            os.write(fd, op * n)
            os.fdatasync(fd)
            i += n
        out["update"] = (count, 0, time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


# --------------------------------------------------------------------------- the dummy

class Dummy:
    def __init__(self, prefix: list[str]):
        self.prefix = prefix

    def __enter__(self) -> "Dummy":
        self.proc = subprocess.Popen(self.prefix + [sys.executable, str(HERE / "dummy_server.py"), "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            stop(self.proc)
            raise RuntimeError("dummy server did not start")
        self.port = int(line[1])
        self.ps = psutil.Process(self.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)


# --------------------------------------------------------------------------- profiling

def start_profiler(directory: str | None, pid: int, name: str) -> subprocess.Popen | None:
    """py-spy sampling ``pid`` until ``stop_profiler``; collapsed stacks go to DIR/name.txt."""
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "-r", "250", "-f", "raw", "--nonblocking",
                            "-o", os.path.join(directory, name + ".txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attach before the workload starts
    return spy


def stop_profiler(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


# --------------------------------------------------------------------------- main

def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(v: float) -> str:
    if v != v:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer records per cell, one repetition")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    ap.add_argument("--cells", default=",".join(CELLS), help="subset of " + ",".join(CELLS))
    ap.add_argument("--scale", type=float, default=None, help="multiply the record counts")
    ap.add_argument("--sync", default="always", choices=["always", "none"], help="EDGE_SYNC of the server")
    ap.add_argument("--no-ceilings", action="store_true", help="measure edge only")
    ap.add_argument("--no-replication", action="store_true", help="skip the replication catch-up figure")
    ap.add_argument("--data-root", default=None, help="where the temp data folders go (default: system temp)")
    ap.add_argument("--csv", default=str(HERE / "results.csv"))
    ap.add_argument("--server-tree", default=str(ROOT), metavar="CHECKOUT",
                    help="serve edge from another checkout (before/after comparisons; same client and workload)")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds to wait after starting each edge server (attach a profiler)")
    ap.add_argument("--profile", metavar="DIR", default=None,
                    help="sample each edge server with py-spy (raw collapsed stacks: DIR/<cell>-<rep>.txt)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    reps = args.reps or (1 if args.quick else 3)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    counts = {}
    for c in cells:
        size, count = CELLS[c]
        if args.quick:
            count = QUICK_COUNTS[c]
        if args.scale:
            count = max(2, int(count * args.scale))
        counts[c] = (size, count)

    prefix, client_cpu = cpu_pinning()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    print(f"edge benchmark: cells {', '.join(f'{c} x {counts[c][1]:,}' for c in cells)}; {reps} rep(s); "
          f"EDGE_SYNC={args.sync}; pinning: {'server CPU ' + prefix[-1] + ', client CPU ' + str(client_cpu) if prefix else 'none'}",
          flush=True)

    rows: list[dict] = []
    rss: dict[str, list[float]] = {c: [] for c in cells}
    data_root = args.data_root or tempfile.gettempdir()
    dummy_cm = Dummy(prefix) if not args.no_ceilings else None
    dummy = dummy_cm.__enter__() if dummy_cm else None
    try:
        for rep in range(reps):
            for cell in cells:
                size, count = counts[cell]
                with EdgeServer(prefix, args.sync, args.data_root, Path(args.server_tree).resolve()) as server:
                    if args.hold:
                        print(f"  edge pid {server.proc.pid} port {server.port}; holding {args.hold}s", flush=True)
                        time.sleep(args.hold)
                    spy = start_profiler(args.profile, server.proc.pid, f"{cell}-{rep + 1}")
                    try:
                        with RssSampler(server.ps) as sampler:
                            res = asyncio.run(workload(f"http://127.0.0.1:{server.port}", "bench", size, count,
                                                       server.ps))
                    finally:
                        stop_profiler(spy)
                    rss[cell].append(sampler.peak / 1e6)
                for phase, (n, nb, dt, cpu) in res.items():
                    rows.append({"rep": rep, "cell": cell, "target": "edge", "phase": phase, "records": n,
                                 "bytes": nb, "seconds": dt, "server_cpu_s": cpu, "peak_rss_mb": sampler.peak / 1e6})
                line = [f"rep {rep + 1} {cell}: edge " + " ".join(
                    f"{p} {res[p][0] / res[p][2]:,.0f}/s" for p in PHASES) + f", peak RSS {sampler.peak / 1e6:.0f} MB"]
                if dummy:
                    bucket = f"c{rep}{cell}"
                    res = asyncio.run(workload(f"http://127.0.0.1:{dummy.port}", bucket, size, count, dummy.ps))
                    for phase, (n, nb, dt, cpu) in res.items():
                        rows.append({"rep": rep, "cell": cell, "target": "client", "phase": phase, "records": n,
                                     "bytes": nb, "seconds": dt, "server_cpu_s": cpu, "peak_rss_mb": ""})
                    line.append("client " + " ".join(f"{p} {res[p][0] / res[p][2]:,.0f}/s" for p in PHASES[:3]))
                    res = http_ceiling(dummy.port, f"h{rep}{cell}", size, count)
                    for phase, (n, nb, dt) in res.items():
                        rows.append({"rep": rep, "cell": cell, "target": "http", "phase": phase, "records": n,
                                     "bytes": nb, "seconds": dt, "server_cpu_s": "", "peak_rss_mb": ""})
                    line.append("http " + " ".join(f"{p} {res[p][0] / res[p][2]:,.0f}/s" for p in PHASES[:3]))
                    res = disk_ceiling(data_root, size, count)
                    for phase, (n, nb, dt) in res.items():
                        rows.append({"rep": rep, "cell": cell, "target": "disk", "phase": phase, "records": n,
                                     "bytes": nb, "seconds": dt, "server_cpu_s": "", "peak_rss_mb": ""})
                    line.append("disk " + " ".join(f"{p} {res[p][0] / res[p][2]:,.0f}/s" for p in PHASES[:3]))
                print("; ".join(line), flush=True)
    finally:
        if dummy_cm:
            dummy_cm.__exit__()

    for r in rows:
        r["rec_per_s"] = r["records"] / r["seconds"]
        r["MBps"] = r["bytes"] / r["seconds"] / 1e6
        if r["server_cpu_s"] != "" and r["records"]:
            r["server_cpu_us_per_rec"] = 1e6 * r["server_cpu_s"] / r["records"]
        else:
            r["server_cpu_us_per_rec"] = ""
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["rep", "cell", "phase", "target", "records", "bytes", "seconds",
                                          "rec_per_s", "MBps", "server_cpu_s", "server_cpu_us_per_rec",
                                          "peak_rss_mb"])
        w.writeheader()
        w.writerows(rows)

    def values(cell: str, phase: str, target: str, key: str = "rec_per_s") -> list[float]:
        return [r[key] for r in rows if r["cell"] == cell and r["phase"] == phase and r["target"] == target]

    print()
    print(f"edge (median of {reps}, range in brackets); server CPU per record; peak server RSS per cell")
    print("| cell | phase | records/s | MB/s | server CPU µs/record | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for cell in cells:
        for phase in PHASES:
            v = values(cell, phase, "edge")
            mb = values(cell, phase, "edge", "MBps")
            cpu = values(cell, phase, "edge", "server_cpu_us_per_rec")
            print(f"| {cell} | {phase} | {fmt(med(v))} ({fmt(min(v))}-{fmt(max(v))}) | "
                  f"{fmt(med(mb)) if phase in ('write', 'read') else '-'} | {fmt(med(cpu))} | "
                  f"{fmt(max(rss[cell])) if phase == 'write' else ''} |")
    verdicts: list[tuple[str, bool]] = []
    if not args.no_ceilings:
        print()
        print("ceilings (records/s, median) and edge's ratio to each; 'lowest' = the realistic ceiling")
        print("| cell | phase | edge | disk | HTTP | client | edge/disk | edge/HTTP | edge/client | edge/lowest |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        ratio_lowest: dict[tuple[str, str], float] = {}
        for cell in cells:
            for phase in ("write", "read", "update"):
                ours = med(values(cell, phase, "edge"))
                ceil = {t: med(values(cell, phase, t)) for t in ("disk", "http", "client")}
                lowest = min(ceil.values())
                ratio_lowest[(cell, phase)] = ours / lowest
                print(f"| {cell} | {phase} | {fmt(ours)} | {fmt(ceil['disk'])} | {fmt(ceil['http'])} | "
                      f"{fmt(ceil['client'])} | " + " | ".join(f"{100 * ours / ceil[t]:.0f} %" for t in
                                                               ("disk", "http", "client"))
                      + f" | {100 * ours / lowest:.0f} % |")
        if "10MB" in cells:
            verdicts.append(("10 MB write >= 50 % of the lowest ceiling", ratio_lowest[("10MB", "write")] >= 0.5))
            verdicts.append(("10 MB read >= 70 % of the lowest ceiling", ratio_lowest[("10MB", "read")] >= 0.7))
        if "1KB" in cells:
            for phase, floor in (("write", 10_000), ("read", 20_000)):
                ours = med(values("1KB", phase, "edge"))
                client = med(values("1KB", phase, "client"))
                verdicts.append((f"1 KB {phase} >= {floor:,} records/s or >= 70 % of the client ceiling "
                                 f"({fmt(ours)}/s, {100 * ours / client:.0f} %)",
                                 ours >= floor or ours >= 0.7 * client))
    if "10MB" in cells:
        verdicts.append((f"10 MB peak server RSS < {RSS_LIMIT_MB} MB ({max(rss['10MB']):.0f} MB)",
                         max(rss["10MB"]) < RSS_LIMIT_MB))
    if not args.no_replication:
        # Replication catch-up (issue 13): a backlog written while the destination (a second edge)
        # is down, then the time until the source reports nothing pending.
        import replication_catchup

        print("\nreplication catch-up (source -> a second edge on loopback, EDGE_SYNC=always)")
        small, large = (2_000, 30) if args.quick else (20_000, 300)
        replication_catchup.run(small, large)
    print()
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"\nall runs: {args.csv}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
