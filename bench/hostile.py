"""Hostile-client benchmark: a polite client's latency while 50 hostile connections attack.

    flock /tmp/edge-bench.lock python bench/hostile.py [--seconds 8] [--conns 50] [--only NAME,...]

One ``edge serve`` (auth on, TLS on a second server for the TLS rows) on 127.0.0.1. For each row
a separate attacker process runs ``--conns`` hostile connections (reconnecting whenever the
server cuts one) for ``--seconds``, while this process is the polite client: one keep-alive
connection alternating ``GET /api/v1/info`` and a 1 KB record write, one request every 20 ms.
The table shows the polite client's p50/p99 per request kind, how many polite requests failed,
and the server's peak RSS during the row (psutil, sampled every 50 ms). Target: p99 < 100 ms in
every row, RSS bounded.

Attacks (each as in the issue that asked for this benchmark):

* ``baseline``: no attacker;
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
           "pipelined", "tls-idle", "tls-half-open"]
TLS_ATTACKS = {"tls-idle", "tls-half-open"}


# --- the attacker process ---------------------------------------------------------------------


def _connect(port: int, tls_ctx: ssl.SSLContext | None = None) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def _attacker(kind: str, port: int, stop_at: float) -> None:
    """One hostile connection, reconnecting until ``stop_at``."""
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    tls_ctx = None
    if kind == "tls-idle":
        tls_ctx = ssl.create_default_context()
        tls_ctx.check_hostname = False
        tls_ctx.verify_mode = ssl.CERT_NONE
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
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=_attacker, args=(kind, port, stop_at), daemon=True) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)


# --- the polite client and the table ----------------------------------------------------------


class Server:
    def __init__(self, data: Path, port: int, tls: tuple[str, str, str] | None,
                 extra_env: dict[str, str] | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
        env.update({"RS_DATA_PATH": str(data), "RS_HOST": "127.0.0.1", "RS_PORT": str(port),
                    "RS_API_TOKEN": TOKEN, "RS_LOG_LEVEL": "WARN", "PYTHONPATH": str(ROOT)})
        if tls:
            env.update({"RS_CERT_PATH": tls[0], "RS_CERT_KEY_PATH": tls[1]})
        env.update(extra_env or {})
        self.port, self.tls = port, tls
        self.log = open(data.parent / f"edge-{port}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "serve"], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
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


def p(values: list[float], q: float) -> str:
    if not values:
        return "-"
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(q * len(values)))] * 1000:.1f}"


def run_row(name: str, server: Server, conns: int, seconds: float) -> str:
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
    if name != "baseline":
        attacker = subprocess.Popen([sys.executable, __file__, "--attack", name, "--port", str(server.port),
                                     "--conns", str(conns), "--seconds", str(seconds + 1)])
        time.sleep(1.0)  # let the attack build up before measuring
    try:
        lat = polite(server, seconds)
    finally:
        if attacker is not None:
            attacker.wait(seconds + 30)
        done.set()
        sampler.join(2)
    return (f"| {name} | {p(lat['info'], .5)} | {p(lat['info'], .99)} | {p(lat['write'], .5)} | "
            f"{p(lat['write'], .99)} | {len(lat['failed'])} | {max(rss) / 2**20:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--only", default="")
    ap.add_argument("--attack", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attack:
        attack_main(args.attack, args.port, args.conns, args.seconds)
        return
    rows = [a for a in ATTACKS if not args.only or a in args.only.split(",")]
    from tests.helpers import free_port
    from tests.tls_material import make_pki

    with tempfile.TemporaryDirectory(prefix="edge-hostile-") as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        (root / "plain").mkdir()
        (root / "tls").mkdir()
        plain = Server(root / "plain" / "data", free_port(), None)
        tls = Server(root / "tls" / "data", free_port(), (str(pki.cert), str(pki.key), str(pki.ca)))
        try:
            for srv in (plain, tls):
                c = srv.client()
                c.request("POST", "/api/v1/b/hostile", headers={"Authorization": f"Bearer {TOKEN}"})
                c.getresponse().read()
                c.close()
            print(f"polite client: GET /api/v1/info and a 1 KB write alternately, every 20 ms, "
                  f"{args.seconds:g} s per row; {args.conns} hostile connections per attack; latencies in ms")
            print("| attack | info p50 | info p99 | write p50 | write p99 | failed | server RSS MiB |")
            print("|---|---|---|---|---|---|---|")
            for name in rows:
                server = tls if name in TLS_ATTACKS else plain
                print(run_row(name, server, args.conns, args.seconds), flush=True)
        finally:
            plain.stop()
            tls.stop()


if __name__ == "__main__":
    main()
