"""10 MB reads and writes over TLS beside plaintext, in one run, with the ratio.

    flock /tmp/edge-bench.lock python bench/tls.py [--rounds 5] [--records 8]

Two ``edge serve`` processes on 127.0.0.1 (``EDGE_SYNC=none`` so the disk does not hide the
transport; auth on), one plaintext, one with ``RS_CERT_PATH``/``RS_CERT_KEY_PATH`` from a CA made
for the run. The client is the stdlib (``http.client`` + ``ssl``, one keep-alive connection,
TLS 1.3 with the default cipher, AES-GCM with AES-NI here). Per round and transport it writes
``--records`` records of 10 MB and reads them back; rounds alternate plain/TLS. Printed: the
median MB/s per phase and transport, TLS/plaintext ratios, and the server CPU per MB (user +
system of the server process, psutil), the most robust figure on a shared machine.

Plaintext reads go out with ``sendfile`` (zero-copy); TLS reads cannot (no kTLS from Python's
``ssl`` with a memory BIO), so they pay ``pread`` + encryption in user space: the ratio shows it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile import TOKEN, Server  # noqa: E402

MB = 1_000_000
SIZE = 10 * MB


def cpu(server: Server) -> float:
    import psutil

    t = psutil.Process(server.proc.pid).cpu_times()
    return t.user + t.system


def one_round(server: Server, records: int, payload: bytes, start_ts: int) -> dict[str, float]:
    conn = server.client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    out: dict[str, float] = {}
    c0, t0 = cpu(server), time.perf_counter()
    for i in range(records):
        conn.request("POST", f"/api/v1/b/tls/e?ts={start_ts + i}", body=payload,
                     headers={**auth, "Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    out["write_s"], out["write_cpu"] = time.perf_counter() - t0, cpu(server) - c0
    c0, t0 = cpu(server), time.perf_counter()
    for i in range(records):
        conn.request("GET", f"/api/v1/b/tls/e?ts={start_ts + i}", headers=auth)
        r = conn.getresponse()
        n = len(r.read())
        assert r.status == 200 and n == SIZE, (r.status, n)
    out["read_s"], out["read_cpu"] = time.perf_counter() - t0, cpu(server) - c0
    conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=8)
    args = ap.parse_args()
    from tests.helpers import free_port
    from tests.tls_material import make_pki

    os.environ["EDGE_SYNC"] = "none"
    payload = os.urandom(SIZE)
    with tempfile.TemporaryDirectory(prefix="edge-tls-") as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        for d in ("plain", "tls"):
            (root / d).mkdir()
        servers = {"plaintext": Server(root / "plain" / "data", free_port(), None, {"EDGE_SYNC": "none"}),
                   "TLS": Server(root / "tls" / "data", free_port(), (str(pki.cert), str(pki.key), str(pki.ca)),
                                 {"EDGE_SYNC": "none"})}
        try:
            for s in servers.values():
                c = s.client()
                c.request("POST", "/api/v1/b/tls", headers={"Authorization": f"Bearer {TOKEN}"})
                c.getresponse().read()
                c.close()
            results: dict[str, list[dict[str, float]]] = {k: [] for k in servers}
            for rnd in range(args.rounds):
                for name, s in servers.items():
                    results[name].append(one_round(s, args.records, payload, 1 + rnd * args.records))
        finally:
            for s in servers.values():
                s.stop()
    mbytes = args.records * SIZE / MB
    print(f"{args.records} x 10 MB per phase, median of {args.rounds} rounds (stdlib client, loopback)")
    print("| transport | write MB/s | read MB/s | server CPU ms/MB write | server CPU ms/MB read |")
    print("|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for name, rows in results.items():
        med[name] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        m = med[name]
        print(f"| {name} | {mbytes / m['write_s']:.0f} | {mbytes / m['read_s']:.0f} | "
              f"{m['write_cpu'] * 1000 / mbytes:.2f} | {m['read_cpu'] * 1000 / mbytes:.2f} |")
    p, t = med["plaintext"], med["TLS"]
    print(f"| TLS / plaintext | {p['write_s'] / t['write_s']:.2f} | {p['read_s'] / t['read_s']:.2f} | "
          f"{t['write_cpu'] / max(p['write_cpu'], 1e-9):.2f}x | {t['read_cpu'] / max(p['read_cpu'], 1e-9):.2f}x |")


if __name__ == "__main__":
    main()
