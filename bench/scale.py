"""A full ring buffer: start-up, memory, ingest and request latency at 0.1M, 1M and 10M records.

``python bench/scale.py`` (wrap it in ``flock /tmp/edge-bench.lock``; ``--quick`` = 20k/100k/200k
records, a few minutes). For each size it

1. fills one entry of a fresh ``edge serve`` (``EDGE_SYNC=none``: filling is not what is measured)
   up to the size with 100-byte records (``--record-size``) in batches of 990 over one connection;
2. sets the bucket's FIFO quota to what it uses on disk, so it is full and every later write evicts
   (the steady state of a ring buffer), then writes 20,000 more records (3,000 for batch size 1)
   with each batch size of ``--batches`` (1, 80, 900, 5000) and reports records/s and server CPU
   µs per record (median of ``--reps`` runs). A request carries one header per record and the
   server takes 1000 headers, so a batch of 5000 goes as requests of 990, 990, ... 50 records,
   as a client has to split it;
3. times ``GET`` latest record, a record by timestamp (random over everything stored: cold blocks),
   ``GET /b/<bucket>``, ``GET /info`` and a query (``POST /io/<b>/q`` for 100 records at a random
   place plus its first ``/read``): the median of ``--requests`` requests each;
4. compares the bucket's files (``du --apparent-size``, settings aside) with its quota, takes RSS;
5. restarts the server and times ``/alive``, RSS right then.

Then the same with ``--entries`` (1000) entries sharing the largest size, and (``--one-core``, on
by default when ``taskset`` exists) a run at ``--one-core-size`` with server and client on one CPU,
as a stand-in for a small device. ``--synthetic 100M`` adds a start-up at a size too big to fill
here: an entry folder as a clean stop leaves it (``blocks.sum`` naming every block, sparse
``.blk``/``.idx`` files of the sizes it names), started and timed to ``/alive``. Prints markdown
tables (and writes ``bench/scale-results.json``).

Every server is our ``edge serve`` from this checkout, or ``--edge-root`` (another checkout, to
measure the code before a change with the same script). Data goes under ``--data-root``
(default $TMPDIR) and is removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import RawConn, free_port, stop, wait_alive  # noqa: E402

BUCKET = "ring"
TS0 = 1_000_000_000_000  # µs; record i of entry e has ts TS0 + i
FILL_BATCH = 990
MAX_PER_REQUEST = 990  # one header per record; the server takes at most 1000 headers per request


@dataclass
class Row:
    label: str
    records: int = 0
    entries: int = 1
    startup_s: float = 0.0
    rss_fill_mb: float = 0.0
    rss_start_mb: float = 0.0
    write: dict[str, float] = field(default_factory=dict)        # batch size -> records/s
    write_cpu: dict[str, float] = field(default_factory=dict)    # batch size -> server µs/record
    latency_ms: dict[str, float] = field(default_factory=dict)   # request -> median ms
    disk_mb: float = 0.0
    quota_mb: float = 0.0
    fill_s: float = 0.0


class Server:
    def __init__(self, data: Path, prefix: list[str], edge_root: Path, sync: str = "none"):
        self.data, self.prefix, self.edge_root, self.sync = data, prefix, edge_root, sync
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        self.port = free_port()
        env = dict(os.environ, RS_DATA_PATH=str(self.data), RS_HOST="127.0.0.1", RS_PORT=str(self.port),
                   RS_LOG_LEVEL="WARN", EDGE_SYNC=self.sync, RS_DISABLE_AUTH="true",
                   RS_DEFAULTS_BUCKET_QUOTA_TYPE="NONE",
                   PYTHONPATH=str(self.edge_root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.prefix + [sys.executable, "-m", "edge", "serve"], env=env,
                                     cwd=self.edge_root, stdout=subprocess.DEVNULL)
        wait_alive(self.port, self.proc, timeout=900)
        seconds = time.perf_counter() - t0
        self.ps = psutil.Process(self.proc.pid)
        return seconds

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    @property
    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    @property
    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1{path}"


def http_json(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def write_batches(conn: RawConn, entry: str, first: int, count: int, per_batch: int, payload: bytes) -> None:
    """``count`` records of ``entry`` from index ``first``, ``per_batch`` per request."""
    size = len(payload)
    i = 0
    while i < count:
        n = min(per_batch, count - i, MAX_PER_REQUEST - (i % per_batch) % MAX_PER_REQUEST)
        n = min(n, per_batch - i % per_batch)
        hs = [f"x-reduct-time-{TS0 + first + i + j}: {size},application/octet-stream" for j in range(n)]
        hs.append("Content-Type: application/octet-stream")
        status, _, _ = conn.request(conn.head("POST", f"/api/v1/b/{BUCKET}/{entry}/batch", hs, n * size),
                                    [payload * n])
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"batch write failed: {status[:80]!r}")
        i += n


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def latencies(srv: Server, entries: list[str], stored: dict[str, int], n: int) -> dict[str, float]:
    rng = random.Random(5)
    conn = RawConn(srv.port)
    doc = http_json("GET", srv.url(f"/b/{BUCKET}"))
    live = {e["name"]: (e["oldest_record"], e["latest_record"]) for e in doc["entries"] if e["record_count"] > 100}
    names = sorted(live)

    def get(path: str) -> None:
        status, _, _ = conn.request(conn.head("GET", f"/api/v1{path}", [], 0))
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET {path}: {status[:60]!r}")

    def by_ts() -> None:
        name = rng.choice(names)
        ts = rng.randrange(live[name][0], live[name][1] + 1)
        get(f"/b/{BUCKET}/{name}?ts={ts}")

    def query() -> None:
        name = rng.choice(names)
        start = rng.randrange(live[name][0], live[name][1] - 100)
        q = json.dumps({"query_type": "QUERY", "entries": [name], "start": start, "stop": start + 100}).encode()
        _, body, _ = conn.request(conn.head("POST", f"/api/v1/io/{BUCKET}/q", ["Content-Type: application/json"],
                                            len(q)), [q])
        qid = json.loads(body)["id"]
        status, _, _ = conn.request(conn.head("GET", f"/api/v1/io/{BUCKET}/read", [f"x-reduct-query-id: {qid}"], 0))
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"query read: {status[:60]!r}")

    out = {
        "latest": median_ms(lambda: get(f"/b/{BUCKET}/{rng.choice(names)}"), n),
        "by ts": median_ms(by_ts, n),
        "bucket": median_ms(lambda: get(f"/b/{BUCKET}"), max(10, n // 4)),
        "/info": median_ms(lambda: get("/info"), n),
        "query": median_ms(query, max(10, n // 2)),
    }
    conn.close()
    return out


def bucket_files(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / BUCKET).rglob("*") if p.is_file() and p.name != "settings.json")


def measure_writes(srv: Server, entries: list[str], stored: dict[str, int], batches: list[int], reps: int,
                   payload: bytes) -> tuple[dict[str, float], dict[str, float]]:
    rates: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    conn = RawConn(srv.port)
    try:
        for _ in range(reps):
            for per in batches:
                count = 3_000 if per == 1 else 20_000
                c0, t0 = srv.cpu_s, time.perf_counter()
                if len(entries) == 1:
                    write_batches(conn, entries[0], stored[entries[0]], count, per, payload)
                    stored[entries[0]] += count
                else:
                    # rotate over the entries, one batch each
                    done = 0
                    k = 0
                    while done < count:
                        name = entries[k % len(entries)]
                        n = min(per, count - done)
                        write_batches(conn, name, stored[name], n, n, payload)
                        stored[name] += n
                        done += n
                        k += 1
                dt, dc = time.perf_counter() - t0, srv.cpu_s - c0
                rates.setdefault(str(per), []).append(count / dt)
                cpus.setdefault(str(per), []).append(1e6 * dc / count)
    finally:
        conn.close()
    return ({k: statistics.median(v) for k, v in rates.items()}, {k: statistics.median(v) for k, v in cpus.items()})


def run_level(label: str, srv: Server, data: Path, entries: list[str], stored: dict[str, int], target: int,
              args: argparse.Namespace, payload: bytes) -> Row:
    """Fill up to ``target`` records (over ``entries``), then measure; the server keeps running."""
    row = Row(label, entries=len(entries))
    have = sum(e["record_count"] for e in http_json("GET", srv.url(f"/b/{BUCKET}"))["entries"])
    http_json("PUT", srv.url(f"/b/{BUCKET}"), {"quota_type": "NONE"})
    t0 = time.perf_counter()
    conn = RawConn(srv.port)
    try:
        per_entry = (target - have) // len(entries)
        for name in entries:
            if per_entry > 0:
                write_batches(conn, name, stored[name], per_entry, FILL_BATCH, payload)
                stored[name] += per_entry
    finally:
        conn.close()
    row.fill_s = time.perf_counter() - t0
    row.rss_fill_mb = srv.rss_mb
    # Full: the quota is what it uses now; from here on every write evicts.
    info = http_json("GET", srv.url(f"/b/{BUCKET}"))
    quota = info["info"].get("disk_usage") or bucket_files(data)
    http_json("PUT", srv.url(f"/b/{BUCKET}"), {"quota_type": "FIFO", "quota_size": quota})
    row.quota_mb = quota / 1e6
    row.write, row.write_cpu = measure_writes(srv, entries, stored, args.batches, args.reps, payload)
    row.latency_ms = latencies(srv, entries, stored, args.requests)
    row.records = sum(e["record_count"] for e in http_json("GET", srv.url(f"/b/{BUCKET}"))["entries"])
    row.rss_fill_mb = max(row.rss_fill_mb, srv.rss_mb)
    row.disk_mb = bucket_files(data) / 1e6
    srv.stop()
    row.startup_s = srv.start()
    row.rss_start_mb = srv.rss_mb
    print(f"  {label}: {row.records:,} records, fill {row.fill_s:.0f} s, start-up {row.startup_s:.2f} s, "
          f"RSS {row.rss_fill_mb:.0f}/{row.rss_start_mb:.0f} MiB, writes {fmt_rates(row.write)}, "
          f"latency {', '.join(f'{k} {v:.2f}' for k, v in row.latency_ms.items())} ms, "
          f"disk {row.disk_mb:.1f} MB / quota {row.quota_mb:.1f} MB", flush=True)
    return row


def fmt_rates(rates: dict[str, float]) -> str:
    return " ".join(f"b{k}={v:,.0f}/s" for k, v in rates.items())


def series(label: str, sizes: list[int], n_entries: int, prefix: list[str], client_cpu: set[int] | None,
           args: argparse.Namespace) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="edge-scale-", dir=args.data_root))
    data = root / "data"
    srv = Server(data, prefix, Path(args.edge_root).resolve())
    if client_cpu is not None:
        os.sched_setaffinity(0, client_cpu)
    payload = os.urandom(args.record_size)
    rows = []
    try:
        srv.start()
        http_json("POST", srv.url(f"/b/{BUCKET}"), {"quota_type": "NONE"})
        entries = ["e"] if n_entries == 1 else [f"cam-{k:04d}" for k in range(n_entries)]
        stored = {name: 0 for name in entries}
        for size in sizes:
            rows.append(run_level(f"{label} {human(size)}", srv, data, entries, stored, size, args, payload))
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"  kept {root}")
    return rows


def synthetic(args: argparse.Namespace, records: int, prefix: list[str]) -> Row:
    """Start-up over a synthetic folder of ``records`` records (1024 per block, sparse files)."""
    from edge.formats import summary as sfmt
    from edge.formats.frame import HEADER, TRAILER, encode_meta
    from edge.formats.index import HEADER as IDX_HEADER
    from edge.formats.sizes import record_size

    root = Path(tempfile.mkdtemp(prefix="edge-synth-", dir=args.data_root))
    data = root / "data"
    entry = data / BUCKET / "e"
    entry.mkdir(parents=True)
    (data / BUCKET / "settings.json").write_text(json.dumps(
        {"quota_type": "NONE", "quota_size": 0, "max_block_size": 64_000_000, "max_block_records": 1024}))
    meta = encode_meta("application/octet-stream", {})
    frame = HEADER.size + len(meta) + args.record_size + TRAILER.size
    per = 1024
    blk_size = per * frame
    idx_size = IDX_HEADER.size + 4 + len(meta) + 36 * per
    recs = []
    t0 = time.perf_counter()
    for k in range(-(-records // per)):
        block_id = TS0 + k * per
        n = min(per, records - k * per)
        fsize = sum(record_size(block_id + i, i * args.record_size, args.record_size, "application/octet-stream",
                                {}, False) for i in range(0, n, max(1, n // 4))) * max(1, n // 4)
        recs.append(sfmt.BlockSummary(sfmt.SEALED, block_id, block_id, block_id + n - 1, n, fsize,
                                      n * args.record_size, n * frame, idx_size, 0))
        for suffix, size in ((".blk", n * frame), (".idx", idx_size)):
            with open(entry / f"{block_id:020d}{suffix}", "wb") as f:
                f.truncate(size)
    (entry / "blocks.sum").write_bytes(sfmt.encode_file(recs))
    row = Row(f"synthetic {human(records)}", records=records)
    row.fill_s = time.perf_counter() - t0
    srv = Server(data, prefix, Path(args.edge_root).resolve())
    try:
        times = []
        for _ in range(3):
            times.append(srv.start())
            row.rss_start_mb = srv.rss_mb
            doc = http_json("GET", srv.url(f"/b/{BUCKET}"))
            assert doc["info"]["entry_count"] == 1
            row.latency_ms = {"bucket": median_ms(lambda: http_json("GET", srv.url(f"/b/{BUCKET}")), 20),
                              "/info": median_ms(lambda: http_json("GET", srv.url("/info")), 20)}
            row.rss_fill_mb = srv.rss_mb
            srv.stop()
        row.startup_s = statistics.median(times)
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"  {row.label}: {len(recs):,} blocks, start-up {row.startup_s:.2f} s (median of 3), "
          f"RSS {row.rss_start_mb:.0f} MiB, GET bucket {row.latency_ms['bucket']:.2f} ms", flush=True)
    return row


def human(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def parse_count(text: str) -> int:
    text = text.strip().lower()
    mult = 1
    if text.endswith("m"):
        mult, text = 1_000_000, text[:-1]
    elif text.endswith("k"):
        mult, text = 1_000, text[:-1]
    return int(float(text) * mult)


def print_table(rows: list[Row], batches: list[int]) -> None:
    heads = ["run", "records", "start-up s", "RSS filled MiB", "RSS after start MiB"]
    heads += [f"write b={b} rec/s (µs CPU)" for b in batches]
    heads += ["latest ms", "by-ts ms", "GET bucket ms", "/info ms", "query ms", "disk MB / quota MB"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    for r in rows:
        cells = [r.label + (f" x {r.entries} entries" if r.entries > 1 else ""), f"{r.records:,}",
                 f"{r.startup_s:.2f}", f"{r.rss_fill_mb:.0f}", f"{r.rss_start_mb:.0f}"]
        cells += [f"{r.write.get(str(b), 0):,.0f} ({r.write_cpu.get(str(b), 0):.0f})" for b in batches]
        cells += [f"{r.latency_ms.get(k, 0):.2f}" for k in ("latest", "by ts", "bucket", "/info", "query")]
        cells.append(f"{r.disk_mb:.1f} / {r.quota_mb:.1f}")
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0.1M,1M,10M", help="record counts of the single-entry series")
    ap.add_argument("--quick", action="store_true", help="sizes 20k,100k,200k; 1000 entries at 200k")
    ap.add_argument("--entries", type=int, default=1000, help="entries of the many-entries run (0: skip)")
    ap.add_argument("--entries-size", default=None, help="records of the many-entries run (default: largest size)")
    ap.add_argument("--one-core", dest="one_core", action=argparse.BooleanOptionalAction, default=None,
                    help="also run with server and client on one CPU (default: when taskset exists)")
    ap.add_argument("--one-core-size", default="1M")
    ap.add_argument("--record-size", type=int, default=100)
    ap.add_argument("--synthetic", default=None, help="also time start-up over a synthetic folder of this size")
    ap.add_argument("--only-synthetic", action="store_true", help="skip the filled runs")
    ap.add_argument("--batches", default="1,80,900,5000")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--requests", type=int, default=200, help="requests per latency figure")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--edge-root", default=str(ROOT), help="the checkout whose edge is measured")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", default=str(HERE / "scale-results.json"))
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b]
    sizes = [parse_count(s) for s in args.sizes.split(",") if s]
    if args.quick:
        sizes = [20_000, 100_000, 200_000]
    entries_size = parse_count(args.entries_size) if args.entries_size else max(sizes)
    one_core = args.one_core if args.one_core is not None else bool(shutil.which("taskset"))
    cpus = sorted(os.sched_getaffinity(0))
    two = len(cpus) >= 2 and shutil.which("taskset")
    prefix = ["taskset", "-c", str(cpus[0])] if two else []
    client = {cpus[1]} if two else None
    print(f"edge scale benchmark: {args.record_size} B records; sizes {', '.join(human(s) for s in sizes)}; "
          f"{args.entries} entries at {human(entries_size)}; edge from {args.edge_root}", flush=True)
    rows: list[Row] = []
    if args.only_synthetic:
        args.entries, one_core, sizes = 0, False, []
    if sizes:
        rows += series("1 entry", sizes, 1, prefix, client, args)
    if args.entries:
        rows += series("many", [entries_size], args.entries, prefix, client, args)
    if args.synthetic:
        rows.append(synthetic(args, parse_count(args.synthetic), prefix))
    if one_core and shutil.which("taskset"):
        size = parse_count(args.one_core_size) if not args.quick else 100_000
        rows += series("one core", [size], 1, ["taskset", "-c", str(cpus[0])], {cpus[0]}, args)
    print()
    print_table(rows, args.batches)
    with open(args.json, "w") as f:
        json.dump([asdict(r) for r in rows], f, indent=1)
    print(f"\nall figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
