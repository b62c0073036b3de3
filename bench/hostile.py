"""Hostile-client benchmark: a polite client's latency while 50 hostile connections attack.

    flock /tmp/edge-bench.lock python bench/hostile.py [--seconds 8] [--conns 50] [--repeat 3]
                                                       [--only NAME,...] [--pin]

One ``edge serve`` (auth on, TLS on a second server for the TLS rows) on 127.0.0.1. For each row
a separate attacker process runs ``--conns`` hostile connections (reconnecting whenever the
server cuts one) for ``--seconds``, while this process is the polite client: one keep-alive
connection alternating ``GET /api/v1/info`` and a 1 KB record write, one request every 20 ms.
The table shows the polite client's p50/p99 per request kind, how many polite requests failed,
the server's peak RSS during the row (psutil, sampled every 50 ms), and the CPU the server and
the attacker process used during the row (user + system, in % of one core). Target: p99 < 100 ms
in every row, RSS bounded.

On a 2-core machine the attacker, the polite client and the server share the cores, so a row
can be slow because the attacker's own threads take the CPU (the CPU columns show it) rather
than because the server makes the polite client wait. ``--pin`` separates them: the server and
the polite client run on CPU 0 only, the attacker on CPU 1 (``sched_setaffinity``; the polite
client needs little CPU and the kernel favours it over a busy server, while 50 attacker threads
would crowd it out); run both ways and say which table is which.

Attacks (each as in the issue that asked for this benchmark):

* ``baseline``: no attacker (``tls-baseline``: the same against the TLS server);
* ``empty-lines``: CRLF at full speed before a request line;
* ``tiny-chunks``: authenticated chunked writes of 1-byte chunks at full speed;
* ``head-dribble``: a request head, one byte every 100 ms;
* ``body-dribble``: an authenticated 1 MB write whose body comes one byte every 100 ms;
* ``header-flood``: heads of ~500 KB (hundreds of headers) at full speed;
* ``pipelined``: ``GET /api/v1/alive`` pipelined at full speed, responses never read;
* ``tls-idle``: TLS handshakes completed, then nothing (TLS server);
* ``tls-half-open``: TCP connected to the TLS port, a partial ClientHello, then nothing.

The attacker process is this file with ``--attack NAME --port P``; it needs only the stdlib.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-hostile-token"
ATTACKS = ["baseline", "empty-lines", "tiny-chunks", "head-dribble", "body-dribble", "header-flood",
           "pipelined", "tls-baseline", "tls-idle", "tls-half-open"]
TLS_ATTACKS = {"tls-baseline", "tls-idle", "tls-half-open"}
NO_ATTACK = {"baseline", "tls-baseline"}
SERVER_CPUS, ATTACKER_CPUS = {0}, {1}  # --pin (the polite client runs with the server)


# --- the attacker process ---------------------------------------------------------------------


def _connect(port: int, tls_ctx: ssl.SSLContext | None = None) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def _attacker(kind: str, port: int, stop_at: float, tls_ctx: ssl.SSLContext | None) -> None:
    """One hostile connection, reconnecting until ``stop_at``."""
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    big_head = (b"GET /api/v1/alive HTTP/1.1\r\nHost: t\r\n"
                + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 900) for i in range(540)) + b"\r\n")
    while time.monotonic() < stop_at:
        try:
            s = _connect(port, tls_ctx)
        except OSError:
            time.sleep(0.05)
            continue
        try:
            if kind == "empty-lines":
                block = b"\r\n" * 32768
                while time.monotonic() < stop_at:
                    s.sendall(block)
            elif kind == "tiny-chunks":
                s.sendall(b"POST /api/v1/b/hostile/flood?ts=%d HTTP/1.1\r\nHost: t\r\n" % time.time_ns()
                          + auth + b"Transfer-Encoding: chunked\r\nx-reduct-content-length: 100000000\r\n\r\n")
                block = b"1\r\nx\r\n" * 8192
                while time.monotonic() < stop_at:
                    s.sendall(block)
            elif kind == "head-dribble":
                head = b"GET /api/v1/info HTTP/1.1\r\nHost: t\r\n" + auth + b"X-Slow: " + b"a" * 10000
                for b in head:
                    if time.monotonic() >= stop_at:
                        break
                    s.sendall(bytes([b]))
                    time.sleep(0.1)
            elif kind == "body-dribble":
                s.sendall(b"POST /api/v1/b/hostile/dribble?ts=%d HTTP/1.1\r\nHost: t\r\n" % time.time_ns() + auth
                          + b"Content-Length: 1000000\r\n\r\n")
                while time.monotonic() < stop_at:
                    s.sendall(b"x")
                    time.sleep(0.1)
            elif kind == "header-flood":
                while time.monotonic() < stop_at:
                    s.sendall(big_head)
            elif kind == "pipelined":
                block = b"GET /api/v1/alive HTTP/1.1\r\nHost: t\r\n\r\n" * 256
                s.settimeout(1)
                while time.monotonic() < stop_at:
                    s.sendall(block)
            elif kind == "tls-idle":
                while time.monotonic() < stop_at:
                    time.sleep(0.2)
                    s.settimeout(0.01)
                    try:
                        if s.recv(1) == b"":
                            break
                    except (socket.timeout, ssl.SSLWantReadError):
                        pass
            elif kind == "tls-half-open":
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                s.settimeout(0.5)
                while time.monotonic() < stop_at:
                    try:
                        if s.recv(1) == b"":
                            break
                    except socket.timeout:
                        pass
        except OSError:
            pass
        finally:
            s.close()


def attack_main(kind: str, port: int, conns: int, seconds: float) -> None:
    tls_ctx = None
    if kind == "tls-idle":
        # One context for all threads: loading the system CA store once per thread cost the
        # attacker ~1 s of CPU at the start of the row, which the polite client then measured.
        tls_ctx = ssl.create_default_context()
        tls_ctx.check_hostname = False
        tls_ctx.verify_mode = ssl.CERT_NONE
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=_attacker, args=(kind, port, stop_at, tls_ctx), daemon=True)
               for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)


# --- the polite client and the table ----------------------------------------------------------


class Server:
    def __init__(self, data: Path, port: int, tls: tuple[str, str, str] | None,
                 extra_env: dict[str, str] | None = None, cpus: set[int] | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
        env.update({"RS_DATA_PATH": str(data), "RS_HOST": "127.0.0.1", "RS_PORT": str(port),
                    "RS_API_TOKEN": TOKEN, "RS_LOG_LEVEL": "WARN", "PYTHONPATH": str(ROOT)})
        if tls:
            env.update({"RS_CERT_PATH": tls[0], "RS_CERT_KEY_PATH": tls[1]})
        env.update(extra_env or {})
        self.port, self.tls = port, tls
        self.log = open(data.parent / f"edge-{port}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "serve"], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_pin_to(cpus))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = self.client()
                conn.request("GET", "/api/v1/alive")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def client(self) -> http.client.HTTPConnection:
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[2])
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _pin_to(cpus: set[int] | None):
    """A ``preexec_fn`` that pins the child (and every thread it starts) to ``cpus``."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _cpu_seconds(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def polite(server: Server, seconds: float) -> dict[str, list[float]]:
    lat: dict[str, list[float]] = {"info": [], "write": [], "failed": []}
    conn = server.client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = os.urandom(1024)
    stop_at = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop_at:
        i += 1
        kind = "info" if i % 2 else "write"
        t0 = time.perf_counter()
        try:
            if kind == "info":
                conn.request("GET", "/api/v1/info", headers=headers)
            else:
                conn.request("POST", f"/api/v1/b/hostile/polite?ts={time.time_ns() // 1000}", body=body,
                             headers={**headers, "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = server.client()
        took = time.perf_counter() - t0
        lat[kind if ok else "failed"].append(took)
        time.sleep(max(0.0, 0.02 - took))
    conn.close()
    return lat


def run_row(name: str, server: Server, conns: int, seconds: float, pin: bool = False) -> list[float]:
    """One measurement: info p50/p99, write p50/p99 (ms), failed, peak RSS (MiB), server and
    attacker CPU (% of one core)."""
    import psutil

    ps = psutil.Process(server.proc.pid)
    rss = [ps.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                rss.append(ps.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    attacker = None
    if name not in NO_ATTACK:
        attacker = subprocess.Popen([sys.executable, __file__, "--attack", name, "--port", str(server.port),
                                     "--conns", str(conns), "--seconds", str(seconds + 1)],
                                    preexec_fn=_pin_to(ATTACKER_CPUS if pin else None))
        time.sleep(1.0)  # let the attack build up before measuring
    attacker_ps = psutil.Process(attacker.pid) if attacker is not None else None
    server_cpu0 = _cpu_seconds(ps)
    attacker_cpu0 = _cpu_seconds(attacker_ps) if attacker_ps is not None else 0.0
    t0 = time.monotonic()
    try:
        lat = polite(server, seconds)
        wall = time.monotonic() - t0
        server_cpu = (_cpu_seconds(ps) - server_cpu0) / wall * 100
        attacker_cpu = ((_cpu_seconds(attacker_ps) - attacker_cpu0) / wall * 100
                        if attacker_ps is not None else 0.0)
    finally:
        if attacker is not None:
            attacker.wait(seconds + 30)
        done.set()
        sampler.join(2)
    return [pct(lat["info"], .5), pct(lat["info"], .99), pct(lat["write"], .5), pct(lat["write"], .99),
            float(len(lat["failed"])), max(rss) / 2**20, server_cpu, attacker_cpu]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; cells are medians")
    ap.add_argument("--pin", action="store_true",
                    help="server and polite client on CPU 0, attacker on CPU 1")
    ap.add_argument("--attack", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attack:
        attack_main(args.attack, args.port, args.conns, args.seconds)
        return
    rows = [a for a in ATTACKS if not args.only or a in args.only.split(",")]
    from bench.run import free_port   # benches run one at a time (flock); tests bind port 0
    from tests.tls_material import make_pki

    server_cpus = SERVER_CPUS if args.pin else None
    if args.pin:
        os.sched_setaffinity(0, SERVER_CPUS)  # the polite client (and its sampler thread)
    print(f"polite client: GET /api/v1/info and a 1 KB write alternately, every 20 ms, "
          f"{args.seconds:g} s per row; {args.conns} hostile connections per attack; a fresh server "
          f"per run; median of {args.repeat} run(s) per cell; latencies in ms; "
          + ("pinned: server and polite client on CPU 0, attacker on CPU 1" if args.pin
             else "not pinned: all processes share the cores"))
    print("| attack | info p50 | info p99 | write p50 | write p99 | failed | server RSS MiB "
          "| server CPU % | attacker CPU % |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="edge-hostile-") as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        for name in rows:
            runs = []
            for i in range(args.repeat):
                # A fresh server per run: one row's leftovers (peak RSS, queued input) are not
                # the next row's.
                (root / f"{name}-{i}").mkdir()
                tls = (str(pki.cert), str(pki.key), str(pki.ca)) if name in TLS_ATTACKS else None
                server = Server(root / f"{name}-{i}" / "data", free_port(), tls, cpus=server_cpus)
                try:
                    c = server.client()
                    c.request("POST", "/api/v1/b/hostile", headers={"Authorization": f"Bearer {TOKEN}"})
                    c.getresponse().read()
                    c.close()
                    runs.append(run_row(name, server, args.conns, args.seconds, args.pin))
                finally:
                    server.stop()
            med = [statistics.median(col) for col in zip(*runs)]
            print(f"| {name} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} | {med[4]:.0f} | "
                  f"{med[5]:.0f} | {med[6]:.0f} | {med[7]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
