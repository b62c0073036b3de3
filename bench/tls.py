"""10 MB reads and writes over TLS beside plaintext, in one run, with the ratio.

    flock /tmp/edge-bench.lock python bench/tls.py [--rounds 5] [--records 8] [--clients stdlib,curl]

Two ``edge serve`` processes on 127.0.0.1 (``EDGE_SYNC=none`` so the disk does not hide the
transport; auth on), one plaintext, one with ``RS_CERT_PATH``/``RS_CERT_KEY_PATH`` from a CA made
for the run (ECDSA P-256; TLS 1.3 with the default cipher, AES-256-GCM, AES-NI here). Per round,
client and transport it writes ``--records`` records of 10 MB over one keep-alive connection and
reads them back; rounds alternate plain/TLS. Two clients: the stdlib (``http.client`` + ``ssl``)
and ``curl`` (one process per phase, every record on one connection). Printed: the median MB/s
per phase, client and transport, the TLS/plaintext ratios, and the server CPU per MB (user +
system of the server process, psutil), the most robust figure on a shared machine.

Why two clients: on a 2-core machine the client shares the CPU with the server, and the stdlib
client's own TLS work (one Python call per 16 KiB record) can be what limits a TLS read; curl's
figures show what the server itself delivers.

Plaintext reads go out with ``sendfile`` (zero-copy); TLS reads use ``sendfile`` only where the
kernel encrypts (kTLS: Python 3.12+ and the kernel's ``tls`` module), else ``pread`` + OpenSSL.
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


def stdlib_round(server: Server, records: int, payload_path: Path, start_ts: int) -> dict[str, float]:
    payload = payload_path.read_bytes()
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


def curl_round(server: Server, records: int, payload_path: Path, start_ts: int) -> dict[str, float]:
    scheme = "https" if server.tls else "http"
    base = f"{scheme}://127.0.0.1:{server.port}/api/v1/b/tls/e?ts="
    common = ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {TOKEN}"]
    if server.tls:
        common += ["--cacert", server.tls[2]]
    urls = [base + str(start_ts + i) for i in range(records)]
    out: dict[str, float] = {}
    c0, t0 = cpu(server), time.perf_counter()
    write = ["curl"]
    for i, url in enumerate(urls):  # --next: options per URL, one connection for all of them
        write += (["--next"] if i else []) + common[1:] + [
            "-H", "Content-Type: application/octet-stream", "-H", "Expect:",
            "--data-binary", f"@{payload_path}", "-o", "/dev/null", url]
    subprocess.run(write, check=True)
    out["write_s"], out["write_cpu"] = time.perf_counter() - t0, cpu(server) - c0
    c0, t0 = cpu(server), time.perf_counter()
    read = list(common)
    for url in urls:
        read += ["-o", "/dev/null", "-w", "%{size_download}\n", url]
    got = subprocess.run(read, check=True, capture_output=True, text=True).stdout.split()
    assert got == [str(SIZE)] * records, got
    out["read_s"], out["read_cpu"] = time.perf_counter() - t0, cpu(server) - c0
    return out


CLIENTS = {"stdlib": stdlib_round, "curl": curl_round}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=8)
    ap.add_argument("--clients", default="stdlib,curl")
    args = ap.parse_args()
    from bench.run import free_port   # benches run one at a time (flock); tests bind port 0
    from tests.tls_material import make_pki

    clients = [c for c in args.clients.split(",") if c]
    if "curl" in clients and shutil.which("curl") is None:
        clients.remove("curl")
    os.environ["EDGE_SYNC"] = "none"
    with tempfile.TemporaryDirectory(prefix="edge-tls-") as tmp:
        root = Path(tmp)
        payload_path = root / "payload"
        payload_path.write_bytes(os.urandom(SIZE))
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
            results: dict[tuple[str, str], list[dict[str, float]]] = {
                (c, t): [] for c in clients for t in servers}
            ts = 1
            for _ in range(args.rounds):
                for client in clients:
                    for name, s in servers.items():
                        results[client, name].append(CLIENTS[client](s, args.records, payload_path, ts))
                        ts += args.records
        finally:
            for s in servers.values():
                s.stop()
    mbytes = args.records * SIZE / MB
    print(f"{args.records} x 10 MB per phase, median of {args.rounds} rounds (loopback)")
    print("| client | transport | write MB/s | read MB/s | server CPU ms/MB write | server CPU ms/MB read |")
    print("|---|---|---|---|---|---|")
    for client in clients:
        med: dict[str, dict[str, float]] = {}
        for name in servers:
            rows = results[client, name]
            med[name] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            m = med[name]
            print(f"| {client} | {name} | {mbytes / m['write_s']:.0f} | {mbytes / m['read_s']:.0f} | "
                  f"{m['write_cpu'] * 1000 / mbytes:.2f} | {m['read_cpu'] * 1000 / mbytes:.2f} |")
        p, t = med["plaintext"], med["TLS"]
        print(f"| {client} | TLS / plaintext | {p['write_s'] / t['write_s']:.2f} | {p['read_s'] / t['read_s']:.2f} | "
              f"{t['write_cpu'] / max(p['write_cpu'], 1e-9):.2f}x | {t['read_cpu'] / max(p['read_cpu'], 1e-9):.2f}x |")


if __name__ == "__main__":
    main()
